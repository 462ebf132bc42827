// Downstream request headers -> what the router matches on and the upstream receives, in one pass over
// the raw header list (Envoy ConnectionManagerUtility::mutateRequestHeaders): hop-by-hop removal,
// internal-header stripping for edge requests, x-forwarded-for / -proto, x-envoy-external-address and a
// fresh x-request-id. Pure: takes a flat raw header array ([name, value, ...] as received), returns flat
// lowercase arrays, so a raw-socket HTTP/1 parser can reuse it.
import { randomUUID } from 'node:crypto';

/** Headers Envoy strips from external requests (cleanInternalHeaders). */
const EXTERNAL_STRIP = new Set([
  'x-envoy-retriable-status-codes',
  'x-envoy-retriable-header-names',
  'x-envoy-retry-on',
  'x-envoy-retry-grpc-on',
  'x-envoy-max-retries',
  'x-envoy-upstream-alt-stat-name',
  'x-envoy-upstream-rq-timeout-ms',
  'x-envoy-upstream-rq-per-try-timeout-ms',
  'x-envoy-upstream-rq-timeout-alt-response',
  'x-envoy-expected-rq-timeout-ms',
  'x-envoy-force-trace',
  'x-envoy-ip-tags',
  'x-envoy-original-url',
  'x-envoy-hedge-on-per-try-timeout',
]);
/** Additionally stripped from edge requests. */
const EDGE_STRIP = new Set(['x-envoy-decorator-operation', 'x-envoy-downstream-service-cluster', 'x-envoy-downstream-service-node']);

export interface RequestHeaderOptions {
  /** Immediate peer address. */
  remoteAddress: string;
  /** Envoy's local address (appended to XFF instead of a loopback peer). */
  localAddress: string;
  useRemoteAddress: boolean;
  skipXffAppend: boolean;
  xffNumTrustedHops: number;
  generateRequestId: boolean;
  preserveExternalRequestId: boolean;
  /** Route configuration internal_only_headers (lowercase). */
  internalOnlyHeaders: readonly string[];
  /** Downstream TLS: x-forwarded-proto https. */
  tls: boolean;
}

export interface ParsedRequestHeaders {
  /** Lowercase names, without host; the order the upstream will see them. */
  headers: string[];
  /** The Host header value (undefined when absent). */
  host: string | undefined;
  hostCount: number;
  /** `Connection: close` was requested. */
  connectionClose: boolean;
  /** `Connection: keep-alive` (HTTP/1.0 keep-alive). */
  connectionKeepAlive: boolean;
  /** Upgrade token when the request is an upgrade Envoy handles (websocket), lowercase. */
  upgrade: string | undefined;
  contentLength: number;
  chunked: boolean;
  requestId: string;
  xForwardedFor: string;
  userAgent: string;
  contentType: string | undefined;
  /** The trusted client address (x-envoy-external-address). */
  clientAddress: string;
  internal: boolean;
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1' || ip.startsWith('::ffff:127.');
}

/** Strips an IPv4-mapped IPv6 prefix, as Envoy prints v4 peers. */
export function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

export function parseRequestHeaders(raw: readonly string[], o: RequestHeaderOptions): ParsedRequestHeaders {
  const out: string[] = [];
  let host: string | undefined;
  let hostCount = 0;
  let connection = '';
  let upgrade: string | undefined;
  let te: string | undefined;
  let chunked = false;
  let contentLength = -1;
  let xffAt = -1;
  let xff: string | undefined;
  let xfpAt = -1;
  let ridAt = -1;
  let rid: string | undefined;
  let eaAt = -1;
  let userAgent = '';
  let contentType: string | undefined;
  const edge = o.useRemoteAddress; // every request is external: Envoy >= 1.33 has no default internal ranges
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    switch (name) {
      case 'host':
        if (hostCount++ === 0) host = value;
        continue;
      case 'connection':
        connection = connection ? `${connection},${value}` : value;
        continue;
      case 'upgrade':
        upgrade = value;
        continue;
      case 'keep-alive':
      case 'proxy-connection':
      case 'x-envoy-internal':
      case 'http2-settings':
        continue;
      case 'transfer-encoding':
        if (value.toLowerCase().includes('chunked')) chunked = true;
        continue;
      case 'te':
        te = value;
        continue;
      case 'content-length':
        contentLength = Number(value);
        out.push(name, value);
        continue;
      case 'x-forwarded-for':
        // Envoy keeps one x-forwarded-for, joining repeated ones with ','.
        if (xffAt < 0) {
          xffAt = out.length;
          xff = value;
          out.push(name, value);
        } else xff = `${xff},${value}`;
        continue;
      case 'x-forwarded-proto':
        if (xfpAt < 0) {
          xfpAt = out.length;
          out.push(name, value);
        }
        continue;
      case 'x-request-id':
        if (ridAt < 0) {
          ridAt = out.length;
          rid = value;
          out.push(name, value);
        }
        continue;
      case 'x-envoy-external-address':
        if (eaAt < 0) {
          eaAt = out.length;
          out.push(name, value);
        }
        continue;
      case 'user-agent':
        userAgent = value;
        break;
      case 'content-type':
        contentType = value;
        break;
    }
    if (EXTERNAL_STRIP.has(name)) continue;
    if (edge && EDGE_STRIP.has(name)) continue;
    if (o.internalOnlyHeaders.length > 0 && o.internalOnlyHeaders.includes(name)) continue;
    out.push(name, value);
  }
  const tokens = connection.toLowerCase();
  const connectionClose = tokens.includes('close');
  const connectionKeepAlive = tokens.includes('keep-alive');
  // Upgrades keep Connection/Upgrade (the router decides whether the route allows them); `Upgrade: h2c`
  // is stripped and the request served as plain HTTP/1.1, as Envoy's HTTP/1 codec does.
  let up: string | undefined;
  if (upgrade !== undefined && tokens.includes('upgrade') && upgrade.toLowerCase() !== 'h2c') {
    up = upgrade.toLowerCase();
    out.push('connection', connection, 'upgrade', upgrade);
  }
  // TE is forwarded only as `trailers` (Envoy >= 1.29.3 sanitize_te).
  if (
    te !== undefined &&
    te
      .toLowerCase()
      .split(',')
      .some((t) => t.trim() === 'trailers')
  )
    out.push('te', 'trailers');

  const remote = plainIp(o.remoteAddress);
  let clientAddress = remote;
  if (o.useRemoteAddress) {
    if (o.xffNumTrustedHops > 0 && xff !== undefined) {
      const parts = xff.split(',').map((s) => s.trim());
      const candidate = parts[parts.length - o.xffNumTrustedHops];
      if (candidate) clientAddress = candidate;
    }
    if (!o.skipXffAppend) {
      const append = isLoopback(remote) ? o.localAddress : remote;
      if (xffAt >= 0) {
        xff = `${xff},${append}`;
        out[xffAt + 1] = xff;
      } else {
        xff = append;
        out.push('x-forwarded-for', append);
      }
    }
    if (o.xffNumTrustedHops === 0 || xfpAt < 0) {
      const proto = o.tls ? 'https' : 'http';
      if (xfpAt >= 0) out[xfpAt + 1] = proto;
      else out.push('x-forwarded-proto', proto);
    }
  } else if (xfpAt < 0) out.push('x-forwarded-proto', o.tls ? 'https' : 'http');
  if (edge) {
    if (eaAt >= 0) out[eaAt + 1] = clientAddress;
    else out.push('x-envoy-external-address', clientAddress);
  }
  let requestId = rid ?? '';
  if (o.generateRequestId && (rid === undefined || (edge && !o.preserveExternalRequestId))) {
    requestId = randomUUID();
    if (ridAt >= 0) out[ridAt + 1] = requestId;
    else out.push('x-request-id', requestId);
  }
  return {
    headers: out,
    host,
    hostCount,
    connectionClose,
    connectionKeepAlive,
    upgrade: up,
    contentLength,
    chunked,
    requestId,
    xForwardedFor: xff ?? '',
    userAgent,
    contentType,
    clientAddress,
    internal: !edge,
  };
}
