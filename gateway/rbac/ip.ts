// IP addresses and CIDR ranges as Envoy's RBAC compares them (source/common/network/cidr_range.cc, and the
// LC trie IPMatcher uses since Envoy 1.36): an address is in a range only when both are of the same family,
// and then when their first prefix_len bits agree. An IPv4-mapped IPv6 address (::ffff:1.2.3.4) is an IPv6
// address there, except where Envoy itself turns it into IPv4: a socket address accepted on a dual-stack
// listener (Address::addressFromSockAddr with v6only false), which is the only way node reports one.
// Parsing follows inet_pton, which Envoy's parseInternetAddressNoThrow calls: dotted quads without leading
// zeros, and RFC 4291 text for IPv6 (a zone, `%eth0`, is accepted and ignored).
import type { envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';

/** A parsed address: its family (0 when the text is not an IP address) and its bits, most significant word first. */
export interface IpAddr {
  family: 0 | 4 | 6;
  /** IPv4: words[0]; IPv6: words[0..3]. */
  readonly words: Uint32Array;
}

export function newIpAddr(): IpAddr {
  return { family: 0, words: new Uint32Array(4) };
}

const HEX = new Int8Array(128).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) HEX[65 + c] = HEX[97 + c] = 10 + c;

/** Dotted quad s[start, end) (inet_pton4: four decimal parts 0-255, no leading zero) -> the address, or -1. */
function parseV4(s: string, start: number, end: number): number {
  let value = 0;
  let parts = 0;
  let part = -1; // -1: no digit yet in this part
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (part === 0) return -1; // a leading zero
      part = part < 0 ? c - 48 : part * 10 + (c - 48);
      if (part > 255) return -1;
    } else if (c === 46 && part >= 0 && parts < 3) {
      value = value * 256 + part;
      parts++;
      part = -1;
    } else return -1;
  }
  if (part < 0 || parts !== 3) return -1;
  return value * 256 + part;
}

// Scratch for the IPv6 groups: parsing never allocates (the proxy is single-threaded per worker).
const groups = new Uint16Array(8);

/** RFC 4291 text s[start, end) (inet_pton6) into out.words; false when it is not one. */
function parseV6(s: string, start: number, end: number, out: Uint32Array): boolean {
  let n = 0;
  let gap = -1; // where '::' stands, in groups
  let i = start;
  if (s.charCodeAt(i) === 58) {
    if (s.charCodeAt(i + 1) !== 58) return false;
    gap = 0;
    i += 2;
  }
  while (i < end) {
    const groupStart = i;
    let v = 0;
    let digits = 0;
    for (; i < end; i++) {
      const c = s.charCodeAt(i);
      const h = c < 128 ? (HEX[c] as number) : -1;
      if (h < 0) break;
      v = v * 16 + h;
      digits++;
    }
    if (i < end && s.charCodeAt(i) === 46) {
      // An embedded dotted quad: the last 32 bits.
      if (n > 6) return false;
      const v4 = parseV4(s, groupStart, end);
      if (v4 < 0) return false;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      break;
    }
    if (digits === 0 || digits > 4 || n === 8) return false;
    groups[n++] = v;
    if (i === end) break;
    if (s.charCodeAt(i) !== 58) return false;
    i++;
    if (s.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    } else if (i === end) return false; // a single trailing ':'
  }
  if (gap >= 0) {
    if (n === 8) return false; // '::' stands for at least one group
    const tail = n - gap;
    for (let k = 0; k < tail; k++) groups[7 - k] = groups[n - 1 - k] as number;
    for (let k = gap; k < 8 - tail; k++) groups[k] = 0;
  } else if (n !== 8) return false;
  for (let k = 0; k < 4; k++) out[k] = (((groups[2 * k] as number) << 16) | (groups[2 * k + 1] as number)) >>> 0;
  return true;
}

/**
 * Parses `s` into `out` (family 0 when it is not an IP address). `mappedAsV4`: an IPv4-mapped IPv6 address
 * becomes the IPv4 address, as Envoy reads a peer or local address accepted on a dual-stack socket.
 */
export function parseIp(s: string, out: IpAddr, mappedAsV4: boolean): void {
  out.family = 0;
  let end = s.length;
  if (end === 0) return;
  if (s.includes(':')) {
    const zone = s.indexOf('%');
    if (zone >= 0) end = zone;
    if (!parseV6(s, 0, end, out.words)) return;
    const w = out.words;
    if (mappedAsV4 && w[0] === 0 && w[1] === 0 && w[2] === 0xffff) {
      w[0] = w[3] as number;
      out.family = 4;
    } else out.family = 6;
    return;
  }
  const v4 = parseV4(s, 0, end);
  if (v4 < 0) return;
  out.words[0] = v4;
  out.family = 4;
}

export type IpRangeMatch = (a: IpAddr) => boolean;

const checkCidrRange = fieldTable('envoy.config.core.v3.CidrRange', { address_prefix: true, prefix_len: true });

/**
 * config.core.v3.CidrRange -> whether an address is in it. Envoy's CidrRange::create: an address_prefix that
 * is not an IP address is an error, prefix_len defaults to 0 (every address of the family) and is cut to 32
 * for IPv4; the address's bits past prefix_len are ignored.
 */
export function compileCidrRange(c: envoy.config.core.v3.CidrRange, where: string): IpRangeMatch {
  checkCidrRange(c, where);
  const text = c.address_prefix ?? '';
  if (text === '') throw new ConfigError(`${where}.address_prefix: must be an IP address`);
  const base = newIpAddr();
  parseIp(text, base, false);
  if (base.family === 0) throw new ConfigError(`${where}.address_prefix: malformed IP address: '${text}'`);
  const len = c.prefix_len ?? 0;
  if (!Number.isInteger(len) || len < 0 || len > 128) throw new ConfigError(`${where}.prefix_len: ${len} is not in [0, 128]`);
  const family = base.family;
  if (family === 4) {
    const bits = Math.min(len, 32);
    if (bits === 0) return (a) => a.family === 4;
    const mask = bits === 32 ? -1 : ~(-1 >>> bits);
    const want = (base.words[0] as number) & mask;
    return (a) => a.family === 4 && ((a.words[0] as number) & mask) === want;
  }
  // IPv6: compare whole words, then the masked one.
  const full = len >>> 5;
  const rest = len & 31;
  const w = base.words;
  const w0 = w[0] as number;
  const w1 = w[1] as number;
  const w2 = w[2] as number;
  const w3 = w[3] as number;
  const mask = rest === 0 ? 0 : ~(-1 >>> rest);
  const want = full < 4 ? (w[full] as number) & mask : 0;
  return (a) => {
    if (a.family !== 6) return false;
    const x = a.words;
    if (full > 0 && x[0] !== w0) return false;
    if (full > 1 && x[1] !== w1) return false;
    if (full > 2 && x[2] !== w2) return false;
    if (full > 3) return x[3] === w3;
    return ((x[full] as number) & mask) === want;
  };
}
