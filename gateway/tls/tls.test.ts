// TLS building blocks: ClientHello inspection, what TLS configs are NACKed, subject alt name matching, the secret store (SDS parse,
// NACK of bad PEM, redaction, retain) and a real handshake between DownstreamTls and UpstreamTls with
// rotation, SAN checks and client certificates.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, Socket, type Server } from 'node:net';
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import pino from 'pino';
import { parseClientHello } from './client-hello.ts';
import { sanMatches } from './common-context.ts';
import { SecretStore, parseSecret, referencedSecretNames } from './secrets.ts';
import { DownstreamTls, parseDownstreamTransportSocket } from './server-context.ts';
import { UpstreamTls, parseUpstreamTransportSocket } from './upstream-context.ts';
import { CertFactory } from '../../e2e/lib/certs.ts';
import type { envoy } from '../../xds/envoy.ts';

const log = pino({ level: 'silent' });
const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** The ClientHello bytes node's TLS client sends for these options. */
async function clientHello(servername: string | undefined, alpn: string[]): Promise<Buffer> {
  return new Promise((resolve) => {
    const srv = createServer((s) => {
      s.once('data', (b: Buffer) => {
        resolve(b);
        s.destroy();
        srv.close();
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      const c = tlsConnect({ host: '127.0.0.1', port, ...(servername ? { servername } : {}), ALPNProtocols: alpn, rejectUnauthorized: false });
      c.on('error', () => undefined);
    });
  });
}

describe('ClientHello inspection (tls_inspector)', () => {
  test('reads SNI and ALPN; a truncated hello is incomplete; plaintext is not TLS', async () => {
    const hello = await clientHello('httpbin.example.com', ['h2', 'http/1.1']);
    assert.deepEqual(parseClientHello(hello), { state: 'tls', sni: 'httpbin.example.com', alpn: ['h2', 'http/1.1'] });
    assert.deepEqual(parseClientHello(hello.subarray(0, 40)), { state: 'incomplete' });
    assert.deepEqual(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n')), { state: 'not-tls' });
    const noSni = await clientHello(undefined, ['http/1.1']);
    assert.equal((parseClientHello(noSni) as { sni?: string }).sni, undefined);
  });
});

describe('TLS config', () => {
  const tlsSocket = (type: string, cfg: Record<string, unknown>): envoy.config.core.v3.TransportSocket => ({
    name: 'envoy.transport_sockets.tls',
    typed_config: { '@type': `type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.${type}`, ...cfg },
  });
  const cert = { tls_certificate_sds_secret_configs: [{ name: 'kubernetes://a', sds_config: { ads: {} } }] };
  const nacks: [string, () => unknown, RegExp][] = [
    [
      'a transport socket other than TLS and raw_buffer',
      () =>
        parseDownstreamTransportSocket({ name: 'x', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.alts.v3.Alts' } }, 't'),
      /t: transport socket envoy\.extensions\.transport_sockets\.alts\.v3\.Alts is not supported by this proxy$/,
    ],
    [
      'an upstream context on a listener',
      () => parseDownstreamTransportSocket(tlsSocket('UpstreamTlsContext', {}), 't'),
      /UpstreamTlsContext is not supported/,
    ],
    ['a listener without a certificate', () => parseDownstreamTransportSocket(tlsSocket('DownstreamTlsContext', {}), 't'), /needs a certificate/],
    [
      'an OTHER_NAME subject alt name matcher',
      () =>
        parseDownstreamTransportSocket(
          tlsSocket('DownstreamTlsContext', {
            common_tls_context: { ...cert, validation_context: { match_typed_subject_alt_names: [{ san_type: 'OTHER_NAME', matcher: { exact: 'x' } }] } },
          }),
          't',
        ),
      /match_typed_subject_alt_names\[0\]\.san_type: OTHER_NAME is not supported/,
    ],
    [
      'certificate pinning (verify_certificate_hash)',
      () =>
        parseUpstreamTransportSocket(tlsSocket('UpstreamTlsContext', { common_tls_context: { validation_context: { verify_certificate_hash: ['ab'] } } }), 't'),
      /verify_certificate_spki \/ verify_certificate_hash are not supported/,
    ],
    [
      'an inline certificate with a password (not applied)',
      () =>
        parseDownstreamTransportSocket(
          tlsSocket('DownstreamTlsContext', {
            common_tls_context: {
              tls_certificates: [{ certificate_chain: { inline_string: 'c' }, private_key: { inline_string: 'k' }, password: { inline_string: 'p' } }],
            },
          }),
          't',
        ),
      /tls_certificates\[0\]: field 'password' is not supported/,
    ],
    [
      'an SDS CA secret with subject alt names (they would not be checked)',
      () => parseSecret({ name: 'ca', validation_context: { trusted_ca: { inline_string: 'x' }, match_subject_alt_names: [{ exact: 'a' }] } }),
      /secret 'ca'\.validation_context: field 'match_subject_alt_names' is not supported/,
    ],
    [
      'a data source from an environment variable',
      () => parseSecret({ name: 'c', tls_certificate: { certificate_chain: { environment_variable: 'CERT' } } }),
      /certificate_chain: only inline_bytes, inline_string and filename data sources are supported/,
    ],
  ];
  for (const [name, fn, re] of nacks) test(`NACKed: ${name}`, () => assert.throws(fn, re));

  test('raw_buffer, by type or by name, is plaintext', () => {
    assert.equal(parseDownstreamTransportSocket({ name: 'envoy.transport_sockets.raw_buffer' }, 't'), undefined);
    const raw = { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer' };
    assert.equal(parseUpstreamTransportSocket({ name: 'x', typed_config: raw }, 't'), undefined);
  });

  test('typed subject alt name matchers match names of their type only; untyped ones match any', () => {
    const spec = (sans: envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext) =>
      parseUpstreamTransportSocket(tlsSocket('UpstreamTlsContext', { common_tls_context: { validation_context: sans } }), 't')?.common.sanMatchers ?? [];
    const peer = { subjectaltname: 'DNS:api.example.com, URI:spiffe://cluster.local/ns/a/sa/b, IP Address:10.0.0.1' } as PeerCertificate;
    const typed = (sanType: envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher.SanType, exact: string): boolean =>
      sanMatches(spec({ match_typed_subject_alt_names: [{ san_type: sanType, matcher: { exact } }] }), peer);
    assert.equal(typed('DNS', 'api.example.com'), true);
    assert.equal(typed('URI', 'api.example.com'), false);
    assert.equal(typed('URI', 'spiffe://cluster.local/ns/a/sa/b'), true);
    assert.equal(typed('IP_ADDRESS', '10.0.0.1'), true);
    assert.equal(typed('DNS', '10.0.0.1'), false);
    assert.equal(sanMatches(spec({ match_subject_alt_names: [{ suffix: '/sa/b' }] }), peer), true);
  });

  test('require_sni: a handshake without a server name is refused before it starts', async () => {
    const spec = parseDownstreamTransportSocket(tlsSocket('DownstreamTlsContext', { require_sni: true, common_tls_context: cert }), 't');
    assert.ok(spec);
    const store = new SecretStore(log);
    const sock = new Socket();
    const r = await new DownstreamTls(spec, store, undefined).accept(sock, { timeoutMs: 100, warmMs: 10, log, sni: undefined }, () => assert.fail('secure'));
    assert.deepEqual(r, { ok: false, reason: 'require_sni: the ClientHello names no server', failure: 'connection_error' });
    assert.equal(sock.destroyed, true);
    store.close();
  });
});

describe('secrets and handshakes', () => {
  const certs = new CertFactory();
  const ca = certs.ca('example.com');
  const other = certs.ca('other');
  const leaf1 = certs.leaf(ca, 'api.example.com', { dns: ['api.example.com'] });
  const leaf2 = certs.leaf(ca, 'api.example.com', { dns: ['api.example.com'] });
  const client = certs.leaf(ca, 'client.example.com', { dns: ['client.example.com'], client: true });
  const strangerClient = certs.leaf(other, 'client.example.com', { dns: ['client.example.com'], client: true });
  const wrongSanClient = certs.leaf(ca, 'intruder.example.com', { dns: ['intruder.example.com'], client: true });
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.close();
    certs.cleanup();
  });

  const certSecret = (name: string, kp: { cert: string; key: string }) => ({
    name,
    tls_certificate: { certificate_chain: { inline_bytes: b64(kp.cert) }, private_key: { inline_bytes: b64(kp.key) } },
  });
  const caSecret = (name: string, pem: string) => ({ name, validation_context: { trusted_ca: { inline_bytes: b64(pem) } } });

  test('SDS: bad PEM is NACKed and the old value kept; config_dump redacts keys; retain forgets unreferenced secrets', () => {
    const store = new SecretStore(log);
    assert.deepEqual(store.applySds([certSecret('kubernetes://a', leaf1)], 'v1').errors, []);
    const v1 = store.get('kubernetes://a');
    const bad = store.applySds(
      [{ name: 'kubernetes://a', tls_certificate: { certificate_chain: { inline_bytes: b64('nope') }, private_key: { inline_bytes: b64(leaf1.key) } } }],
      'v2',
    );
    assert.match(bad.errors[0] ?? '', /secret 'kubernetes:\/\/a'\.tls_certificate\.certificate_chain: not a PEM certificate/);
    assert.equal(store.get('kubernetes://a'), v1);
    const dump = store.configDump() as { dynamic_active_secrets: { secret: { tls_certificate: { private_key: { inline_bytes: string } } } }[] };
    assert.equal(Buffer.from(dump.dynamic_active_secrets[0]?.secret.tls_certificate.private_key.inline_bytes ?? '', 'base64').toString(), '[redacted]');
    store.retain([]);
    assert.equal(store.get('kubernetes://a'), undefined);
    assert.throws(() => parseSecret({ name: 'x' }), /neither tls_certificate nor validation_context/);
    store.close();
  });

  test('referenced SDS names: ADS ones are subscribed, file ones resolved locally', () => {
    const r = referencedSecretNames([
      {
        common_tls_context: {
          tls_certificate_sds_secret_configs: [{ name: 'kubernetes://a', sds_config: { ads: {} } }],
          combined_validation_context: { validation_context_sds_secret_config: { name: 'file-root:system', sds_config: { api_config_source: {} } } },
        },
      },
    ]);
    assert.deepEqual(r, { ads: ['kubernetes://a'], files: ['file-root:system'] });
  });

  /** A TLS-terminating server on loopback using DownstreamTls; answers "hello <CN of client or ->". */
  async function terminating(store: SecretStore, tlsJson: envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext): Promise<number> {
    const spec = parseDownstreamTransportSocket(
      {
        name: 'envoy.transport_sockets.tls',
        typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', ...tlsJson },
      },
      'test',
    );
    assert.ok(spec);
    const d = new DownstreamTls(spec, store, ['http/1.1']);
    const srv = createServer((sock: Socket) => {
      void d.accept(sock, { timeoutMs: 2000, warmMs: 200, log, sni: undefined }, (t: TLSSocket) => {
        const peer = t.getPeerCertificate();
        t.end(`hello ${peer && Object.keys(peer).length ? String(peer.subject.CN) : '-'}`);
      });
    });
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    return (srv.address() as { port: number }).port;
  }

  /** `auto`: the cluster's upstream_http_protocol_options auto_sni and auto_san_validation. */
  function upstream(store: SecretStore, tlsJson: envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, auto = false): UpstreamTls {
    const spec = parseUpstreamTransportSocket(
      {
        name: 'envoy.transport_sockets.tls',
        typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', ...tlsJson },
      },
      'test',
    );
    assert.ok(spec);
    return new UpstreamTls({ ...spec, autoSni: auto, autoSanValidation: auto }, store);
  }

  const call = (u: UpstreamTls, port: number, hostname = ''): Promise<{ body: string; fingerprint: string }> =>
    new Promise((resolve, reject) => {
      u.connect({ host: '127.0.0.1', port, hostname, timeoutMs: 2000 }, [], (err, s) => {
        if (err || !s) return reject(err ?? new Error('no socket'));
        const fingerprint = s.getPeerCertificate().fingerprint256;
        let body = '';
        s.on('data', (b: Buffer) => (body += b.toString()));
        s.on('end', () => resolve({ body, fingerprint }));
        s.on('error', reject);
      });
    });

  test('SIMPLE origination to a SIMPLE server: SNI and SAN checks, system roots reject a private CA, rotation applies to new handshakes', async () => {
    const store = new SecretStore(log);
    store.applySds([certSecret('kubernetes://api', leaf1), caSecret('kubernetes://api-cacert', ca.cert)], 'v1');
    const port = await terminating(store, {
      common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'kubernetes://api', sds_config: { ads: {} } }] },
    });
    const validation = {
      combined_validation_context: {
        default_validation_context: {},
        validation_context_sds_secret_config: { name: 'kubernetes://api-cacert', sds_config: { ads: {} } },
      },
    };
    const ok = upstream(store, { sni: 'api.example.com', common_tls_context: validation });
    const first = await call(ok, port);
    assert.equal(first.body, 'hello -');
    // auto_san_validation against the endpoint's name: a wrong name fails the handshake.
    const auto = upstream(store, { common_tls_context: validation }, true);
    assert.equal((await call(auto, port, 'api.example.com')).body, 'hello -');
    await assert.rejects(call(auto, port, 'other.example.com'), /Hostname\/IP does not match|altnames/);
    const san = upstream(store, {
      common_tls_context: {
        combined_validation_context: {
          default_validation_context: { match_subject_alt_names: [{ exact: 'spiffe://nope' }] },
          validation_context_sds_secret_config: { name: 'kubernetes://api-cacert', sds_config: { ads: {} } },
        },
      },
    });
    await assert.rejects(call(san, port), /subject alt names do not match/);
    const system = upstream(store, {
      common_tls_context: {
        combined_validation_context: {
          default_validation_context: {},
          validation_context_sds_secret_config: { name: 'file-root:system', sds_config: { api_config_source: {} } },
        },
      },
    });
    await assert.rejects(call(system, port), /unable to get local issuer|self.signed|unable to verify/i);
    const insecure = upstream(store, { common_tls_context: { validation_context: {} } });
    assert.equal((await call(insecure, port)).body, 'hello -');
    // Rotation: the next handshake presents the new certificate.
    store.applySds([certSecret('kubernetes://api', leaf2), caSecret('kubernetes://api-cacert', ca.cert)], 'v2');
    const second = await call(ok, port);
    assert.notEqual(second.fingerprint, first.fingerprint);
    store.close();
  });

  test('MUTUAL: the client certificate is required, must chain to the CA and match subjectAltNames', async () => {
    const store = new SecretStore(log);
    store.applySds(
      [
        certSecret('kubernetes://api', leaf1),
        caSecret('kubernetes://api-cacert', ca.cert),
        certSecret('kubernetes://client', client),
        certSecret('kubernetes://stranger', strangerClient),
        certSecret('kubernetes://intruder', wrongSanClient),
      ],
      'v1',
    );
    const port = await terminating(store, {
      require_client_certificate: true,
      common_tls_context: {
        tls_certificate_sds_secret_configs: [{ name: 'kubernetes://api', sds_config: { ads: {} } }],
        combined_validation_context: {
          default_validation_context: { match_subject_alt_names: [{ exact: 'client.example.com' }] },
          validation_context_sds_secret_config: { name: 'kubernetes://api-cacert', sds_config: { ads: {} } },
        },
      },
    });
    const withCert = (name: string): UpstreamTls =>
      upstream(store, { common_tls_context: { validation_context: {}, tls_certificate_sds_secret_configs: [{ name, sds_config: { ads: {} } }] } });
    assert.equal((await call(withCert('kubernetes://client'), port)).body, 'hello client.example.com');
    // Refused: a TLS alert, or (TLS 1.3: the client finishes first) the connection closed with no bytes.
    const refused = async (p: Promise<{ body: string }>): Promise<void> => {
      const r = await p.catch(() => ({ body: '' }));
      assert.equal(r.body, '');
    };
    await refused(call(upstream(store, { common_tls_context: { validation_context: {} } }), port));
    await refused(call(withCert('kubernetes://stranger'), port));
    await refused(call(withCert('kubernetes://intruder'), port));
    store.close();
  });

  test('a handshake for a secret that never arrives is refused after the warming wait', async () => {
    const store = new SecretStore(log);
    const port = await terminating(store, {
      common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'kubernetes://late', sds_config: { ads: {} } }] },
    });
    const c = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    await assert.rejects(
      new Promise((resolve, reject) => {
        c.once('secureConnect', resolve);
        c.once('error', reject);
        c.once('close', () => reject(new Error('closed')));
      }),
    );
    store.close();
  });
});
