// A plain TCP connection to an upstream host (clusters without upstream TLS: tcp_proxy's raw connections).
import { connect, type Socket } from 'node:net';
import { awaitConnect } from '../tls/await-connect.ts';

/** Connects to host:port with the cluster's connect timeout; `cb` gets the connected socket or the error. */
export function connectPlain(host: string, port: number, timeoutMs: number, cb: (err: Error | null, sock: Socket | null) => void): void {
  awaitConnect(connect({ host, port, noDelay: true }), 'connect', timeoutMs, cb);
}
