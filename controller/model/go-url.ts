// URLs as Go's net/url.Parse reads them (Go 1.26, strict colons in http(s) hosts), for what istiod takes as a
// RequestAuthentication jwksUri (security.ParseJwksURI: url.Parse, then the scheme http or https and a port that
// fits an int). Only what decides acceptance, the parts istiod uses and Go's error messages are kept.
import { goQuote } from './jwks-parse.ts';
import { parseAddr } from './netip.ts';

export interface GoUrl {
  /** Lower-cased. */
  scheme: string;
  /** Host without the port, brackets and %-escapes undone (URL.Hostname()). */
  hostname: string;
  /** URL.Port(): the digits after the host's colon, '' when none. */
  port: string;
}

class UrlError extends Error {}

const isHex = (c: string): boolean => /^[0-9a-fA-F]$/.test(c);
/** ASCII bytes Go leaves in a host (shouldEscape(c, encodeHost) is false), besides `%` escapes. */
const HOST_OK = /^[A-Za-z0-9\-._~!$&'()*+,;=:[\]<>"]$/;

/** unescape for a host, zone or another part: checks %XX escapes (and host bytes), returns the unescaped text. */
function unescape(s: string, mode: 'host' | 'zone' | 'other'): string {
  const bytes = Buffer.from(s, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < bytes.length;) {
    const c = bytes[i] ?? 0;
    if (c === 0x25) {
      const h = bytes.subarray(i + 1, i + 3).toString('latin1');
      if (i + 2 >= bytes.length || !isHex(h[0] ?? '') || !isHex(h[1] ?? '')) {
        throw new UrlError(`invalid URL escape ${goQuote(bytes.subarray(i, i + 3).toString('utf8'))}`);
      }
      const v = parseInt(h, 16);
      const esc = bytes.subarray(i, i + 3).toString('latin1');
      if (mode === 'host' && v >> 4 < 8 && esc !== '%25') throw new UrlError(`invalid URL escape ${goQuote(esc)}`);
      if (mode === 'zone' && esc !== '%25' && v !== 0x20 && (v >= 0x80 || !HOST_OK.test(String.fromCharCode(v)))) {
        throw new UrlError(`invalid URL escape ${goQuote(esc)}`);
      }
      out.push(v);
      i += 3;
      continue;
    }
    if ((mode === 'host' || mode === 'zone') && c < 0x80 && !HOST_OK.test(String.fromCharCode(c))) {
      throw new UrlError(`invalid character ${goQuote(String.fromCharCode(c))} in host name`);
    }
    out.push(c);
    i++;
  }
  return Buffer.from(out).toString('utf8');
}

const validOptionalPort = (p: string): boolean => p === '' || /^:[0-9]*$/.test(p);

/** parseHost: returns the host (brackets kept) or throws Go's error. */
function parseHost(scheme: string, host: string): string {
  const open = host.lastIndexOf('[');
  if (open > 0) throw new UrlError('invalid IP-literal');
  if (open === 0) {
    const close = host.lastIndexOf(']');
    if (close < 0) throw new UrlError("missing ']' in host");
    const colonPort = host.slice(close + 1);
    if (!validOptionalPort(colonPort)) throw new UrlError(`invalid port ${goQuote(colonPort)} after host`);
    const name = host.slice(1, close);
    const zone = name.indexOf('%25');
    const unescaped = zone >= 0 ? unescape(name.slice(0, zone), 'host') + unescape(name.slice(zone), 'zone') : unescape(name, 'host');
    const addr = parseAddr(unescaped);
    if (!addr.ok) throw new UrlError(`invalid host: ${addr.error}`);
    if (addr.value.bytes.length === 4) throw new UrlError('invalid IP-literal');
    return `[${unescaped}]${colonPort}`;
  }
  const colon = host.indexOf(':');
  if (colon >= 0) {
    // Strict colons (the Go 1.26 default) for http and https; other schemes take the last colon.
    const at = scheme === 'http' || scheme === 'https' ? colon : host.lastIndexOf(':');
    const colonPort = host.slice(at);
    if (!validOptionalPort(colonPort)) throw new UrlError(`invalid port ${goQuote(colonPort)} after host`);
  }
  return unescape(host, 'host');
}

/** validUserinfo: RFC 3986 userinfo characters, plus `@`. */
const validUserinfo = (s: string): boolean => /^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(s);

function parse(raw: string): GoUrl {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(raw)) throw new UrlError('net/url: invalid control character in URL');
  if (raw === '*') return { scheme: '', hostname: '', port: '' };
  let scheme = '';
  let rest = raw;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] ?? '';
    if (/[a-zA-Z]/.test(c)) continue;
    if (/[0-9+\-.]/.test(c)) {
      if (i === 0) break;
      continue;
    }
    if (c === ':') {
      if (i === 0) throw new UrlError('missing protocol scheme');
      scheme = raw.slice(0, i).toLowerCase();
      rest = raw.slice(i + 1);
    }
    break;
  }
  if (rest.endsWith('?') && rest.split('?').length === 2) rest = rest.slice(0, -1);
  else if (rest.includes('?')) rest = rest.slice(0, rest.indexOf('?'));
  if (!rest.startsWith('/')) {
    if (scheme !== '') return { scheme, hostname: '', port: '' }; // opaque
    const segment = rest.split('/')[0] ?? '';
    if (segment.includes(':')) throw new UrlError('first path segment in URL cannot contain colon');
  }
  let host = '';
  if (rest.startsWith('//') && (scheme !== '' || !rest.startsWith('///'))) {
    let authority = rest.slice(2);
    const slash = authority.indexOf('/');
    rest = slash >= 0 ? authority.slice(slash) : '';
    if (slash >= 0) authority = authority.slice(0, slash);
    const at = authority.lastIndexOf('@');
    host = parseHost(scheme, at < 0 ? authority : authority.slice(at + 1));
    if (at >= 0) {
      const userinfo = authority.slice(0, at);
      if (!validUserinfo(userinfo)) throw new UrlError('net/url: invalid userinfo');
      for (const part of userinfo.includes(':') ? [userinfo.slice(0, userinfo.indexOf(':')), userinfo.slice(userinfo.indexOf(':') + 1)] : [userinfo]) {
        unescape(part, 'other');
      }
    }
  }
  unescape(rest, 'other');
  // Hostname() and Port() (splitHostPort): the last colon, when a valid port follows it.
  const colon = host.lastIndexOf(':');
  const split = colon >= 0 && validOptionalPort(host.slice(colon));
  const port = split ? host.slice(colon + 1) : '';
  let hostname = split ? host.slice(0, colon) : host;
  if (hostname.startsWith('[') && hostname.endsWith(']')) hostname = hostname.slice(1, -1);
  return { scheme, hostname, port };
}

/** url.Parse: the URL, or the error text Go prints (`parse "<url>": <reason>`). */
export function parseGoUrl(raw: string): { ok: true; url: GoUrl } | { ok: false; error: string } {
  const hash = raw.indexOf('#');
  const u = hash < 0 ? raw : raw.slice(0, hash);
  try {
    const url = parse(u);
    if (hash >= 0) {
      try {
        unescape(raw.slice(hash + 1), 'other');
      } catch (e) {
        return { ok: false, error: `parse ${goQuote(raw)}: ${(e as Error).message}` };
      }
    }
    return { ok: true, url };
  } catch (e) {
    if (!(e instanceof UrlError)) throw e;
    return { ok: false, error: `parse ${goQuote(u)}: ${e.message}` };
  }
}

export interface JwksUriInfo {
  scheme: 'http' | 'https';
  hostname: string;
  port: number;
}

/** security.ParseJwksURI: an http or https URL (port 80 or 443 unless given); else istiod's error. */
export function parseJwksUri(uri: string): { ok: true; info: JwksUriInfo } | { ok: false; error: string } {
  const p = parseGoUrl(uri);
  if (!p.ok) return p;
  const { scheme, hostname, port } = p.url;
  if (scheme !== 'http' && scheme !== 'https') return { ok: false, error: `URI scheme ${goQuote(scheme)} is not supported` };
  let n = scheme === 'https' ? 443 : 80;
  if (port !== '') {
    // strconv.Atoi on digits: only too large a number fails.
    if (port.length > 19 || BigInt(port) > 9223372036854775807n) return { ok: false, error: `strconv.Atoi: parsing ${goQuote(port)}: value out of range` };
    n = Number(port);
  }
  return { ok: true, info: { scheme, hostname, port: n } };
}
