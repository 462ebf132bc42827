// A proxy for tests, started against a test ADS server on 127.0.0.1 and ready (first LDS/CDS applied).
// `fastPath` sets MESHGATE_FAST_PATH for its listeners (they read it when they are created, before `ready`),
// for the tests that compare the fast path with the general path.
import { silentLogger } from '../../cli/logger.ts';
import { startProxy, type Proxy } from '../proxy.ts';
import type { TestAdsServer } from './ads-server.ts';

export async function startTestProxy(ads: TestAdsServer, o: { fastPath?: boolean; accessLog?: string } = {}): Promise<Proxy> {
  const prev = process.env.MESHGATE_FAST_PATH;
  if (o.fastPath !== undefined) process.env.MESHGATE_FAST_PATH = o.fastPath ? '1' : '0';
  try {
    const proxy = await startProxy({
      xdsAddress: ads.address,
      node: {
        id: 'router~127.0.0.1~istio-ingressgateway-1.istio-system~istio-system.svc.cluster.local',
        cluster: 'istio-ingressgateway.istio-system',
        metadata: { NAMESPACE: 'istio-system' },
      },
      adminPort: 0,
      statusPort: 0,
      metricsPort: 0,
      listenHost: '127.0.0.1',
      drainSeconds: 1,
      // In process, so tests can reach into the serving code (error-boundary.test.ts).
      serveOnMainThread: true,
      ...(o.accessLog !== undefined ? { accessLog: o.accessLog } : {}),
      log: silentLogger(),
    });
    await Promise.race([proxy.ready, new Promise((_, rej) => setTimeout(() => rej(new Error('proxy not ready in 10 s')), 10_000))]);
    return proxy;
  } finally {
    if (prev === undefined) delete process.env.MESHGATE_FAST_PATH;
    else process.env.MESHGATE_FAST_PATH = prev;
  }
}
