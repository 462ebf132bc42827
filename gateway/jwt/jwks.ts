// A provider's JSON Web Key Set as Envoy's JWT library reads it (Jwks::createFromJwksCore, common/jwt/jwks.cc)
// and the signature check against it (verifyJwtWithoutTimeChecking, common/jwt/verify.cc). Keys are
// imported with jose, once per key and algorithm, the first time a token needs them; jose verifies.
//
// What Envoy accepts, and so what is checked here when the config is read:
//   - the text is a JSON object with a `keys` array; entries that are not objects, and keys that fail their
//     checks, are skipped; without one valid key the set is rejected (Envoy logs it and keeps no keys: every
//     token of the provider then fails with "Jwks doesn't have any valid public key");
//   - without `keys`, an object whose every member is a PEM certificate ("-----BEGIN CERTIFICATE-----\n" ...
//     "\n-----END CERTIFICATE-----\n") is a set of RSA keys named by the member names (Google's x509 format);
//   - RSA: `alg`, when given, starts with RS or PS; `n` and `e` strings; e is 3 or 65537;
//   - EC: `alg`, when given, starts with ES; `crv` P-256, P-384 or P-521 and compatible with `alg` (P-256 when
//     both are absent); `x` and `y` a point of the curve;
//   - oct: `alg`, when given, HS256/384/512; `k` a non-empty key;
//   - OKP: `alg`, when given, EdDSA; `crv` Ed25519; `x` 32 bytes.
// Base64 members are decoded as leniently as Envoy decodes them and handed to jose in canonical form.
//
// Matching a token to keys: a key is a candidate unless both it and the token have a `kid` and they differ, or
// the key has an `alg` other than the token's. Candidates are tried in order until one verifies. No candidate
// is "Jwks doesn't have key to match kid or alg from Jwt"; candidates that all fail, "Jwt verification fails".
// An Ed25519 key and a signature that is not 64 bytes long stop the search: "Jwt ED25519 signature is wrong
// length".
import { createPublicKey, X509Certificate } from 'node:crypto';
import { compactVerify, importJWK, importX509, type CryptoKey, type JWK } from 'jose';
import { base64UrlEncode, webSafeBase64Decode } from './base64.ts';
import { parseStruct, type JsonObject } from './json.ts';
import type { Jwt } from './jwt.ts';
import { Status } from './status.ts';

type KeyMaterial = CryptoKey | Uint8Array;

interface Jwk {
  kty: 'RSA' | 'EC' | 'oct' | 'OKP';
  /** '' when absent. */
  kid: string;
  alg: string;
  crv: string;
  /** Canonical JWK members for jose (RSA, EC, OKP), a PEM certificate (x509 sets), or the HMAC secret. */
  jwk: JWK | undefined;
  pem: string | undefined;
  secret: Uint8Array | undefined;
  /** Keys imported so far, by JWS algorithm (a WebCrypto key is bound to one); undefined when jose refused it. */
  imported: Map<string, Promise<KeyMaterial | undefined>>;
}

export interface Jwks {
  /** Ok, or why Envoy would not install this set (then `keys` is empty). */
  status: Status;
  keys: Jwk[];
}

const CERT_PREFIX = '-----BEGIN CERTIFICATE-----\n';
const CERT_SUFFIX = '\n-----END CERTIFICATE-----\n';

function str(o: JsonObject, k: string): { v: string } | 'missing' | 'wrong' {
  if (!Object.hasOwn(o, k)) return 'missing';
  const v = o[k];
  return typeof v === 'string' ? { v } : 'wrong';
}

/** A string member that must be present; `missing`/`wrong` statuses otherwise. */
function member(o: JsonObject, k: string, missing: Status, wrong: Status): string | Status {
  const v = str(o, k);
  if (v === 'missing') return missing;
  if (v === 'wrong') return wrong;
  return v.v;
}

function isStatus(v: string | Status): v is Status {
  return typeof v === 'number';
}

/** Big-endian bytes without leading zeros. */
function stripZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  return b.subarray(i);
}

function newKey(kty: Jwk['kty'], kid: string, alg: string): Jwk {
  return { kty, kid, alg, crv: '', jwk: undefined, pem: undefined, secret: undefined, imported: new Map() };
}

function rsaKey(o: JsonObject, key: Jwk): Status {
  if (key.alg !== '' && !key.alg.startsWith('RS') && !key.alg.startsWith('PS')) return Status.JwksRSAKeyBadAlg;
  const n = member(o, 'n', Status.JwksRSAKeyMissingN, Status.JwksRSAKeyBadN);
  if (isStatus(n)) return n;
  const e = member(o, 'e', Status.JwksRSAKeyMissingE, Status.JwksRSAKeyBadE);
  if (isStatus(e)) return e;
  const nb = webSafeBase64Decode(n);
  const eb = webSafeBase64Decode(e);
  if (nb === undefined || eb === undefined) return Status.JwksRsaParseError;
  const nv = stripZeros(nb);
  const ev = stripZeros(eb);
  const eHex = Buffer.from(ev).toString('hex');
  if (eHex !== '03' && eHex !== '010001') return Status.JwksRsaParseError;
  // RSA_check_key on a public key: a modulus larger than the exponent, of at most 16384 bits.
  if (nv.length < ev.length || (nv.length === ev.length && Buffer.compare(nv, ev) <= 0) || nv.length > 2048) return Status.JwksRsaParseError;
  key.jwk = { kty: 'RSA', n: base64UrlEncode(nv), e: base64UrlEncode(ev) };
  return Status.Ok;
}

const CURVE_BYTES: Record<string, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };

function ecKey(o: JsonObject, key: Jwk): Status {
  if (key.alg !== '' && !key.alg.startsWith('ES')) return Status.JwksECKeyBadAlg;
  const c = str(o, 'crv');
  if (c === 'wrong') return Status.JwksECKeyBadCrv;
  let crv = c === 'missing' ? '' : c.v;
  const alg = key.alg;
  if (alg !== '' && crv !== '' && !((alg === 'ES256' && crv === 'P-256') || (alg === 'ES384' && crv === 'P-384') || (alg === 'ES512' && crv === 'P-521')))
    return Status.JwksECKeyAlgNotCompatibleWithCrv;
  if (alg === '' && crv === '') crv = 'P-256';
  if (alg === 'ES256' || crv === 'P-256') crv = 'P-256';
  else if (alg === 'ES384' || crv === 'P-384') crv = 'P-384';
  else if (alg === 'ES512' || crv === 'P-521') crv = 'P-521';
  else return Status.JwksECKeyAlgOrCrvUnsupported;
  key.crv = crv;
  const x = member(o, 'x', Status.JwksECKeyMissingX, Status.JwksECKeyBadX);
  if (isStatus(x)) return x;
  const y = member(o, 'y', Status.JwksECKeyMissingY, Status.JwksECKeyBadY);
  if (isStatus(y)) return y;
  const xb = webSafeBase64Decode(x);
  const yb = webSafeBase64Decode(y);
  if (xb === undefined || yb === undefined) return Status.JwksEcXorYBadBase64;
  const size = CURVE_BYTES[crv] as number;
  const xv = stripZeros(xb);
  const yv = stripZeros(yb);
  if (xv.length > size || yv.length > size) return Status.JwksEcParseError;
  const pad = (v: Uint8Array): string => base64UrlEncode(Buffer.concat([Buffer.alloc(size - v.length), v]));
  const jwk: JWK = { kty: 'EC', crv, x: pad(xv), y: pad(yv) };
  // EC_KEY_set_public_key_affine_coordinates: the point must be on the curve.
  try {
    createPublicKey({ key: { kty: 'EC', crv, x: jwk.x, y: jwk.y }, format: 'jwk' });
  } catch {
    return Status.JwksEcParseError;
  }
  key.jwk = jwk;
  return Status.Ok;
}

function octKey(o: JsonObject, key: Jwk): Status {
  if (key.alg !== '' && key.alg !== 'HS256' && key.alg !== 'HS384' && key.alg !== 'HS512') return Status.JwksHMACKeyBadAlg;
  const k = member(o, 'k', Status.JwksHMACKeyMissingK, Status.JwksHMACKeyBadK);
  if (isStatus(k)) return k;
  const kb = webSafeBase64Decode(k);
  if (kb === undefined || kb.length === 0) return Status.JwksOctBadBase64;
  key.secret = Uint8Array.from(kb);
  return Status.Ok;
}

function okpKey(o: JsonObject, key: Jwk): Status {
  if (key.alg !== '' && key.alg !== 'EdDSA') return Status.JwksOKPKeyBadAlg;
  const crv = member(o, 'crv', Status.JwksOKPKeyMissingCrv, Status.JwksOKPKeyBadCrv);
  if (isStatus(crv)) return crv;
  key.crv = crv;
  if (crv !== 'Ed25519') return Status.JwksOKPKeyCrvUnsupported;
  const x = member(o, 'x', Status.JwksOKPKeyMissingX, Status.JwksOKPKeyBadX);
  if (isStatus(x)) return x;
  const xb = webSafeBase64Decode(x);
  if (xb === undefined) return Status.JwksOKPXBadBase64;
  if (xb.length !== 32) return Status.JwksOKPXWrongLength;
  key.jwk = { kty: 'OKP', crv, x: base64UrlEncode(xb) };
  return Status.Ok;
}

/** extractJwk: one member of `keys`. */
function extractJwk(o: JsonObject): Jwk | Status {
  const kty = str(o, 'kty');
  if (kty === 'missing') return Status.JwksMissingKty;
  if (kty === 'wrong') return Status.JwksBadKty;
  const kid = str(o, 'kid');
  const alg = str(o, 'alg');
  const t = kty.v;
  const name = t === 'EC' || t === 'RSA' || t === 'oct' || t === 'OKP' ? t : undefined;
  if (name === undefined) return Status.JwksNotImplementedKty;
  const key = newKey(name, typeof kid === 'object' ? kid.v : '', typeof alg === 'object' ? alg.v : '');
  const status = name === 'EC' ? ecKey(o, key) : name === 'RSA' ? rsaKey(o, key) : name === 'oct' ? octKey(o, key) : okpKey(o, key);
  return status === Status.Ok ? key : status;
}

/** The x509 form: every member a PEM certificate (and at least one member). */
function isX509Set(o: JsonObject): boolean {
  const entries = Object.entries(o);
  if (entries.length === 0) return false;
  return entries.every(([k, v]) => k !== '' && typeof v === 'string' && v.startsWith(CERT_PREFIX) && v.endsWith(CERT_SUFFIX));
}

function x509Set(o: JsonObject): Jwks {
  const keys: Jwk[] = [];
  for (const [kid, v] of Object.entries(o)) {
    const pem = v as string;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch {
      return { status: Status.JwksX509ParseError, keys: [] };
    }
    if (cert.publicKey.asymmetricKeyType !== 'rsa') return { status: Status.JwksX509GetPubkeyError, keys: [] };
    const key = newKey('RSA', kid, '');
    key.pem = pem;
    keys.push(key);
  }
  return { status: Status.Ok, keys };
}

/** Jwks::createFrom(text, JWKS), from the bytes of the text. */
export function parseJwks(text: Uint8Array): Jwks {
  const o = parseStruct(text);
  if (o === undefined) return { status: Status.JwksParseError, keys: [] };
  if (!Object.hasOwn(o, 'keys')) return isX509Set(o) ? x509Set(o) : { status: Status.JwksNoKeys, keys: [] };
  const list = o.keys;
  if (!Array.isArray(list)) return { status: Status.JwksBadKeys, keys: [] };
  const keys: Jwk[] = [];
  for (const v of list) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) continue;
    const k = extractJwk(v);
    if (typeof k !== 'number') keys.push(k);
  }
  return keys.length === 0 ? { status: Status.JwksNoValidKeys, keys: [] } : { status: Status.Ok, keys };
}

/** The key for `alg`, imported once. */
function material(key: Jwk, alg: string): Promise<KeyMaterial | undefined> {
  let p = key.imported.get(alg);
  if (p === undefined) {
    if (key.secret !== undefined) p = Promise.resolve(key.secret);
    else if (key.pem !== undefined) p = importX509(key.pem, alg).catch(() => undefined);
    else
      p = importJWK(key.jwk as JWK, alg)
        .then((k) => (k instanceof Uint8Array ? undefined : k))
        .catch(() => undefined);
    key.imported.set(alg, p);
  }
  return p;
}

/**
 * The JWS algorithm jose verifies `jwt` with under `key`, or undefined when the token's `alg` does not name
 * that key's algorithm. (Envoy picks the hash from the token's `alg` and the scheme from the key's type, so it
 * also accepts, say, an ES256 signature under a header saying RS256; jose only verifies what the header says.)
 */
function joseAlg(key: Jwk, alg: string): string | undefined {
  switch (key.kty) {
    case 'EC':
      return (alg === 'ES256' && key.crv === 'P-256') || (alg === 'ES384' && key.crv === 'P-384') || (alg === 'ES512' && key.crv === 'P-521') ? alg : undefined;
    case 'RSA':
      return alg.startsWith('RS') || alg.startsWith('PS') ? alg : undefined;
    case 'oct':
      return alg.startsWith('HS') ? alg : undefined;
    case 'OKP':
      return alg === 'EdDSA' ? alg : undefined;
  }
}

/** The JOSE `crit` names of the header, all accepted: Envoy does not look at `crit`. */
function critOption(jwt: Jwt): Record<string, boolean> | undefined {
  const crit = jwt.header.crit;
  if (!Array.isArray(crit)) return undefined;
  const o: Record<string, boolean> = {};
  for (const c of crit) if (typeof c === 'string' && c !== 'b64') o[c] = false;
  return o;
}

async function verifyWith(key: Jwk, alg: string, jwt: Jwt, compact: string): Promise<boolean> {
  const m = await material(key, alg);
  if (m === undefined) return false;
  try {
    await compactVerify(compact, m, { algorithms: [alg], crit: critOption(jwt) });
    return true;
  } catch {
    return false;
  }
}

/** verifyJwtWithoutTimeChecking. */
export async function verifySignature(jwt: Jwt, jwks: Jwks): Promise<Status> {
  // The signed data is the first two sections as received; the signature goes to jose re-encoded, as decoded.
  const compact = `${jwt.headerB64}.${jwt.payloadB64}.${base64UrlEncode(jwt.signature)}`;
  let matched = false;
  for (const key of jwks.keys) {
    if (jwt.kid !== '' && key.kid !== '' && key.kid !== jwt.kid) continue;
    if (key.alg !== '' && key.alg !== jwt.alg) continue;
    matched = true;
    if (key.kty === 'OKP' && jwt.signature.length !== 64) return Status.JwtEd25519SignatureWrongLength;
    const alg = joseAlg(key, jwt.alg);
    if (alg !== undefined && (await verifyWith(key, alg, jwt, compact))) return Status.Ok;
  }
  return matched ? Status.JwtVerificationFail : Status.JwksKidAlgMismatch;
}
