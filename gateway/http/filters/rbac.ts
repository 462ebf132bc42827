// envoy.filters.http.rbac (an AuthorizationPolicy's filter): the shadow rules counted and recorded in the dynamic
// metadata (ext_authz's filter_enabled_metadata reads the shadow effective policy id of istiod's CUSTOM filter),
// then the enforced rules deciding; a denial is Envoy's 403 `RBAC: access denied` with the matched policy in the
// response code details.
import { decideHttpRbac, type RbacFilter } from '../../rbac/engine.ts';
import { rbacCounters } from '../../rbac/stage.ts';
import type { FilterCallbacks, FilterFactoryContext, HttpFilterFactory, StreamFilter } from '../filter.ts';
import { RBAC_DENIED_BODY, rbacRequest } from '../rbac-request.ts';

const RBAC_FILTER = 'envoy.filters.http.rbac';
const ENVOY_COMMON = 'envoy.common';

export function rbacFilterFactory(filter: RbacFilter, ctx: FilterFactoryContext): HttpFilterFactory {
  // Registered with the listener, as Envoy's filter config registers them (they show as 0 before any request).
  const counters = rbacCounters(filter, (name) => ctx.counter(name));
  // Stateless: one instance serves every request.
  const instance: StreamFilter = {
    decodeHeaders(cb: FilterCallbacks) {
      const req = rbacRequest(cb.downstream, {
        method: cb.method,
        authority: cb.authority,
        path: cb.path,
        scheme: cb.scheme,
        headers: cb.headers,
        remoteIp: cb.clientAddress,
        metadata: cb.metadataLookup,
      });
      const d = decideHttpRbac(filter, req);
      for (const name of d.counters) {
        const idx = counters.get(name);
        if (idx !== undefined) ctx.store.inc(idx);
      }
      if (d.metadata) cb.setDynamicMetadata(RBAC_FILTER, d.metadata);
      if (d.accessLogHint !== undefined) cb.setDynamicMetadata(ENVOY_COMMON, { access_log_hint: d.accessLogHint });
      if (d.allowed) return 'continue';
      cb.sendLocalReply({ status: 403, body: RBAC_DENIED_BODY, details: d.responseCodeDetails ?? '' });
      return 'stop';
    },
  };
  return { name: RBAC_FILTER, createFilter: () => instance };
}
