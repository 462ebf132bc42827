// The fast path's HTTP/1.1 request-head parser: one pass over the raw bytes, accepting only the common,
// unambiguous shape of a request (known method, origin-form target, HTTP/1.1, token header names, visible
// ASCII values, one Content-Length of digits or one `Transfer-Encoding: chunked`, never both). Anything
// else — HTTP/1.0, absolute-form, obs-fold, bare LF, CL+TE, duplicate CL, other transfer codings, upgrades,
// control or non-ASCII bytes, oversized heads — is not interpreted here at all: the connection is handed,
// from that request's first byte, to the general path (node:http / llhttp in strict mode), which answers
// it exactly as it answers any connection (400 / 426 / 431 / upgrade). So the fast path can never accept a
// request the general path would reject or frame differently (request smuggling needs two parsers that
// disagree; here the second parser decides every doubtful case).

import { ChunkedDecoder as ChunkedBodyDecoder, type ChunkedRules } from '../../xds/chunked.ts';

/** More bytes are needed (no CRLFCRLF yet, within the size limit). */
export const HEAD_INCOMPLETE = 0;
/** Not for the fast path: hand the connection to the general path from this request on. */
export const HEAD_HANDOFF = -1;

export interface RequestHead {
  method: string;
  /** Origin-form target as received. */
  url: string;
  /** [name, value, ...]: names as received, values with surrounding whitespace trimmed (node's rawHeaders). */
  rawHeaders: string[];
  /** -1: no Content-Length. */
  contentLength: number;
  chunked: boolean;
}

const METHODS = new Map<string, string>([
  ['GET', 'GET'],
  ['HEAD', 'HEAD'],
  ['POST', 'POST'],
  ['PUT', 'PUT'],
  ['DELETE', 'DELETE'],
  ['OPTIONS', 'OPTIONS'],
  ['PATCH', 'PATCH'],
]);

/** RFC 9110 tchar. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

type Latin1 = { latin1Slice(start: number, end: number): string };
/** Buffer#latin1Slice (node's own fast path behind toString('latin1')), without the encoding lookup. */
const latin1 = (b: Buffer, start: number, end: number): string => (b as unknown as Latin1).latin1Slice(start, end);

const CR = 13;
const LF = 10;
const SP = 32;
const HT = 9;
const COLON = 58;

// Request line must end with exactly " HTTP/1.1\r\n".
const VERSION = Buffer.from(' HTTP/1.1\r\n', 'latin1');

/**
 * Parses the head starting at `start` (< end). Returns the head's length in bytes (through the blank line)
 * and fills `out`, or HEAD_INCOMPLETE, or HEAD_HANDOFF. `maxBytes`: above it without a complete head the
 * general path answers (431).
 */
export function parseRequestHead(buf: Buffer, start: number, end: number, maxBytes: number, out: RequestHead): number {
  // Request line: METHOD SP target SP HTTP/1.1 CRLF
  let i = start;
  const limit = end - start > maxBytes ? start + maxBytes : end;
  while (i < limit && TCHAR[buf[i] as number] === 1) i++;
  if (i >= limit) return end - start > maxBytes ? HEAD_HANDOFF : HEAD_INCOMPLETE;
  if (buf[i] !== SP || i === start) return HEAD_HANDOFF;
  const method = METHODS.get(latin1(buf, start, i));
  if (method === undefined) return HEAD_HANDOFF;
  const t0 = ++i;
  if (i < limit && buf[i] !== 0x2f) return HEAD_HANDOFF; // origin-form only
  for (; i < limit; i++) {
    const c = buf[i] as number;
    if (c <= SP || c >= 0x7f) break;
  }
  if (i >= limit) return end - start > maxBytes ? HEAD_HANDOFF : HEAD_INCOMPLETE;
  if (buf[i] !== SP) return HEAD_HANDOFF;
  const url = latin1(buf, t0, i);
  for (let k = 0; k < VERSION.length; k++, i++) {
    if (i >= limit) return end - start > maxBytes ? HEAD_HANDOFF : HEAD_INCOMPLETE;
    if (buf[i] !== VERSION[k]) return HEAD_HANDOFF;
  }
  const raw: string[] = [];
  let contentLength = -1;
  let chunked = false;
  let te = false;
  for (;;) {
    if (i >= limit) return end - start > maxBytes ? HEAD_HANDOFF : HEAD_INCOMPLETE;
    let c = buf[i] as number;
    if (c === CR) {
      if (i + 1 >= limit) return end - start > maxBytes ? HEAD_HANDOFF : HEAD_INCOMPLETE;
      if (buf[i + 1] !== LF) return HEAD_HANDOFF;
      i += 2;
      break;
    }
    // Header name: tchar+ immediately followed by ':' (no whitespace before the colon, no obs-fold).
    const n0 = i;
    while (i < limit && TCHAR[buf[i] as number] === 1) i++;
    if (i >= limit) return end - start > maxBytes ? HEAD_HANDOFF : HEAD_INCOMPLETE;
    if (buf[i] !== COLON || i === n0) return HEAD_HANDOFF;
    const n1 = i++;
    while (i < limit && (buf[i] === SP || buf[i] === HT)) i++;
    const v0 = i;
    let v1 = i;
    for (; i < limit; i++) {
      c = buf[i] as number;
      if (c > SP && c < 0x7f) v1 = i + 1;
      else if (c !== SP && c !== HT) break;
    }
    if (i + 1 >= limit) return end - start > maxBytes ? HEAD_HANDOFF : HEAD_INCOMPLETE;
    if (c !== CR || buf[i + 1] !== LF) return HEAD_HANDOFF;
    i += 2;
    const name = latin1(buf, n0, n1);
    const value = latin1(buf, v0, v1);
    const len = n1 - n0;
    // Framing and hop-by-hop headers that change how the bytes are read: recognised case-insensitively.
    // (Expect is the connection manager's, on both paths: request-admission.ts.)
    if (len === 14 || len === 17 || len === 10 || len === 7) {
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        if (contentLength >= 0 || value.length === 0 || value.length > 15) return HEAD_HANDOFF;
        let n = 0;
        for (let k = 0; k < value.length; k++) {
          const d = value.charCodeAt(k) - 48;
          if (d < 0 || d > 9) return HEAD_HANDOFF;
          n = n * 10 + d;
        }
        contentLength = n;
      } else if (lower === 'transfer-encoding') {
        if (te || value.toLowerCase() !== 'chunked') return HEAD_HANDOFF;
        te = true;
        chunked = true;
      } else if (lower === 'connection') {
        // Upgrades (and anything that names one) go to the general path with its websocket handling.
        if (value.toLowerCase().includes('upgrade')) return HEAD_HANDOFF;
      } else if (lower === 'upgrade') {
        return HEAD_HANDOFF;
      }
    }
    raw.push(name, value);
  }
  if (chunked && contentLength >= 0) return HEAD_HANDOFF;
  if (i - start > maxBytes) return HEAD_HANDOFF;
  out.method = method;
  out.url = url;
  out.rawHeaders = raw;
  out.contentLength = contentLength;
  out.chunked = chunked;
  return i - start;
}

export function newRequestHead(): RequestHead {
  return { method: '', url: '', rawHeaders: [], contentLength: -1, chunked: false };
}

/** A request trailer line both HTTP/1 codecs refuse. */
export class TrailerLineError extends Error {}

/**
 * Trailer lines as both HTTP/1 codecs hold them (Envoy's Balsa and node's llhttp): a token name with its colon
 * right after it, a value without control characters but HTAB. A continuation line (obs-fold) is refused too:
 * Balsa would accept it, node:http does not, and the fast path never accepts what the general path refuses.
 * Throws TrailerLineError on the first bad line (a codec error: 400 and close).
 */
function checkTrailerLines(lines: string[]): void {
  for (const l of lines) {
    const colon = l.indexOf(':');
    if (colon <= 0) throw new TrailerLineError('malformed trailer line');
    for (let k = 0; k < colon; k++) if (TCHAR[l.charCodeAt(k)] !== 1) throw new TrailerLineError('malformed trailer name');
    for (let k = colon + 1; k < l.length; k++) {
      const c = l.charCodeAt(k);
      if ((c < SP && c !== HT) || c === 0x7f) throw new TrailerLineError('control character in a trailer value');
    }
  }
}

/**
 * Chunked request bodies on the fast path: no whitespace after the size, at most 12 size digits (leading zeros
 * counted), any extension bytes but control characters. Trailers are parsed and dropped, as Envoy's codec does
 * without enable_trailers (istiod never sets it): the section within max_request_headers_kb (the head's limit,
 * the constructor's argument), its lines held to checkTrailerLines.
 */
const REQUEST_CHUNKED: ChunkedRules = {
  maxSizeDigits: 12,
  countLeadingZeros: true,
  whitespaceAfterSize: false,
  delInExtension: true,
  maxSizeLine: Infinity,
  maxTrailerLine: Infinity,
  maxTrailerSection: Infinity,
  checkTrailers: checkTrailerLines,
};

/**
 * The fast path's chunked request-body decoder: the one of xds/chunked.ts under REQUEST_CHUNKED, the trailer
 * section limited to `maxTrailerBytes`. Its feed throws TrailerLineError on a malformed trailer line.
 */
export class ChunkedDecoder extends ChunkedBodyDecoder {
  constructor(maxTrailerBytes: number) {
    super({ ...REQUEST_CHUNKED, maxTrailerSection: maxTrailerBytes });
  }
}
