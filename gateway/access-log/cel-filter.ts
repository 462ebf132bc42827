// Envoy's CEL access log filter (envoy.access_loggers.extension_filters.cel, ExpressionFilter), which istiod
// emits for a Telemetry accessLogging `filter`: the expression is parsed once per config (a syntax error NACKs
// the listener, as Envoy refuses it), then evaluated on each entry against Envoy's attributes
// (docs: intro/arch_overview/advanced/attributes). The entry is logged only when the result is the boolean true:
// an error (an attribute this proxy does not know or an entry does not have, a missing map key, a type mismatch)
// counts as false, as Envoy's ExpressionFilter::evaluate does.
//
// Attributes given: request.{path, url_path, host, scheme, method, headers, referer, useragent, id, protocol,
// query, size}, response.{code, code_details, flags, headers, size}, connection.{requested_server_name,
// termination_details}, source.{address, port}, destination.{address, port}, upstream.{address, port,
// transport_failure_reason}, xds.{cluster_name, route_name}. request.* and response.headers exist only for HTTP
// entries, response.code only once a response began, as in Envoy. Not given (so an expression naming them is
// false): time and duration attributes, connection.mtls and the TLS and certificate attributes,
// metadata and filter_state.
import { parse } from '@marcbachmann/cel-js';
import { ConfigError } from '../xds/json.ts';
import { responseFlagBit } from '../http/response-flags.ts';
import type { AccessLogEntry } from './formatter.ts';

/**
 * response.flags is Envoy's legacy bit vector: CoreResponseFlag values in enum order (LH 0x1, UH 0x2 ... DC 0x4000
 * ... DR 0x10000000), which is not this proxy's own bit order. The pairs of this proxy's bits and Envoy's values.
 */
const ENVOY_FLAG_VALUES: readonly (readonly [number, number])[] = [
  'LH',
  'UH',
  'UT',
  'LR',
  'UR',
  'UF',
  'UC',
  'UO',
  'NR',
  'DI',
  'FI',
  'RL',
  'UAEX',
  'RLSE',
  'DC',
  'URX',
  'SI',
  'IH',
  'DPE',
  'UMSDR',
  'RFCF',
  'NFCF',
  'DT',
  'UPE',
  'NC',
  'OM',
  'DF',
  'DO',
  'DR',
].flatMap((code, i) => {
  const bit = responseFlagBit(code);
  return bit === undefined ? [] : [[bit, 2 ** i] as const];
});

function envoyResponseFlags(mask: number): bigint {
  let v = 0;
  for (const [bit, value] of ENVOY_FLAG_VALUES) if (mask & bit) v += value;
  return BigInt(v);
}

/** host:port, [v6]:port or a bare address: the address and port attributes. */
function splitAddress(a: string): { address: string; port?: bigint } | undefined {
  if (a === '') return undefined;
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(a) ?? /^([^:]+):(\d+)$/.exec(a);
  return m ? { address: m[1] ?? '', port: BigInt(m[2] ?? '0') } : { address: a };
}

/** The request header map as Envoy holds it when the entry is written: pseudo-headers included, names lowercase. */
function requestHeaders(e: AccessLogEntry): Record<string, string> {
  const h: Record<string, string> = {};
  const set = (k: string, v: string): void => {
    if (v !== '' && !(k in h)) h[k] = v;
  };
  set(':method', e.method);
  set(':path', e.path);
  set(':authority', e.authority);
  set('x-envoy-original-path', e.originalPath);
  set('x-request-id', e.requestId);
  set('x-forwarded-for', e.xForwardedFor);
  set('user-agent', e.userAgent);
  const l = e.requestHeaders ?? [];
  for (let i = 0; i + 1 < l.length; i += 2) set(l[i] ?? '', l[i + 1] ?? '');
  return h;
}

function responseHeaders(e: AccessLogEntry): Record<string, string> {
  const h: Record<string, string> = {};
  if (e.responseCode !== 0) h[':status'] = String(e.responseCode);
  if (e.upstreamServiceTime !== '') h['x-envoy-upstream-service-time'] = e.upstreamServiceTime;
  const l = e.responseHeaders ?? [];
  for (let i = 0; i + 1 < l.length; i += 2) if (!((l[i] ?? '') in h)) h[l[i] ?? ''] = l[i + 1] ?? '';
  return h;
}

const withAddress = (a: string): Record<string, unknown> => {
  const s = splitAddress(a);
  if (!s) return {};
  return s.port === undefined ? { address: s.address } : { address: s.address, port: s.port };
};

/**
 * Envoy's attributes of one entry: only those it has (a missing one is an evaluation error). Integers are CEL ints.
 * Also the activation of Istio's stats filter tag expressions (stats/istio-metrics.ts).
 */
export function celAttributes(e: AccessLogEntry): Record<string, unknown> {
  const http = e.protocol !== '' && e.method !== '';
  const out: Record<string, unknown> = {
    connection: {
      ...(e.requestedServerName !== '' ? { requested_server_name: e.requestedServerName } : {}),
      ...(e.connectionTerminationDetails !== '' ? { termination_details: e.connectionTerminationDetails } : {}),
    },
    source: withAddress(e.downstreamRemoteAddress),
    destination: withAddress(e.downstreamLocalAddress),
    upstream: {
      ...withAddress(e.upstreamHost),
      ...(e.upstreamTransportFailureReason !== '' ? { transport_failure_reason: e.upstreamTransportFailureReason } : {}),
    },
    xds: {
      ...(e.upstreamCluster !== '' ? { cluster_name: e.upstreamCluster } : {}),
      ...(e.routeName !== '' ? { route_name: e.routeName } : {}),
    },
  };
  const response: Record<string, unknown> = { size: BigInt(e.bytesSent), flags: envoyResponseFlags(e.responseFlags) };
  if (e.responseCode !== 0) response.code = BigInt(e.responseCode);
  if (e.responseCodeDetails !== '') response.code_details = e.responseCodeDetails;
  if (http) {
    const headers = requestHeaders(e);
    const q = e.path.indexOf('?');
    const scheme = headers['x-forwarded-proto'];
    out.request = {
      headers,
      path: e.path,
      url_path: q < 0 ? e.path : e.path.slice(0, q),
      query: q < 0 ? '' : e.path.slice(q + 1),
      method: e.method,
      protocol: e.protocol,
      size: BigInt(e.bytesReceived),
      ...(e.authority !== '' ? { host: e.authority } : {}),
      ...(scheme !== undefined ? { scheme } : {}),
      ...(headers.referer !== undefined ? { referer: headers.referer } : {}),
      ...(e.userAgent !== '' ? { useragent: e.userAgent } : {}),
      ...(e.requestId !== '' ? { id: e.requestId } : {}),
    };
    response.headers = responseHeaders(e);
  }
  out.response = response;
  return out;
}

/** Compiles an ExpressionFilter; `where` names the field in a NACK. */
export function compileCelFilter(expression: string, where: string): (e: AccessLogEntry) => boolean {
  let evaluate: ReturnType<typeof parse>;
  try {
    evaluate = parse(expression);
  } catch (err) {
    throw new ConfigError(`${where}: Not able to parse filter expression: ${(err as Error).message}`);
  }
  return (e) => {
    try {
      return evaluate(celAttributes(e)) === true;
    } catch {
      return false;
    }
  };
}
