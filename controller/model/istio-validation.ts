// Validation of Istio networking resources, after istiod's validating webhook
// (pkg/config/validation/validation.go). In Kubernetes the webhook rejects bad objects before the
// gateway sees them; in local mode (and for objects applied while the webhook was absent) meshgate
// must reject them itself. An invalid object is skipped as a whole, as the webhook would have refused it;
// everything else keeps being served. Each problem is a value with a field path, not an exception.
import type {
  DestinationRuleSpec,
  GatewaySpec,
  HTTPMatchRequest,
  HTTPRoute,
  Headers,
  Server,
  ServiceEntrySpec,
  StringMatch,
  TrafficPolicy,
  VirtualServiceSpec,
} from './istio-types.ts';
import { checkWildcardDomain, isDNS1123Label, isIPAddress } from './host.ts';
import { parseDuration } from './duration.ts';
import { isHTTP, parseProtocol } from './protocol.ts';
import { compileRe2, isRe2Error } from '../../xds/re2.ts';

export interface FieldError {
  field: string;
  message: string;
}

class Problems {
  readonly list: FieldError[] = [];
  add(field: string, message: string): void {
    this.list.push({ field, message });
  }
}

function isObject<T>(v: T): v is T & Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkArray<T>(p: Problems, v: T, field: string): v is T & unknown[] {
  if (v === undefined || v === null) return false;
  if (!Array.isArray(v)) {
    p.add(field, 'must be a list');
    return false;
  }
  return true;
}

function checkMap<T>(p: Problems, v: T, field: string): v is T & Record<string, unknown> {
  if (v === undefined || v === null) return false;
  if (!isObject(v)) {
    p.add(field, 'must be a map');
    return false;
  }
  return true;
}

function checkStringList(p: Problems, v: unknown, field: string): void {
  if (!checkArray(p, v, field)) return;
  v.forEach((s, i) => {
    if (typeof s !== 'string') p.add(`${field}[${i}]`, 'must be a string');
  });
}

function checkDuration(p: Problems, v: unknown, field: string): void {
  if (v === undefined || v === null) return;
  if (parseDuration(v) === undefined) p.add(field, `invalid duration ${JSON.stringify(v)} (use e.g. "5s", "0.5s", "100ms", "1m")`);
}

function checkPort(p: Problems, n: unknown, field: string, allowZero = false): void {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) {
    p.add(field, `port number ${JSON.stringify(n)} must be in the range 1..65535`);
  }
}

function checkPercent(p: Problems, v: unknown, field: string): void {
  if (v === undefined || v === null) return;
  const value = isObject(v) ? v.value : undefined;
  if (value === undefined) return;
  if (typeof value !== 'number' || value < 0 || value > 100) p.add(`${field}.value`, `percentage ${JSON.stringify(value)} is not in range 0..100`);
}

// ---- Gateway ------------------------------------------------------------------------------------

const PROTOCOLS_FOR_GATEWAY = 'HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, REDIS, MYSQL';

/** ValidateNamespaceSlashWildcardHostname: `host`, `ns/host`, `./host`, `*\/host`. */
function checkServerHost(p: Problems, h: unknown, field: string): void {
  if (typeof h !== 'string') {
    p.add(field, 'must be a string');
    return;
  }
  const parts = h.split('/');
  if (parts.length > 2) {
    p.add(field, `host "${h}" must be of the form [namespace/]dnsName`);
    return;
  }
  if (parts.length === 2) {
    const ns = parts[0] ?? '';
    if (ns !== '*' && ns !== '.' && !isDNS1123Label(ns)) p.add(field, `namespace "${ns}" in host "${h}" must be "*", "." or a DNS-1123 label`);
  }
  const name = parts[parts.length - 1] ?? '';
  const err = checkWildcardDomain(name);
  if (err) p.add(field, err);
}

function validateServer(p: Problems, s: unknown, f: string): void {
  if (!isObject(s)) {
    p.add(f, 'server must be a map');
    return;
  }
  const server = s as unknown as Server;
  if (!Array.isArray(server.hosts) || server.hosts.length === 0) p.add(`${f}.hosts`, 'server config must contain at least one host');
  else server.hosts.forEach((h, i) => checkServerHost(p, h, `${f}.hosts[${i}]`));
  if (!isObject(server.port)) {
    p.add(`${f}.port`, 'port is required (number, name and protocol)');
    return;
  }
  const port = server.port;
  const uds = typeof server.bind === 'string' && server.bind.startsWith('unix://');
  if (uds) {
    if (port.number !== 0) p.add(`${f}.port.number`, 'port number must be 0 for a unix domain socket bind');
  } else checkPort(p, port.number, `${f}.port.number`);
  if (!port.name) p.add(`${f}.port.name`, 'port name must be set');
  const proto = parseProtocol(port.protocol);
  if (proto === 'UnsupportedProtocol' || proto === 'UDP' || proto === 'HTTP_PROXY') {
    p.add(`${f}.port.protocol`, `invalid protocol ${JSON.stringify(port.protocol)}, supported protocols are ${PROTOCOLS_FOR_GATEWAY}`);
  }
  if (port.targetPort !== undefined && port.targetPort !== 0) p.add(`${f}.port.targetPort`, 'targetPort has no impact on Gateways: remove it');
  if (server.bind !== undefined && server.bind !== '' && !uds && (typeof server.bind !== 'string' || !isIPAddress(server.bind))) {
    p.add(`${f}.bind`, `bind ${JSON.stringify(server.bind)} must be an IP address or unix://path`);
  }
  const tls = server.tls;
  if (tls !== undefined && tls !== null && !isObject(tls)) p.add(`${f}.tls`, 'must be a map');
  if (proto === 'HTTPS' || proto === 'TLS') {
    if (!tls) p.add(`${f}.tls`, 'server must have TLS settings for HTTPS/TLS protocols');
  } else if (tls && isObject(tls)) {
    if (isHTTP(proto)) {
      const onlyRedirect = Object.entries(tls).every(([k, v]) => k === 'httpsRedirect' || (k === 'mode' && (v === 'PASSTHROUGH' || v === undefined)));
      if (!onlyRedirect) p.add(`${f}.tls`, 'server cannot have TLS settings for plain text HTTP ports (only httpsRedirect)');
    } else if (proto !== 'UnsupportedProtocol') p.add(`${f}.tls`, 'server cannot have TLS settings for non HTTPS/TLS ports');
  }
  if (tls && isObject(tls) && (proto === 'HTTPS' || proto === 'TLS')) {
    const mode = tls.mode ?? 'PASSTHROUGH';
    const sources = [tls.credentialName ? 1 : 0, tls.credentialNames?.length ? 1 : 0, tls.serverCertificate || tls.privateKey ? 1 : 0].reduce(
      (a, b) => a + b,
      0,
    );
    if (sources > 1) p.add(`${f}.tls`, 'only one of credentialName, credentialNames, serverCertificate/privateKey should be specified');
    if (mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') {
      const hasCred = !!tls.credentialName || !!tls.credentialNames?.length;
      if (!hasCred) {
        if (!tls.serverCertificate) p.add(`${f}.tls.serverCertificate`, `${mode} TLS requires a credentialName or a server certificate`);
        if (!tls.privateKey) p.add(`${f}.tls.privateKey`, `${mode} TLS requires a credentialName or a private key`);
        if (mode !== 'SIMPLE' && !tls.caCertificates) p.add(`${f}.tls.caCertificates`, `${mode} TLS with file certificates requires caCertificates`);
      }
    }
    if (mode === 'ISTIO_MUTUAL' && (tls.credentialName || tls.serverCertificate || tls.privateKey || tls.caCertificates)) {
      p.add(`${f}.tls`, 'ISTIO_MUTUAL TLS cannot have associated server certificate, key or credentialName');
    }
    if (tls.credentialNames && tls.credentialNames.length > 2) p.add(`${f}.tls.credentialNames`, 'at most 2 credentialNames (one RSA, one ECDSA)');
  }
}

export function validateGateway(name: string, spec: unknown): FieldError[] {
  const p = new Problems();
  if (!isDNS1123Label(name)) p.add('metadata.name', `invalid gateway name: "${name}" (must be a DNS-1123 label, no dots)`);
  if (!isObject(spec)) {
    p.add('spec', 'gateway must have a spec with at least one server');
    return p.list;
  }
  const g = spec as GatewaySpec;
  if (g.selector !== undefined && checkMap(p, g.selector, 'spec.selector')) {
    for (const [k, v] of Object.entries(g.selector)) if (typeof v !== 'string') p.add(`spec.selector.${k}`, 'label values must be strings');
  }
  if (!Array.isArray(g.servers) || g.servers.length === 0) {
    p.add('spec.servers', 'gateway must have at least one server');
    return p.list;
  }
  const names = new Set<string>();
  g.servers.forEach((s, i) => {
    validateServer(p, s, `spec.servers[${i}]`);
    const portName = isObject(s) && isObject(s.port) ? s.port.name : undefined;
    if (typeof portName === 'string' && portName) {
      if (names.has(portName)) p.add(`spec.servers[${i}].port.name`, `port names in servers must be unique: duplicate name ${portName}`);
      names.add(portName);
    }
  });
  return p.list;
}

// ---- VirtualService -----------------------------------------------------------------------------

/**
 * Why a VirtualService regex cannot be served, undefined when it can. It is compiled by the proxy's own RE2
 * (xds/re2.ts), so what passes here compiles there; the message is RE2's (as Envoy would NACK it), or for a
 * Perl feature RE2 leaves out (lookarounds, backreferences...) that feature in words. Empty regexes are refused
 * as istiod refuses them.
 */
function checkRe2(pattern: string): string | undefined {
  if (pattern === '') return 'regex must not be empty';
  const re = compileRe2(pattern);
  if (!isRe2Error(re)) return undefined;
  return re.unsupported ?? `invalid regex (RE2, as Envoy compiles it): ${re.message}`;
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$/;

function checkStringMatch(p: Problems, m: unknown, field: string): void {
  if (m === undefined || m === null) return;
  if (!isObject(m)) {
    p.add(field, 'must be a map with one of exact, prefix or regex');
    return;
  }
  const sm = m as StringMatch;
  const set = ['exact', 'prefix', 'regex'].filter((k) => (sm as Record<string, unknown>)[k] !== undefined);
  if (set.length > 1) p.add(field, `only one of exact, prefix or regex may be set (found ${set.join(', ')})`);
  for (const k of set) if (typeof (sm as Record<string, unknown>)[k] !== 'string') p.add(`${field}.${k}`, 'must be a string');
  if (typeof sm.regex === 'string') {
    if (sm.regex.length > 1024) p.add(`${field}.regex`, 'regex is too large, max length allowed is 1024');
    // "*" in a header/query match is Istio's "present" match, not a regex (istio/istio#20629).
    else if (sm.regex !== '*' || field.endsWith('.uri')) {
      const err = checkRe2(sm.regex);
      if (err) p.add(`${field}.regex`, `${err}; Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)`);
    }
  }
}

function checkMatchMap(p: Problems, m: unknown, field: string): void {
  if (!checkMap(p, m, field)) return;
  for (const [name, sm] of Object.entries(m)) {
    if (name === '') p.add(field, 'header name cannot be empty');
    else if (!HEADER_NAME.test(name)) p.add(`${field}.${name}`, `header name ${name} is not a valid header name`);
    checkStringMatch(p, sm, `${field}.${name}`);
  }
}

function checkMatch(p: Problems, m: unknown, f: string): void {
  if (!isObject(m)) {
    p.add(f, 'match must be a map');
    return;
  }
  const match = m as HTTPMatchRequest;
  for (const k of ['uri', 'scheme', 'method', 'authority'] as const) checkStringMatch(p, match[k], `${f}.${k}`);
  checkMatchMap(p, match.headers, `${f}.headers`);
  checkMatchMap(p, match.withoutHeaders, `${f}.withoutHeaders`);
  if (match.queryParams !== undefined && checkMap(p, match.queryParams, `${f}.queryParams`)) {
    for (const [name, sm] of Object.entries(match.queryParams)) checkStringMatch(p, sm, `${f}.queryParams.${name}`);
  }
  if (match.port !== undefined) checkPort(p, match.port, `${f}.port`);
  checkStringList(p, match.gateways, `${f}.gateways`);
}

function checkHeaderOps(p: Problems, h: unknown, f: string): void {
  if (!checkMap(p, h, f)) return;
  const headers = h as Headers;
  for (const dir of ['request', 'response'] as const) {
    const ops = headers[dir];
    if (!checkMap(p, ops, `${f}.${dir}`)) continue;
    for (const op of ['set', 'add'] as const) {
      const kv = ops[op];
      if (!checkMap(p, kv, `${f}.${dir}.${op}`)) continue;
      for (const [k, v] of Object.entries(kv)) {
        if (k === '') p.add(`${f}.${dir}.${op}`, 'header name cannot be empty');
        else if (!HEADER_NAME.test(k.startsWith(':') ? k.slice(1) : k)) p.add(`${f}.${dir}.${op}.${k}`, `header name ${k} is not a valid header name`);
        if (typeof v !== 'string') p.add(`${f}.${dir}.${op}.${k}`, 'header value must be a string');
      }
    }
    checkStringList(p, ops.remove, `${f}.${dir}.remove`);
  }
}

function checkDestination(p: Problems, d: unknown, f: string): void {
  if (!isObject(d)) {
    p.add(f, 'destination is required');
    return;
  }
  if (typeof d.host !== 'string' || d.host === '') p.add(`${f}.host`, 'destination host is required');
  else if (d.host !== '*' && checkWildcardDomain(d.host) && !isIPAddress(d.host)) p.add(`${f}.host`, `invalid destination host ${d.host}`);
  if (d.subset !== undefined && (typeof d.subset !== 'string' || !isDNS1123Label(d.subset)))
    p.add(`${f}.subset`, `subset name is invalid: ${JSON.stringify(d.subset)}`);
  if (d.port !== undefined) {
    if (!isObject(d.port)) p.add(`${f}.port`, 'must be a map with number');
    else if (d.port.number !== undefined) checkPort(p, d.port.number, `${f}.port.number`);
  }
}

function checkHTTPRoute(p: Problems, r: unknown, f: string): void {
  if (!isObject(r)) {
    p.add(f, 'http route must be a map');
    return;
  }
  const route = r as HTTPRoute;
  const hasRoute = Array.isArray(route.route) && route.route.length > 0;
  if (!hasRoute && !route.redirect && !route.directResponse && !route.delegate) {
    p.add(f, 'HTTP route, redirect, direct response or delegate is required');
  }
  if (route.redirect && hasRoute) p.add(`${f}.redirect`, 'HTTP route cannot contain both route and redirect');
  if (route.directResponse && hasRoute) p.add(`${f}.directResponse`, 'HTTP route cannot contain both route and directResponse');
  if (route.redirect && route.directResponse) p.add(`${f}.directResponse`, 'HTTP route cannot contain both redirect and directResponse');
  if (checkArray(p, route.match, `${f}.match`)) route.match.forEach((m, i) => checkMatch(p, m, `${f}.match[${i}]`));
  if (checkArray(p, route.route, `${f}.route`)) {
    let total = 0;
    route.route.forEach((d, i) => {
      const df = `${f}.route[${i}]`;
      if (!isObject(d)) {
        p.add(df, 'must be a map with a destination');
        return;
      }
      checkDestination(p, d.destination, `${df}.destination`);
      if (d.weight !== undefined && (typeof d.weight !== 'number' || !Number.isInteger(d.weight) || d.weight < 0))
        p.add(`${df}.weight`, `weight ${JSON.stringify(d.weight)} must be a non-negative integer`);
      else total += d.weight ?? 0;
      checkHeaderOps(p, d.headers, `${df}.headers`);
    });
    if (route.route.length > 1 && total === 0) p.add(`${f}.route`, 'total destination weight = 0: give at least one destination a weight above 0');
  }
  if (route.redirect !== undefined) {
    const rd = route.redirect;
    if (!isObject(rd)) p.add(`${f}.redirect`, 'must be a map');
    else {
      if (!rd.uri && !rd.prefixRewrite && !rd.authority && !rd.scheme && rd.port === undefined && !rd.derivePort)
        p.add(`${f}.redirect`, 'redirect must specify URI, authority, scheme, or port');
      // istiod accepts any 3xx but only translates 301/302/303/307/308; any other code yields a route
      // without action that Envoy rejects (taking the whole route table down), so refuse it here.
      if (rd.redirectCode !== undefined && rd.redirectCode !== 0 && ![301, 302, 303, 307, 308].includes(rd.redirectCode)) {
        p.add(`${f}.redirect.redirectCode`, `${String(rd.redirectCode)} is not a supported redirect code: use 301, 302, 303, 307 or 308`);
      }
      if (rd.uri && rd.prefixRewrite) p.add(`${f}.redirect`, 'redirect may only specify one of uri or prefixRewrite');
      if (rd.port !== undefined) checkPort(p, rd.port, `${f}.redirect.port`);
    }
  }
  if (route.directResponse !== undefined) {
    const dr = route.directResponse;
    if (!isObject(dr) || typeof dr.status !== 'number' || dr.status < 200 || dr.status > 599)
      p.add(`${f}.directResponse.status`, 'status must be in the range 200..599');
    else if (dr.body !== undefined && (!isObject(dr.body) || (dr.body.string !== undefined && dr.body.bytes !== undefined))) {
      p.add(`${f}.directResponse.body`, 'body takes one of string or bytes');
    }
  }
  if (route.rewrite !== undefined) {
    const rw = route.rewrite;
    if (!isObject(rw)) p.add(`${f}.rewrite`, 'must be a map');
    else {
      if (rw.uri && rw.uriRegexRewrite) p.add(`${f}.rewrite`, 'rewrite may only contain one of URI or UriRegexRewrite');
      if (!rw.uri && !rw.uriRegexRewrite && !rw.authority) p.add(`${f}.rewrite`, 'rewrite must specify at least one of URI, UriRegexRewrite, or authority');
      if (rw.uriRegexRewrite) {
        if (!rw.uriRegexRewrite.match || rw.uriRegexRewrite.rewrite === undefined)
          p.add(`${f}.rewrite.uriRegexRewrite`, 'UriRegexRewrite requires both Rewrite and Match fields to be specified');
        else {
          const err = checkRe2(rw.uriRegexRewrite.match);
          if (err) p.add(`${f}.rewrite.uriRegexRewrite.match`, err);
        }
      }
    }
  }
  checkDuration(p, route.timeout, `${f}.timeout`);
  if (route.retries !== undefined) {
    if (!isObject(route.retries)) p.add(`${f}.retries`, 'must be a map');
    else {
      if (route.retries.attempts !== undefined && (typeof route.retries.attempts !== 'number' || route.retries.attempts < 0))
        p.add(`${f}.retries.attempts`, 'attempts cannot be negative');
      checkDuration(p, route.retries.perTryTimeout, `${f}.retries.perTryTimeout`);
      checkDuration(p, route.retries.backoff, `${f}.retries.backoff`);
    }
  }
  if (route.fault !== undefined) {
    const fault = route.fault;
    if (!isObject(fault) || (!fault.delay && !fault.abort)) p.add(`${f}.fault`, 'HTTP fault injection must have an abort and/or a delay');
    else {
      if (fault.delay) {
        if (!fault.delay.fixedDelay && !fault.delay.exponentialDelay) p.add(`${f}.fault.delay`, 'delay requires fixedDelay');
        checkDuration(p, fault.delay.fixedDelay, `${f}.fault.delay.fixedDelay`);
        checkPercent(p, fault.delay.percentage, `${f}.fault.delay.percentage`);
      }
      if (fault.abort) {
        const a = fault.abort;
        if (a.httpStatus !== undefined && (typeof a.httpStatus !== 'number' || a.httpStatus < 200 || a.httpStatus > 599))
          p.add(`${f}.fault.abort.httpStatus`, `HTTP status ${String(a.httpStatus)} is not in range 200-599`);
        if (a.http2Error !== undefined) p.add(`${f}.fault.abort.http2Error`, 'HTTP/2 abort fault injection not supported yet');
        if (a.grpcStatus !== undefined && !(a.grpcStatus in GRPC_STATUS))
          p.add(`${f}.fault.abort.grpcStatus`, `gRPC status ${JSON.stringify(a.grpcStatus)} is not supported (use a name such as UNAVAILABLE)`);
        checkPercent(p, a.percentage, `${f}.fault.abort.percentage`);
      }
    }
  }
  if (route.mirror !== undefined) checkDestination(p, route.mirror, `${f}.mirror`);
  checkPercent(p, route.mirrorPercentage, `${f}.mirrorPercentage`);
  if (checkArray(p, route.mirrors, `${f}.mirrors`)) {
    route.mirrors.forEach((m, i) => {
      checkDestination(p, isObject(m) ? m.destination : undefined, `${f}.mirrors[${i}].destination`);
      if (isObject(m)) checkPercent(p, m.percentage, `${f}.mirrors[${i}].percentage`);
    });
  }
  if (route.corsPolicy !== undefined) {
    const c = route.corsPolicy;
    if (!isObject(c)) p.add(`${f}.corsPolicy`, 'must be a map');
    else {
      if (checkArray(p, c.allowOrigins, `${f}.corsPolicy.allowOrigins`))
        c.allowOrigins.forEach((o, i) => checkStringMatch(p, o, `${f}.corsPolicy.allowOrigins[${i}]`));
      checkDuration(p, c.maxAge, `${f}.corsPolicy.maxAge`);
    }
  }
  checkHeaderOps(p, route.headers, `${f}.headers`);
}

export const GRPC_STATUS: Readonly<Record<string, number>> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

function checkExportTo(p: Problems, v: unknown, field: string): void {
  if (!checkArray(p, v, field)) return;
  v.forEach((e, i) => {
    if (typeof e !== 'string' || (e !== '*' && e !== '.' && e !== '~' && !isDNS1123Label(e)))
      p.add(`${field}[${i}]`, `exportTo entry ${JSON.stringify(e)} must be "*", ".", "~" or a namespace`);
  });
  if (v.includes('~') && v.length > 1) p.add(field, 'exportTo "~" (no namespace) cannot be combined with other namespaces');
  if (v.includes('*') && v.length > 1) p.add(field, 'exportTo "*" (all namespaces) cannot be combined with other namespaces');
}

export function validateVirtualService(spec: unknown): FieldError[] {
  const p = new Problems();
  if (!isObject(spec)) {
    p.add('spec', 'virtual service must have a spec');
    return p.list;
  }
  const vs = spec as VirtualServiceSpec;
  checkStringList(p, vs.hosts, 'spec.hosts');
  checkStringList(p, vs.gateways, 'spec.gateways');
  const delegate = !vs.hosts || vs.hosts.length === 0;
  if (delegate) {
    if (vs.gateways?.length)
      p.add('spec.hosts', 'virtual service must have at least one host (a delegate virtual service, without hosts, must have no gateways)');
  } else {
    vs.hosts?.forEach((h, i) => {
      if (typeof h !== 'string') return;
      const host = h;
      const err = host === '*' ? undefined : isIPAddress(host) ? undefined : checkWildcardDomain(host);
      if (err) p.add(`spec.hosts[${i}]`, err);
    });
  }
  vs.gateways?.forEach((g, i) => {
    if (typeof g !== 'string') return;
    const parts = g.split('/');
    const name = parts[parts.length - 1] ?? '';
    if (parts.length > 2 || name === '' || (parts.length === 2 && parts[0] === ''))
      p.add(`spec.gateways[${i}]`, `invalid gateway name: "${g}" (use name, namespace/name or mesh)`);
  });
  const hasHttp = Array.isArray(vs.http) && vs.http.length > 0;
  const hasTcp = Array.isArray(vs.tcp) && vs.tcp.length > 0;
  const hasTls = Array.isArray(vs.tls) && vs.tls.length > 0;
  if (!hasHttp && !hasTcp && !hasTls) p.add('spec', 'http, tcp or tls must be provided in virtual service');
  if (checkArray(p, vs.http, 'spec.http')) vs.http.forEach((r, i) => checkHTTPRoute(p, r, `spec.http[${i}]`));
  for (const kind of ['tcp', 'tls'] as const) {
    const routes = vs[kind];
    if (!checkArray(p, routes, `spec.${kind}`)) continue;
    routes.forEach((r, i) => {
      const f = `spec.${kind}[${i}]`;
      if (!isObject(r)) {
        p.add(f, 'must be a map');
        return;
      }
      if (!Array.isArray(r.route) || r.route.length === 0) p.add(`${f}.route`, `${kind.toUpperCase()} route is required`);
      else r.route.forEach((d, j) => checkDestination(p, isObject(d) ? d.destination : undefined, `${f}.route[${j}].destination`));
      if (kind === 'tls') {
        if (!Array.isArray(r.match) || r.match.length === 0) p.add(`${f}.match`, 'TLS route must have at least one match condition');
        else
          r.match.forEach((m, j) => {
            if (!isObject(m) || !Array.isArray(m.sniHosts) || m.sniHosts.length === 0)
              p.add(`${f}.match[${j}].sniHosts`, 'TLS match must have at least one SNI host');
          });
      }
    });
  }
  checkExportTo(p, vs.exportTo, 'spec.exportTo');
  return p.list;
}

// ---- DestinationRule ----------------------------------------------------------------------------

const LB_SIMPLE = new Set(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST']);

function checkTrafficPolicy(p: Problems, tp: unknown, f: string, allowPortLevel: boolean): void {
  if (!checkMap(p, tp, f)) return;
  const t = tp as TrafficPolicy;
  const lb = t.loadBalancer;
  if (checkMap(p, lb, `${f}.loadBalancer`)) {
    if (lb.simple !== undefined && !LB_SIMPLE.has(lb.simple))
      p.add(`${f}.loadBalancer.simple`, `unknown load balancer ${JSON.stringify(lb.simple)} (ROUND_ROBIN, LEAST_REQUEST, RANDOM, PASSTHROUGH)`);
    if (lb.simple !== undefined && lb.consistentHash !== undefined) p.add(`${f}.loadBalancer`, 'only one of simple or consistentHash may be set');
    const ch = lb.consistentHash;
    if (checkMap(p, ch, `${f}.loadBalancer.consistentHash`)) {
      const keys = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'].filter((k) => (ch as Record<string, unknown>)[k] !== undefined);
      if (keys.length !== 1)
        p.add(`${f}.loadBalancer.consistentHash`, 'exactly one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName must be set');
      if (ch.httpCookie && !ch.httpCookie.name) p.add(`${f}.loadBalancer.consistentHash.httpCookie.name`, 'cookie name is required');
      checkDuration(p, ch.httpCookie?.ttl, `${f}.loadBalancer.consistentHash.httpCookie.ttl`);
    }
  }
  const cp = t.connectionPool;
  if (checkMap(p, cp, `${f}.connectionPool`)) {
    checkDuration(p, cp.tcp?.connectTimeout, `${f}.connectionPool.tcp.connectTimeout`);
    checkDuration(p, cp.tcp?.idleTimeout, `${f}.connectionPool.tcp.idleTimeout`);
    checkDuration(p, cp.tcp?.maxConnectionDuration, `${f}.connectionPool.tcp.maxConnectionDuration`);
    checkDuration(p, cp.http?.idleTimeout, `${f}.connectionPool.http.idleTimeout`);
    for (const [k, v] of Object.entries({ ...(cp.tcp ?? {}), ...(cp.http ?? {}) })) {
      if (typeof v === 'number' && v < 0) p.add(`${f}.connectionPool`, `${k} must not be negative`);
    }
  }
  const od = t.outlierDetection;
  if (checkMap(p, od, `${f}.outlierDetection`)) {
    checkDuration(p, od.interval, `${f}.outlierDetection.interval`);
    checkDuration(p, od.baseEjectionTime, `${f}.outlierDetection.baseEjectionTime`);
    if (od.maxEjectionPercent !== undefined && (od.maxEjectionPercent < 0 || od.maxEjectionPercent > 100))
      p.add(`${f}.outlierDetection.maxEjectionPercent`, 'must be in the range 0..100');
    if (od.minHealthPercent !== undefined && (od.minHealthPercent < 0 || od.minHealthPercent > 100))
      p.add(`${f}.outlierDetection.minHealthPercent`, 'must be in the range 0..100');
  }
  if (t.portLevelSettings !== undefined) {
    if (!allowPortLevel) p.add(`${f}.portLevelSettings`, 'port level settings cannot be nested');
    else if (checkArray(p, t.portLevelSettings, `${f}.portLevelSettings`)) {
      t.portLevelSettings.forEach((pls, i) => {
        const pf = `${f}.portLevelSettings[${i}]`;
        if (!isObject(pls) || !isObject(pls.port)) p.add(`${pf}.port`, 'port must be specified for port level settings');
        else checkPort(p, pls.port.number, `${pf}.port.number`);
        checkTrafficPolicy(p, pls, pf, false);
      });
    }
  }
}

export function validateDestinationRule(spec: unknown): FieldError[] {
  const p = new Problems();
  if (!isObject(spec)) {
    p.add('spec', 'destination rule must have a spec with a host');
    return p.list;
  }
  const dr = spec as unknown as DestinationRuleSpec;
  if (typeof dr.host !== 'string' || dr.host === '') p.add('spec.host', 'host is required');
  else {
    const err = checkWildcardDomain(dr.host);
    if (err) p.add('spec.host', err);
  }
  checkTrafficPolicy(p, dr.trafficPolicy, 'spec.trafficPolicy', true);
  if (checkArray(p, dr.subsets, 'spec.subsets')) {
    const names = new Set<string>();
    dr.subsets.forEach((s, i) => {
      const f = `spec.subsets[${i}]`;
      if (!isObject(s)) {
        p.add(f, 'subset may not be null');
        return;
      }
      if (typeof s.name !== 'string' || s.name === '') p.add(`${f}.name`, 'subset name cannot be empty');
      else if (!isDNS1123Label(s.name)) p.add(`${f}.name`, `subset name is invalid: ${s.name}`);
      else if (names.has(s.name)) p.add(`${f}.name`, `duplicate subset names: ${s.name}`);
      else names.add(s.name);
      if (checkMap(p, s.labels, `${f}.labels`))
        for (const [k, v] of Object.entries(s.labels)) if (typeof v !== 'string') p.add(`${f}.labels.${k}`, 'label values must be strings');
      checkTrafficPolicy(p, s.trafficPolicy, `${f}.trafficPolicy`, true);
    });
  }
  checkExportTo(p, dr.exportTo, 'spec.exportTo');
  return p.list;
}

// ---- ServiceEntry -------------------------------------------------------------------------------

const RESOLUTIONS = new Set(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS']);

export function validateServiceEntry(spec: unknown): FieldError[] {
  const p = new Problems();
  if (!isObject(spec)) {
    p.add('spec', 'service entry must have a spec with hosts');
    return p.list;
  }
  const se = spec as unknown as ServiceEntrySpec;
  if (!Array.isArray(se.hosts) || se.hosts.length === 0) p.add('spec.hosts', 'service entry must have at least one host');
  else
    se.hosts.forEach((h, i) => {
      if (typeof h !== 'string' || h === '*' || checkWildcardDomain(h)) p.add(`spec.hosts[${i}]`, `invalid host ${String(h)}`);
    });
  const resolution = se.resolution ?? 'NONE';
  if (!RESOLUTIONS.has(resolution)) p.add('spec.resolution', `unknown resolution ${JSON.stringify(se.resolution)} (NONE, STATIC, DNS, DNS_ROUND_ROBIN)`);
  if (se.location !== undefined && se.location !== 'MESH_EXTERNAL' && se.location !== 'MESH_INTERNAL')
    p.add('spec.location', 'location must be MESH_EXTERNAL or MESH_INTERNAL');
  const portNames = new Set<string>();
  if (checkArray(p, se.ports, 'spec.ports')) {
    se.ports.forEach((port, i) => {
      const f = `spec.ports[${i}]`;
      if (!isObject(port)) {
        p.add(f, 'must be a map');
        return;
      }
      checkPort(p, port.number, `${f}.number`);
      if (typeof port.name !== 'string' || port.name === '') p.add(`${f}.name`, 'port name must be set');
      else if (portNames.has(port.name)) p.add(`${f}.name`, `service entry port name "${port.name}" already defined`);
      else portNames.add(port.name);
      if (port.protocol !== undefined && parseProtocol(port.protocol) === 'UnsupportedProtocol')
        p.add(`${f}.protocol`, `unsupported protocol ${JSON.stringify(port.protocol)}`);
      if (port.targetPort !== undefined) checkPort(p, port.targetPort, `${f}.targetPort`);
    });
  }
  if (checkArray(p, se.endpoints, 'spec.endpoints')) {
    if (se.workloadSelector) p.add('spec.workloadSelector', 'only one of endpoints or workloadSelector can be set');
    se.endpoints.forEach((ep, i) => {
      const f = `spec.endpoints[${i}]`;
      if (!isObject(ep)) {
        p.add(f, 'must be a map');
        return;
      }
      if (typeof ep.address !== 'string' || ep.address === '') p.add(`${f}.address`, 'endpoint address is required');
      else if (resolution === 'STATIC' && !isIPAddress(ep.address) && !ep.address.startsWith('unix://'))
        p.add(`${f}.address`, `endpoint address ${ep.address} must be an IP address for resolution STATIC`);
      if (checkMap(p, ep.ports, `${f}.ports`)) {
        for (const [name, n] of Object.entries(ep.ports)) {
          if (!portNames.has(name)) p.add(`${f}.ports.${name}`, `endpoint port ${name} is not defined by the service entry`);
          checkPort(p, n, `${f}.ports.${name}`);
        }
      }
    });
  }
  checkExportTo(p, se.exportTo, 'spec.exportTo');
  return p.list;
}
