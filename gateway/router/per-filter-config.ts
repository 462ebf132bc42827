// typed_per_filter_config of routes and virtual hosts: the fault and CORS filters' per-route configs are
// compiled (the two HTTP filters Istio configures per route); an empty config or a disabled FilterConfig
// is a no-op; any other non-empty config would change behaviour this proxy does not implement, so it is
// rejected (NACK) with a message naming it.
import { unpackAny, type Any } from '../../xds/envoy.ts';
import { ConfigError, anyType } from '../xds/json.ts';
import { compileCorsPolicy, CORS_TYPE, ROUTE_CORS_TYPE, type CorsPolicy } from './cors-policy.ts';
import { compileFault, FAULT_TYPE, type FaultConfig } from './fault-config.ts';

export interface PerFilterConfig {
  fault: FaultConfig | undefined;
  cors: CorsPolicy | undefined;
}

type TypedPerFilterConfig = { readonly [filter: string]: Any };

const FILTER_CONFIG_TYPE = 'envoy.config.route.v3.FilterConfig';

/** A per-filter config that changes nothing: empty (only its '@type'), or a FilterConfig that disables the filter. */
function isNoOp(c: Any): boolean {
  if (Object.keys(c).every((k) => k === '@type')) return true;
  return anyType(c) === FILTER_CONFIG_TYPE && unpackAny(c, `type.googleapis.com/${FILTER_CONFIG_TYPE}`).disabled === true;
}

/** Routes' and virtual hosts' typed_per_filter_config: the fault and CORS configs, every other one a no-op. */
export function compilePerFilterConfig(m: TypedPerFilterConfig | undefined, where: string): PerFilterConfig {
  const out: PerFilterConfig = { fault: undefined, cors: undefined };
  if (m === undefined) return out;
  for (const [name, c] of Object.entries(m)) {
    const t = anyType(c);
    if (t === FAULT_TYPE) {
      out.fault = compileFault(c, `${where}.${name}`);
      continue;
    }
    if (t === CORS_TYPE || t === ROUTE_CORS_TYPE) {
      out.cors = compileCorsPolicy(c, `${where}.${name}`);
      continue;
    }
    if (!isNoOp(c)) throw unsupported(name, c, where);
  }
  return out;
}

/** typed_per_filter_config where the proxy applies none (route configuration, weighted cluster): only no-ops. */
export function checkNoOpPerFilterConfig(m: TypedPerFilterConfig | undefined, where: string): void {
  for (const [name, c] of Object.entries(m ?? {})) if (!isNoOp(c)) throw unsupported(name, c, where);
}

function unsupported(name: string, c: Any, where: string): ConfigError {
  return new ConfigError(`${where}: per-route configuration for filter '${name}' (${anyType(c)}) is not supported by this proxy`);
}
