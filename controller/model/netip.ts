// IP addresses and prefixes as Go's net/netip parses and prints them: istiod validates AuthorizationPolicy
// ipBlocks with netip.ParseAddr/ParsePrefix and writes Envoy CidrRanges with Prefix.Addr().String(), so
// what is refused (leading zeros in IPv4, `1.2.3.4/08`, a zone in a prefix) and how an address is spelt
// (RFC 5952 IPv6, `::ffff:a.b.c.d`, host bits kept) must be Go's.

export interface Addr {
  /** 4 bytes (IPv4) or 16 (IPv6). */
  bytes: number[];
  zone: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const fail = (error: string): { ok: false; error: string } => ({ ok: false, error });

/** Dotted decimal, each field 0-255 without leading zeros, exactly four fields. */
function parseIPv4(s: string): number[] | string {
  const fields = s.split('.');
  if (fields.length > 4) return 'IPv4 address too long';
  if (fields.length < 4) return 'IPv4 address too short';
  const out: number[] = [];
  for (const f of fields) {
    if (f === '') return 'IPv4 field must have at least one digit';
    if (!/^\d+$/.test(f)) return 'unexpected character';
    if (f.length > 1 && f.startsWith('0')) return 'IPv4 field has octet with leading zero';
    const v = Number(f);
    if (v > 255) return 'IPv4 field has value >255';
    out.push(v);
  }
  return out;
}

/** Colon-separated groups of at most 4 hex digits, one optional `::`, an optional trailing dotted IPv4. */
function parseIPv6(s: string): number[] | string {
  const halves = s.split('::');
  if (halves.length > 2) return 'multiple :: in address';
  const groups = (part: string, last: boolean): number[] | string => {
    if (part === '') return [];
    const out: number[] = [];
    const fields = part.split(':');
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i] ?? '';
      if (last && i === fields.length - 1 && f.includes('.')) {
        const v4 = parseIPv4(f);
        if (typeof v4 === 'string') return v4;
        out.push((v4[0] ?? 0) * 256 + (v4[1] ?? 0), (v4[2] ?? 0) * 256 + (v4[3] ?? 0));
        continue;
      }
      if (f === '') return 'each colon-separated field must have at least one digit';
      if (!/^[0-9a-fA-F]+$/.test(f)) return 'unexpected character, want colon';
      if (f.length > 4) return 'each group must have 4 or less digits';
      out.push(parseInt(f, 16));
    }
    return out;
  };
  const head = groups(halves[0] ?? '', halves.length === 1);
  if (typeof head === 'string') return head;
  const tail = halves.length === 2 ? groups(halves[1] ?? '', true) : [];
  if (typeof tail === 'string') return tail;
  const n = head.length + tail.length;
  if (halves.length === 1 && n !== 8) return n < 8 ? 'address string too short' : 'trailing garbage after address';
  if (halves.length === 2 && n > 7) return 'the :: must expand to at least one field of zeros';
  const words = [...head, ...new Array<number>(8 - n).fill(0), ...tail];
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}

/** netip.ParseAddr. */
export function parseAddr(s: string): Parsed<Addr> {
  const err = (msg: string): { ok: false; error: string } => fail(`ParseAddr(${JSON.stringify(s)}): ${msg}`);
  const dot = s.indexOf('.');
  const colon = s.indexOf(':');
  const pct = s.indexOf('%');
  const first = Math.min(...[dot, colon, pct].map((i) => (i < 0 ? Infinity : i)));
  if (first === Infinity) return err('unable to parse IP');
  if (first === pct) return err('missing IPv6 address');
  if (first === dot) {
    const v4 = parseIPv4(s);
    return typeof v4 === 'string' ? err(v4) : { ok: true, value: { bytes: v4, zone: '' } };
  }
  const zoneAt = s.indexOf('%');
  const zone = zoneAt < 0 ? '' : s.slice(zoneAt + 1);
  if (zoneAt >= 0 && zone === '') return err('zone must be a non-empty string');
  const v6 = parseIPv6(zoneAt < 0 ? s : s.slice(0, zoneAt));
  return typeof v6 === 'string' ? err(v6) : { ok: true, value: { bytes: v6, zone } };
}

/** netip.ParsePrefix: an address without zone, `/`, a length without sign or leading zero. */
export function parsePrefix(s: string): Parsed<{ addr: Addr; bits: number }> {
  const err = (msg: string): { ok: false; error: string } => fail(`netip.ParsePrefix(${JSON.stringify(s)}): ${msg}`);
  const slash = s.lastIndexOf('/');
  if (slash < 0) return err("no '/'");
  const a = parseAddr(s.slice(0, slash));
  if (!a.ok) return err(a.error);
  if (a.value.zone) return err('IPv6 zones cannot be present in a prefix');
  const bits = s.slice(slash + 1);
  if (!/^(0|[1-9]\d*)$/.test(bits)) return err(`bad bits after slash: ${JSON.stringify(bits)}`);
  if (Number(bits) > a.value.bytes.length * 8) return err('prefix length out of range');
  return { ok: true, value: { addr: a.value, bits: Number(bits) } };
}

/** Addr.String (zone left out, as PrefixFrom drops it): RFC 5952 IPv6, IPv4-mapped as `::ffff:a.b.c.d`. */
function formatAddr(a: Addr): string {
  const b = a.bytes;
  if (b.length === 4) return b.join('.');
  const words = Array.from({ length: 8 }, (_, i) => (b[2 * i] ?? 0) * 256 + (b[2 * i + 1] ?? 0));
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) return `::ffff:${b.slice(12).join('.')}`;
  // The longest run of two or more zero groups (the first of equal ones) becomes `::`.
  let start = -1;
  let len = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > len) [start, len] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  return start < 0 ? hex(words) : `${hex(words.slice(0, start))}::${hex(words.slice(start + len))}`;
}

/** util.AddrStrToPrefix: a prefix as written, or an address as /32 or /128. */
export function parseCidr(s: string): Parsed<{ address: string; bits: number }> {
  if (s.includes('/')) {
    const p = parsePrefix(s);
    return p.ok ? { ok: true, value: { address: formatAddr(p.value.addr), bits: p.value.bits } } : p;
  }
  const a = parseAddr(s);
  return a.ok ? { ok: true, value: { address: formatAddr(a.value), bits: a.value.bytes.length * 8 } } : a;
}
