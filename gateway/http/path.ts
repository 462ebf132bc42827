// Path normalisation as Envoy's normalize_path (Istio mesh pathNormalization BASE, the default): RFC 3986
// dot-segment removal, backslashes to slashes, percent-decoding of unreserved characters only (%2F and
// %5C stay encoded), %00 rejected; optional merge_slashes. The query string is never touched.

const UNRESERVED = new Uint8Array(256);
for (let c = 0x30; c <= 0x39; c++) UNRESERVED[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) UNRESERVED[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) UNRESERVED[c] = 1;
UNRESERVED[0x2d] = UNRESERVED[0x2e] = UNRESERVED[0x5f] = UNRESERVED[0x7e] = 1;

function hex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Returns the normalised :path (query kept), or undefined when the path must be rejected (400). */
export function normalizePath(path: string, mergeSlashes: boolean): string | undefined {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  const query = q < 0 ? '' : path.slice(q);
  // Fast path: nothing to do for the common case.
  if (!/[%.\\]/.test(p) && !(mergeSlashes && p.includes('//'))) return path;
  let s = '';
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c === 0x25 /* % */ && i + 2 < p.length) {
      const h1 = hex(p.charCodeAt(i + 1));
      const h2 = hex(p.charCodeAt(i + 2));
      if (h1 >= 0 && h2 >= 0) {
        const v = h1 * 16 + h2;
        if (v === 0) return undefined;
        if (UNRESERVED[v]) s += String.fromCharCode(v);
        else s += '%' + p[i + 1]?.toUpperCase() + p[i + 2]?.toUpperCase();
        i += 2;
        continue;
      }
    }
    s += c === 0x5c ? '/' : p[i];
  }
  // RFC 3986 5.2.4 remove_dot_segments.
  const segs = s.split('/');
  const out: string[] = [];
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i] as string;
    if (seg === '.') {
      if (i === segs.length - 1) out.push('');
      continue;
    }
    if (seg === '..') {
      if (out.length > 1) out.pop();
      if (i === segs.length - 1) out.push('');
      continue;
    }
    out.push(seg);
  }
  let np = out.join('/');
  if (!np.startsWith('/')) np = '/' + np;
  if (mergeSlashes) np = np.replace(/\/{2,}/g, '/');
  return np + query;
}
