// The access log istiod configures from the mesh config when no Telemetry API provider applies
// (pilot/pkg/networking/core/accesslog.go, pilot/pkg/model/telemetry_logging.go FileAccessLogFromMeshConfig):
// `accessLogFile` set -> an `envoy.access_loggers.file` logger on every gateway HCM and tcp_proxy, and on the
// listener itself with a response_flag_filter NR (connections no filter chain matched), unless
// `disableEnvoyListenerLog`. `accessLogEncoding` TEXT uses `accessLogFormat` (a newline appended when missing) or
// Istio's EnvoyTextLogFormat; JSON uses `accessLogFormat` parsed as a JSON object, or Istio's default labels when it
// is empty or does not parse (istiod logs the error and falls back). A format naming %REQ_WITHOUT_QUERY gets the
// envoy.formatter.req_without_query formatter extension.
import type { envoy, JsonValue } from '../../xds/envoy.ts';
import { typedAny } from '../../xds/envoy.ts';
import { FILE_ACCESS_LOG_TYPE, REQ_WITHOUT_QUERY_TYPE } from '../../xds/type-urls.ts';
import type { MeshConfig } from '../model/mesh-config.ts';

type AccessLog = envoy.config.accesslog.v3.AccessLog;
type FormatString = envoy.config.core.v3.SubstitutionFormatString;

/** Istio's EnvoyTextLogFormat (Istio 1.9 onwards). */
export const ISTIO_TEXT_LOG_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% ' +
  '%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" ' +
  '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% ' +
  '%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** Istio's EnvoyJSONLogFormatIstio labels (Envoy prints the keys sorted). */
export const ISTIO_JSON_LOG_FORMAT: Readonly<Record<string, string>> = {
  start_time: '%START_TIME%',
  route_name: '%ROUTE_NAME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%',
  request_id: '%REQ(X-REQUEST-ID)%',
  authority: '%REQ(:AUTHORITY)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER_RAW%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  requested_server_name: '%REQUESTED_SERVER_NAME%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
};

const REQ_WITHOUT_QUERY = '%REQ_WITHOUT_QUERY';

function reqWithoutQueryFormatter(): envoy.config.core.v3.TypedExtensionConfig {
  return { name: 'envoy.formatter.req_without_query', typed_config: typedAny(REQ_WITHOUT_QUERY_TYPE, {}) };
}

/** The user's JSON format as jsonpb reads it into a Struct: a JSON object, else undefined (istiod falls back). */
function parseJsonFormat(text: string): Record<string, JsonValue> | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, JsonValue>) : undefined;
  } catch {
    return undefined;
  }
}

/** The log_format FileAccessLogFromMeshConfig builds for the mesh's encoding and format. */
function meshLogFormat(mesh: MeshConfig): FormatString {
  if (mesh.accessLogEncoding === 'JSON') {
    const json = (mesh.accessLogFormat !== '' ? parseJsonFormat(mesh.accessLogFormat) : undefined) ?? { ...ISTIO_JSON_LOG_FORMAT };
    // accessLogJSONFormatters: only top-level string values are looked at.
    const needs = Object.values(json).some((v) => typeof v === 'string' && v.includes(REQ_WITHOUT_QUERY));
    return { json_format: json, ...(needs ? { formatters: [reqWithoutQueryFormatter()] } : {}), json_format_options: {} };
  }
  const text = mesh.accessLogFormat === '' ? ISTIO_TEXT_LOG_FORMAT : mesh.accessLogFormat.endsWith('\n') ? mesh.accessLogFormat : `${mesh.accessLogFormat}\n`;
  return { text_format_source: { inline_string: text }, ...(text.includes(REQ_WITHOUT_QUERY) ? { formatters: [reqWithoutQueryFormatter()] } : {}) };
}

/** The file access log of the mesh config, or none when accessLogFile is empty. */
function meshFileAccessLog(mesh: MeshConfig, filter?: envoy.config.accesslog.v3.AccessLogFilter): AccessLog[] {
  if (mesh.accessLogFile === '') return [];
  return [
    {
      name: 'envoy.access_loggers.file',
      ...(filter ? { filter } : {}),
      typed_config: typedAny(FILE_ACCESS_LOG_TYPE, { path: mesh.accessLogFile, log_format: meshLogFormat(mesh) }),
    },
  ];
}

/** setHTTPAccessLog / setTCPAccessLog: the HCM's and the tcp_proxy's access_log. */
export function filterAccessLogs(mesh: MeshConfig): AccessLog[] {
  return meshFileAccessLog(mesh);
}

/** setListenerAccessLog: the listener's access_log, for connections no filter chain matched (flag NR). */
export function listenerAccessLogs(mesh: MeshConfig): AccessLog[] {
  if (mesh.disableEnvoyListenerLog) return [];
  return meshFileAccessLog(mesh, { response_flag_filter: { flags: ['NR'] } });
}
