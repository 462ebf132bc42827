// Strict HTTP/1.1 response framing for upstream connections, as Envoy's client codec applies it
// (source/common/http/http1/codec_impl.cc ClientConnectionImpl, balsa_parser.cc): every response whose framing
// is in doubt is a protocol error, which the router answers 502 `upstream connect error or disconnect/reset
// before headers. reset reason: protocol error` (flag UPE) and which closes the upstream connection. A gateway
// that guessed here would let an upstream desync the client's stream (response splitting).
//
// Pure functions over latin1 text: the pool (h1-pool.ts) finds the head's end and calls these.
import type { ChunkedRules } from '../../xds/chunked.ts';

/** A framing error in an upstream response; `code` is llhttp's name for it (the router maps HPE_* to UPE). */
export class UpstreamProtocolError extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(`upstream response: ${message}`);
    this.code = code;
  }
}

/** Envoy's MAX_RESPONSE_HEADERS_KB (80 KiB, http_parser's limit): a longer head or trailer block is an error. */
export const MAX_RESPONSE_HEAD = 80 * 1024;
/** Envoy's default max_headers_count (HttpProtocolOptions): more response headers are a codec error. */
const MAX_RESPONSE_HEADERS = 100;

export interface ResponseHead {
  status: number;
  reason: string;
  /** Header names and values as received (obs-fold unfolded, optional whitespace trimmed). */
  headers: string[];
  /** -1: no content-length. */
  contentLength: number;
  chunked: boolean;
  /** May the connection carry another request after this response (HTTP version and `connection`)? */
  keepAlive: boolean;
}

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** CTLs other than HTAB (NUL, a bare CR or LF, DEL...): Balsa's invalid header characters, rejected in responses. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const INVALID_CHAR = /[\x00-\x08\x0a-\x1f\x7f]/;
const DIGITS = /^[0-9]+$/;

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isOws(s.charCodeAt(a))) a++;
  while (b > a && isOws(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/**
 * Header lines ("name: value", CRLF already split off) into a flat name/value list. A line starting with
 * SP/HTAB continues the previous value (obs-fold): Envoy's Balsa parser keeps it and drops the CR LF, so the
 * value reads on with the fold's whitespace (RFC 9112 §5.2 lets a proxy replace obs-fold this way).
 */
function parseFieldLines(lines: string[], from: number, what: string): string[] {
  const out: string[] = [];
  for (let i = from; i < lines.length; i++) {
    const l = lines[i] as string;
    if (INVALID_CHAR.test(l)) throw new UpstreamProtocolError(`invalid character in a ${what} line`, 'HPE_INVALID_HEADER_TOKEN');
    if (l.length > 0 && isOws(l.charCodeAt(0))) {
      if (out.length === 0) throw new UpstreamProtocolError(`${what} block starts with whitespace`, 'HPE_INVALID_HEADER_TOKEN');
      out[out.length - 1] = (out[out.length - 1] as string) + l;
      continue;
    }
    const colon = l.indexOf(':');
    const name = colon < 0 ? '' : l.slice(0, colon);
    // Also catches whitespace before the colon (`Transfer-Encoding : chunked`), a classic smuggling shape.
    if (!TOKEN.test(name)) throw new UpstreamProtocolError(`malformed ${what} name`, 'HPE_INVALID_HEADER_TOKEN');
    out.push(name, l.slice(colon + 1));
  }
  for (let i = 1; i < out.length; i += 2) out[i] = trimOws(out[i] as string);
  return out;
}

/**
 * Parses a response head (status line and header lines, without the final empty line) and decides its
 * framing headers. (Which responses have no body at all, HEAD, 1xx, 204, 304, is the caller's rule.)
 */
export function parseResponseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const m = STATUS_LINE.exec(lines[0] as string);
  if (!m) throw new UpstreamProtocolError('malformed status line', 'HPE_INVALID_CONSTANT');
  const status = Number(m[2]);
  const http11 = m[1] === '1';
  const headers = parseFieldLines(lines, 1, 'header');
  if (headers.length / 2 > MAX_RESPONSE_HEADERS) throw new UpstreamProtocolError(`more than ${MAX_RESPONSE_HEADERS} headers`, 'HPE_HEADER_OVERFLOW');
  let contentLength = -1;
  let clAt = -1;
  let te: string | undefined;
  let close = false;
  let keepAliveToken = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = (headers[i] as string).toLowerCase();
    const value = headers[i + 1] as string;
    if (name === 'content-length') {
      // Balsa disallow_multiple_content_length: a second content-length is an error even when equal.
      if (clAt >= 0) throw new UpstreamProtocolError('more than one content-length', 'HPE_UNEXPECTED_CONTENT_LENGTH');
      if (!DIGITS.test(value) || value.length > 15)
        throw new UpstreamProtocolError(`invalid content-length ${JSON.stringify(value)}`, 'HPE_INVALID_CONTENT_LENGTH');
      contentLength = Number(value);
      clAt = i;
    } else if (name === 'transfer-encoding') {
      // Envoy accepts exactly `chunked` (any case); a second header reads `chunked,chunked`, rejected alike.
      if (te !== undefined) throw new UpstreamProtocolError('more than one transfer-encoding', 'HPE_INVALID_TRANSFER_ENCODING');
      te = value;
    } else if (name === 'connection') {
      for (const t of value.split(',')) {
        const tok = trimOws(t).toLowerCase();
        if (tok === 'close') close = true;
        else if (tok === 'keep-alive') keepAliveToken = true;
      }
    }
  }
  if (te !== undefined && te.toLowerCase() !== 'chunked')
    throw new UpstreamProtocolError(`unsupported transfer-encoding ${JSON.stringify(te)}`, 'HPE_INVALID_TRANSFER_ENCODING');
  // RFC 9112 §6.3: both framings at once may be an attempt at response splitting; Envoy rejects it.
  if (te !== undefined && clAt >= 0) throw new UpstreamProtocolError("both 'Content-Length' and 'Transfer-Encoding' are set", 'HPE_UNEXPECTED_CONTENT_LENGTH');
  if (status < 200 || status === 204) {
    // ClientConnectionImpl::onHeadersCompleteBase: no transfer-encoding, and content-length only as "0" (removed).
    if (te !== undefined) throw new UpstreamProtocolError(`transfer-encoding not allowed in a ${status}`, 'HPE_INVALID_TRANSFER_ENCODING');
    if (clAt >= 0) {
      if (headers[clAt + 1] !== '0') throw new UpstreamProtocolError(`content-length not allowed in a ${status}`, 'HPE_UNEXPECTED_CONTENT_LENGTH');
      headers.splice(clAt, 2);
      contentLength = -1;
    }
  }
  return { status, reason: m[3] ?? '', headers, contentLength, chunked: te !== undefined, keepAlive: http11 ? !close : keepAliveToken && !close };
}

/**
 * Chunked upstream responses, as Envoy's client codec (Balsa) frames them: whitespace allowed after the size,
 * at most 13 significant size digits (an exact JS number; a larger chunk is an overflow, as in llhttp and
 * Balsa), extensions of visible bytes only, a size line of 1 KiB at most, and trailers within the response
 * head limit and held to the header rules: a malformed trailer block leaves the framing of what follows in
 * doubt. (Decoded by xds/chunked.ts.)
 */
export const RESPONSE_CHUNKED: ChunkedRules = {
  maxSizeDigits: 13,
  countLeadingZeros: false,
  whitespaceAfterSize: true,
  delInExtension: false,
  maxSizeLine: 1024,
  maxTrailerLine: Infinity,
  maxTrailerSection: MAX_RESPONSE_HEAD,
  checkTrailers: (lines) => void parseFieldLines(lines, 0, 'trailer'),
};
