// A JWT as Envoy's JWT library parses it (Jwt::parseFromString, common/jwt/jwt.cc), before any key is
// involved, and its time constraints (Jwt::verifyTimeConstraint).
import { webSafeBase64Decode } from './base64.ts';
import { parseStruct, type JsonObject, type JsonValue } from './json.ts';
import { Status } from './status.ts';

/** The algorithms Envoy implements; any other `alg` is "not supported". */
const IMPLEMENTED = new Set(['ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA']);

export interface Jwt {
  /** The first and second sections as they appear in the token: the signed data is `${headerB64}.${payloadB64}`. */
  headerB64: string;
  payloadB64: string;
  /** The decoded signature. */
  signature: Buffer;
  header: JsonObject;
  payload: JsonObject;
  alg: string;
  /** '' when absent. */
  kid: string;
  iss: string;
  sub: string;
  /** 0 when absent (Envoy's defaults), truncated to an integer. */
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
  /** `aud` as a list (a string is a list of one). */
  audiences: string[];
}

const MISSING = 'missing';
const WRONG_TYPE = 'wrong type';

/** StructUtils::GetString: the string, or MISSING / WRONG_TYPE. */
function getString(o: JsonObject, k: string): { v: string } | typeof MISSING | typeof WRONG_TYPE {
  if (!Object.hasOwn(o, k)) return MISSING;
  const v = o[k];
  return typeof v === 'string' ? { v } : WRONG_TYPE;
}

/** StructUtils::GetUInt64: a number in [0, 2^64), truncated; 'range' when out of it. */
function getUInt64(o: JsonObject, k: string): number | typeof MISSING | typeof WRONG_TYPE | 'range' {
  if (!Object.hasOwn(o, k)) return MISSING;
  const v = o[k];
  if (typeof v !== 'number') return WRONG_TYPE;
  if (v < 0 || v >= 2 ** 64) return 'range';
  return Math.trunc(v);
}

/**
 * StructUtils::GetValue with a dotted name: each step but the last must be an object. undefined when a step is
 * missing or not an object.
 */
export function claimValue(payload: JsonObject, name: string): JsonValue | undefined {
  const steps = name.split('.');
  let cur: JsonObject = payload;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i] as string;
    if (!Object.hasOwn(cur, step)) return undefined;
    const v = cur[step] as JsonValue;
    if (i === steps.length - 1) return v;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    cur = v;
  }
  return undefined;
}

/** Jwt::parseFromString: the token, or the first failure in Envoy's order of checks. */
export function parseJwt(token: string): Jwt | Status {
  // Exactly three non-empty sections: empty ones (from '..' or a leading or trailing '.') are skipped.
  const parts = token.split('.').filter((p) => p !== '');
  if (parts.length !== 3) return Status.JwtBadFormat;
  const [headerB64, payloadB64, sigB64] = parts as [string, string, string];

  const headerBytes = webSafeBase64Decode(headerB64);
  if (headerBytes === undefined) return Status.JwtHeaderParseErrorBadBase64;
  const header = parseStruct(headerBytes);
  if (header === undefined) return Status.JwtHeaderParseErrorBadJson;
  const alg = getString(header, 'alg');
  if (typeof alg !== 'object') return Status.JwtHeaderBadAlg;
  if (!IMPLEMENTED.has(alg.v)) return Status.JwtHeaderNotImplementedAlg;
  const kid = getString(header, 'kid');
  if (kid === WRONG_TYPE) return Status.JwtHeaderBadKid;

  const payloadBytes = webSafeBase64Decode(payloadB64);
  if (payloadBytes === undefined) return Status.JwtPayloadParseErrorBadBase64;
  const payload = parseStruct(payloadBytes);
  if (payload === undefined) return Status.JwtPayloadParseErrorBadJson;
  const iss = getString(payload, 'iss');
  if (iss === WRONG_TYPE) return Status.JwtPayloadParseErrorIssNotString;
  const sub = getString(payload, 'sub');
  if (sub === WRONG_TYPE) return Status.JwtPayloadParseErrorSubNotString;
  const iat = getUInt64(payload, 'iat');
  if (iat === WRONG_TYPE) return Status.JwtPayloadParseErrorIatNotInteger;
  if (iat === 'range') return Status.JwtPayloadParseErrorIatOutOfRange;
  const nbf = getUInt64(payload, 'nbf');
  if (nbf === WRONG_TYPE) return Status.JwtPayloadParseErrorNbfNotInteger;
  if (nbf === 'range') return Status.JwtPayloadParseErrorNbfOutOfRange;
  const exp = getUInt64(payload, 'exp');
  if (exp === WRONG_TYPE) return Status.JwtPayloadParseErrorExpNotInteger;
  if (exp === 'range') return Status.JwtPayloadParseErrorExpOutOfRange;
  const jti = getString(payload, 'jti');
  if (jti === WRONG_TYPE) return Status.JwtPayloadParseErrorJtiNotString;
  const audiences: string[] = [];
  if (Object.hasOwn(payload, 'aud')) {
    const aud = payload.aud;
    if (typeof aud === 'string') audiences.push(aud);
    else if (Array.isArray(aud)) {
      for (const a of aud) {
        if (typeof a !== 'string') return Status.JwtPayloadParseErrorAudNotString;
        audiences.push(a);
      }
    } else return Status.JwtPayloadParseErrorAudNotString;
  }

  const signature = webSafeBase64Decode(sigB64);
  if (signature === undefined) return Status.JwtSignatureParseErrorBadBase64;
  return {
    headerB64,
    payloadB64,
    signature,
    header,
    payload,
    alg: alg.v,
    kid: typeof kid === 'object' ? kid.v : '',
    iss: typeof iss === 'object' ? iss.v : '',
    sub: typeof sub === 'object' ? sub.v : '',
    iat: iat === MISSING ? 0 : iat,
    nbf: nbf === MISSING ? 0 : nbf,
    exp: exp === MISSING ? 0 : exp,
    jti: typeof jti === 'object' ? jti.v : '',
    audiences,
  };
}

/** `exp + skew` in unsigned 64-bit arithmetic, as Envoy computes it (it wraps for an `exp` near 2^64). */
function expPlusSkew(exp: number, skew: number): number {
  if (exp + skew < 2 ** 53) return exp + skew;
  return Number((BigInt(exp) + BigInt(skew)) % 2n ** 64n);
}

/** Jwt::verifyTimeConstraint: `nbf` first, then `exp` (0 = no expiration), each with `skew` seconds of leeway. */
export function verifyTimeConstraint(jwt: Jwt, nowSeconds: number, skew: number): Status {
  if (nowSeconds + skew < jwt.nbf) return Status.JwtNotYetValid;
  if (jwt.exp !== 0 && nowSeconds > expPlusSkew(jwt.exp, skew)) return Status.JwtExpired;
  return Status.Ok;
}
