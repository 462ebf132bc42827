// The HCM's HTTP filters as factories, in the order istiod emitted them (hcm-config.ts validated the list).
import type { HttpFilterSpec } from './hcm-config.ts';
import type { FilterFactoryContext, HttpFilterFactory } from './filter.ts';
import { rbacFilterFactory } from './filters/rbac.ts';
import { jwtAuthnFilterFactory } from './filters/jwt-authn.ts';
import { faultFilterFactory } from './filters/fault.ts';
import { corsFilterFactory } from './filters/cors.ts';
import { extAuthzFactory } from '../extauthz/filter.ts';
import { istioStatsFilterFactory } from './filters/istio-stats.ts';
import { grpcStatsFilterFactory } from './filters/grpc-stats.ts';

function factoryFor(f: HttpFilterSpec, ctx: FilterFactoryContext): HttpFilterFactory {
  switch (f.kind) {
    case 'rbac':
      return rbacFilterFactory(f.rbac, ctx);
    case 'jwt':
      return jwtAuthnFilterFactory(f.jwt);
    case 'ext_authz':
      return extAuthzFactory(f.extAuthz, ctx);
    case 'fault':
      return faultFilterFactory(ctx);
    case 'cors':
      return corsFilterFactory(ctx);
    case 'grpc_stats':
      return grpcStatsFilterFactory(f.grpcStats);
    case 'istio_stats':
      return istioStatsFilterFactory(f.stats, ctx);
  }
}

export function buildFilterFactories(filters: readonly HttpFilterSpec[], ctx: FilterFactoryContext): HttpFilterFactory[] {
  return filters.map((f) => factoryFor(f, ctx));
}
