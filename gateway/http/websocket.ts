// WebSocket upgrades (Istio enables `upgrade_configs: websocket` on every HCM): Envoy forwards the upgrade
// request with Connection/Upgrade intact, passes the upstream's 101 back through the HCM's header rewrite
// (date, server, x-envoy-upstream-service-time) and then relays bytes both ways until either side closes.
// A non-101 answer is relayed as the response, after which the connection closes.
import { connect, type Socket } from 'node:net';
import { reasonPhrase } from './codes.ts';

export interface UpgradeHandlers {
  /** Upstream answered: return the downstream header list to write (flat, lowercase) for this status. */
  onResponse(status: number, rawHeaders: string[]): string[];
  /** Failure before any response (connect error, upstream closed early). */
  onError(err: Error & { code?: string }): void;
  /** The tunnel (or relayed non-101 response) ended. */
  onClose(bytesSent: number, bytesReceived: number): void;
}

export interface UpgradeTunnel {
  cancel(): void;
}

const MAX_HEAD = 96 * 1024;

/** Opens a connection to host:port, sends the upgrade request and splices the two sockets. */
export function tunnelUpgrade(
  o: { host: string; port: number; connectTimeoutMs: number; method: string; path: string; headers: string[]; downstream: Socket },
  h: UpgradeHandlers,
): UpgradeTunnel {
  const up = connect({ host: o.host, port: o.port, noDelay: true });
  const down = o.downstream;
  let head = Buffer.alloc(0);
  let responded = false;
  let finished = false;
  let sent = 0;
  let received = 0;
  const timer = setTimeout(() => {
    const e = new Error('connect timeout') as Error & { code: string };
    e.code = 'UND_ERR_CONNECT_TIMEOUT';
    fail(e);
  }, o.connectTimeoutMs);
  const fail = (err: Error & { code?: string }): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    up.destroy();
    if (responded) {
      down.destroy();
      h.onClose(sent, received);
    } else h.onError(err);
  };
  const done = (): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    up.destroy();
    down.destroy();
    h.onClose(sent, received);
  };
  up.once('connect', () => {
    clearTimeout(timer);
    let req = `${o.method} ${o.path} HTTP/1.1\r\n`;
    for (let i = 0; i < o.headers.length; i += 2) req += `${o.headers[i]}: ${o.headers[i + 1]}\r\n`;
    up.write(req + '\r\n');
    // Client bytes sent after the handshake (e.g. early frames) follow the request.
    down.on('data', (c: Buffer) => {
      received += c.length;
      if (!up.write(c)) down.pause();
    });
    up.on('drain', () => down.resume());
  });
  const onHead = (c: Buffer): void => {
    head = Buffer.concat([head, c]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > MAX_HEAD) fail(Object.assign(new Error('upstream response headers too large'), { code: 'HPE_HEADER_OVERFLOW' }));
      return;
    }
    up.off('data', onHead);
    const lines = head.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!m) return fail(Object.assign(new Error('malformed upstream response'), { code: 'HPE_INVALID_CONSTANT' }));
    const raw: string[] = [];
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) raw.push(l.slice(0, i), l.slice(i + 1).trim());
    }
    responded = true;
    const status = Number(m[1]);
    const headers = h.onResponse(status, raw);
    let out = '';
    for (let i = 0; i < headers.length; i += 2) out += `${headers[i]}: ${headers[i + 1]}\r\n`;
    down.write(`HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n${out}\r\n`);
    const rest = head.subarray(end + 4);
    if (rest.length) {
      sent += rest.length;
      down.write(rest);
    }
    up.on('data', (d: Buffer) => {
      sent += d.length;
      if (!down.write(d)) up.pause();
    });
    down.on('drain', () => up.resume());
  };
  up.on('data', onHead);
  up.on('end', () => {
    if (!responded) fail(Object.assign(new Error('upstream closed before the response'), { code: 'UND_ERR_SOCKET' }));
    else down.end();
  });
  up.on('error', (e: Error & { code?: string }) => fail(e));
  up.on('close', () => (responded ? done() : fail(Object.assign(new Error('upstream closed'), { code: 'UND_ERR_SOCKET' }))));
  down.on('close', () => done());
  down.on('error', () => done());
  return { cancel: () => done() };
}
