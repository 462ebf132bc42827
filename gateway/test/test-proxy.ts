// A proxy for tests, started against a test ADS server on 127.0.0.1 and ready (first LDS/CDS applied).
// `fastPath` sets MESHGATE_FAST_PATH for its listeners (they read it when they are created, before `ready`),
// for the tests that compare the fast path with the general path.
import { silentLogger } from '../../cli/logger.ts';
import { startProxy, type Proxy, type ProxyOptions } from '../proxy.ts';
import type { TestAdsServer } from './ads-server.ts';

/**
 * startProxy's options for a test: the test ADS server, admin, status and metrics on ports the kernel picks,
 * every listener on 127.0.0.1, no logs; `o` adds or overrides options.
 */
export function testProxyOptions(ads: TestAdsServer, o: Partial<ProxyOptions> = {}): ProxyOptions {
  return {
    xdsAddress: ads.address,
    node: { id: 'router~127.0.0.1~gw.ns~ns.svc.cluster.local', cluster: 'gw', metadata: {} },
    adminPort: 0,
    statusPort: 0,
    metricsPort: 0,
    listenHost: '127.0.0.1',
    log: silentLogger(),
    ...o,
  };
}

export async function startTestProxy(ads: TestAdsServer, o: { fastPath?: boolean; accessLog?: string } = {}): Promise<Proxy> {
  const prev = process.env.MESHGATE_FAST_PATH;
  if (o.fastPath !== undefined) process.env.MESHGATE_FAST_PATH = o.fastPath ? '1' : '0';
  try {
    const proxy = await startProxy(
      testProxyOptions(ads, {
        node: {
          id: 'router~127.0.0.1~istio-ingressgateway-1.istio-system~istio-system.svc.cluster.local',
          cluster: 'istio-ingressgateway.istio-system',
          metadata: { NAMESPACE: 'istio-system' },
        },
        drainSeconds: 1,
        // In process, so tests can reach into the serving code (error-boundary.test.ts).
        serveOnMainThread: true,
        ...(o.accessLog !== undefined ? { accessLog: o.accessLog } : {}),
      }),
    );
    await Promise.race([proxy.ready, new Promise((_, rej) => setTimeout(() => rej(new Error('proxy not ready in 10 s')), 10_000))]);
    return proxy;
  } finally {
    if (prev === undefined) delete process.env.MESHGATE_FAST_PATH;
    else process.env.MESHGATE_FAST_PATH = prev;
  }
}
