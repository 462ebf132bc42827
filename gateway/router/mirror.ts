// Request mirroring (route `request_mirror_policies`, from VirtualService `mirror`/`mirrors`): each policy
// names a cluster and a runtime fraction. Envoy's router sends a fire-and-forget copy of the request (same
// method, path, headers after the route's mutations; the response is discarded) to that cluster when the
// fraction hits, not for CONNECT, and only if the mirror cluster exists. The copy's Host gets `-shadow`
// appended to the host part (`a.com:8080` -> `a.com-shadow:8080`) unless disable_shadow_host_suffix_append,
// which Istio >= 1.28 sets. The mirror uses the route timeout. Stats are the mirror cluster's own.
import { ConfigError, arr, bool, checkFields, str } from '../xds/json.ts';
import { compileRuntimeFraction } from './fraction.ts';

export interface MirrorPolicy {
  cluster: string;
  probability: number;
  appendShadowSuffix: boolean;
}

export function compileMirrorPolicies(v: unknown, where: string): MirrorPolicy[] {
  return arr(v, where).map((m, i) => {
    const w = `${where}[${i}]`;
    checkFields(m, w, ['cluster', 'cluster_header', 'runtime_fraction', 'trace_sampled', 'disable_shadow_host_suffix_append']);
    if (m.cluster_header !== undefined) throw new ConfigError(`${w}.cluster_header is not supported by this proxy`);
    const cluster = str(m.cluster, `${w}.cluster`);
    if (!cluster) throw new ConfigError(`${w}: a mirror policy needs a cluster`);
    return {
      cluster,
      // No runtime_fraction: every request is mirrored.
      probability: compileRuntimeFraction(m.runtime_fraction, `${w}.runtime_fraction`, 1),
      appendShadowSuffix: !bool(m.disable_shadow_host_suffix_append, `${w}.disable_shadow_host_suffix_append`),
    };
  });
}

/** Envoy's shadow host: `-shadow` after the host, before any `:port`. */
export function shadowHost(host: string): string {
  const close = host.lastIndexOf(']');
  const colon = host.lastIndexOf(':');
  if (colon > close && colon > 0 && host.indexOf(':') === colon) return `${host.slice(0, colon)}-shadow${host.slice(colon)}`;
  if (colon > close && close > 0) return `${host.slice(0, colon)}-shadow${host.slice(colon)}`;
  return `${host}-shadow`;
}
