// Hostname rules from istio pkg/config/host (name.go, names.go) and the short-name resolution of
// pilot/pkg/model/config.go (ResolveShortnameToFQDN).

export const DOMAIN_SUFFIX = 'cluster.local';

function isWildcard(h: string): boolean {
  return h.startsWith('*');
}

/** `h` is a subset of `o` (Name.SubsetOf): `a.example.com` ⊆ `*.example.com` ⊆ `*`. */
export function subsetOf(h: string, o: string): boolean {
  const hw = isWildcard(h);
  const ow = isWildcard(o);
  if (hw) {
    if (!ow) return false;
    if (h.length < o.length) return false;
    return h.slice(1).endsWith(o.slice(1));
  }
  if (ow) return h.endsWith(o.slice(1));
  return h === o;
}

/** Name.Matches: the two names overlap (either covers the other). */
export function matches(a: string, b: string): boolean {
  const aw = isWildcard(a);
  const bw = isWildcard(b);
  if (aw && bw) return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  if (aw) return b.endsWith(a.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/** Names.Intersection: for each pair keep the narrower name, first-seen order, no duplicates. */
export function intersection(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = [];
  for (const x of a) {
    for (const y of b) {
      const pick = subsetOf(x, y) ? x : subsetOf(y, x) ? y : undefined;
      if (pick !== undefined && !out.includes(pick)) out.push(pick);
    }
  }
  return out;
}

/** host.NamesForNamespace: drops `otherns/host`, strips `ns/` and `*\/` prefixes. */
export function namesForNamespace(hosts: readonly string[], namespace: string): string[] {
  const out: string[] = [];
  for (const h of hosts) {
    const i = h.indexOf('/');
    if (i >= 0) {
      const ns = h.slice(0, i);
      if (ns !== namespace && ns !== '*') continue;
      out.push(h.slice(i + 1));
    } else out.push(h);
  }
  return out;
}

/** host.MoreSpecific ordering: non-wildcards first, longer first, then alphabetical. */
export function compareMoreSpecific(a: string, b: string): number {
  const aw = a.startsWith('*');
  const bw = b.startsWith('*');
  if (aw !== bw) return aw ? 1 : -1;
  if (a.length !== b.length) return b.length - a.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function isIPAddress(s: string): boolean {
  const m = IPV4.exec(s);
  if (m) return m.slice(1).every((p) => Number(p) <= 255);
  return s.includes(':') && /^[0-9a-fA-F:.]+$/.test(s);
}

/**
 * A host without a dot becomes `<host>.<namespace>.svc.cluster.local`; `*`, IPs and dotted names are
 * left alone (ResolveShortnameToFQDN). So VS host `httpbin` only matches `httpbin.default.svc.cluster.local`.
 */
export function resolveShortName(h: string, namespace: string): string {
  if (h === '*' || h.includes('.') || isIPAddress(h) || h === '') return h;
  return `${h}.${namespace}.svc.${DOMAIN_SUFFIX}`;
}

/**
 * A VirtualService `gateways` entry as istiod rewrites it (resolveGatewayName): `name` and `./name`
 * -> `<vsNs>/name`; `ns/name` kept; legacy FQDN `name.ns.svc.cluster.local` -> `ns/name`; `mesh` kept.
 */
export function resolveGatewayName(gw: string, vsNamespace: string): string {
  if (gw === 'mesh') return gw;
  const slash = gw.indexOf('/');
  if (slash >= 0) {
    const ns = gw.slice(0, slash);
    const name = gw.slice(slash + 1);
    return ns === '.' ? `${vsNamespace}/${name}` : gw;
  }
  if (gw.includes('.')) {
    // name.namespace[.svc.cluster.local]
    const parts = gw.split('.');
    if (parts.length >= 2) return `${parts[1]}/${parts[0]}`;
  }
  return `${vsNamespace}/${gw}`;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Istio's labels.IsDNS1123Label, which (unlike Kubernetes') also takes upper case. */
const ISTIO_DNS1123_LABEL = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
/** labels.IsWildcardDNS1123Label: `*`, or such a label after an optional `*` or `*-` (`*foo`, `*-foo`). */
const ISTIO_WILDCARD_LABEL = /^(?:\*|(?:\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;

export function isDNS1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

/** ValidateDNS1123Labels: a top-level label not all digits, each label Istio's DNS-1123 one, a trailing dot allowed. */
export function dns1123LabelsError(domain: string): string | undefined {
  const parts = domain.split('.');
  const tld = parts[parts.length - 1] ?? '';
  // strconv.Atoi: an optional sign, then digits.
  if (/^[+-]?\d+$/.test(tld)) return `domain name "${domain}" invalid (top level domain "${tld}" cannot be all-numeric)`;
  for (const [i, l] of parts.entries()) {
    if (i === parts.length - 1 && l === '') return undefined;
    if (l.length > 63 || !ISTIO_DNS1123_LABEL.test(l)) return `domain name "${domain}" invalid (label "${l}" invalid)`;
  }
  return undefined;
}

/** CheckDNS1123Preconditions: the length checks istiod makes before reading labels. */
export function dnsPreconditionError(name: string): string | undefined {
  if (name.length > 255) return `domain name "${name}" too long (max 255)`;
  if (name.length === 0) return 'empty domain name not allowed';
  return undefined;
}

/**
 * ValidateWildcardDomain: the first label may be a wildcard (`*`, `*.example.com`, also `*example.com` and
 * `*-foo.example.com`), the rest DNS-1123 labels. istiod's message, or undefined when valid.
 */
export function checkWildcardDomain(domain: string): string | undefined {
  const pre = dnsPreconditionError(domain);
  if (pre) return pre;
  const dot = domain.indexOf('.');
  const first = dot < 0 ? domain : domain.slice(0, dot);
  if (first.length > 63 || !ISTIO_WILDCARD_LABEL.test(first)) return `domain name "${domain}" invalid (label "${first}" invalid)`;
  return dot < 0 ? undefined : dns1123LabelsError(domain.slice(dot + 1));
}
