// Validation of Istio networking resources, after istiod's validating webhook
// (pkg/config/validation/validation.go). In Kubernetes the webhook rejects bad objects before the
// gateway sees them; in local mode (and for objects applied while the webhook was absent) meshgate
// must reject them itself. An invalid object is skipped as a whole, as the webhook would have refused it;
// everything else keeps being served. Each problem is a value with a field path, not an exception.
import type {
  ClientTLSSettings,
  ConnectionPoolSettings,
  CorsPolicy,
  DestinationRuleSpec,
  GatewaySpec,
  HTTPCookie,
  HTTPDirectResponse,
  HTTPFaultInjection,
  HTTPMatchRequest,
  HTTPRedirect,
  HTTPRetry,
  HTTPRewrite,
  HTTPRoute,
  Headers,
  LoadBalancerSettings,
  OutlierDetection,
  Server,
  ServiceEntrySpec,
  StringMatch,
  TrafficPolicy,
  VirtualServiceSpec,
} from './istio-types.ts';
import { checkWildcardDomain, dns1123LabelsError, dnsPreconditionError, isDNS1123Label, isIPAddress, matches, subsetOf } from './host.ts';
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

/** agent.ValidateDuration: at least 1 ms, in whole milliseconds (after the parse check). */
function checkIstioDuration(p: Problems, v: unknown, field: string): void {
  if (v === undefined || v === null) return;
  const ns = parseDuration(v);
  if (ns === undefined) checkDuration(p, v, field);
  else if (ns < 1e6) p.add(field, 'duration must be greater than 1ms');
  else if (ns % 1e6 !== 0) p.add(field, 'only durations to ms precision are supported');
}

function checkPort(p: Problems, n: unknown, field: string, allowZero = false): void {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) {
    p.add(field, `port number ${JSON.stringify(n)} must be in the range 1..65535`);
  }
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
  // ValidatePartialWildCard: a Gateway host takes `*` or `*.` only, though a VirtualService host may be `*foo.com`.
  if (name.includes('*') && name !== '*' && !name.startsWith('*.')) p.add(field, `partial wildcard "${name}" not allowed`);
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
 * validateStringRegexp: why a VirtualService regex cannot be served, undefined when it can. It is compiled by
 * the proxy's own RE2 (xds/re2.ts), so what passes here compiles there; the message is Go's regexp error, as
 * istiod's webhook words it.
 */
function checkRe2(pattern: string): string | undefined {
  if (pattern.length > 1024) return 'regex is too large, max length allowed is 1024';
  const re = compileRe2(pattern);
  if (!isRe2Error(re)) return undefined;
  return `${re.goMessage}; Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)`;
}

/** RFC 7230 token characters (validHeaderNameRegex). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$/;
const PSEUDO_HEADERS = new Set([':method', ':scheme', ':authority', ':path', ':status']);
/** jwt.ToRoutingClaim: `@request.auth.claims.a.b` or `@request.auth.claims[a][b]`. */
function isJwtClaimRoute(name: string): boolean {
  if (!name.toLowerCase().startsWith('@request.auth.claims')) return false;
  const rest = name.slice('@request.auth.claims'.length);
  return (rest.startsWith('.') && rest.length > 1) || (rest.startsWith('[') && rest.endsWith(']') && rest.length > 2);
}

/**
 * validateStringMatch / validateStringMatchRegexp. `uri` takes an empty prefix (Envoy's path match does) and is
 * only checked for its regex; scheme, method, authority, headers and query parameters refuse an empty prefix.
 * `*` as a withoutHeaders regex is not RE2 but istiod's "present" match, so it is not compiled. The shape
 * checks (a map, one match type, string values) are where istiod fails to parse the object at all.
 */
function checkStringMatch(p: Problems, m: unknown, field: string, opts: { uri?: boolean; starIsPresent?: boolean } = {}): void {
  if (m === undefined) return;
  if (!isObject(m)) {
    p.add(field, 'must be a map with one of exact, prefix or regex');
    return;
  }
  const sm = m as StringMatch;
  const set = ['exact', 'prefix', 'regex'].filter((k) => (sm as Record<string, unknown>)[k] !== undefined);
  if (set.length > 1) p.add(field, `only one of exact, prefix or regex may be set (found ${set.join(', ')})`);
  for (const k of set) if (typeof (sm as Record<string, unknown>)[k] !== 'string') p.add(`${field}.${k}`, 'must be a string');
  if (!opts.uri && sm.prefix === '') p.add(`${field}.prefix`, 'prefix string match should not be empty');
  if (typeof sm.regex === 'string' && !(opts.starIsPresent && sm.regex === '*')) {
    if (sm.regex === '') p.add(`${field}.regex`, 'regex string match should not be empty');
    else {
      const err = checkRe2(sm.regex);
      if (err) p.add(`${field}.regex`, err);
    }
  }
}

/** Header (or withoutHeaders) matches: ValidateHTTPHeaderNameOrJwtClaimRoute on each name, then the match. */
function checkHeaderMatches(p: Problems, m: unknown, field: string, without: boolean): void {
  if (!checkMap(p, m, field)) return;
  for (const [name, sm] of Object.entries(m)) {
    const f = `${field}.${name}`;
    if (sm === null && !without) p.add(f, `header match ${name} cannot be null`);
    if (name === '') p.add(field, 'header name cannot be empty');
    else if (!isJwtClaimRoute(name) && !PSEUDO_HEADERS.has(name) && !HEADER_NAME.test(name)) p.add(f, `header name ${name} is not a valid header name`);
    if (sm !== null) checkStringMatch(p, sm, f, { starIsPresent: without });
  }
}

/** labels.Instance.Validate: Kubernetes label keys (optional DNS prefix, qualified name) and values. */
const QUALIFIED_NAME = '(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const DNS1123_LABEL_FMT = '[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?';
const LABEL_KEY = new RegExp(`^(${DNS1123_LABEL_FMT}(?:\\.${DNS1123_LABEL_FMT})*/)?(${QUALIFIED_NAME})$`);
const LABEL_VALUE = new RegExp(`^(${QUALIFIED_NAME})?$`);
function checkLabels(p: Problems, labels: unknown, field: string): void {
  if (!checkMap(p, labels, field)) return;
  for (const [k, v] of Object.entries(labels)) {
    const m = LABEL_KEY.exec(k);
    if (!m) p.add(`${field}.${k}`, `invalid tag key: ${JSON.stringify(k)}`);
    else if ((m[1]?.length ?? 0) - 1 > 253) p.add(`${field}.${k}`, `invalid tag key: ${JSON.stringify(k)} (DNS prefix is too long)`);
    else if ((m[2]?.length ?? 0) > 63) p.add(`${field}.${k}`, `invalid tag key: ${JSON.stringify(k)} (name is too long)`);
    if (typeof v !== 'string') p.add(`${field}.${k}`, 'label values must be strings');
    else if (!LABEL_VALUE.test(v)) p.add(`${field}.${k}`, `invalid tag value: ${JSON.stringify(v)}`);
  }
}

function checkMatch(p: Problems, m: unknown, f: string): void {
  if (!isObject(m)) {
    p.add(f, 'match must be a map');
    return;
  }
  const match = m as HTTPMatchRequest;
  checkHeaderMatches(p, match.headers, `${f}.headers`, false);
  checkHeaderMatches(p, match.withoutHeaders, `${f}.withoutHeaders`, true);
  checkStringMatch(p, match.uri, `${f}.uri`, { uri: true });
  for (const k of ['scheme', 'method', 'authority'] as const) checkStringMatch(p, match[k], `${f}.${k}`);
  if (match.queryParams !== undefined && checkMap(p, match.queryParams, `${f}.queryParams`)) {
    for (const [name, sm] of Object.entries(match.queryParams)) checkStringMatch(p, sm, `${f}.queryParams.${name}`);
  }
  if (match.port !== undefined && match.port !== 0) checkPort(p, match.port, `${f}.port`);
  if (match.sourceLabels !== undefined) checkLabels(p, match.sourceLabels, `${f}.sourceLabels`);
  checkStringList(p, match.gateways, `${f}.gateways`);
  if (match.sourceNamespace && !isDNS1123Label(match.sourceNamespace))
    p.add(`${f}.sourceNamespace`, `sourceNamespace match ${match.sourceNamespace} is invalid`);
}

/**
 * Header operation names: ValidateHTTPHeaderWithAuthorityOperationName for request set/add (`:authority` and
 * `host` rewrite the authority; other `:` headers are refused), ValidateHTTPHeaderOperationName for request
 * remove and every response operation (neither `host` nor a `:` header). Beyond istiod, a name must be an HTTP
 * token: the proxy cannot send any other.
 */
function checkHeaderOpName(p: Problems, name: string, field: string, authorityAllowed: boolean): void {
  if (name === '') {
    p.add(field, 'header name cannot be empty');
    return;
  }
  const lower = name.toLowerCase();
  const authority = lower === ':authority' || lower === 'host';
  if (authorityAllowed) {
    if ((name.startsWith(':') || lower === 'host') && !authority) p.add(field, `invalid header ${JSON.stringify(name)}: header cannot have ":" prefix`);
  } else if (lower === 'host') p.add(field, `invalid header ${JSON.stringify(name)}: cannot set Host header`);
  else if (name.startsWith(':')) p.add(field, `invalid header ${JSON.stringify(name)}: header cannot have ":" prefix`);
  if (!HEADER_NAME.test(name.startsWith(':') ? name.slice(1) : name)) p.add(field, `header name ${name} is not a valid header name`);
}

/** ValidateHTTPHeaderValue: no control characters but tab, and Envoy's %VARIABLE% syntax well formed (header_parser.cc). */
function headerValueError(value: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000A-\u001F\u007F]/.test(value)) return `header value configuration ${value} is invalid`;
  type State = 'literal' | 'name' | 'array' | 'string' | 'inString' | 'delimiter' | 'argsEnd' | 'varEnd';
  let state: State = 'literal';
  const bad = (m: string): string => `header value configuration: invalid header configuration. ${m}`;
  for (let pos = 0; pos < value.length; pos++) {
    const ch = value[pos];
    const hasNext = pos + 1 < value.length;
    switch (state) {
      case 'literal':
        if (ch !== '%') break;
        if (!hasNext) return bad('Un-escaped %');
        if (value[pos + 1] === '%') pos++;
        else state = 'name';
        break;
      case 'name':
        if (ch === '%') state = 'literal';
        else if (ch === '(') state = 'array';
        break;
      case 'array':
        if (ch === '[') state = 'string';
        else if (ch !== ' ') state = 'inString';
        break;
      case 'delimiter':
        if (ch === ',') state = 'string';
        else if (ch === ']') state = 'argsEnd';
        else if (ch !== ' ') return bad("Expecting ',', ']', or whitespace");
        break;
      case 'string':
        if (ch === '"') state = 'inString';
        else if (ch !== ' ') return bad("Expecting '\"'");
        break;
      case 'inString':
        if (ch === '\\') {
          if (!hasNext) return bad('Un-terminated backslash in JSON string');
          pos++;
        } else if (ch === ')') state = 'varEnd';
        else if (ch === '"') state = 'delimiter';
        break;
      case 'argsEnd':
        if (ch === ')') state = 'varEnd';
        else if (ch !== ' ') return bad("Expecting ')' or whitespace after '{}', but found '{}'");
        break;
      case 'varEnd':
        if (ch === '%') state = 'literal';
        else if (ch !== ' ') return bad("Expecting '%' or whitespace after");
        break;
    }
  }
  return state === 'literal' ? undefined : bad(`Un-terminated variable expression '${value}'`);
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
        checkHeaderOpName(p, k, k === '' ? `${f}.${dir}.${op}` : `${f}.${dir}.${op}.${k}`, dir === 'request');
        if (typeof v !== 'string') p.add(`${f}.${dir}.${op}.${k}`, 'header value must be a string');
        else {
          const err = headerValueError(v);
          if (err) p.add(`${f}.${dir}.${op}.${k}`, err);
        }
      }
    }
    checkStringList(p, ops.remove, `${f}.${dir}.remove`);
    if (Array.isArray(ops.remove)) ops.remove.forEach((k, i) => typeof k === 'string' && checkHeaderOpName(p, k, `${f}.${dir}.remove[${i}]`, false));
  }
}

/** validateAuthorityRewrite: the authority is rewritten in one place only (rewrite.authority, or one header). */
function checkAuthorityRewrite(p: Problems, route: HTTPRoute, f: string): void {
  let current = isObject(route.rewrite) && typeof route.rewrite.authority === 'string' ? route.rewrite.authority : '';
  const req = isObject(route.headers) && isObject(route.headers.request) ? route.headers.request : undefined;
  for (const op of ['set', 'add'] as const) {
    const kv = req?.[op];
    if (!isObject(kv)) continue;
    for (const [k, v] of Object.entries(kv)) {
      const lower = k.toLowerCase();
      if (lower !== ':authority' && lower !== 'host') continue;
      if (current !== '') {
        p.add(
          `${f}.headers.request.${op}.${k}`,
          `authority header cannot be set multiple times: have ${JSON.stringify(current)}, attempting to set ${JSON.stringify(v)}`,
        );
        return;
      }
      current = String(v);
    }
  }
}

/** agent.ValidatePort. */
function checkPortSelector(p: Problems, port: unknown, f: string): void {
  if (!isObject(port)) p.add(f, 'must be a map with number');
  else checkPort(p, port.number ?? 0, `${f}.number`);
}

/** validateDestination. */
function checkDestination(p: Problems, d: unknown, f: string): void {
  if (!isObject(d)) {
    p.add(f, 'destination is required');
    return;
  }
  if (typeof d.host !== 'string' || d.host === '') p.add(`${f}.host`, 'destination host is required');
  else if (d.host === '*') p.add(`${f}.host`, `invalid destination host ${d.host}`);
  else if (checkWildcardDomain(d.host) && !isIPAddress(d.host)) p.add(`${f}.host`, checkWildcardDomain(d.host) ?? '');
  if (d.subset !== undefined && d.subset !== '' && (typeof d.subset !== 'string' || !isDNS1123Label(d.subset)))
    p.add(`${f}.subset`, `subset name is invalid: ${typeof d.subset === 'string' ? d.subset : JSON.stringify(d.subset)}`);
  if (d.port !== undefined) checkPortSelector(p, d.port, `${f}.port`);
}

/** validateHTTPRouteDestinations / validateRouteDestinations: each destination, weights not negative, not all 0. */
function checkRouteDestinations(p: Problems, routes: unknown, f: string, http: boolean): void {
  if (!checkArray(p, routes, f)) return;
  let total = 0;
  routes.forEach((d, i) => {
    const df = `${f}[${i}]`;
    if (!isObject(d)) {
      p.add(df, 'weight may not be nil');
      return;
    }
    checkDestination(p, d.destination, `${df}.destination`);
    if (d.weight !== undefined && (typeof d.weight !== 'number' || !Number.isInteger(d.weight))) p.add(`${df}.weight`, 'weight must be an integer');
    else if ((d.weight ?? 0) < 0) p.add(`${df}.weight`, `weight ${String(d.weight)} < 0`);
    else total += d.weight ?? 0;
    if (http) checkHeaderOps(p, d.headers, `${df}.headers`);
  });
  if (routes.length > 1 && total === 0) p.add(f, 'total destination weight = 0');
}

/** Go's %f. */
const goFloat = (v: number): string => v.toFixed(6);

/** validatePercentage (fault injection): 0, or 0.0001 to 100. */
function checkFaultPercentage(p: Problems, v: unknown, field: string): void {
  if (v === undefined || v === null) return;
  const value = isObject(v) ? v.value : undefined;
  if (value === undefined) return;
  if (typeof value !== 'number' || value < 0 || value > 100 || (value > 0 && value < 0.0001))
    p.add(`${field}.value`, `percentage ${JSON.stringify(value)} is neither 0.0, nor in range [0.0001, 100.0]`);
}

/** Envoy's retry_on policies istiod accepts beside HTTP status codes (supportedRetryOnPolicies). */
const RETRY_ON = new Set([
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'envoy-ratelimited',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);
/** The status codes Go's http.StatusText knows: istiod takes a retryOn entry that parses as one of them. */
const KNOWN_STATUS = new Set([
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408,
  409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

function checkRetries(p: Problems, r: unknown, f: string): void {
  if (r === undefined) return;
  if (!isObject(r)) {
    p.add(f, 'must be a map');
    return;
  }
  const retries = r as HTTPRetry;
  const attempts = retries.attempts ?? 0;
  if (typeof attempts !== 'number' || attempts < 0) p.add(`${f}.attempts`, 'attempts cannot be negative');
  if (attempts === 0 && (retries.perTryTimeout !== undefined || retries.retryOn || retries.retryRemoteLocalities !== undefined))
    p.add(f, 'http retry policy configured when attempts are set to 0 (disabled)');
  checkIstioDuration(p, retries.perTryTimeout, `${f}.perTryTimeout`);
  if (typeof retries.retryOn === 'string' && retries.retryOn !== '') {
    for (const policy of retries.retryOn.split(',')) {
      // strconv.Atoi, then http.StatusText.
      const code = /^[+-]?\d+$/.test(policy) ? Number(policy) : 0;
      if (!KNOWN_STATUS.has(code) && !RETRY_ON.has(policy)) p.add(`${f}.retryOn`, `${JSON.stringify(policy)} is not a valid retryOn policy`);
    }
  }
  checkIstioDuration(p, retries.backoff, `${f}.backoff`);
}

const CORS_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', '*']);

function checkCorsPolicy(p: Problems, c: unknown, f: string): void {
  if (c === undefined) return;
  if (!isObject(c)) {
    p.add(f, 'must be a map');
    return;
  }
  const cors = c as CorsPolicy;
  if (checkArray(p, cors.allowOrigins, `${f}.allowOrigins`)) {
    cors.allowOrigins.forEach((o, i) => {
      const of = `${f}.allowOrigins[${i}]`;
      const m = isObject(o) ? (o as StringMatch) : {};
      if ((m.exact ?? m.prefix ?? m.regex ?? '') === '') p.add(of, "'' is not a valid match type for CORS allow origins");
      else checkStringMatch(p, o, of, { uri: true });
    });
  }
  if (checkArray(p, cors.allowMethods, `${f}.allowMethods`))
    cors.allowMethods.forEach((m, i) => {
      if (!CORS_METHODS.has(m)) p.add(`${f}.allowMethods[${i}]`, `${JSON.stringify(m)} is not a supported HTTP method`);
    });
  for (const k of ['allowHeaders', 'exposeHeaders'] as const) {
    if (!checkArray(p, cors[k], `${f}.${k}`)) continue;
    cors[k].forEach((h, i) => {
      if (h === '') p.add(`${f}.${k}[${i}]`, 'header name cannot be empty');
      else if (h !== '*' && !HEADER_NAME.test(h)) p.add(`${f}.${k}[${i}]`, `header name ${h} is not a valid header name`);
    });
  }
  if (cors.maxAge !== undefined) {
    checkIstioDuration(p, cors.maxAge, `${f}.maxAge`);
    const ns = parseDuration(cors.maxAge);
    if (ns !== undefined && ns % 1e9 !== 0) p.add(`${f}.maxAge`, 'max_age duration is accurate only to seconds precision');
  }
}

function checkFault(p: Problems, fault: unknown, f: string): void {
  if (fault === undefined) return;
  if (!isObject(fault)) {
    p.add(f, 'must be a map');
    return;
  }
  const fi = fault as HTTPFaultInjection;
  if (!fi.delay && !fi.abort) p.add(f, 'HTTP fault injection must have an abort and/or a delay');
  if (fi.abort) {
    const a = fi.abort;
    checkFaultPercentage(p, a.percentage, `${f}.abort.percentage`);
    if (a.grpcStatus !== undefined && !(a.grpcStatus in GRPC_STATUS))
      p.add(
        `${f}.abort.grpcStatus`,
        `gRPC status ${JSON.stringify(a.grpcStatus)} is not supported. See https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of supported codes, for example 'NOT_FOUND'`,
      );
    else if (a.http2Error !== undefined) p.add(`${f}.abort.http2Error`, 'HTTP/2 abort fault injection not supported yet');
    else if (a.httpStatus !== undefined && (typeof a.httpStatus !== 'number' || a.httpStatus < 200 || a.httpStatus > 600))
      p.add(`${f}.abort.httpStatus`, `HTTP status ${String(a.httpStatus)} is not in range 200-599`);
  }
  if (fi.delay) {
    const d = fi.delay;
    checkFaultPercentage(p, d.percentage, `${f}.delay.percentage`);
    if (d.fixedDelay !== undefined) checkIstioDuration(p, d.fixedDelay, `${f}.delay.fixedDelay`);
    else if (d.exponentialDelay !== undefined) {
      checkIstioDuration(p, d.exponentialDelay, `${f}.delay.exponentialDelay`);
      p.add(`${f}.delay.exponentialDelay`, 'exponentialDelay not supported yet');
    }
    // Beyond istiod: a delay without a duration becomes a FaultDelay Envoy refuses (its specifier is required).
    else p.add(`${f}.delay`, 'delay requires fixedDelay');
  }
}

function checkRedirect(p: Problems, rd: unknown, routeMatches: unknown, f: string): void {
  if (rd === undefined) return;
  if (!isObject(rd)) {
    p.add(f, 'must be a map');
    return;
  }
  const r = rd as HTTPRedirect;
  if (r.uri && r.prefixRewrite) p.add(f, 'redirect may only specify one of uri or prefix_rewrite');
  if (r.prefixRewrite && Array.isArray(routeMatches) && (routeMatches as unknown[]).some((m) => isObject(m) && isObject(m.uri) && m.uri.prefix === undefined))
    p.add(`${f}.prefixRewrite`, 'redirect prefix_rewrite requires all URI matches to use prefix match type');
  if (!r.uri && !r.prefixRewrite && !r.authority && !r.scheme && r.port === undefined && !r.derivePort)
    p.add(f, 'redirect must specify URI, authority, scheme, or port');
  if (r.redirectCode !== undefined && r.redirectCode !== 0) {
    if (typeof r.redirectCode !== 'number' || r.redirectCode < 300 || r.redirectCode > 399)
      p.add(`${f}.redirectCode`, `${String(r.redirectCode)} is not a valid redirect code, must be 3xx`);
    // Beyond istiod, which accepts any 3xx but translates only these: any other code yields a route without an
    // action that Envoy refuses, taking the whole route table down.
    else if (![301, 302, 303, 307, 308].includes(r.redirectCode))
      p.add(`${f}.redirectCode`, `${r.redirectCode} is not a supported redirect code: use 301, 302, 303, 307 or 308`);
  }
  if (r.scheme && r.scheme !== 'http' && r.scheme !== 'https') p.add(`${f}.scheme`, 'invalid redirect scheme, must be "http" or "https"');
  if (r.port !== undefined && r.port !== 0) checkPort(p, r.port, `${f}.port`);
}

function checkDirectResponse(p: Problems, dr: unknown, f: string): void {
  if (dr === undefined) return;
  if (!isObject(dr)) {
    p.add(f, 'must be a map');
    return;
  }
  const d = dr as unknown as HTTPDirectResponse;
  if (d.body !== undefined) {
    if (!isObject(d.body) || (d.body.string !== undefined && d.body.bytes !== undefined)) p.add(`${f}.body`, 'body takes one of string or bytes');
    else {
      const size =
        typeof d.body.string === 'string'
          ? Buffer.byteLength(d.body.string)
          : typeof d.body.bytes === 'string'
            ? Buffer.from(d.body.bytes, 'base64').length
            : 0;
      if (size > 1024 * 1024) p.add(`${f}.body`, 'large direct_responses may impact control plane performance, must be less than 1MB');
    }
  }
  if (typeof d.status !== 'number' || d.status < 200 || d.status > 600) p.add(`${f}.status`, `HTTP status ${String(d.status)} is not in range 200-599`);
}

function checkMirrors(p: Problems, route: HTTPRoute, f: string): void {
  for (const k of ['mirrorPercent', 'mirror_percent'] as const) {
    const v = route[k];
    if (typeof v === 'number' && v > 100) p.add(`${f}.${k}`, `mirror_percent must have a max value of 100 (it has ${v})`);
  }
  const mp = isObject(route.mirrorPercentage) ? route.mirrorPercentage.value : undefined;
  if (typeof mp === 'number') {
    if (mp > 100) p.add(`${f}.mirrorPercentage.value`, `mirror_percentage must have a max value of 100 (it has ${goFloat(mp)})`);
    if (mp < 0) p.add(`${f}.mirrorPercentage.value`, `mirror_percentage must have a min value of 0 (it has ${goFloat(mp)})`);
  }
  if (route.mirror !== undefined) checkDestination(p, route.mirror, `${f}.mirror`);
  if (!checkArray(p, route.mirrors, `${f}.mirrors`)) return;
  route.mirrors.forEach((m, i) => {
    const mf = `${f}.mirrors[${i}]`;
    if (!isObject(m)) {
      p.add(mf, 'mirror cannot be null');
      return;
    }
    if (m.destination === undefined) {
      p.add(`${mf}.destination`, 'destination is required for mirrors');
      return;
    }
    checkDestination(p, m.destination, `${mf}.destination`);
    const v = isObject(m.percentage) ? m.percentage.value : undefined;
    if (typeof v === 'number') {
      if (v > 100) p.add(`${mf}.percentage.value`, `mirror percentage must have a max value of 100 (it has ${goFloat(v)})`);
      if (v < 0) p.add(`${mf}.percentage.value`, `mirror percentage must have a min value of 0 (it has ${goFloat(v)})`);
    }
  });
}

function checkRewrite(p: Problems, rw: unknown, f: string): void {
  if (rw === undefined) return;
  if (!isObject(rw)) {
    p.add(f, 'must be a map');
    return;
  }
  const r = rw as HTTPRewrite;
  if (r.uri && r.uriRegexRewrite) p.add(f, 'rewrite may only contain one of URI or UriRegexRewrite');
  else if (!r.uri && !r.uriRegexRewrite && !r.authority)
    p.add(f, 'rewrite must specify at least one of URI, UriRegexRewrite, or authority. Only one of URI or UriRegexRewrite may be specified');
  else if (r.uriRegexRewrite) {
    if (!r.uriRegexRewrite.match || !r.uriRegexRewrite.rewrite)
      p.add(`${f}.uriRegexRewrite`, 'UriRegexRewrite has errors: UriRegexRewrite requires both Rewrite and Match fields to be specified');
    else {
      const err = checkRe2(r.uriRegexRewrite.match);
      if (err) p.add(`${f}.uriRegexRewrite.match`, `UriRegexRewrite has errors: ${err}`);
    }
  }
}

/** validateHTTPRouteConflict: what a root (delegating), delegate or independent rule may hold together. */
function checkRouteConflicts(p: Problems, route: HTTPRoute, f: string, inDelegate: boolean): void {
  const hasRoute = Array.isArray(route.route) && route.route.length > 0;
  if (!inDelegate && route.delegate) {
    if (route.redirect) p.add(`${f}.redirect`, `root HTTP route ${route.name ?? ''} must not specify redirect`);
    if (hasRoute) p.add(`${f}.route`, `root HTTP route ${route.name ?? ''} must not specify route`);
    return;
  }
  if (inDelegate && route.delegate) p.add(`${f}.delegate`, 'delegate HTTP route cannot contain delegate');
  if (route.redirect) {
    if (hasRoute) p.add(`${f}.redirect`, 'HTTP route cannot contain both route and redirect');
    if (route.fault) p.add(`${f}.fault`, 'HTTP route cannot contain both fault and redirect');
    if (route.rewrite) p.add(`${f}.rewrite`, 'HTTP route rule cannot contain both rewrite and redirect');
    if (route.directResponse) p.add(`${f}.directResponse`, 'HTTP route rule cannot contain both direct_response and redirect');
  } else if (route.directResponse) {
    if (hasRoute) p.add(`${f}.directResponse`, 'HTTP route cannot contain both route and direct_response');
    if (route.fault) p.add(`${f}.fault`, 'HTTP route cannot contain both fault and direct_response');
    if (route.rewrite) p.add(`${f}.rewrite`, 'HTTP route rule cannot contain both rewrite and direct_response');
  } else if (!hasRoute) p.add(f, 'HTTP route, redirect or direct_response is required');
  if (route.mirror && Array.isArray(route.mirrors) && route.mirrors.length > 0) p.add(`${f}.mirrors`, 'HTTP route cannot contain both mirror and mirrors');
}

/** validateHTTPRoute. */
function checkHTTPRoute(p: Problems, r: unknown, f: string, inDelegate: boolean): void {
  if (!isObject(r)) {
    p.add(f, 'http route may not be null');
    return;
  }
  const route = r as HTTPRoute;
  checkRouteConflicts(p, route, f, inDelegate);
  if (checkArray(p, route.match, `${f}.match`)) route.match.forEach((m, i) => checkMatch(p, m, `${f}.match[${i}]`));
  checkHeaderOps(p, route.headers, `${f}.headers`);
  checkCorsPolicy(p, route.corsPolicy, `${f}.corsPolicy`);
  checkFault(p, route.fault, `${f}.fault`);
  checkMirrors(p, route, f);
  checkRedirect(p, route.redirect, route.match, `${f}.redirect`);
  checkDirectResponse(p, route.directResponse, `${f}.directResponse`);
  checkRetries(p, route.retries, `${f}.retries`);
  checkRewrite(p, route.rewrite, `${f}.rewrite`);
  checkAuthorityRewrite(p, route, f);
  checkRouteDestinations(p, route.route, `${f}.route`, true);
  if (route.timeout !== undefined) checkIstioDuration(p, route.timeout, `${f}.timeout`);
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

/** agent.ValidateIPSubnet: `a.b.c.d/xx`, `2001:1::1/64` or a plain address. */
function checkSubnet(p: Problems, s: unknown, field: string): void {
  if (typeof s !== 'string') {
    p.add(field, 'must be a string');
    return;
  }
  const parts = s.split('/');
  if (parts.length === 2) {
    const [ip = '', bits = ''] = parts;
    const max = ip.includes(':') ? 128 : 32;
    if (!isIPAddress(ip) || !/^\d+$/.test(bits) || Number(bits) > max) p.add(field, `${s} is not a valid CIDR block`);
  } else if (!isIPAddress(s)) p.add(field, `${s} is not a valid IP address`);
}

/** validateTCPMatch / validateTLSMatch's L4 part. */
function checkL4Match(p: Problems, m: Record<string, unknown>, f: string): void {
  if (checkArray(p, m.destinationSubnets, `${f}.destinationSubnets`))
    m.destinationSubnets.forEach((s, i) => checkSubnet(p, s, `${f}.destinationSubnets[${i}]`));
  if (m.port !== undefined && m.port !== 0) checkPort(p, m.port, `${f}.port`);
  if (m.sourceLabels !== undefined) checkLabels(p, m.sourceLabels, `${f}.sourceLabels`);
  checkStringList(p, m.gateways, `${f}.gateways`);
}

/** validateTLSRoute (SNI hosts must fall within the VirtualService's hosts) and validateTCPRoute. */
function checkL4Route(p: Problems, r: unknown, f: string, kind: 'tcp' | 'tls', hosts: readonly string[]): void {
  if (!isObject(r)) {
    p.add(f, 'must be a map');
    return;
  }
  if (kind === 'tls' && (!Array.isArray(r.match) || r.match.length === 0)) p.add(`${f}.match`, 'TLS route must have at least one match condition');
  if (checkArray(p, r.match, `${f}.match`)) {
    r.match.forEach((m, j) => {
      const mf = `${f}.match[${j}]`;
      if (!isObject(m)) {
        p.add(mf, kind === 'tls' ? 'TLS match may not be null' : 'tcp match may not be nil');
        return;
      }
      if (kind === 'tls') {
        if (!Array.isArray(m.sniHosts) || m.sniHosts.length === 0) p.add(`${mf}.sniHosts`, 'TLS match must have at least one SNI host');
        else
          m.sniHosts.forEach((sni, k) => {
            const sf = `${mf}.sniHosts[${k}]`;
            if (typeof sni !== 'string') return p.add(sf, 'must be a string');
            const err = checkWildcardDomain(sni);
            // An IP address goes against the SNI spec: istiod only warns.
            if (err) return isIPAddress(sni) ? undefined : p.add(sf, err);
            if (!hosts.some((h) => subsetOf(sni, h)))
              p.add(sf, `SNI host ${JSON.stringify(sni)} is not a compatible subset of any of the virtual service hosts: [${hosts.join(', ')}]`);
          });
      }
      checkL4Match(p, m, mf);
    });
  }
  if (!Array.isArray(r.route) || r.route.length === 0) p.add(`${f}.route`, `${kind.toUpperCase()} route is required`);
  else checkRouteDestinations(p, r.route, `${f}.route`, false);
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
  const hosts = (Array.isArray(vs.hosts) ? vs.hosts : []).filter((h): h is string => typeof h === 'string');
  const gateways = (Array.isArray(vs.gateways) ? vs.gateways : []).filter((g): g is string => typeof g === 'string');
  const has = (routes: unknown): boolean => Array.isArray(routes) && routes.length > 0;
  const delegate = hosts.length === 0;
  if (delegate) {
    if (gateways.length > 0) p.add('spec.gateways', 'delegate virtual service must have no gateways specified');
    if (has(vs.tls)) p.add('spec.tls', 'delegate virtual service must have no tls route specified');
    if (has(vs.tcp)) p.add('spec.tcp', 'delegate virtual service must have no tcp route specified');
  }
  gateways.forEach((g, i) => {
    const parts = g.split('/');
    const name = parts[parts.length - 1] ?? '';
    if (parts.length > 2 || name === '' || (parts.length === 2 && parts[0] === ''))
      p.add(`spec.gateways[${i}]`, `invalid gateway name: "${g}" (use name, namespace/name or mesh)`);
  });
  // Bound to gateways only when it names some and not `mesh`.
  const appliesToGateway = gateways.length > 0 && !gateways.includes('mesh');
  if (!appliesToGateway && Array.isArray(vs.http)) {
    vs.http.forEach((r, i) => {
      if (!isObject(r) || !Array.isArray(r.match)) return;
      r.match.forEach((m, j) => {
        if (!isObject(m)) return;
        for (const k of ['headers', 'withoutHeaders'] as const) {
          const hm = m[k];
          if (!isObject(hm)) continue;
          for (const key of Object.keys(hm))
            if (isJwtClaimRoute(key))
              p.add(
                `spec.http[${i}].match[${j}].${k}.${key}`,
                `JWT claim based routing (key: ${key}) is only supported for gateway, found no gateways: [${gateways.join(' ')}]`,
              );
        }
      });
    });
  }
  let allHostsValid = true;
  hosts.forEach((h, i) => {
    const err = checkWildcardDomain(h);
    if (err) {
      if (!isIPAddress(h)) {
        p.add(`spec.hosts[${i}]`, err);
        allHostsValid = false;
      }
    } else if (!appliesToGateway && h === '*') {
      p.add(`spec.hosts[${i}]`, 'wildcard host * is not allowed for virtual services bound to the mesh gateway');
      allHostsValid = false;
    }
  });
  if (allHostsValid) {
    for (let i = 0; i < hosts.length; i++)
      for (let j = i + 1; j < hosts.length; j++) {
        const a = hosts[i] ?? '';
        const b = hosts[j] ?? '';
        if (matches(a, b)) p.add(`spec.hosts[${j}]`, `duplicate hosts in virtual service: ${a} & ${b}`);
      }
  }
  if (!has(vs.http) && !has(vs.tcp) && !has(vs.tls)) p.add('spec', 'http, tcp or tls must be provided in virtual service');
  if (checkArray(p, vs.http, 'spec.http')) vs.http.forEach((r, i) => checkHTTPRoute(p, r, `spec.http[${i}]`, delegate));
  for (const kind of ['tls', 'tcp'] as const) {
    const routes = vs[kind];
    if (checkArray(p, routes, `spec.${kind}`)) routes.forEach((r, i) => checkL4Route(p, r, `spec.${kind}[${i}]`, kind, hosts));
  }
  checkExportTo(p, vs.exportTo, 'spec.exportTo');
  return p.list;
}

// ---- DestinationRule ----------------------------------------------------------------------------

const LB_SIMPLE = new Set(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST']);

/** Envoy's isPrime (maglev table sizes), as istiod copies it. */
function isPrime(x: number): boolean {
  if (x !== 0 && x < 4) return true;
  if (x % 2 === 0) return false;
  const limit = Math.floor(Math.sqrt(x));
  for (let f = 3; f <= limit; f += 2) if (x % f === 0) return false;
  return true;
}

/** validateOutlierDetection. */
function checkOutlierDetection(p: Problems, od: unknown, f: string): void {
  if (!checkMap(p, od, f)) return;
  const o = od as OutlierDetection;
  checkIstioDuration(p, o.baseEjectionTime, `${f}.baseEjectionTime`);
  if (!o.splitExternalLocalOriginErrors && (o.consecutiveLocalOriginFailures ?? 0) > 0)
    p.add(
      `${f}.consecutiveLocalOriginFailures`,
      'outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false',
    );
  checkIstioDuration(p, o.interval, `${f}.interval`);
  for (const k of ['maxEjectionPercent', 'minHealthPercent'] as const) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'number' || v < 0 || v > 100)) p.add(`${f}.${k}`, `percentage ${String(v)} is not in range 0..100`);
  }
}

/** validateConnectionPool. */
function checkConnectionPool(p: Problems, cp: unknown, f: string): void {
  if (!checkMap(p, cp, f)) return;
  const c = cp as ConnectionPoolSettings & { http?: { http2KeepAlive?: { interval?: string; timeout?: string } } };
  if (!c.http && !c.tcp) {
    p.add(f, 'connection pool must have at least one field');
    return;
  }
  const negative = (v: unknown, field: string, what: string): void => {
    if (typeof v === 'number' && v < 0) p.add(field, `${what} must be non-negative`);
  };
  if (isObject(c.http)) {
    const h = c.http;
    negative(h.http1MaxPendingRequests, `${f}.http.http1MaxPendingRequests`, 'http1 max pending requests');
    negative(h.http2MaxRequests, `${f}.http.http2MaxRequests`, 'http2 max requests');
    negative(h.maxRequestsPerConnection, `${f}.http.maxRequestsPerConnection`, 'max requests per connection');
    negative(h.maxRetries, `${f}.http.maxRetries`, 'max retries');
    checkIstioDuration(p, h.idleTimeout, `${f}.http.idleTimeout`);
    if (h.h2UpgradePolicy === 'UPGRADE' && h.useClientProtocol)
      p.add(`${f}.http.useClientProtocol`, 'use client protocol must not be true when H2UpgradePolicy is UPGRADE');
    negative(h.maxConcurrentStreams, `${f}.http.maxConcurrentStreams`, 'max concurrent streams');
    const ka = h.http2KeepAlive;
    if (isObject(ka)) {
      if (ka.interval === undefined) p.add(`${f}.http.http2KeepAlive.interval`, 'http2 keepalive interval is required');
      else checkIstioDuration(p, ka.interval, `${f}.http.http2KeepAlive.interval`);
      if (ka.timeout === undefined) p.add(`${f}.http.http2KeepAlive.timeout`, 'http2 keepalive timeout is required');
      else checkIstioDuration(p, ka.timeout, `${f}.http.http2KeepAlive.timeout`);
    }
  }
  if (isObject(c.tcp)) {
    const t = c.tcp;
    negative(t.maxConnections, `${f}.tcp.maxConnections`, 'max connections');
    checkIstioDuration(p, t.connectTimeout, `${f}.tcp.connectTimeout`);
    checkIstioDuration(p, t.maxConnectionDuration, `${f}.tcp.maxConnectionDuration`);
    // 0s turns the idle timeout off.
    if (parseDuration(t.idleTimeout) !== 0) checkIstioDuration(p, t.idleTimeout, `${f}.tcp.idleTimeout`);
    if (isObject(t.tcpKeepalive)) {
      checkIstioDuration(p, t.tcpKeepalive.time, `${f}.tcp.tcpKeepalive.time`);
      checkIstioDuration(p, t.tcpKeepalive.interval, `${f}.tcp.tcpKeepalive.interval`);
    }
  }
}

/** validateLoadBalancer (the enum and oneof checks are where istiod fails to parse the object). */
function checkLoadBalancer(p: Problems, lb: unknown, f: string): void {
  if (!checkMap(p, lb, f)) return;
  const l = lb as LoadBalancerSettings & { zoneAwareLbSetting?: unknown };
  if (l.simple !== undefined && !LB_SIMPLE.has(l.simple))
    p.add(`${f}.simple`, `unknown load balancer ${JSON.stringify(l.simple)} (ROUND_ROBIN, LEAST_REQUEST, RANDOM, PASSTHROUGH)`);
  if (l.simple !== undefined && l.consistentHash !== undefined) p.add(f, 'only one of simple or consistentHash may be set');
  const ch = l.consistentHash;
  if (checkMap(p, ch, `${f}.consistentHash`)) {
    const keys = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'].filter((k) => (ch as Record<string, unknown>)[k] !== undefined);
    // Beyond istiod: a hash policy without a key hashes nothing.
    if (keys.length !== 1) p.add(`${f}.consistentHash`, 'exactly one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName must be set');
    const cookie: HTTPCookie | undefined = ch.httpCookie;
    if (cookie && !cookie.name) p.add(`${f}.consistentHash.httpCookie.name`, 'name required for HttpCookie');
    checkDuration(p, cookie?.ttl, `${f}.consistentHash.httpCookie.ttl`);
    if (cookie && Array.isArray(cookie.attributes)) {
      const seen = new Set<string>();
      cookie.attributes.forEach((a, i) => {
        const name = isObject(a) ? a.name : undefined;
        if (!name) p.add(`${f}.consistentHash.httpCookie.attributes[${i}].name`, 'cookie attribute name cannot be empty');
        else if (seen.has(name)) p.add(`${f}.consistentHash.httpCookie.attributes[${i}].name`, `duplicate cookie attribute name: ${name}`);
        else seen.add(name);
      });
    }
    if (ch.minimumRingSize && (ch.ringHash || ch.maglev))
      p.add(`${f}.consistentHash.minimumRingSize`, 'only one of MinimumRingSize or Maglev/Ringhash can be specified');
    if (isObject(ch.maglev)) {
      const size = Number(ch.maglev.tableSize ?? 0);
      if (size === 0) p.add(`${f}.consistentHash.maglev.tableSize`, 'tableSize must be set for maglev');
      if (size >= 5000011) p.add(`${f}.consistentHash.maglev.tableSize`, 'tableSize must be less than 5000011 for maglev');
      if (!isPrime(size)) p.add(`${f}.consistentHash.maglev.tableSize`, 'tableSize must be a prime number for maglev');
    }
  }
  if (l.localityLbSetting !== undefined && l.zoneAwareLbSetting !== undefined) p.add(f, 'only one of localityLbSetting and zoneAwareLbSetting can be set');
  if (l.warmup !== undefined && checkMap(p, l.warmup, `${f}.warmup`)) {
    const w = l.warmup;
    if (w.duration === undefined) p.add(`${f}.warmup.duration`, 'duration is required');
    else checkIstioDuration(p, w.duration, `${f}.warmup.duration`);
    if ((w.minimumPercent ?? 0) > 100) p.add(`${f}.warmup.minimumPercent`, 'minimumPercent value should be less than or equal to 100');
    if (w.aggression !== undefined && w.aggression <= 0) p.add(`${f}.warmup.aggression`, 'aggression should be greater than 0');
  }
}

/** agent.ValidateTLS for a DestinationRule's client TLS settings. */
function checkClientTls(p: Problems, tls: unknown, f: string): void {
  if (!checkMap(p, tls, f)) return;
  const t = tls as ClientTLSSettings & { caCrl?: string };
  const sans = Array.isArray(t.subjectAltNames) && t.subjectAltNames.length > 0;
  if (t.insecureSkipVerify) {
    if (t.mode === 'SIMPLE' && (t.caCertificates || t.credentialName || sans))
      p.add(f, 'cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true');
    if (t.mode === 'MUTUAL' && (t.caCertificates || sans)) p.add(f, 'cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true');
  }
  if ((t.mode === 'SIMPLE' || t.mode === 'MUTUAL') && t.credentialName) {
    if (t.clientCertificate || t.caCertificates || t.privateKey || t.caCrl)
      p.add(f, 'cannot specify client certificates or CA certificate or CA CRL If credentialName is set');
    return;
  }
  if (t.mode === 'MUTUAL') {
    if (!t.clientCertificate) p.add(`${f}.clientCertificate`, 'client certificate required for mutual tls');
    if (!t.privateKey) p.add(`${f}.privateKey`, 'private key required for mutual tls');
  }
}

/** validateTrafficPolicy, and validatePortTrafficPolicies for its portLevelSettings. */
function checkTrafficPolicy(p: Problems, tp: unknown, f: string, allowPortLevel: boolean): void {
  if (!checkMap(p, tp, f)) return;
  const t = tp as TrafficPolicy & { tunnel?: unknown; proxyProtocol?: unknown };
  const fields = allowPortLevel
    ? ['outlierDetection', 'connectionPool', 'loadBalancer', 'tls', 'portLevelSettings', 'tunnel', 'proxyProtocol', 'retryBudget']
    : ['outlierDetection', 'connectionPool', 'loadBalancer', 'tls'];
  if (!fields.some((k) => (t as Record<string, unknown>)[k] !== undefined && (t as Record<string, unknown>)[k] !== null)) {
    p.add(f, allowPortLevel ? 'traffic policy must have at least one field' : 'port traffic policy must have at least one field');
    return;
  }
  if (allowPortLevel && t.tunnel !== undefined && t.proxyProtocol !== undefined) {
    p.add(f, 'tunnel and proxyProtocol must not be set together');
    return;
  }
  checkOutlierDetection(p, t.outlierDetection, `${f}.outlierDetection`);
  checkConnectionPool(p, t.connectionPool, `${f}.connectionPool`);
  checkLoadBalancer(p, t.loadBalancer, `${f}.loadBalancer`);
  checkClientTls(p, t.tls, `${f}.tls`);
  if (t.portLevelSettings !== undefined) {
    if (!allowPortLevel) p.add(`${f}.portLevelSettings`, 'port level settings cannot be nested');
    else if (checkArray(p, t.portLevelSettings, `${f}.portLevelSettings`)) {
      t.portLevelSettings.forEach((pls, i) => {
        const pf = `${f}.portLevelSettings[${i}]`;
        if (!isObject(pls)) {
          p.add(pf, 'traffic policy may not be null');
          return;
        }
        if (!isObject(pls.port)) p.add(`${pf}.port`, 'portTrafficPolicy must have valid port');
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
  // ValidateWildcardDomain on the host as it decodes (a missing host is ''): istiod's "empty domain name not allowed".
  const err = checkWildcardDomain(typeof dr.host === 'string' ? dr.host : '');
  if (err) p.add('spec.host', err);
  if (dr.trafficPolicy !== undefined) checkTrafficPolicy(p, dr.trafficPolicy, 'spec.trafficPolicy', true);
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
      if (s.labels !== undefined) checkLabels(p, s.labels, `${f}.labels`);
      if (s.trafficPolicy !== undefined) checkTrafficPolicy(p, s.trafficPolicy, `${f}.trafficPolicy`, true);
    });
  }
  checkExportTo(p, dr.exportTo, 'spec.exportTo');
  return p.list;
}

// ---- ServiceEntry -------------------------------------------------------------------------------

const RESOLUTIONS = new Set(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS']);

/** agent.ValidateFQDN: a domain name without wildcard, its top-level label not all digits, a trailing dot allowed. */
export function fqdnError(name: string): string | undefined {
  return dnsPreconditionError(name) ?? dns1123LabelsError(name);
}

/** ValidateServiceEntry (pkg/config/validation), its warnings left out. */
export function validateServiceEntry(spec: unknown): FieldError[] {
  const p = new Problems();
  if (!isObject(spec)) {
    p.add('spec', 'service entry must have a spec with hosts');
    return p.list;
  }
  const se = spec as unknown as ServiceEntrySpec;
  const hosts = Array.isArray(se.hosts) ? se.hosts : [];
  if (hosts.length === 0) p.add('spec.hosts', 'service entry must have at least one host');
  hosts.forEach((h, i) => {
    if (typeof h !== 'string' || h === '*') p.add(`spec.hosts[${i}]`, `invalid host ${String(h)}`);
    else {
      const err = checkWildcardDomain(h);
      if (err) p.add(`spec.hosts[${i}]`, err);
    }
  });
  const resolution = se.resolution ?? 'NONE';
  if (!RESOLUTIONS.has(resolution))
    p.add('spec.resolution', `unsupported resolution type ${JSON.stringify(se.resolution)} (NONE, STATIC, DNS, DNS_ROUND_ROBIN)`);
  if (se.location !== undefined && se.location !== 'MESH_EXTERNAL' && se.location !== 'MESH_INTERNAL')
    p.add('spec.location', 'location must be MESH_EXTERNAL or MESH_INTERNAL');
  const addresses = Array.isArray(se.addresses) ? se.addresses : [];
  addresses.forEach((a, i) => checkSubnet(p, a, `spec.addresses[${i}]`));
  if (addresses.some((a) => typeof a === 'string' && a.includes('/')) && resolution !== 'NONE' && resolution !== 'STATIC')
    p.add('spec.addresses', 'CIDR addresses are allowed only for NONE/STATIC resolution types');
  const portNames = new Set<string>();
  const portNumbers = new Set<number>();
  const ports = checkArray(p, se.ports, 'spec.ports') ? se.ports : [];
  ports.forEach((port, i) => {
    const f = `spec.ports[${i}]`;
    if (!isObject(port)) {
      p.add(f, 'service entry port may not be null');
      return;
    }
    if (typeof port.name !== 'string' || !isDNS1123Label(port.name)) p.add(`${f}.name`, `invalid port name: ${String(port.name ?? '')}`);
    else if (portNames.has(port.name)) p.add(`${f}.name`, `service entry port name "${port.name}" already defined`);
    else portNames.add(port.name);
    if (portNumbers.has(port.number)) p.add(`${f}.number`, `service entry port ${port.number} already defined`);
    portNumbers.add(port.number);
    checkPort(p, port.number, `${f}.number`);
    if (port.protocol !== undefined && port.protocol !== '' && parseProtocol(port.protocol) === 'UnsupportedProtocol')
      p.add(`${f}.protocol`, `unsupported protocol: ${port.protocol}`);
    if (port.targetPort !== undefined && port.targetPort !== 0) checkPort(p, port.targetPort, `${f}.targetPort`);
  });
  const endpoints = checkArray(p, se.endpoints, 'spec.endpoints') ? se.endpoints : [];
  if (se.endpoints !== undefined && se.workloadSelector)
    p.add('spec.workloadSelector', 'only one of WorkloadSelector or Endpoints is allowed in Service Entry');
  const checkEndpointPorts = (ep: Record<string, unknown>, f: string): void => {
    if (!checkMap(p, ep.ports, `${f}.ports`)) return;
    for (const [name, n] of Object.entries(ep.ports)) {
      if (!portNames.has(name)) p.add(`${f}.ports.${name}`, `endpoint port ${String(n)} is not defined by the service entry`);
      if (!isDNS1123Label(name)) p.add(`${f}.ports.${name}`, `invalid port name: ${name}`);
      checkPort(p, n, `${f}.ports.${name}`);
    }
  };
  switch (resolution) {
    case 'NONE':
      if (endpoints.length) p.add('spec.endpoints', 'no endpoints should be provided for resolution type none');
      break;
    case 'STATIC':
      endpoints.forEach((ep, i) => {
        const f = `spec.endpoints[${i}]`;
        if (!isObject(ep)) return p.add(f, 'endpoint cannot be nil');
        if (typeof ep.address !== 'string' || ep.address === '') p.add(`${f}.address`, 'address is required');
        else if (ep.address.startsWith('unix://')) {
          if (ep.ports && Object.keys(ep.ports).length) p.add(`${f}.ports`, `unix endpoint ${ep.address} must not include ports`);
          if (portNames.size !== 1) p.add(f, 'exactly 1 service port required for unix endpoints');
        } else if (!isIPAddress(ep.address)) p.add(`${f}.address`, `endpoint address "${ep.address}" is not a valid IP address`);
        checkEndpointPorts(ep, f);
        if (ep.labels !== undefined) checkLabels(p, ep.labels, `${f}.labels`);
      });
      break;
    case 'DNS':
    case 'DNS_ROUND_ROBIN': {
      if (endpoints.length === 0) {
        const bad = hosts.map((h) => (typeof h === 'string' ? fqdnError(h) : undefined)).find((e) => e !== undefined);
        if (bad)
          p.add('spec.hosts', `hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for resolution mode ${resolution}, ${bad}`);
      }
      if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1)
        p.add('spec.endpoints', `there must only be 0 or 1 endpoint for resolution mode ${resolution}`);
      endpoints.forEach((ep, i) => {
        const f = `spec.endpoints[${i}]`;
        if (!isObject(ep)) return p.add(f, 'endpoint cannot be nil');
        const address = typeof ep.address === 'string' ? ep.address : '';
        if (!isIPAddress(address) && fqdnError(address)) p.add(`${f}.address`, `endpoint address "${address}" is not a valid FQDN or an IP address`);
        if (ep.labels !== undefined) checkLabels(p, ep.labels, `${f}.labels`);
        checkEndpointPorts(ep, f);
      });
      break;
    }
    case 'DYNAMIC_DNS':
      hosts.forEach((h, i) => {
        if (typeof h === 'string' && !h.startsWith('*')) p.add(`spec.hosts[${i}]`, `host must be wildcarded for resolution mode ${resolution}`);
      });
      if (addresses.length) p.add('spec.addresses', `addresses cannot be set for resolution type ${resolution}`);
      if (endpoints.length) p.add('spec.endpoints', `endpoints cannot be set for resolution type ${resolution}`);
      ports.forEach((port, i) => {
        const proto = isObject(port) ? parseProtocol(port.protocol) : 'UnsupportedProtocol';
        if (proto !== 'HTTP' && proto !== 'TLS' && proto !== 'GRPC' && proto !== 'HTTP2')
          p.add(`spec.ports[${i}].protocol`, `only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type ${resolution}`);
      });
      break;
  }
  // Plain TCP cannot tell several hosts apart (HTTP has the authority, TLS the SNI), unless resolution NONE
  // ignores the hosts.
  if (resolution !== 'NONE' && hosts.length > 1) {
    const tcp = ports.find((port) => {
      const proto = isObject(port) ? parseProtocol(port.protocol) : 'UnsupportedProtocol';
      return !isHTTP(proto) && proto !== 'HTTPS' && proto !== 'TLS';
    });
    if (tcp) p.add('spec.ports', 'multiple hosts provided with non-HTTP, non-TLS ports');
  }
  checkExportTo(p, se.exportTo, 'spec.exportTo');
  return p.list;
}
