// envoy.filters.http.fault with the route's HTTPFault (VirtualService fault): a delay (response flag DI), then
// an abort (flag FI, `fault filter abort`); the decisions themselves are in ../fault.ts.
import type { FaultConfig } from '../../router/fault-config.ts';
import { FAULT_ABORT_BODY, FAULT_ABORT_DETAILS, faultAbort, faultDelay } from '../fault.ts';
import type { FilterCallbacks, FilterFactoryContext, HttpFilterFactory, StreamFilter } from '../filter.ts';
import { DI, FI } from '../response-flags.ts';

const FAULT_FILTER = 'envoy.filters.http.fault';

interface FaultStats {
  delaysInjected: number;
  abortsInjected: number;
  activeFaults: number;
}

class FaultFilter implements StreamFilter {
  private readonly ctx: FilterFactoryContext;
  private readonly stats: FaultStats;
  private timer: NodeJS.Timeout | undefined;

  constructor(ctx: FilterFactoryContext, stats: FaultStats) {
    this.ctx = ctx;
    this.stats = stats;
  }

  decodeHeaders(cb: FilterCallbacks): 'continue' | 'stop' {
    const f = cb.route()?.fault;
    if (!f) return 'continue';
    const delay = faultDelay(f);
    if (delay <= 0) return this.abort(cb, f);
    cb.addResponseFlag(DI);
    const st = this.ctx.store;
    st.inc(this.stats.delaysInjected);
    st.inc(this.stats.activeFaults);
    this.timer = setTimeout(() => {
      this.endDelay();
      if (cb.finished) return;
      try {
        if (this.abort(cb, f) === 'continue') cb.continueDecoding();
      } catch (e) {
        cb.internalError(e, 'after a fault delay');
      }
    }, delay);
    return 'stop';
  }

  private abort(cb: FilterCallbacks, f: FaultConfig): 'continue' | 'stop' {
    if (!faultAbort(f)) return 'continue';
    this.ctx.store.inc(this.stats.abortsInjected);
    cb.sendLocalReply({
      status: f.abortStatus,
      body: FAULT_ABORT_BODY,
      flags: FI,
      details: FAULT_ABORT_DETAILS,
      grpcStatus: f.abortGrpcStatus >= 0 ? f.abortGrpcStatus : undefined,
    });
    return 'stop';
  }

  private endDelay(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.ctx.store.dec(this.stats.activeFaults);
  }

  onDestroy(): void {
    this.endDelay();
  }
}

export function faultFilterFactory(ctx: FilterFactoryContext): HttpFilterFactory {
  const stats = {
    delaysInjected: ctx.counter('fault.delays_injected'),
    abortsInjected: ctx.counter('fault.aborts_injected'),
    activeFaults: ctx.gauge('fault.active_faults'),
  };
  return { name: FAULT_FILTER, createFilter: () => new FaultFilter(ctx, stats) };
}
