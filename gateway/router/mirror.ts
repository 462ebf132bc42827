// Request mirroring (route `request_mirror_policies`, from VirtualService `mirror`/`mirrors`): each policy
// names a cluster and a runtime fraction. Envoy's router sends a fire-and-forget copy of the request (same
// method, path, headers after the route's mutations; the response is discarded) to that cluster when the
// fraction hits, not for CONNECT, and only if the mirror cluster exists. The copy's Host gets `-shadow`
// appended to the host part (`a.com:8080` -> `a.com-shadow:8080`) unless disable_shadow_host_suffix_append,
// which Istio >= 1.28 sets. The mirror uses the route timeout. Stats are the mirror cluster's own.
import type { envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import { compileRuntimeFraction } from './fraction.ts';

export interface MirrorPolicy {
  cluster: string;
  probability: number;
  appendShadowSuffix: boolean;
}

// cluster_header is rejected with its own message below.
const checkMirrorPolicy = fieldTable('envoy.config.route.v3.RouteAction.RequestMirrorPolicy', {
  cluster: true,
  runtime_fraction: true,
  disable_shadow_host_suffix_append: true,
  trace_sampled: 'mirrored copies carry no span or trace context of their own here (Envoy gives each an async child span)',
});

export function compileMirrorPolicies(policies: readonly envoy.config.route.v3.RouteAction.RequestMirrorPolicy[] | undefined, where: string): MirrorPolicy[] {
  return (policies ?? []).map((m, i) => {
    const w = `${where}[${i}]`;
    if (m.cluster_header !== undefined) throw new ConfigError(`${w}.cluster_header is not supported by this proxy`);
    checkMirrorPolicy(m, w);
    const cluster = m.cluster ?? '';
    if (!cluster) throw new ConfigError(`${w}: a mirror policy needs a cluster`);
    return {
      cluster,
      // No runtime_fraction: every request is mirrored.
      probability: compileRuntimeFraction(m.runtime_fraction, `${w}.runtime_fraction`, 1),
      appendShadowSuffix: m.disable_shadow_host_suffix_append !== true,
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
