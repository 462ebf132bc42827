// The proxy's own address, as Envoy's LocalInfo has it (the first non-loopback address of the host: the pod IP in
// Kubernetes): what Envoy's async client appends to x-forwarded-for on calls it makes itself.
import { networkInterfaces } from 'node:os';

let cached: string | undefined;

export function proxyAddress(): string {
  if (cached !== undefined) return cached;
  let found = '';
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal) continue;
      if (a.family === 'IPv4') {
        found = a.address;
        break;
      }
      if (found === '' && a.family === 'IPv6' && !a.address.startsWith('fe80')) found = a.address;
    }
    if (found !== '' && !found.includes(':')) break;
  }
  cached = found || '127.0.0.1';
  return cached;
}
