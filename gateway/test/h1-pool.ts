// HTTP/1 upstream pools for tests, to a backend on 127.0.0.1.
import { H1Pool } from '../upstream/h1-pool.ts';

type H1PoolOptions = ConstructorParameters<typeof H1Pool>[2];

/** Pool events for a test that does not look at them. */
export const noPoolEvents: H1PoolOptions['events'] = { onConnect: () => undefined, onDisconnect: () => undefined, onConnectError: () => undefined };

/** An H1Pool to 127.0.0.1:`port`: 1 s connect timeout, 10 s idle timeout, no limit of requests per connection, no events; `o` overrides. */
export function testH1Pool(port: number, o: Partial<H1PoolOptions> = {}): H1Pool {
  return new H1Pool('127.0.0.1', port, { connectTimeoutMs: 1000, idleTimeoutMs: 10_000, maxRequestsPerConnection: 0, events: noPoolEvents, ...o });
}
