// The stats a gateway's metrics port exports, decided when the proxy starts as Istio's agent decides its bootstrap's
// stats_matcher: ProxyConfig.proxyStatsMatcher from the mesh defaultConfig with the pod's proxy.istio.io/config
// applied, and the pod's sidecar.istio.io/statsInclusion* annotations (gateway/stats/stats-matcher.ts). Shared by
// `meshgate local` and `meshgate proxy`.
import type { ProxyConfig } from '../controller/model/mesh-config.ts';
import { gatewayProxyConfig } from '../controller/model/proxy-config.ts';
import { compileStatsMatcher, istioStatsInclusion, type StatsInclusion } from '../gateway/stats/stats-matcher.ts';

export type GatewayStatsInclusion = ({ ok: true } & StatsInclusion) | { ok: false; error: string };

export function gatewayStatsInclusion(
  meshDefault: ProxyConfig,
  annotations: Readonly<Record<string, string>>,
  podIps: readonly string[],
): GatewayStatsInclusion {
  const pc = gatewayProxyConfig(meshDefault, annotations);
  if (!pc.ok) return { ok: false, error: `the gateway pod's ${pc.error}` };
  const patterns = istioStatsInclusion({ proxyStatsMatcher: pc.config.proxyStatsMatcher, annotations, podIps });
  const c = compileStatsMatcher(patterns);
  if (!c.ok) return { ok: false, error: `stats inclusion list (proxyStatsMatcher or sidecar.istio.io/statsInclusion* annotations): ${c.error}` };
  return { ok: true, matches: c.matches, patterns };
}
