// envoy.filters.http.cors with the route's policy (VirtualService corsPolicy): a preflight is answered here; an
// allowed origin is latched and echoed on the response, local replies included.
import type { CorsPolicy } from '../../router/cors-policy.ts';
import { ACTION_ROUTE } from '../../router/route-config.ts';
import { joinedHeaderValue } from '../../../xds/header-list.ts';
import { CORS_DETAILS, corsDecode, corsEncode } from '../cors.ts';
import type { FilterCallbacks, FilterFactoryContext, HttpFilterFactory, StreamFilter } from '../filter.ts';

const CORS_FILTER = 'envoy.filters.http.cors';

interface CorsStats {
  originValid: number;
  originInvalid: number;
}

class CorsFilter implements StreamFilter {
  private readonly stats: CorsStats;
  private readonly ctx: FilterFactoryContext;
  private policies: CorsPolicy[] | undefined;
  private origin: string | undefined;

  constructor(ctx: FilterFactoryContext, stats: CorsStats) {
    this.ctx = ctx;
    this.stats = stats;
  }

  decodeHeaders(cb: FilterCallbacks): 'continue' | 'stop' {
    const route = cb.route();
    // Only routes with a route entry (not direct responses or redirects) have a policy the filter reads.
    if (!route?.cors || route.action !== ACTION_ROUTE) return 'continue';
    const h = cb.headers;
    const d = corsDecode(route.cors, {
      method: cb.method,
      origin: joinedHeaderValue(h, 'origin'),
      requestMethod: joinedHeaderValue(h, 'access-control-request-method'),
      requestHeaders: joinedHeaderValue(h, 'access-control-request-headers'),
      requestPrivateNetwork: joinedHeaderValue(h, 'access-control-request-private-network'),
    });
    if (!d) return 'continue';
    this.ctx.store.inc(d.latchedOrigin !== undefined ? this.stats.originValid : this.stats.originInvalid);
    if (d.preflight) {
      cb.sendLocalReply({ status: 200, body: '', details: CORS_DETAILS, headers: d.preflight });
      return 'stop';
    }
    this.policies = route.cors;
    this.origin = d.latchedOrigin;
    return 'continue';
  }

  encodeHeaders(_status: number, headers: string[]): void {
    if (this.policies) corsEncode(this.policies, this.origin, headers);
  }
}

export function corsFilterFactory(ctx: FilterFactoryContext): HttpFilterFactory {
  const stats = { originValid: ctx.counter('cors.origin_valid'), originInvalid: ctx.counter('cors.origin_invalid') };
  return { name: CORS_FILTER, createFilter: () => new CorsFilter(ctx, stats) };
}
