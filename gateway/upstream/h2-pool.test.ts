// HTTP/2 upstreams through a cluster: h2c, and TLS origination with ALPN h2 (a cluster with both an
// UpstreamTlsContext and http2_protocol_options, as istiod builds for a GRPC/HTTP2 port with DestinationRule TLS).
// Real servers on loopback: node:http2 secure and plaintext servers, certificates from a test CA.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSecureServer, createServer as createH2cServer, type Http2SecureServer, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { pino } from 'pino';
import type { Dispatcher } from 'undici';
import type { envoy } from '../../xds/envoy.ts';
import { CertFactory } from '../../e2e/lib/certs.ts';
import { StatsStore } from '../stats/store.ts';
import { SecretStore } from '../tls/secrets.ts';
import type { HandshakeError } from '../tls/upstream-context.ts';
import { Cluster, parseCluster } from './cluster.ts';

const log = pino({ level: 'silent' });
const certs = new CertFactory();
const ca = certs.ca('h2-test-ca');
const apiCert = certs.leaf(ca, 'api.example.com', { dns: ['api.example.com'] });
const servers: (Http2SecureServer | Http2Server)[] = [];
after(() => {
  for (const s of servers) s.close();
  certs.cleanup();
});

/** A server answering with what it saw: the connection's ALPN, the request's :scheme, :authority and body. */
async function listen(s: Http2SecureServer | Http2Server): Promise<number> {
  s.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const sock = stream.session?.socket as TLSSocket | undefined;
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(
        JSON.stringify({
          alpn: sock?.alpnProtocol ?? null,
          scheme: headers[':scheme'],
          authority: headers[':authority'],
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return (s.address() as AddressInfo).port;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function cluster(port: number, tls: envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext | undefined): envoy.config.cluster.v3.Cluster {
  return {
    name: 'h2',
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: 'h2',
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
    },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
    ...(tls
      ? {
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', ...tls },
          },
        }
      : {}),
  };
}

/** A TLS context that trusts the test CA (SDS secret `ca`) and sends `sni`. */
const verified = (sni: string, san?: string): envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext => ({
  sni,
  common_tls_context: {
    combined_validation_context: {
      default_validation_context: san ? { match_subject_alt_names: [{ exact: san }] } : {},
      validation_context_sds_secret_config: { name: 'ca', sds_config: { ads: {} } },
    },
  },
});

interface Result {
  status: number;
  body: string;
  error?: string;
  /** Envoy's transport failure reason the error carries (a failed TLS handshake). */
  transport?: string;
}

/** One request through the cluster's pool for its only host. */
function request(c: Cluster, headers: string[], body?: string): Promise<Result> {
  const h = c.chooseHost();
  assert.ok(h);
  return new Promise((resolve) => {
    const r: Result = { status: 0, body: '' };
    const handler: Dispatcher.DispatchHandler = {
      onResponseStart: (_c, status) => {
        r.status = status;
      },
      onResponseData: (_c, chunk) => {
        r.body += chunk.toString();
      },
      onResponseEnd: () => resolve(r),
      onResponseError: (_c, e) => {
        const err = e as HandshakeError;
        resolve({ ...r, error: err.code ?? err.message, ...(err.transportFailure ? { transport: err.transportFailure } : {}) });
      },
    };
    const payload = body === undefined ? null : Readable.from([Buffer.from(body)]);
    c.poolFor(h).dispatch({ path: '/p', method: body === undefined ? 'GET' : 'POST', headers, body: payload }, handler);
  });
}

function make(json: envoy.config.cluster.v3.Cluster, secrets?: SecretStore): { c: Cluster; stat: (n: string) => number } {
  const store = new StatsStore();
  const c = new Cluster(parseCluster(json), json, store, { versionInfo: '1', addedViaApi: true, log, secrets });
  return { c, stat: (n) => store.values[store.counter(`cluster.h2.${n}`)] ?? 0 };
}

function caStore(): SecretStore {
  const s = new SecretStore(log);
  assert.deepEqual(s.applySds([{ name: 'ca', validation_context: { trusted_ca: { inline_bytes: b64(ca.cert) } } }], 'v1').errors, []);
  return s;
}

describe('HTTP/2 upstream over TLS (ALPN h2)', () => {
  test('the session negotiates h2, verifies the server, carries :authority, the body, and :scheme from x-forwarded-proto', async () => {
    const port = await listen(createSecureServer({ cert: apiCert.cert, key: apiCert.key, allowHTTP1: false }));
    const { c, stat } = make(cluster(port, verified('api.example.com', 'api.example.com')), caStore());
    try {
      const a = await request(c, ['host', 'api.example.com', 'x-forwarded-proto', 'https'], 'ping');
      assert.equal(a.status, 200, a.error);
      assert.deepEqual(JSON.parse(a.body), { alpn: 'h2', scheme: 'https', authority: 'api.example.com', body: 'ping' });
      const b = await request(c, ['host', 'api.example.com', 'x-forwarded-proto', 'http']);
      assert.deepEqual(JSON.parse(b.body), { alpn: 'h2', scheme: 'http', authority: 'api.example.com', body: '' });
      // Both requests on one multiplexed session.
      assert.equal(stat('upstream_cx_http2_total'), 1);
      assert.equal(stat('upstream_cx_http1_total'), 0);
      assert.equal(stat('upstream_cx_connect_fail'), 0);
    } finally {
      c.close();
    }
  });

  test('a certificate that fails the SAN check fails the request and counts a connect failure', async () => {
    const port = await listen(createSecureServer({ cert: apiCert.cert, key: apiCert.key, allowHTTP1: false }));
    const { c, stat } = make(cluster(port, verified('api.example.com', 'spiffe://example.com/other')), caStore());
    try {
      const r = await request(c, ['host', 'api.example.com']);
      assert.equal(r.status, 0);
      assert.equal(r.error, 'TLS_error: certificate subject alt names do not match');
      assert.equal(r.transport, 'TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end');
      assert.equal(stat('upstream_cx_connect_fail'), 1);
      assert.equal(stat('upstream_cx_http2_total'), 0);
    } finally {
      c.close();
    }
  });

  test('a missing validation secret fails the request at once (MESHGATE_TLS_SECRET) and counts a connect failure', async () => {
    const port = await listen(createSecureServer({ cert: apiCert.cert, key: apiCert.key, allowHTTP1: false }));
    const { c, stat } = make(cluster(port, verified('api.example.com')), new SecretStore(log));
    try {
      const r = await request(c, ['host', 'api.example.com']);
      assert.equal(r.error, 'MESHGATE_TLS_SECRET');
      assert.equal(stat('upstream_cx_connect_fail'), 1);
    } finally {
      c.close();
    }
  });

  test('h2c to a TLS-only server: the session closes before any response, and the request fails instead of ending empty', async () => {
    const port = await listen(createSecureServer({ cert: apiCert.cert, key: apiCert.key, allowHTTP1: false }));
    const { c } = make(cluster(port, undefined));
    try {
      const r = await request(c, ['host', 'api.example.com']);
      assert.deepEqual(r, { status: 0, body: '', error: 'UND_ERR_SOCKET' });
    } finally {
      c.close();
    }
  });

  test('h2c with prior knowledge still works without TLS, :scheme http', async () => {
    const port = await listen(createH2cServer());
    const { c, stat } = make(cluster(port, undefined));
    try {
      const r = await request(c, ['host', 'api.example.com']);
      assert.deepEqual(JSON.parse(r.body), { alpn: null, scheme: 'http', authority: 'api.example.com', body: '' });
      assert.equal(stat('upstream_cx_http2_total'), 1);
    } finally {
      c.close();
    }
  });
});

describe('HTTP/2 upstream: request trailers', () => {
  /** An h2c server answering with the body, the request trailers it got (flat) and the frames that ended the request. */
  async function trailerServer(): Promise<number> {
    const s = createH2cServer();
    s.on('stream', (stream) => {
      const chunks: Buffer[] = [];
      let trailers: string[] | null = null;
      stream.on('trailers', (_t, _f, raw: string[]) => (trailers = raw));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        stream.end(JSON.stringify({ body: Buffer.concat(chunks).toString(), trailers }));
      });
    });
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    return (s.address() as AddressInfo).port;
  }

  function send(c: Cluster, body: string, trailers: (() => readonly string[] | undefined) | undefined): Promise<Result> {
    const h = c.chooseHost();
    assert.ok(h);
    return new Promise((resolve) => {
      const r: Result = { status: 0, body: '' };
      c.poolFor(h).dispatch(
        { path: '/t', method: 'POST', headers: ['host', 'api.example.com'], body: Readable.from([Buffer.from(body)]), trailers },
        {
          onResponseStart: (_c, status) => void (r.status = status),
          onResponseData: (_c, chunk) => void (r.body += chunk.toString()),
          onResponseEnd: () => resolve(r),
          onResponseError: (_c, e) => resolve({ ...r, error: (e as Error & { code?: string }).code ?? e.message }),
        },
      );
    });
  }

  test('trailers go after the body as a trailing HEADERS frame, repeated names kept in order', async () => {
    const { c } = make(cluster(await trailerServer(), undefined));
    try {
      const r = await send(c, 'payload', () => ['x-checksum', 'abc', 'x-multi', '1', 'x-multi', '2']);
      assert.equal(r.status, 200, r.error);
      assert.deepEqual(JSON.parse(r.body), { body: 'payload', trailers: ['x-checksum', 'abc', 'x-multi', '1', 'x-multi', '2'] });
    } finally {
      c.close();
    }
  });

  test('a request that may have trailers and has none ends without a trailing HEADERS frame', async () => {
    const { c } = make(cluster(await trailerServer(), undefined));
    try {
      const none = await send(c, 'p', () => undefined);
      assert.deepEqual(JSON.parse(none.body), { body: 'p', trailers: null });
      const never = await send(c, 'q', undefined);
      assert.deepEqual(JSON.parse(never.body), { body: 'q', trailers: null });
    } finally {
      c.close();
    }
  });

  test('the trailers are read when the body has been sent (they arrive after the body starts)', async () => {
    const { c } = make(cluster(await trailerServer(), undefined));
    try {
      let trailers: string[] | undefined;
      const body = (async function* () {
        yield Buffer.from('a');
        await new Promise((r) => setTimeout(r, 20));
        trailers = ['x-late', 'yes'];
        yield Buffer.from('b');
      })();
      const h = c.chooseHost();
      assert.ok(h);
      const r = await new Promise<string>((resolve, reject) => {
        let out = '';
        c.poolFor(h).dispatch(
          { path: '/t', method: 'POST', headers: ['host', 'api.example.com'], body, trailers: () => trailers },
          { onResponseData: (_c, chunk) => void (out += chunk.toString()), onResponseEnd: () => resolve(out), onResponseError: (_c, e) => reject(e) },
        );
      });
      assert.deepEqual(JSON.parse(r), { body: 'ab', trailers: ['x-late', 'yes'] });
    } finally {
      c.close();
    }
  });
});
