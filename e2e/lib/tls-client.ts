// A curl-like HTTPS client for black-box tests: node:tls with an explicit SNI, trusted CA and optional
// client certificate, one HTTP/1.1 request per connection (or several on one keep-alive connection), the
// raw response parsed. A handshake the server refuses rejects with the TLS error.
import { connect, type PeerCertificate, type TLSSocket } from 'node:tls';

export interface TlsTarget {
  host?: string;
  port: number;
  /** SNI; omit to send none. */
  servername?: string;
  ca: string | string[];
  cert?: string;
  key?: string;
  alpn?: string[];
  timeoutMs?: number;
}

export interface HttpsResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  peer: PeerCertificate;
  alpn: string | false;
}

/** Opens a TLS connection (verifying the server against `ca`, names not checked: that is the test's job). */
export function tlsConnect(t: TlsTarget): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({
      host: t.host ?? '127.0.0.1',
      port: t.port,
      ...(t.servername ? { servername: t.servername } : {}),
      ca: t.ca,
      ...(t.cert ? { cert: t.cert, key: t.key } : {}),
      ALPNProtocols: t.alpn ?? ['http/1.1'],
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('TLS handshake timed out'));
    }, t.timeoutMs ?? 5000);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (e: Error) => {
      clearTimeout(timer);
      reject(e);
    });
    s.once('close', () => {
      clearTimeout(timer);
      reject(new Error('connection closed during the TLS handshake'));
    });
  });
}

/** One request on an open connection; resolves with the parsed response (content-length bodies). */
export function requestOn(s: TLSSocket, host: string, path: string, extraHeaders = ''): Promise<Omit<HttpsResponse, 'peer' | 'alpn'>> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (b: Buffer): void => {
      buf = Buffer.concat([buf, b]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number((head[0] ?? '').split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const l of head.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      const len = Number(headers['content-length'] ?? 0);
      if (buf.length < end + 4 + len) return;
      cleanup();
      resolve({ status, headers, body: buf.subarray(end + 4, end + 4 + len).toString() });
    };
    const onErr = (e: Error): void => {
      cleanup();
      reject(e);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error(`connection closed before a complete response (${buf.length} bytes read)`));
    };
    const cleanup = (): void => {
      s.off('data', onData);
      s.off('error', onErr);
      s.off('close', onClose);
    };
    s.on('data', onData);
    s.on('error', onErr);
    s.on('close', onClose);
    s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n${extraHeaders}\r\n`);
  });
}

/** curl --resolve host:port:127.0.0.1 --cacert ca https://host:port/path */
export async function httpsGet(t: TlsTarget & { hostHeader?: string }, path: string): Promise<HttpsResponse> {
  const s = await tlsConnect(t);
  try {
    const r = await requestOn(s, t.hostHeader ?? t.servername ?? 'localhost', path);
    return { ...r, peer: s.getPeerCertificate(), alpn: s.alpnProtocol ?? false };
  } finally {
    s.destroy();
  }
}
