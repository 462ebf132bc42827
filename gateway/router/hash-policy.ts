// Route hash policies (envoy.config.route.v3.RouteAction.HashPolicy, from a DestinationRule consistentHash):
// header, cookie, source IP (connection_properties) and query parameter, each hashed with xxHash64 as
// Envoy's Http::HashPolicyImpl does. Several policies combine as `rotl(hash, 1) ^ next`; a terminal policy
// that produced a hash stops the evaluation. A cookie policy with a ttl and no cookie in the request
// generates one: value = hex(xxHash64(<remote ip:port><local ip:port>)), sent back as
// `set-cookie: <name>="<value>"; Max-Age=<ttl s>; Path=<path>; <attributes>; HttpOnly`.
import { durationMs, type envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import { joinedHeaderValue } from '../../xds/header-list.ts';
import { uint64ToHex, xxHash64 } from '../upstream/xxhash64.ts';

const MASK = (1n << 64n) - 1n;

export interface HashContext {
  /** Flat lowercase request headers. */
  headers: readonly string[];
  /** :path with query. */
  path: string;
  /** Downstream client address (as the HCM sees it) and the connection's addresses. */
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  /** Collects generated `set-cookie` values for the response. */
  setCookies: string[];
}

type Method = (c: HashContext) => bigint | undefined;

interface CompiledHashPolicy {
  method: Method;
  terminal: boolean;
}

export type RequestHash = (c: HashContext) => bigint | undefined;

function cookieValue(headers: readonly string[], name: string): string {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== 'cookie') continue;
    for (const part of (headers[i + 1] ?? '').split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      if (part.slice(0, eq).trim() !== name) continue;
      let v = part.slice(eq + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      return v;
    }
  }
  return '';
}

const addr = (ip: string, port: number): string => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

/** Http::Utility::makeSetCookieValue. */
export function makeSetCookieValue(name: string, value: string, path: string, maxAgeS: number, attributes: readonly { name: string; value: string }[]): string {
  let out = `${name}="${value}"`;
  if (maxAgeS !== 0) out += `; Max-Age=${maxAgeS}`;
  if (path) out += `; Path=${path}`;
  for (const a of attributes) out += a.value ? `; ${a.name}=${a.value}` : `; ${a.name}`;
  return `${out}; HttpOnly`;
}

type HashPolicy = envoy.config.route.v3.RouteAction.HashPolicy;

// filter_state is not in the table: no filter state exists here to hash, so a policy naming it is NACKed.
const checkHashPolicy = fieldTable('envoy.config.route.v3.RouteAction.HashPolicy', {
  header: true,
  cookie: true,
  connection_properties: true,
  query_parameter: true,
  terminal: true,
});
// regex_rewrite is rejected with its own message below.
const checkHeader = fieldTable('envoy.config.route.v3.RouteAction.HashPolicy.Header', { header_name: true });
const checkCookie = fieldTable('envoy.config.route.v3.RouteAction.HashPolicy.Cookie', { name: true, ttl: true, path: true, attributes: true });
const checkCookieAttribute = fieldTable('envoy.config.route.v3.RouteAction.HashPolicy.CookieAttribute', { name: true, value: true });
const checkConnectionProperties = fieldTable('envoy.config.route.v3.RouteAction.HashPolicy.ConnectionProperties', { source_ip: true });
const checkQueryParameter = fieldTable('envoy.config.route.v3.RouteAction.HashPolicy.QueryParameter', { name: true });

function compileOne(p: HashPolicy, where: string): CompiledHashPolicy {
  checkHashPolicy(p, where);
  const terminal = p.terminal === true;
  if (p.header !== undefined) {
    const h = p.header;
    if (h.regex_rewrite !== undefined) throw new ConfigError(`${where}.header.regex_rewrite is not supported by this proxy`);
    checkHeader(h, `${where}.header`);
    const name = (h.header_name ?? '').toLowerCase();
    return {
      terminal,
      method: (c) => {
        const v = joinedHeaderValue(c.headers, name);
        return v === undefined ? undefined : xxHash64(v);
      },
    };
  }
  if (p.cookie !== undefined) {
    const w = `${where}.cookie`;
    const ck = p.cookie;
    checkCookie(ck, w);
    const name = ck.name ?? '';
    const ttlMs = ck.ttl === undefined ? undefined : durationMs(ck.ttl, 0);
    const path = ck.path ?? '';
    const attributes = (ck.attributes ?? []).map((a, i) => {
      checkCookieAttribute(a, `${w}.attributes[${i}]`);
      return { name: a.name ?? '', value: a.value ?? '' };
    });
    return {
      terminal,
      method: (c) => {
        const v = cookieValue(c.headers, name);
        if (v) return xxHash64(v);
        if (ttlMs === undefined) return undefined;
        // The value is the same for every request of a connection (remote then local address).
        const generated = uint64ToHex(xxHash64(addr(c.remoteAddress, c.remotePort) + addr(c.localAddress, c.localPort)));
        c.setCookies.push(makeSetCookieValue(name, generated, path, Math.floor(ttlMs / 1000), attributes));
        return xxHash64(generated);
      },
    };
  }
  if (p.connection_properties !== undefined) {
    const cp = p.connection_properties;
    checkConnectionProperties(cp, `${where}.connection_properties`);
    if (cp.source_ip !== true) return { terminal, method: () => undefined };
    return { terminal, method: (c) => (c.remoteAddress ? xxHash64(c.remoteAddress) : undefined) };
  }
  if (p.query_parameter !== undefined) {
    const q = p.query_parameter;
    checkQueryParameter(q, `${where}.query_parameter`);
    const name = q.name ?? '';
    return {
      terminal,
      method: (c) => {
        const i = c.path.indexOf('?');
        if (i < 0) return undefined;
        const v = new URLSearchParams(c.path.slice(i + 1)).get(name);
        return v === null ? undefined : xxHash64(v);
      },
    };
  }
  throw new ConfigError(`${where}: a hash policy needs header, cookie, connection_properties or query_parameter`);
}

/** Compiles `hash_policy`; undefined when the route has none. */
export function compileHashPolicy(policies: readonly HashPolicy[] | undefined, where: string): RequestHash | undefined {
  const list = (policies ?? []).map((p, i) => compileOne(p, `${where}[${i}]`));
  if (list.length === 0) return undefined;
  return (c) => {
    let hash: bigint | undefined;
    for (const p of list) {
      const h = p.method(c);
      if (h === undefined) continue;
      hash = hash === undefined ? h : (((hash << 1n) | (hash >> 63n)) & MASK) ^ h;
      if (p.terminal) break;
    }
    return hash;
  };
}
