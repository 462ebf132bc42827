// Is a listener address held by another process? Our workers bind each listener port with SO_REUSEPORT so
// the kernel spreads connections over them, but SO_REUSEPORT lets any process of the same user join the
// group and take a share of the traffic (a second `meshgate local`, a forgotten quick start). Before the
// first of our threads binds a new address, the main thread binds it once without SO_REUSEPORT: that fails
// with EADDRINUSE if anyone holds the port, with or without SO_REUSEPORT. Envoy binds on the main thread and
// NACKs a listener it cannot bind; this gives our threads the same single answer.
import { createServer } from 'node:net';

/** Envoy's wording for a bind error (strerror), e.g. `Address already in use`. */
const STRERROR: Readonly<Record<string, string>> = {
  EADDRINUSE: 'Address already in use',
  EACCES: 'Permission denied',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  EINVAL: 'Invalid argument',
};

export function bindErrorText(e: NodeJS.ErrnoException): string {
  return (e.code && STRERROR[e.code]) ?? e.message;
}

/** Binds host:port exclusively and closes it again; resolves with the error when it cannot be bound. */
export function probeExclusiveBind(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', (e: NodeJS.ErrnoException) => resolve(e));
    probe.listen({ host, port, exclusive: true, backlog: 1 }, () => probe.close(() => resolve(undefined)));
  });
}
