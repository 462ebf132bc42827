// typed_per_filter_config of routes and virtual hosts: the fault and CORS filters' per-route configs are
// compiled (the two HTTP filters Istio configures per route); an empty config or a disabled FilterConfig
// is a no-op; any other non-empty config would change behaviour this proxy does not implement, so it is
// rejected (NACK) with a message naming it.
import { ConfigError, anyType, obj } from '../xds/json.ts';
import { compileCorsPolicy, CORS_TYPE, ROUTE_CORS_TYPE, type CorsPolicy } from './cors-policy.ts';
import { compileFault, FAULT_TYPE, type FaultConfig } from './fault-config.ts';

export interface PerFilterConfig {
  fault: FaultConfig | undefined;
  cors: CorsPolicy | undefined;
}

export function compilePerFilterConfig(v: unknown, where: string): PerFilterConfig {
  const out: PerFilterConfig = { fault: undefined, cors: undefined };
  if (v === undefined) return out;
  const m = obj(v, where);
  for (const [name, cfg] of Object.entries(m)) {
    const c = obj(cfg, `${where}.${name}`);
    const t = anyType(c);
    if (t === FAULT_TYPE) {
      out.fault = compileFault(c, `${where}.${name}`);
      continue;
    }
    if (t === CORS_TYPE || t === ROUTE_CORS_TYPE) {
      out.cors = compileCorsPolicy(c, `${where}.${name}`);
      continue;
    }
    const keys = Object.keys(c).filter((k) => k !== '@type');
    if (keys.length === 0) continue;
    if (t === 'envoy.config.route.v3.FilterConfig' && c.disabled === true) continue;
    throw new ConfigError(`${where}: per-route configuration for filter '${name}' (${t}) is not supported by this proxy`);
  }
  return out;
}
