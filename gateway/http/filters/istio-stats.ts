// Istio's `istio.stats` HTTP filter: it changes nothing on the request; every stream of the HCM is reported to
// Istio's standard metrics when it ends (istio_requests_total, the duration and size histograms), as the
// filter's access log handler does in Envoy. The label values are in stats/istio-metrics.ts.
import type { FilterFactoryContext, HttpFilterFactory, StreamFilter } from '../filter.ts';
import { IstioMetrics, localNodeFromMetadata, type IstioStatsConfig } from '../../stats/istio-metrics.ts';

const PASS_THROUGH: StreamFilter = { decodeHeaders: () => 'continue' };

export function istioStatsFilterFactory(config: IstioStatsConfig, ctx: FilterFactoryContext): HttpFilterFactory {
  const metrics = new IstioMetrics(ctx.store, ctx.node ?? localNodeFromMetadata(undefined), config);
  if (config.unsupported.length)
    ctx.log.warn(
      { expressions: config.unsupported },
      'istio.stats: tag expressions that do not parse as CEL: a standard tag they set is dropped, a new one is not added (as Envoy does)',
    );
  return { name: 'istio.stats', createFilter: () => PASS_THROUGH, onStreamComplete: (r) => metrics.recordHttp(r) };
}
