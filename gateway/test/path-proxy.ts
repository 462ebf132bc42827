// A proxy for tests that compare the fast path with the general path: started against a test ADS server
// with MESHGATE_FAST_PATH set for its listeners (they read it when they are created, before `ready`).
import { silentLogger } from '../../cli/logger.ts';
import { startProxy, type Proxy } from '../proxy.ts';
import type { TestAdsServer } from './ads-server.ts';

export async function startPathProxy(ads: TestAdsServer, fastPath: boolean): Promise<Proxy> {
  const prev = process.env.MESHGATE_FAST_PATH;
  process.env.MESHGATE_FAST_PATH = fastPath ? '1' : '0';
  try {
    const proxy = await startProxy({
      xdsAddress: ads.address,
      node: { id: 'router~127.0.0.1~istio-ingressgateway-1.istio-system~istio-system.svc.cluster.local', cluster: 'istio-ingressgateway.istio-system', metadata: { NAMESPACE: 'istio-system' } },
      adminPort: 0,
      statusPort: 0,
      metricsPort: 0,
      listenHost: '127.0.0.1',
      drainSeconds: 1,
      log: silentLogger(),
    });
    await Promise.race([proxy.ready, new Promise((_, rej) => setTimeout(() => rej(new Error('proxy not ready in 10 s')), 10_000))]);
    return proxy;
  } finally {
    if (prev === undefined) delete process.env.MESHGATE_FAST_PATH;
    else process.env.MESHGATE_FAST_PATH = prev;
  }
}
