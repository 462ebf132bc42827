// The adversarial corpus: hostile client bytes (and hostile upstream responses) with Envoy's answer to each,
// as Istio configures it (gateway HCM, balsa HTTP/1 codec, websocket the only upgrade, HTTP/1.0 off). Each
// case says what the client must get back (statuses in order, bodies where they tell something, whether
// the gateway closes) and EXACTLY which requests the backend must have received (method, target, header
// bytes; [] = nothing at all). The rule next to each case names where Envoy decides it:
//   [H1]    source/common/http/http1/codec_impl.cc (onHeadersCompleteBase, handlePath, sendProtocolError)
//   [BP]    source/common/http/http1/balsa_parser.cc (validation policy: obs-fold allowed, header colon
//           required, multiple Content-Length rejected, Transfer-Encoding left to [H1], CR/LF removed from
//           values; method list, URL and version checks)
//   [BF]    quiche/balsa/balsa_frame.cc (LF or CRLF line ends, invalid header bytes 0x00-0x08, 0x0B, 0x0C,
//           0x0E-0x1F, 0x7F; header-name bytes; Content-Length parsing; chunk sizes)
//   [HCM]   source/common/http/conn_manager_impl.cc; [HCMU] conn_manager_utility.cc (sanitising)
//   [DP §n] section n of the team's notes on Envoy's data plane (not in this repository; each rule states the behaviour)
// A local reply sent before the request was read completely, and every 400, closes the connection [DP §1.1].
// Latin1 strings are bytes: '\xe9' is the single byte 0xE9.
import { HOST } from './config.ts';

export interface ExpectedRequest {
  method: string;
  /** The request-target the backend must receive, exactly. */
  target: string;
  /** Header values the backend must receive byte for byte (latin1); null: must be absent; {not}: present, other value. */
  headers?: Record<string, string | null | { not: string }>;
  body?: string;
}

interface ExpectedResponse {
  status: number;
  body?: string;
  /** Header values the client must get; null: must be absent. */
  headers?: Record<string, string | null>;
}

export interface AdversarialCase {
  name: string;
  /** Where Envoy's answer comes from. */
  rule: string;
  /**
   * meshgate knowingly answers otherwise than Envoy (docs/security.md, "Where meshgate is stricter than
   * Envoy"): what Envoy does and why we differ. `expect` is then meshgate's answer, never a laxer one.
   */
  deviation?: string;
  /** Client bytes, one write each (latin1). */
  writes: string[];
  gapMs?: number;
  /** Raw bytes the backend answers every request whose target starts with /up/ with (a hostile upstream). */
  upstream?: string;
  expect: {
    responses: ExpectedResponse[];
    closes: boolean;
    backend: ExpectedRequest[];
  };
  timeoutMs?: number;
}

const H = `Host: ${HOST}\r\n`;
const get = (target: string, extra = ''): string => `GET ${target} HTTP/1.1\r\n${H}${extra}\r\n`;
const post = (target: string, extra: string, body: string): string => `POST ${target} HTTP/1.1\r\n${H}${extra}\r\n${body}`;
const ok = (target: string): ExpectedResponse => ({ status: 200, body: `rec:${target}` });
const BAD_REQUEST: ExpectedResponse = { status: 400, body: 'Bad Request' };
const NOT_IMPLEMENTED: ExpectedResponse = { status: 501, body: 'Not Implemented' };
const TOO_LARGE: ExpectedResponse = { status: 431, body: 'Request Header Fields Too Large' };
const DENIED: ExpectedResponse = { status: 403, body: 'denied' };
const PROTOCOL_ERROR: ExpectedResponse = { status: 502, body: 'upstream connect error or disconnect/reset before headers. reset reason: protocol error' };
/** A request smuggled in a body: it must never reach the backend on its own. */
const SMUGGLED = `GET /secret HTTP/1.1\r\n${H}\r\n`;
const utf8 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');
/** Why meshgate refuses legacy forms Envoy's Balsa parser accepts (docs/security.md). */
const STRICTER = "meshgate refuses it: its general path is node's strict llhttp, and no request Envoy refuses gets through";
const rejected = (r: ExpectedResponse): AdversarialCase['expect'] => ({ responses: [r], closes: true, backend: [] });

export const CORPUS: AdversarialCase[] = [
  // ---- request smuggling: framing ----
  {
    name: 'CL.TE: Content-Length and Transfer-Encoding: chunked -> 400, nothing upstream',
    rule: '[H1] both Content-Length and Transfer-Encoding, allow_chunked_length off: 400 http1.content_length_and_chunked_not_allowed',
    writes: [post('/clte', 'Content-Length: 6\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${SMUGGLED}`)],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'TE.CL: Transfer-Encoding before Content-Length -> 400, nothing upstream',
    rule: '[H1] same check whatever the order',
    writes: [post('/tecl', 'Transfer-Encoding: chunked\r\nContent-Length: 4\r\n', `5c\r\n${SMUGGLED}\r\n0\r\n\r\n`)],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'duplicate Content-Length with equal values -> 400',
    rule: '[BP] disallow_multiple_content_length = true -> MULTIPLE_CONTENT_LENGTH_KEYS',
    writes: [post('/dupcl', 'Content-Length: 5\r\nContent-Length: 5\r\n', 'hello')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'conflicting Content-Length values -> 400',
    rule: '[BF] different Content-Length values -> MULTIPLE_CONTENT_LENGTH_KEYS',
    writes: [post('/conflictcl', 'Content-Length: 5\r\nContent-Length: 41\r\n', `hello${SMUGGLED}`)],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'Content-Length as a list "5, 5" -> 400',
    rule: '[BF] Content-Length must be digits only (UNPARSABLE_CONTENT_LENGTH)',
    writes: [post('/clist', 'Content-Length: 5, 5\r\n', 'hello')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'Content-Length with a sign "+5" -> 400',
    rule: '[BF] Content-Length must be digits only',
    writes: [post('/clsign', 'Content-Length: +5\r\n', 'hello')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'Content-Length larger than 2^64 -> 400',
    rule: '[BF] CONTENT_LENGTH_OVERFLOW',
    writes: [post('/clhuge', 'Content-Length: 99999999999999999999999\r\n', 'hello')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'Transfer-Encoding: identity on a GET -> 501, nothing upstream',
    rule: '[H1] Transfer-Encoding other than exactly "chunked" (case-insensitive): 501 http1.invalid_transfer_encoding',
    writes: [get('/te-identity', 'Transfer-Encoding: identity\r\n')],
    expect: rejected(NOT_IMPLEMENTED),
  },
  {
    name: 'Transfer-Encoding: xchunked -> 501',
    rule: '[H1] not exactly "chunked"',
    writes: [post('/te-x', 'Transfer-Encoding: xchunked\r\n', `0\r\n\r\n${SMUGGLED}`)],
    expect: rejected(NOT_IMPLEMENTED),
  },
  {
    name: 'Transfer-Encoding: chunked;q=1 -> 501',
    rule: '[H1] not exactly "chunked"',
    writes: [post('/te-q', 'Transfer-Encoding: chunked;q=1\r\n', `0\r\n\r\n${SMUGGLED}`)],
    expect: rejected(NOT_IMPLEMENTED),
  },
  {
    name: 'Transfer-Encoding: gzip, chunked -> 501',
    rule: '[H1] not exactly "chunked" (Envoy decodes no other coding)',
    writes: [post('/te-gzip', 'Transfer-Encoding: gzip, chunked\r\n', '0\r\n\r\n')],
    expect: rejected(NOT_IMPLEMENTED),
  },
  {
    name: 'Transfer-Encoding: chunked, chunked -> 400 (Envoy 501), nothing upstream',
    rule: '[H1] not exactly "chunked"',
    deviation: 'Envoy answers 501 Not Implemented; llhttp refuses a repeated chunked coding before the codec check: 400',
    writes: [post('/te-cc', 'Transfer-Encoding: chunked, chunked\r\n', '0\r\n\r\n')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'two Transfer-Encoding: chunked lines -> 400 (Envoy 501), nothing upstream',
    rule: '[H1] repeated headers are joined with "," ("chunked,chunked"), not exactly "chunked"',
    deviation: 'Envoy answers 501 Not Implemented; llhttp refuses a repeated chunked coding before the codec check: 400',
    writes: [post('/te-twice', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'Transfer-Encoding: Chunked (any case) is chunked: body decoded and forwarded',
    rule: '[H1] EqualsIgnoreCase(encoding, "chunked")',
    writes: [post('/te-case', 'Transfer-Encoding: Chunked\r\n', '5\r\nhello\r\n0\r\n\r\n')],
    expect: { responses: [ok('/te-case')], closes: false, backend: [{ method: 'POST', target: '/te-case', body: 'hello' }] },
  },
  {
    name: 'space before the colon of Transfer-Encoding -> 400',
    rule: '[BF] space is not a header-name byte (INVALID_HEADER_NAME_CHARACTER)',
    writes: [post('/sp-colon', 'Transfer-Encoding : chunked\r\nContent-Length: 5\r\n', 'hello')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'tab before the colon -> 400',
    rule: '[BF] tab is not a header-name byte',
    writes: [get('/tab-colon', 'X-A\t: b\r\n')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'header line without a colon -> 400',
    rule: '[BP] require_header_colon = true (HEADER_MISSING_COLON)',
    writes: [get('/nocolon', 'X-No-Colon\r\n')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'obs-fold -> 400 (Envoy unfolds it), nothing upstream',
    rule: '[BP] disallow_header_continuation_lines = false; CR and LF removed from the value (matches http-parser)',
    deviation: `Envoy unfolds it and the backend gets x-fold: a b; ${STRICTER}`,
    writes: [get('/fold', 'X-Fold: a\r\n b\r\n')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'obs-fold hiding a Transfer-Encoding line -> 400 (Envoy folds it into the value), nothing upstream',
    rule: '[BP] a continuation line belongs to the previous header; no Transfer-Encoding header exists',
    deviation: `Envoy forwards x-a: b Transfer-Encoding: chunked with the Content-Length body; ${STRICTER}`,
    writes: [post('/fold-te', 'Content-Length: 5\r\nX-A: b\r\n Transfer-Encoding: chunked\r\n', 'hello')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'bare LF line ends -> 400 (Envoy accepts them), nothing upstream',
    rule: '[BF] a line ends at LF with or without CR (kValidTerm2 "\\n\\n" ends the head); RFC 9112 §2.2 MAY (not seen on a live Envoy)',
    deviation: `Envoy accepts LF line ends and forwards with CRLF; ${STRICTER}`,
    writes: [`GET /lf HTTP/1.1\n${H.replace('\r\n', '\n')}X-B: c\n\n`],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'bare LF inside the header block -> 400 (Envoy splits the line there), nothing upstream',
    rule: '[BF] LF ends a line',
    deviation: `Envoy reads two header lines; ${STRICTER}`,
    writes: [`GET /lf2 HTTP/1.1\r\nHost: ${HOST}\nX-B: c\r\n\r\n`],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'bare CR inside a header value -> 400 (Envoy removes it), nothing upstream',
    rule: '[BP] CR/LF removed from values; lone CR is not an invalid byte (disallow_lone_cr_in_request_headers unset; envoy#34829 reverted in #35025)',
    deviation: `Envoy removes the CR and forwards x-b: ab; ${STRICTER}`,
    writes: [get('/cr', 'X-B: a\rb\r\n')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'NUL in a header value -> 400',
    rule: '[BF] 0x00 is an invalid header byte (INVALID_HEADER_CHARACTER), invalid_chars_level kError',
    writes: [get('/nul', 'X-A: b\x00c\r\n')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'NUL in a header name -> 400',
    rule: '[BF] invalid header byte',
    writes: [get('/nul-name', 'X-\x00A: b\r\n')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'control byte 0x01 in a header value -> 400',
    rule: '[BF] invalid header byte',
    writes: [get('/ctl', 'X-A: b\x01\r\n')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'non-token header name "X(A)" -> 400',
    rule: '[BF] "(" is not a header-name byte',
    writes: [get('/tok', 'X(A): b\r\n')],
    expect: rejected(BAD_REQUEST),
  },
  // ---- header bytes that must pass unchanged ----
  {
    name: 'Latin-1 byte 0xE9 in a value reaches the backend byte for byte',
    rule: '[BF] obs-text (0x80-0xFF) is valid in values; Envoy forwards header bytes as received',
    writes: [get('/latin1', 'X-A: caf\xe9\r\n')],
    expect: { responses: [ok('/latin1')], closes: false, backend: [{ method: 'GET', target: '/latin1', headers: { 'x-a': 'caf\xe9' } }] },
  },
  {
    name: 'UTF-8 in a value reaches the backend byte for byte (not re-encoded)',
    rule: '[BF] obs-text valid; bytes forwarded as received',
    writes: [get('/utf8', `X-A: ${utf8('café ☃')}\r\n`)],
    expect: { responses: [ok('/utf8')], closes: false, backend: [{ method: 'GET', target: '/utf8', headers: { 'x-a': utf8('café ☃') } }] },
  },
  // ---- sanitising at the edge ----
  {
    name: 'forged x-forwarded-client-cert is removed (SANITIZE_SET, plaintext)',
    rule: '[HCMU] forward_client_cert_details SANITIZE_SET: the client value is dropped; no client cert -> none set [DP §2.1 item 9]',
    writes: [get('/xfcc', 'X-Forwarded-Client-Cert: By=spiffe://forged;URI=spiffe://cluster.local/ns/default/sa/admin\r\n')],
    expect: { responses: [ok('/xfcc')], closes: false, backend: [{ method: 'GET', target: '/xfcc', headers: { 'x-forwarded-client-cert': null } }] },
  },
  {
    name: 'internal x-envoy-* headers from outside never reach the backend',
    rule: '[HCMU] cleanInternalHeaders for external requests; x-envoy-internal always removed [DP §2.1 items 1, 6]',
    writes: [
      get(
        '/internal',
        'x-envoy-internal: true\r\nx-envoy-retry-on: 5xx\r\nx-envoy-max-retries: 5\r\nx-envoy-upstream-rq-timeout-ms: 1\r\nx-envoy-upstream-rq-per-try-timeout-ms: 1\r\nx-envoy-expected-rq-timeout-ms: 1\r\nx-envoy-force-trace: 1\r\nx-envoy-original-url: http://evil/\r\nx-envoy-retriable-status-codes: 200\r\nx-envoy-ip-tags: internal\r\n',
      ),
    ],
    expect: {
      responses: [ok('/internal')],
      closes: false,
      backend: [
        {
          method: 'GET',
          target: '/internal',
          headers: {
            'x-envoy-internal': null,
            'x-envoy-retry-on': null,
            'x-envoy-max-retries': null,
            'x-envoy-upstream-rq-timeout-ms': null,
            'x-envoy-upstream-rq-per-try-timeout-ms': null,
            'x-envoy-expected-rq-timeout-ms': null,
            'x-envoy-force-trace': null,
            'x-envoy-original-url': null,
            'x-envoy-retriable-status-codes': null,
            'x-envoy-ip-tags': null,
          },
        },
      ],
    },
  },
  {
    name: 'client x-forwarded-proto and x-request-id are replaced',
    rule: '[HCMU] use_remote_address, 0 trusted hops: x-forwarded-proto set from the transport; edge x-request-id regenerated [DP §2.1 items 4, 8]',
    writes: [get('/xfp', 'X-Forwarded-Proto: https\r\nX-Request-Id: forged\r\n')],
    expect: {
      responses: [ok('/xfp')],
      closes: false,
      backend: [{ method: 'GET', target: '/xfp', headers: { 'x-forwarded-proto': 'http', 'x-request-id': { not: 'forged' } } }],
    },
  },
  // ---- fragments and routes ----
  {
    name: '#fragment does not get around an exact-path 403',
    rule: '[HCM] the fragment is stripped from :path before routing (CVE-2021-32779 fix, default on) [issue 11 item 5]',
    writes: [get('/secret#x')],
    expect: { responses: [DENIED], closes: false, backend: [] },
  },
  {
    name: '#fragment does not get around a regex 403',
    rule: '[HCM] fragment stripped before route matching',
    writes: [get('/regex-secret#anything')],
    expect: { responses: [DENIED], closes: false, backend: [] },
  },
  {
    name: '#fragment does not get around a prefix 403',
    rule: '[HCM] fragment stripped before route matching',
    writes: [get('/private/x#y')],
    expect: { responses: [DENIED], closes: false, backend: [] },
  },
  {
    name: '#fragment is not forwarded: the backend gets the path and query only',
    rule: '[HCM] fragment stripped from :path',
    writes: [get('/pub?q=1#frag')],
    expect: { responses: [ok('/pub?q=1')], closes: false, backend: [{ method: 'GET', target: '/pub?q=1' }] },
  },
  {
    name: 'absolute-form http://: Host taken from the target, routed on its path',
    rule: '[H1] handlePath: allow_absolute_url (default on) replaces Host with the target authority and :path with its path',
    writes: [`GET http://${HOST}/abs?q=1 HTTP/1.1\r\nHost: other.test\r\n\r\n`],
    expect: { responses: [ok('/abs?q=1')], closes: false, backend: [{ method: 'GET', target: '/abs?q=1', headers: { host: HOST } }] },
  },
  {
    name: 'absolute-form does not get around an exact-path 403',
    rule: '[H1] handlePath then route on the path',
    writes: [`GET http://${HOST}/secret HTTP/1.1\r\n${H}\r\n`],
    expect: { responses: [DENIED], closes: false, backend: [] },
  },
  {
    name: 'absolute-form https:// on a plaintext listener -> 403, nothing upstream',
    rule: '[H1] handlePath: validate_scheme (the HCM sets it when use_remote_address and xff_num_trusted_hops is 0, as on Istio gateways) -> 403 http1.https_url_on_plaintext_connection',
    writes: [`GET https://${HOST}/abs-https HTTP/1.1\r\n${H}\r\n`],
    expect: rejected({ status: 403, body: 'Forbidden' }),
  },
  // ---- methods, versions, targets ----
  {
    name: 'CONNECT (not enabled by Istio) -> 403, nothing upstream',
    rule: '[HCM] CONNECT is an upgrade; only websocket is in upgrade_configs: 403 upgrade_failed, closes (request never complete)',
    writes: [`CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\n\r\n`],
    expect: rejected({ status: 403 }),
  },
  {
    name: 'TRACE is proxied like any method',
    rule: '[BP] TRACE is in the method list; no special handling in [HCM]',
    writes: [`TRACE /trace HTTP/1.1\r\n${H}\r\n`],
    expect: { responses: [ok('/trace')], closes: false, backend: [{ method: 'TRACE', target: '/trace' }] },
  },
  {
    name: 'unknown method BREW -> 400',
    rule: '[BP] isMethodValid: fixed method list (allow_custom_methods off)',
    writes: [`BREW /coffee HTTP/1.1\r\n${H}\r\n`],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'lowercase method -> 400',
    rule: '[BP] method list is upper case',
    writes: [`get /lower HTTP/1.1\r\n${H}\r\n`],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'control byte in the request target -> 400',
    rule: '[BP] isUrlValid: path bytes must be 0x21-0x7E (or tab/FF)',
    writes: [`GET /a\x01b HTTP/1.1\r\n${H}\r\n`],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'space inside the request target -> 400',
    rule: '[BF]/[BP] the third token is not an HTTP version (HPE_INVALID_VERSION)',
    writes: [`GET /a b HTTP/1.1\r\n${H}\r\n`],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: '/%00 in the path -> 400, nothing upstream',
    rule: '[HCM] normalize_path (Istio BASE) fails on %00: 400 path_normalization_failed [DP §11 test 19]',
    writes: [get('/%00')],
    expect: rejected({ status: 400 }),
  },
  {
    name: 'dot segments are resolved before routing: /pub/../secret is answered by the /secret 403',
    rule: '[HCM] normalize_path true (Istio BASE): RFC 3986 dot-segment removal before route matching [DP §11 test 19]',
    writes: [get('/pub/../secret')],
    expect: { responses: [DENIED], closes: false, backend: [] },
  },
  {
    name: 'double slashes are kept (merge_slashes off): //secret is not /secret',
    rule: '[HCM] Istio BASE normalisation leaves merge_slashes false [DP §0.3, §11 test 19]',
    writes: [get('//secret')],
    expect: { responses: [ok('//secret')], closes: false, backend: [{ method: 'GET', target: '//secret' }] },
  },
  {
    name: 'OPTIONS * -> 404, nothing upstream',
    rule: '[HCM] path not starting with "/" -> 404 absolute_path_rejected [DP §1.2]',
    writes: [`OPTIONS * HTTP/1.1\r\n${H}\r\n`],
    expect: { responses: [{ status: 404 }], closes: false, backend: [] },
  },
  {
    name: 'Expect: foo is forwarded, not answered 417',
    rule: '[HCM] only 100-continue is handled (proxy_100_continue); other expectations pass through',
    writes: [get('/expect', 'Expect: foo\r\n')],
    expect: { responses: [ok('/expect')], closes: false, backend: [{ method: 'GET', target: '/expect', headers: { expect: 'foo' } }] },
  },
  {
    name: 'HTTP/1.0 -> 426 (HTTP/1.0 not accepted by Istio)',
    rule: '[HCM] protocol HTTP/1.0 and accept_http_10 off: 426 low_version, connection: close [DP §1.2]',
    writes: [`GET /v10 HTTP/1.0\r\n${H}\r\n`],
    expect: rejected({ status: 426 }),
  },
  {
    name: 'HTTP/0.9 request line -> 426',
    rule: '[BP] empty version is valid (HTTP/0.9); [H1] checkProtocolVersion: anything but HTTP/1.1 is HTTP/1.0 -> 426 low_version (before any Host check)',
    writes: [`GET /v09\r\n\r\n`],
    expect: rejected({ status: 426 }),
  },
  {
    name: 'HTTP/0.9 request line with a Host header -> 426, nothing upstream (found by the fuzzer: it was proxied)',
    rule: '[H1] checkProtocolVersion: HTTP/0.9 is handled as HTTP/1.0, which Istio gateways do not accept',
    writes: [`GET /v09/HTTP/1.1\r\n${H}\r\n`],
    expect: rejected({ status: 426 }),
  },
  {
    name: 'HTTP/2.0 version on an HTTP/1 request line -> 426',
    rule: '[BP] isVersionValid accepts HTTP/d.d; [H1] anything but HTTP/1.1 is handled as HTTP/1.0 -> [HCM] 426 low_version',
    writes: [`GET /v2 HTTP/2.0\r\n${H}\r\n`],
    expect: rejected({ status: 426 }),
  },
  {
    name: 'missing Host -> 400',
    rule: '[HCM] HTTP/1.1 without Host: 400 missing_host_header, connection: close',
    writes: ['GET /nohost HTTP/1.1\r\n\r\n'],
    expect: rejected({ status: 400 }),
  },
  {
    name: 'garbage request line -> 400',
    rule: '[BP] HPE_INVALID_METHOD',
    writes: ['GARBAGE\r\n\r\n'],
    expect: rejected(BAD_REQUEST),
  },
  // ---- limits ----
  {
    name: 'one 70 KiB header -> 431, nothing upstream',
    rule: '[H1] max_request_headers_kb 60: 431 http1.headers_too_large',
    writes: [get('/big', `X-Big: ${'a'.repeat(70 * 1024)}\r\n`)],
    expect: rejected(TOO_LARGE),
  },
  {
    name: '120 headers -> 431, nothing upstream',
    rule: '[H1] max_headers_count 100: 431 http1.too_many_headers',
    writes: [get('/many', Array.from({ length: 120 }, (_, i) => `X-H${i}: v\r\n`).join(''))],
    expect: rejected(TOO_LARGE),
  },
  {
    name: 'chunk size beyond 64 bits -> 400, no complete request upstream',
    rule: '[BF] INVALID_CHUNK_LENGTH (overflow) -> [H1] 400',
    writes: [post('/hugechunk', 'Transfer-Encoding: chunked\r\n', 'fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'chunk size with a non-hex byte -> 400',
    rule: '[BF] INVALID_CHUNK_LENGTH',
    writes: [post('/badchunk', 'Transfer-Encoding: chunked\r\n', '5x\r\nhello\r\n0\r\n\r\n')],
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'chunk data not followed by CRLF -> 400',
    rule: '[BF] INVALID_CHUNK_FRAMING / data must end with CRLF',
    writes: [post('/chunkframe', 'Transfer-Encoding: chunked\r\n', `5\r\nhelloXX0\r\n\r\n${SMUGGLED}`)],
    expect: rejected(BAD_REQUEST),
  },
  // ---- pipelining: fast-path and handed-off requests in one packet, answered in order ----
  {
    name: 'pipelined mix of plain, absolute-form, TRACE, non-ASCII and chunked requests: all answered in order',
    rule: '[H1] one request at a time per connection, responses in request order',
    writes: [
      get('/p1') +
        `GET http://${HOST}/p2 HTTP/1.1\r\n${H}\r\n` +
        get('/p3') +
        `TRACE /p4 HTTP/1.1\r\n${H}\r\n` +
        get('/p5', 'X-A: caf\xe9\r\n') +
        post('/p6', 'Transfer-Encoding: chunked\r\n', '2\r\nhi\r\n0\r\n\r\n') +
        get('/p7'),
    ],
    expect: {
      responses: ['/p1', '/p2', '/p3', '/p4', '/p5', '/p6', '/p7'].map(ok),
      closes: false,
      backend: [
        { method: 'GET', target: '/p1' },
        { method: 'GET', target: '/p2' },
        { method: 'GET', target: '/p3' },
        { method: 'TRACE', target: '/p4' },
        { method: 'GET', target: '/p5', headers: { 'x-a': 'caf\xe9' } },
        { method: 'POST', target: '/p6', body: 'hi' },
        { method: 'GET', target: '/p7' },
      ],
    },
  },
  {
    name: 'pipelined: a bad request after a good one -> 200 then 400, nothing after reaches the backend',
    rule: '[H1] requests are processed in order; the codec error closes the connection',
    writes: [get('/q1') + post('/q2', 'Content-Length: 3\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n') + get('/q3')],
    expect: { responses: [ok('/q1'), BAD_REQUEST], closes: true, backend: [{ method: 'GET', target: '/q1' }] },
  },
  {
    name: 'pipelined: a fragment request between two plain ones',
    rule: '[HCM] fragment stripped; routes per request',
    writes: [get('/r1') + get('/secret#frag') + get('/r3')],
    expect: {
      responses: [ok('/r1'), DENIED, ok('/r3')],
      closes: false,
      backend: [
        { method: 'GET', target: '/r1' },
        { method: 'GET', target: '/r3' },
      ],
    },
  },
  {
    name: 'pipelined requests split across writes at awkward points',
    rule: '[H1] the codec is incremental: split points do not change the parse',
    writes: [get('/s1') + 'GET /s2 HTTP/1.1\r', `\n${H}Content-Le`, 'ngth: 3\r\n\r\nab', 'c' + get('/s3')],
    gapMs: 30,
    expect: {
      responses: [ok('/s1'), ok('/s2'), ok('/s3')],
      closes: false,
      backend: [
        { method: 'GET', target: '/s1' },
        { method: 'GET', target: '/s2', body: 'abc' },
        { method: 'GET', target: '/s3' },
      ],
    },
  },
  {
    name: 'CL.TE smuggling attempt trickled one byte at a time -> 400, nothing upstream',
    rule: '[H1] same answer whatever the split',
    writes: Array.from(post('/clte-slow', 'Content-Length: 6\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\nG`)),
    gapMs: 2,
    expect: rejected(BAD_REQUEST),
  },
  {
    name: 'slowloris head (one byte every 10 ms) is answered once complete',
    rule: '[HCM] Istio sets no request_headers_timeout: a slow head is waited for, others are served meanwhile',
    writes: Array.from(get('/slow')),
    gapMs: 10,
    timeoutMs: 15_000,
    expect: { responses: [ok('/slow')], closes: false, backend: [{ method: 'GET', target: '/slow' }] },
  },
  // ---- upgrades ----
  {
    name: 'declined websocket upgrade: bytes sent after the upgrade head never reach the backend as a request',
    rule: '[HCM]/router: upgrade payload is held until the upstream answers 101; a non-101 answer ends the stream and closes [issue 11 item 3]',
    writes: [
      get('/up/ws-declined', 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n') +
        SMUGGLED,
    ],
    upstream: 'HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n',
    expect: { responses: [{ status: 403 }], closes: true, backend: [{ method: 'GET', target: '/up/ws-declined', headers: { upgrade: 'websocket' } }] },
  },
  {
    name: 'upgrade pipelined after an absolute-form request: 200 then 101 (the process survives)',
    rule: '[H1] requests in order; websocket upgrade enabled by Istio [issue 11 item 1]',
    writes: [`GET http://${HOST}/a HTTP/1.1\r\n${H}\r\n` + get('/u', 'Connection: Upgrade\r\nUpgrade: websocket\r\n')],
    expect: {
      responses: [ok('/a'), { status: 101 }],
      closes: false,
      backend: [
        { method: 'GET', target: '/a' },
        { method: 'GET', target: '/u', headers: { upgrade: 'websocket' } },
      ],
    },
  },
  {
    name: 'upgrade pipelined after a non-ASCII request: 200 then 101',
    rule: '[H1] requests in order [issue 11 item 1]',
    writes: [get('/n', 'X-A: caf\xe9\r\n') + get('/u2', 'Connection: Upgrade\r\nUpgrade: websocket\r\n')],
    expect: {
      responses: [ok('/n'), { status: 101 }],
      closes: false,
      backend: [
        { method: 'GET', target: '/n' },
        { method: 'GET', target: '/u2' },
      ],
    },
  },
  {
    name: 'Upgrade: h2c is ignored: handled as plain HTTP/1.1, connection kept',
    rule: '[H1] h2c upgrade headers stripped (Upgrade, HTTP2-Settings and their Connection tokens) [DP §2.1 item 1]',
    writes: [get('/h2c', 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n') + get('/after-h2c')],
    expect: {
      responses: [ok('/h2c'), ok('/after-h2c')],
      closes: false,
      backend: [
        { method: 'GET', target: '/h2c', headers: { upgrade: null, 'http2-settings': null } },
        { method: 'GET', target: '/after-h2c' },
      ],
    },
  },
  {
    name: 'Upgrade: foo (not enabled) -> 403, nothing upstream',
    rule: '[HCM] upgrade type not in upgrade_configs: 403 upgrade_failed, connection: close [DP §11 test 28]',
    writes: [get('/foo-upgrade', 'Connection: Upgrade\r\nUpgrade: foo\r\n')],
    expect: rejected({ status: 403 }),
  },
  // ---- fault delay with a body ----
  {
    name: 'POST with a body on a fault-delay route: the body reaches the backend after the delay',
    rule: '[E-FAULT] the delay holds the request, the body is buffered and forwarded [issue 11 item 7]',
    writes: [post('/delay/body', 'Content-Length: 5\r\n', 'hello')],
    expect: { responses: [ok('/delay/body')], closes: false, backend: [{ method: 'POST', target: '/delay/body', body: 'hello' }] },
  },
  // ---- hostile upstream responses ----
  {
    name: 'upstream response with Content-Length and Transfer-Encoding -> 502; the injected response answers nothing',
    rule: '[H1] the CL+TE check applies to responses too -> protocol error -> router 502 UPE [DP §1.2]',
    writes: [get('/up/clte') + get('/after-clte')],
    upstream: 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\ninjected',
    expect: {
      responses: [PROTOCOL_ERROR, ok('/after-clte')],
      closes: false,
      backend: [
        { method: 'GET', target: '/up/clte' },
        { method: 'GET', target: '/after-clte' },
      ],
    },
  },
  {
    name: 'upstream response with duplicate Content-Length -> 502',
    rule: '[BP] disallow_multiple_content_length applies to responses -> 502',
    writes: [get('/up/dupcl')],
    upstream: 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nokk',
    expect: { responses: [PROTOCOL_ERROR], closes: false, backend: [{ method: 'GET', target: '/up/dupcl' }] },
  },
  {
    name: 'upstream response with an invalid status line -> 502',
    rule: '[BF] FAILED_CONVERTING_STATUS_CODE_TO_INT -> protocol error -> 502',
    writes: [get('/up/status')],
    upstream: 'HTTP/1.1 2x0 OK\r\ncontent-length: 2\r\n\r\nok',
    expect: { responses: [PROTOCOL_ERROR], closes: false, backend: [{ method: 'GET', target: '/up/status' }] },
  },
  {
    name: 'upstream response that is not HTTP -> 502',
    rule: '[BP] a response must start with "H" (HPE_INVALID_CONSTANT) -> 502',
    writes: [get('/up/garbage')],
    upstream: 'FOO BAR\r\n\r\n',
    expect: { responses: [PROTOCOL_ERROR], closes: false, backend: [{ method: 'GET', target: '/up/garbage' }] },
  },
  {
    name: 'upstream response with NUL in a header -> 502',
    rule: '[BP] invalid header bytes are errors in responses too (disallow_invalid_header_characters_in_response)',
    writes: [get('/up/nul')],
    upstream: 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-up: a\x00b\r\n\r\nok',
    expect: { responses: [PROTOCOL_ERROR], closes: false, backend: [{ method: 'GET', target: '/up/nul' }] },
  },
  {
    name: 'bare CR in an upstream header value -> 502 (Envoy removes it)',
    rule: '[BP] CR/LF removed from values in responses too; lone CR is not an invalid byte in balsa',
    deviation:
      'Envoy removes the CR and forwards x-up: ab; the upstream parser is kept as strict as the downstream one (issue 11 item 4), so the response is refused',
    writes: [get('/up/cr')],
    upstream: 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-up: a\rb\r\n\r\nok',
    expect: { responses: [PROTOCOL_ERROR], closes: false, backend: [{ method: 'GET', target: '/up/cr' }] },
  },
  {
    name: 'upstream response with Transfer-Encoding: gzip, chunked -> 502',
    rule: '[H1] Transfer-Encoding other than "chunked" is a protocol error in responses too',
    writes: [get('/up/tegzip')],
    upstream: 'HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    expect: { responses: [PROTOCOL_ERROR], closes: false, backend: [{ method: 'GET', target: '/up/tegzip' }] },
  },
];
