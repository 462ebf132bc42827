// The CEL access log filter on entries: Istio's documented expressions, errors as false, syntax errors NACKed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileAccessLogs } from './access-log-config.ts';
import { compileCelFilter } from './cel-filter.ts';
import type { AccessLogEntry } from './formatter.ts';
import { CEL_FILTER_TYPE, FILE_ACCESS_LOG_TYPE } from '../../xds/type-urls.ts';
import { responseFlagBit } from '../http/response-flags.ts';

const http: AccessLogEntry = {
  startTime: Date.parse('2020-11-25T21:26:18.409Z'),
  method: 'GET',
  path: '/status/418?x=1',
  originalPath: '',
  authority: 'httpbin:8000',
  protocol: 'HTTP/1.1',
  responseCode: 418,
  responseFlags: 0,
  responseCodeDetails: 'via_upstream',
  connectionTerminationDetails: '',
  upstreamTransportFailureReason: '',
  bytesReceived: 0,
  bytesSent: 135,
  durationMs: 4,
  upstreamServiceTime: '4',
  xForwardedFor: '',
  userAgent: 'curl/7.73.0-DEV',
  requestId: '84961386-6d84-929d-98bd-c5aee93b5c88',
  upstreamHost: '10.44.1.27:80',
  upstreamCluster: 'outbound|8000||httpbin.foo.svc.cluster.local',
  upstreamLocalAddress: '10.44.1.23:37652',
  downstreamLocalAddress: '10.0.45.184:8000',
  downstreamRemoteAddress: '10.44.1.23:46520',
  requestedServerName: '',
  routeName: 'default',
  requestHeaders: ['x-debug', 'on'],
  responseHeaders: ['content-type', 'text/plain'],
};
const ok: AccessLogEntry = { ...http, responseCode: 200, path: '/get' };
const tcp: AccessLogEntry = {
  ...http,
  method: '',
  path: '',
  authority: '',
  protocol: '',
  responseCode: 0,
  responseCodeDetails: '',
  requestHeaders: [],
  responseHeaders: [],
};

const cases: { expression: string; entry: AccessLogEntry; want: boolean }[] = [
  { expression: 'response.code >= 400', entry: http, want: true },
  { expression: 'response.code >= 400', entry: ok, want: false },
  { expression: 'response.code >= 400', entry: tcp, want: false }, // no response code: an error, so false
  { expression: "request.headers['x-debug'] == 'on'", entry: http, want: true },
  { expression: "request.headers['x-other'] == 'on'", entry: http, want: false }, // missing key: error
  { expression: "request.headers[':authority'] == 'httpbin:8000' && request.host == 'httpbin:8000'", entry: http, want: true },
  { expression: "request.url_path == '/status/418' && request.query == 'x=1' && request.method == 'GET'", entry: http, want: true },
  { expression: "request.url_path.startsWith('/status')", entry: tcp, want: false }, // no request on a TCP entry
  { expression: "xds.cluster_name.startsWith('outbound|8000')", entry: tcp, want: true },
  { expression: "xds.route_name == 'default' && upstream.port == 80 && source.address == '10.44.1.23'", entry: http, want: true },
  { expression: "response.code_details == 'via_upstream' && response.headers['content-type'] == 'text/plain'", entry: http, want: true },
  { expression: 'response.flags == 0', entry: http, want: true },
  { expression: 'response.flags == 32', entry: { ...http, responseFlags: responseFlagBit('UF') ?? 0 }, want: true }, // Envoy's UpstreamConnectionFailure
  {
    expression: 'response.flags == 256 + 16384',
    entry: { ...http, responseFlags: (responseFlagBit('NR') ?? 0) | (responseFlagBit('DC') ?? 0) },
    want: true,
  },
  { expression: 'connection.mtls', entry: http, want: false }, // not an attribute this proxy gives: false
  { expression: 'nothing.here == 1', entry: http, want: false },
  { expression: 'response.code', entry: http, want: false }, // not a boolean
  { expression: 'true', entry: tcp, want: true },
];

for (const c of cases) {
  test(`${c.expression} on ${c.entry === tcp ? 'a TCP entry' : `a ${c.entry.responseCode} entry`} is ${c.want}`, () => {
    assert.equal(compileCelFilter(c.expression, 'f')(c.entry), c.want);
  });
}

const logWith = (expression: string): Parameters<typeof compileAccessLogs>[0] => [
  {
    name: 'envoy.access_loggers.file',
    filter: {
      and_filter: {
        filters: [
          { status_code_filter: { comparison: { op: 'GE', value: { default_value: 400 } } } },
          { extension_filter: { name: 'envoy.access_loggers.extension_filters.cel', typed_config: { '@type': CEL_FILTER_TYPE, expression } } },
        ],
      },
    },
    typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: '/dev/stdout' },
  },
];

test('an access log behind an AND of a status filter and a CEL filter logs what both pass', () => {
  const [log] = compileAccessLogs(logWith("request.headers['x-debug'] == 'on'"), 'access_log');
  assert.equal(log?.filter?.(http), true);
  assert.equal(log?.filter?.({ ...http, requestHeaders: [] }), false);
  assert.equal(log?.filter?.({ ...ok }), false);
});

test('an expression that does not parse NACKs the config, naming the field', () => {
  assert.throws(
    () => compileAccessLogs(logWith('response.code >= '), 'access_log'),
    /access_log\[0\]\.filter\.and_filter\.filters\[1\]\.extension_filter\.typed_config\.expression: Not able to parse filter expression/,
  );
});

test('an extension filter other than CEL is NACKed', () => {
  assert.throws(
    () =>
      compileAccessLogs(
        [
          {
            name: 'envoy.access_loggers.file',
            filter: { extension_filter: { name: 'x', typed_config: { '@type': 'type.googleapis.com/some.Other' } } },
            typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: '/dev/stdout' },
          },
        ],
        'access_log',
      ),
    /is not supported by this proxy/,
  );
});
