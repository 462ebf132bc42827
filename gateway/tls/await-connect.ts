// Settling an upstream connection attempt once: connected, failed, or timed out (cluster connect_timeout).
// Shared by TLS origination (upstream-context.ts) and plain TCP connects (upstream/tcp-connect.ts); it lives in
// tls/, the lower of the two folders (upstream/ builds on tls/, never the reverse).
import type { Socket } from 'node:net';

/**
 * Calls `cb` exactly once: when `sock` emits `readyEvent` ('connect' for TCP, 'secureConnect' after a TLS
 * handshake), on its first error, or after `timeoutMs` (0 = none) with the code UND_ERR_CONNECT_TIMEOUT, which the
 * cluster stats map to upstream_cx_connect_timeout. A failed or timed-out socket is destroyed.
 */
export function awaitConnect<S extends Socket>(
  sock: S,
  readyEvent: 'connect' | 'secureConnect',
  timeoutMs: number,
  cb: (err: Error | null, sock: S | null) => void,
): void {
  let done = false;
  const finish = (err: Error | null): void => {
    if (done) return;
    done = true;
    if (timer) clearTimeout(timer);
    if (err) {
      sock.destroy();
      cb(err, null);
    } else cb(null, sock);
  };
  const timer =
    timeoutMs > 0 ? setTimeout(() => finish(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })), timeoutMs) : undefined;
  sock.once(readyEvent, () => finish(null));
  sock.once('error', (e: Error) => finish(e));
}
