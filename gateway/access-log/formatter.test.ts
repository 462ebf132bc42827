// Access log lines, golden style: one entry per kind of request a gateway logs (200 through the upstream, 404 NR,
// 503 UH and UF, 403 from RBAC, gRPC over HTTP/2, a TCP connection), each printed in Istio's TEXT format and its
// JSON encoding, compared byte for byte with the lines Envoy prints (the first two are the examples of Istio's
// "Envoy Access Logs" task and of its troubleshooting docs, field for field).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ISTIO_JSON_LOG_FORMAT, ISTIO_TEXT_LOG_FORMAT } from '../../xds/istio-access-log.ts';
import { NR, UF, UH } from '../http/response-flags.ts';
import { compileJsonFormat, compileTextFormat, type AccessLogEntry } from './formatter.ts';
import { compileAccessLogs } from './access-log-config.ts';
import { FILE_ACCESS_LOG_TYPE, REQ_WITHOUT_QUERY_TYPE } from '../../xds/type-urls.ts';

const base: AccessLogEntry = {
  startTime: Date.parse('2020-11-25T21:26:18.409Z'),
  method: 'GET',
  path: '/status/418',
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
};

const cases: { name: string; entry: AccessLogEntry; text: string; json: string }[] = [
  {
    name: "200-class through the upstream (Istio's access log task example)",
    entry: base,
    text:
      '[2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 4 4 "-" "curl/7.73.0-DEV" ' +
      '"84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "10.44.1.27:80" outbound|8000||httpbin.foo.svc.cluster.local ' +
      '10.44.1.23:37652 10.0.45.184:8000 10.44.1.23:46520 - default\n',
    json:
      '{"authority":"httpbin:8000","bytes_received":0,"bytes_sent":135,"connection_termination_details":null,' +
      '"downstream_local_address":"10.0.45.184:8000","downstream_remote_address":"10.44.1.23:46520","duration":4,"method":"GET",' +
      '"path":"/status/418","protocol":"HTTP/1.1","request_id":"84961386-6d84-929d-98bd-c5aee93b5c88","requested_server_name":null,' +
      '"response_code":418,"response_code_details":"via_upstream","response_flags":"-","route_name":"default",' +
      '"start_time":"2020-11-25T21:26:18.409Z","upstream_cluster":"outbound|8000||httpbin.foo.svc.cluster.local",' +
      '"upstream_host":"10.44.1.27:80","upstream_local_address":"10.44.1.23:37652","upstream_service_time":"4",' +
      '"upstream_transport_failure_reason":null,"user_agent":"curl/7.73.0-DEV","x_forwarded_for":null}\n',
  },
  {
    name: "503 UF, connection refused (Istio's troubleshooting example)",
    entry: {
      ...base,
      startTime: Date.parse('2023-01-01T14:47:26.285Z'),
      path: '/hello',
      authority: 'helloworld:5000',
      responseCode: 503,
      responseFlags: UF,
      responseCodeDetails: 'upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111}',
      upstreamTransportFailureReason: 'delayed_connect_error:_111',
      bytesSent: 145,
      durationMs: 0,
      upstreamServiceTime: '',
      userAgent: 'curl/7.87.0-DEV',
      requestId: '35e8ba81-0000-4a62-9e39-4de2e2ad2a4f',
      upstreamHost: '10.1.2.31:5000',
      upstreamCluster: 'inbound|5000||',
      upstreamLocalAddress: '',
      downstreamLocalAddress: '10.1.2.31:5000',
      downstreamRemoteAddress: '172.16.9.8:5067',
    },
    text:
      '[2023-01-01T14:47:26.285Z] "GET /hello HTTP/1.1" 503 UF upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111} - ' +
      '"delayed_connect_error:_111" 0 145 0 - "-" "curl/7.87.0-DEV" "35e8ba81-0000-4a62-9e39-4de2e2ad2a4f" "helloworld:5000" "10.1.2.31:5000" ' +
      'inbound|5000|| - 10.1.2.31:5000 172.16.9.8:5067 - default\n',
    json:
      '{"authority":"helloworld:5000","bytes_received":0,"bytes_sent":145,"connection_termination_details":null,' +
      '"downstream_local_address":"10.1.2.31:5000","downstream_remote_address":"172.16.9.8:5067","duration":0,"method":"GET",' +
      '"path":"/hello","protocol":"HTTP/1.1","request_id":"35e8ba81-0000-4a62-9e39-4de2e2ad2a4f","requested_server_name":null,' +
      '"response_code":503,"response_code_details":"upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111}",' +
      '"response_flags":"UF","route_name":"default","start_time":"2023-01-01T14:47:26.285Z","upstream_cluster":"inbound|5000||",' +
      '"upstream_host":"10.1.2.31:5000","upstream_local_address":null,"upstream_service_time":null,' +
      '"upstream_transport_failure_reason":"delayed_connect_error:_111","user_agent":"curl/7.87.0-DEV","x_forwarded_for":null}\n',
  },
  {
    name: '404 NR: no route, no upstream',
    entry: {
      ...base,
      path: '/nowhere?x=1',
      authority: 'unknown.example.com',
      responseCode: 404,
      responseFlags: NR,
      responseCodeDetails: 'route_not_found',
      bytesSent: 0,
      durationMs: 0,
      upstreamServiceTime: '',
      xForwardedFor: '10.0.0.9',
      upstreamHost: '',
      upstreamCluster: '',
      upstreamLocalAddress: '',
      routeName: '',
    },
    text:
      '[2020-11-25T21:26:18.409Z] "GET /nowhere?x=1 HTTP/1.1" 404 NR route_not_found - "-" 0 0 0 - "10.0.0.9" "curl/7.73.0-DEV" ' +
      '"84961386-6d84-929d-98bd-c5aee93b5c88" "unknown.example.com" "-" - - 10.0.45.184:8000 10.44.1.23:46520 - -\n',
    json:
      '{"authority":"unknown.example.com","bytes_received":0,"bytes_sent":0,"connection_termination_details":null,' +
      '"downstream_local_address":"10.0.45.184:8000","downstream_remote_address":"10.44.1.23:46520","duration":0,"method":"GET",' +
      '"path":"/nowhere?x=1","protocol":"HTTP/1.1","request_id":"84961386-6d84-929d-98bd-c5aee93b5c88","requested_server_name":null,' +
      '"response_code":404,"response_code_details":"route_not_found","response_flags":"NR","route_name":null,' +
      '"start_time":"2020-11-25T21:26:18.409Z","upstream_cluster":null,"upstream_host":null,"upstream_local_address":null,' +
      '"upstream_service_time":null,"upstream_transport_failure_reason":null,"user_agent":"curl/7.73.0-DEV","x_forwarded_for":"10.0.0.9"}\n',
  },
  {
    name: '503 UH: the cluster has no healthy endpoint, POST with a body, a rewritten path',
    entry: {
      ...base,
      method: 'POST',
      path: '/v2/items',
      originalPath: '/api/items',
      responseCode: 503,
      responseFlags: UH,
      responseCodeDetails: 'no_healthy_upstream',
      bytesReceived: 12,
      bytesSent: 19,
      durationMs: 1,
      upstreamServiceTime: '',
      upstreamHost: '',
      upstreamLocalAddress: '',
    },
    text:
      '[2020-11-25T21:26:18.409Z] "POST /api/items HTTP/1.1" 503 UH no_healthy_upstream - "-" 12 19 1 - "-" "curl/7.73.0-DEV" ' +
      '"84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "-" outbound|8000||httpbin.foo.svc.cluster.local - 10.0.45.184:8000 10.44.1.23:46520 - default\n',
    json:
      '{"authority":"httpbin:8000","bytes_received":12,"bytes_sent":19,"connection_termination_details":null,' +
      '"downstream_local_address":"10.0.45.184:8000","downstream_remote_address":"10.44.1.23:46520","duration":1,"method":"POST",' +
      '"path":"/api/items","protocol":"HTTP/1.1","request_id":"84961386-6d84-929d-98bd-c5aee93b5c88","requested_server_name":null,' +
      '"response_code":503,"response_code_details":"no_healthy_upstream","response_flags":"UH","route_name":"default",' +
      '"start_time":"2020-11-25T21:26:18.409Z","upstream_cluster":"outbound|8000||httpbin.foo.svc.cluster.local","upstream_host":null,' +
      '"upstream_local_address":null,"upstream_service_time":null,"upstream_transport_failure_reason":null,"user_agent":"curl/7.73.0-DEV",' +
      '"x_forwarded_for":null}\n',
  },
  {
    name: '403 from RBAC over TLS (SNI), a user agent with a quote',
    entry: {
      ...base,
      path: '/admin',
      responseCode: 403,
      responseCodeDetails: 'rbac_access_denied_matched_policy[ns[default]-policy[deny-admin]-rule[0]]',
      bytesSent: 19,
      durationMs: 0,
      upstreamServiceTime: '',
      userAgent: 'say "hi"',
      upstreamHost: '',
      upstreamCluster: '',
      upstreamLocalAddress: '',
      requestedServerName: 'httpbin.example.com',
    },
    text:
      '[2020-11-25T21:26:18.409Z] "GET /admin HTTP/1.1" 403 - rbac_access_denied_matched_policy[ns[default]-policy[deny-admin]-rule[0]] - "-" 0 19 0 - ' +
      '"-" "say "hi"" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "-" - - 10.0.45.184:8000 10.44.1.23:46520 httpbin.example.com default\n',
    json:
      '{"authority":"httpbin:8000","bytes_received":0,"bytes_sent":19,"connection_termination_details":null,' +
      '"downstream_local_address":"10.0.45.184:8000","downstream_remote_address":"10.44.1.23:46520","duration":0,"method":"GET",' +
      '"path":"/admin","protocol":"HTTP/1.1","request_id":"84961386-6d84-929d-98bd-c5aee93b5c88","requested_server_name":"httpbin.example.com",' +
      '"response_code":403,"response_code_details":"rbac_access_denied_matched_policy[ns[default]-policy[deny-admin]-rule[0]]",' +
      '"response_flags":"-","route_name":"default","start_time":"2020-11-25T21:26:18.409Z","upstream_cluster":null,"upstream_host":null,' +
      '"upstream_local_address":null,"upstream_service_time":null,"upstream_transport_failure_reason":null,"user_agent":"say \\"hi\\"",' +
      '"x_forwarded_for":null}\n',
  },
  {
    name: 'gRPC over HTTP/2',
    entry: {
      ...base,
      method: 'POST',
      path: '/helloworld.Greeter/SayHello',
      protocol: 'HTTP/2',
      responseCode: 200,
      bytesReceived: 12,
      bytesSent: 17,
      durationMs: 2,
      upstreamServiceTime: '1',
      userAgent: 'grpc-go/1.60.0',
      authority: 'grpc.example.com',
    },
    text:
      '[2020-11-25T21:26:18.409Z] "POST /helloworld.Greeter/SayHello HTTP/2" 200 - via_upstream - "-" 12 17 2 1 "-" "grpc-go/1.60.0" ' +
      '"84961386-6d84-929d-98bd-c5aee93b5c88" "grpc.example.com" "10.44.1.27:80" outbound|8000||httpbin.foo.svc.cluster.local ' +
      '10.44.1.23:37652 10.0.45.184:8000 10.44.1.23:46520 - default\n',
    json:
      '{"authority":"grpc.example.com","bytes_received":12,"bytes_sent":17,"connection_termination_details":null,' +
      '"downstream_local_address":"10.0.45.184:8000","downstream_remote_address":"10.44.1.23:46520","duration":2,"method":"POST",' +
      '"path":"/helloworld.Greeter/SayHello","protocol":"HTTP/2","request_id":"84961386-6d84-929d-98bd-c5aee93b5c88","requested_server_name":null,' +
      '"response_code":200,"response_code_details":"via_upstream","response_flags":"-","route_name":"default",' +
      '"start_time":"2020-11-25T21:26:18.409Z","upstream_cluster":"outbound|8000||httpbin.foo.svc.cluster.local","upstream_host":"10.44.1.27:80",' +
      '"upstream_local_address":"10.44.1.23:37652","upstream_service_time":"1","upstream_transport_failure_reason":null,' +
      '"user_agent":"grpc-go/1.60.0","x_forwarded_for":null}\n',
  },
  {
    name: 'a TCP connection (tcp_proxy): no request, protocol or response code',
    entry: {
      ...base,
      method: '',
      path: '',
      authority: '',
      protocol: '',
      responseCode: 0,
      responseCodeDetails: '',
      bytesReceived: 5,
      bytesSent: 7,
      durationMs: 10,
      upstreamServiceTime: '',
      userAgent: '',
      requestId: '',
      routeName: '',
    },
    text:
      '[2020-11-25T21:26:18.409Z] "- - -" 0 - - - "-" 5 7 10 - "-" "-" "-" "-" "10.44.1.27:80" outbound|8000||httpbin.foo.svc.cluster.local ' +
      '10.44.1.23:37652 10.0.45.184:8000 10.44.1.23:46520 - -\n',
    json:
      '{"authority":null,"bytes_received":5,"bytes_sent":7,"connection_termination_details":null,' +
      '"downstream_local_address":"10.0.45.184:8000","downstream_remote_address":"10.44.1.23:46520","duration":10,"method":null,' +
      '"path":null,"protocol":null,"request_id":null,"requested_server_name":null,"response_code":0,"response_code_details":null,' +
      '"response_flags":"-","route_name":null,"start_time":"2020-11-25T21:26:18.409Z",' +
      '"upstream_cluster":"outbound|8000||httpbin.foo.svc.cluster.local","upstream_host":"10.44.1.27:80",' +
      '"upstream_local_address":"10.44.1.23:37652","upstream_service_time":null,"upstream_transport_failure_reason":null,' +
      '"user_agent":null,"x_forwarded_for":null}\n',
  },
];

const text = compileTextFormat(ISTIO_TEXT_LOG_FORMAT);
const json = compileJsonFormat(ISTIO_JSON_LOG_FORMAT);
for (const c of cases) {
  test(`Istio TEXT line: ${c.name}`, () => assert.equal(text(c.entry), c.text));
  test(`Istio JSON line: ${c.name}`, () => {
    assert.equal(json(c.entry), c.json);
    assert.doesNotThrow(() => JSON.parse(c.json) as unknown);
  });
}

const withHeaders: AccessLogEntry = {
  ...base,
  path: '/search?q=a%20b&x=1',
  requestHeaders: ['x-tenant', 'acme', 'x-empty', ''],
  responseHeaders: ['content-type', 'text/plain', 'x-envoy-upstream-service-time', '4'],
};

const textCases: { name: string; format: string; entry?: AccessLogEntry; out: string; reqWithoutQuery?: boolean; omitEmpty?: boolean }[] = [
  { name: '%% is a literal percent sign', format: '100%% %RESPONSE_CODE%', out: '100% 418' },
  { name: 'REQ with an alternative header and a length', format: '%REQ(X-MISSING?X-TENANT):2% %REQ(X-MISSING)%', entry: withHeaders, out: 'ac -' },
  {
    name: 'header names are case-insensitive; RESP reads the response headers',
    format: '%REQ(x-Tenant)% %RESP(Content-Type)% %RESP(:STATUS)%',
    entry: withHeaders,
    out: 'acme text/plain 418',
  },
  { name: 'a header present with an empty value prints nothing', format: '[%REQ(X-EMPTY)%]', entry: withHeaders, out: '[]' },
  {
    name: 'REQ_WITHOUT_QUERY with the formatter extension',
    format: '%REQ_WITHOUT_QUERY(:PATH)% %REQ_WITHOUT_QUERY(:PATH):4%',
    entry: withHeaders,
    out: '/search /sea',
    reqWithoutQuery: true,
  },
  { name: 'omit_empty_values prints missing values as nothing', format: '%UPSTREAM_TRANSPORT_FAILURE_REASON%|%ROUTE_NAME%', out: '|default', omitEmpty: true },
  {
    name: 'START_TIME with a strftime format',
    format: '%START_TIME(%Y/%m/%dT%H:%M:%S.%3f %s %E3S %f)%',
    out: '2020/11/25T21:26:18.409 1606339578 18.409 409000000',
  },
  {
    name: 'addresses without their ports',
    format: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%',
    out: '10.44.1.23 10.0.45.184',
  },
  { name: 'an empty format is an empty line', format: '', out: '' },
];
for (const c of textCases) {
  test(`text format: ${c.name}`, () => {
    const f = compileTextFormat(c.format, { omitEmptyValues: c.omitEmpty === true, extensions: { reqWithoutQuery: c.reqWithoutQuery === true } });
    assert.equal(f(c.entry ?? base), c.out);
  });
}

test('JSON format: constants as given, nested objects and keys sorted at every level, templates of several operators as strings', () => {
  const f = compileJsonFormat({
    z: '%RESPONSE_CODE%',
    a: 'code=%RESPONSE_CODE% via %UPSTREAM_TRANSPORT_FAILURE_REASON%',
    n: 1.5,
    b: true,
    nil: null,
    list: ['x', 2, '%BYTES_SENT%'],
    nested: { y: '%REQ(:METHOD)%', c: 'const', é: 1, Z: 0 },
    pct: '100%%',
  });
  assert.equal(
    f(base),
    '{"a":"code=418 via -","b":true,"list":["x",2,135],"n":1.5,"nested":{"Z":0,"c":"const","y":"GET","é":1},"nil":null,"pct":"100%","z":418}\n',
  );
});

test('JSON format with omit_empty_values: missing operators and literal nulls leave their keys out, an emptied object goes, lists stay', () => {
  const f = compileJsonFormat(
    {
      code: '%RESPONSE_CODE%',
      host: '%UPSTREAM_HOST%',
      nil: null,
      both: '%ROUTE_NAME%/%REQUESTED_SERVER_NAME%',
      inner: { sni: '%REQUESTED_SERVER_NAME%', nil: null },
      list: ['%REQUESTED_SERVER_NAME%', 1, null],
    },
    { omitEmptyValues: true },
  );
  assert.equal(f({ ...base, upstreamHost: '' }), '{"both":"default/","code":418,"list":[1]}\n');
  const empty = compileJsonFormat({ sni: '%REQUESTED_SERVER_NAME%' }, { omitEmptyValues: true });
  assert.equal(empty(base), '{}\n');
});

test('JSON format: control characters and non-ASCII in values are escaped as JSON strings', () => {
  const f = compileJsonFormat({ ua: '%REQ(USER-AGENT)%' });
  assert.equal(f({ ...base, userAgent: 'a\tb\u0001ü' }), '{"ua":"a\\tb\\u0001ü"}\n');
});

const errors: { name: string; format: string; error: RegExp }[] = [
  { name: 'an unknown command', format: '%NOT_A_COMMAND%', error: /Not supported field in StreamInfo: NOT_A_COMMAND/ },
  { name: 'REQ without a header', format: '%REQ%', error: /REQ requires parameters/ },
  { name: 'a parameter for a command without any', format: '%PROTOCOL(x)%', error: /PROTOCOL does not take any parameters/ },
  { name: 'a length where none is allowed', format: '%BYTES_SENT:3%', error: /BYTES_SENT does not allow length/ },
  { name: 'an unterminated command', format: 'x %REQ(:PATH', error: /Couldn't find valid command at position 2/ },
  { name: 'two alternative headers', format: '%REQ(A?B?C)%', error: /More than 1 alternative header/ },
  {
    name: 'REQ_WITHOUT_QUERY without its formatter extension',
    format: '%REQ_WITHOUT_QUERY(:PATH)%',
    error: /Not supported field in StreamInfo: REQ_WITHOUT_QUERY/,
  },
  { name: 'an unsupported time conversion', format: '%START_TIME(%A)%', error: /%A is not supported/ },
];
for (const c of errors) test(`format refused: ${c.name}`, () => assert.throws(() => compileTextFormat(c.format), c.error));

const fileLog = (logFormat: Record<string, unknown>, filter?: Record<string, unknown>): Record<string, unknown> => ({
  name: 'envoy.access_loggers.file',
  ...(filter ? { filter } : {}),
  typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: '/dev/stdout', log_format: logFormat },
});

test("Istio's listener logger: only connections with the NR flag pass its response_flag_filter", () => {
  const [l] = compileAccessLogs(
    [fileLog({ text_format_source: { inline_string: '%RESPONSE_FLAGS%\n' } }, { response_flag_filter: { flags: ['NR'] } })] as never,
    'al',
  );
  assert.ok(l?.filter);
  assert.equal(l.filter({ ...base, responseFlags: NR }), true);
  assert.equal(l.filter({ ...base, responseFlags: UF }), false);
  assert.equal(l.path, '/dev/stdout');
  assert.equal(l.format({ ...base, responseFlags: NR }), 'NR\n');
});

test('filters: status code comparison, and/or, duration, an empty response_flag_filter (any flag)', () => {
  const [l] = compileAccessLogs(
    [
      fileLog(
        { text_format: 'x' },
        {
          or_filter: {
            filters: [
              {
                and_filter: {
                  filters: [
                    { status_code_filter: { comparison: { op: 'GE', value: { default_value: 400, runtime_key: 'k' } } } },
                    { response_flag_filter: {} },
                  ],
                },
              },
              { duration_filter: { comparison: { op: 'GE', value: { default_value: 1000 } } } },
            ],
          },
        },
      ),
    ] as never,
    'al',
  );
  const f = l?.filter;
  assert.ok(f);
  assert.equal(f({ ...base, responseCode: 503, responseFlags: UH }), true);
  assert.equal(f({ ...base, responseCode: 503 }), false);
  assert.equal(f({ ...base, responseCode: 200, durationMs: 1500 }), true);
});

test('the req_without_query formatter extension enables REQ_WITHOUT_QUERY', () => {
  const [l] = compileAccessLogs(
    [
      fileLog({
        json_format: { p: '%REQ_WITHOUT_QUERY(:PATH)%' },
        formatters: [{ name: 'envoy.formatter.req_without_query', typed_config: { '@type': REQ_WITHOUT_QUERY_TYPE } }],
        json_format_options: {},
      }),
    ] as never,
    'al',
  );
  assert.equal(l?.format({ ...base, path: '/a?b=1' }), '{"p":"/a"}\n');
});

const nacks: { name: string; log: Record<string, unknown>; error: RegExp }[] = [
  {
    name: 'another access logger',
    log: { name: 'grpc', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig' } },
    error: /al\[0\]: access logger .*HttpGrpcAccessLogConfig is not supported/,
  },
  {
    name: 'an extension filter without the CEL config',
    log: fileLog({ text_format: 'x' }, { extension_filter: { name: 'cel' } }),
    error: /al\[0\]\.filter\.extension_filter: access log filter cel is not supported by this proxy/,
  },
  { name: 'an unknown response flag', log: fileLog({ text_format: 'x' }, { response_flag_filter: { flags: ['XX'] } }), error: /unknown response flag 'XX'/ },
  {
    name: 'a format read from a file',
    log: fileLog({ text_format_source: { filename: '/etc/format' } }),
    error: /text_format_source: field 'filename' is not supported/,
  },
  {
    name: 'another formatter extension',
    log: fileLog({ text_format: 'x', formatters: [{ name: 'cel', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.formatter.cel.v3.Cel' } }] }),
    error: /formatter extension .*Cel is not supported/,
  },
  { name: 'a bad command', log: fileLog({ text_format: '%NOPE%' }), error: /al\[0\]\.typed_config\.log_format: Not supported field in StreamInfo: NOPE/ },
  { name: 'no path', log: { name: 'f', typed_config: { '@type': FILE_ACCESS_LOG_TYPE, log_format: { text_format: 'x' } } }, error: /needs a path/ },
];

test("a FileAccessLog without log_format prints Envoy's default format", () => {
  const [l] = compileAccessLogs([{ name: 'f', typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: '/dev/stdout' } }] as never, 'al');
  assert.equal(
    l?.format(base),
    '[2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - 0 135 4 4 "-" "curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "10.44.1.27:80"\n',
  );
});
for (const c of nacks) test(`access_log NACKed: ${c.name}`, () => assert.throws(() => compileAccessLogs([c.log] as never, 'al'), c.error));
