// Responses the gateway generates itself, byte-compatible with Envoy's (Utility::prepareLocalReply /
// encodeLocalReply, the HCM's encodeHeaders and the HTTP/1 encoder):
//   with a body:   <component headers> content-length content-type date server [connection: close]
//   without body:  <component headers> date server [connection: close] content-length: 0
// HEAD gets the same headers (including the would-be content-length) and no body. gRPC requests get a
// trailers-only style answer (status 200, grpc-status, grpc-message).
import { httpToGrpcStatus } from '../upstream/grpc-status.ts';
import { httpDate } from './date.ts';
import { reasonPhrase } from './codes.ts';
import { headerIndex } from '../../xds/header-list.ts';

export interface LocalReply {
  status: number;
  /** Flat [name, value, ...], lowercase names, wire order. */
  headers: string[];
  body: string;
}

export interface LocalReplyOptions {
  /** Headers set by the component that produced the reply (x-envoy-overloaded, location) and route header ops. */
  headers?: string[];
  /** `server` value: the HCM's server_name (`istio-envoy` on Istio gateways); Envoy's default is `envoy`. */
  serverName: string;
  /** The connection will be closed after this reply (HTTP/1 `connection: close`). */
  close?: boolean;
  /** Request was gRPC (content-type application/grpc or application/grpc+...). */
  grpc?: boolean;
  /** Response to a HEAD request (headers only). */
  head?: boolean;
  /** Explicit gRPC status for gRPC requests (fault abort grpc_status), instead of the HTTP mapping. */
  grpcStatus?: number | undefined;
}

export function buildLocalReply(status: number, body: string, o: LocalReplyOptions): LocalReply {
  const headers = o.headers ? o.headers.slice() : [];
  if (o.grpc) return grpcLocalReply(status, body, headers, o);
  if (body.length > 0) {
    headers.push('content-length', String(Buffer.byteLength(body)));
    if (headerIndex(headers, 'content-type') < 0) headers.push('content-type', 'text/plain');
  }
  headers.push('date', httpDate(), 'server', o.serverName);
  if (o.close) headers.push('connection', 'close');
  // The HTTP/1 encoder adds `content-length: 0` to header-only responses except 204, 1xx and HEAD.
  if (body.length === 0 && !o.head && status !== 204 && status >= 200) headers.push('content-length', '0');
  return { status, headers, body: o.head ? '' : body };
}

/**
 * A codec error answered on a connection with no request to hang it on (a head the parser refused, a broken
 * chunked body): the whole HTTP/1.1 reply, reason phrase as body, `connection: close` (Envoy sendProtocolError).
 */
export function codecErrorReply(status: number, serverName: string): string {
  const r = buildLocalReply(status, reasonPhrase(status), { serverName, close: true });
  let head = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
  for (let i = 0; i < r.headers.length; i += 2) head += `${r.headers[i]}: ${r.headers[i + 1]}\r\n`;
  return head + '\r\n' + r.body;
}

/** gRPC-style percent encoding (Envoy PercentEncoding::encode for grpc-message): < 0x20, >= 0x7e and '%'. */
export function grpcPercentEncode(s: string): string {
  const bytes = Buffer.from(s, 'utf8');
  let out = '';
  for (const b of bytes) {
    if (b < 0x20 || b >= 0x7e || b === 0x25) out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
    else out += String.fromCharCode(b);
  }
  return out;
}

function grpcLocalReply(status: number, body: string, headers: string[], o: LocalReplyOptions): LocalReply {
  headers.push('content-type', 'application/grpc', 'grpc-status', String(o.grpcStatus ?? httpToGrpcStatus(status)));
  if (body.length > 0 && !o.head) headers.push('grpc-message', grpcPercentEncode(body));
  headers.push('date', httpDate(), 'server', o.serverName);
  if (o.close) headers.push('connection', 'close');
  if (!o.head) headers.push('content-length', '0');
  return { status: 200, headers, body: '' };
}

/** Request content-type makes it gRPC (Envoy Grpc::Common::hasGrpcContentType; grpc-web is not gRPC). */
export function isGrpcContentType(ct: string | undefined): boolean {
  if (ct === undefined || !ct.startsWith('application/grpc')) return false;
  return ct.length === 16 || ct.charCodeAt(16) === 0x2b; /* '+' */
}

/** Local reply bodies Envoy's router uses (newest wording). */
export const BODY = {
  noHealthyUpstream: 'no healthy upstream',
  upstreamTimeout: 'upstream request timeout',
  maxDuration: 'downstream duration timeout',
  resetPrefix: 'upstream connect error or disconnect/reset before headers. ',
  retriedPrefix: 'retried and the latest ',
} as const;
