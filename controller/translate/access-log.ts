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
import { ISTIO_JSON_LOG_FORMAT, ISTIO_TEXT_LOG_FORMAT } from '../../xds/istio-access-log.ts';

type AccessLog = envoy.config.accesslog.v3.AccessLog;
type FormatString = envoy.config.core.v3.SubstitutionFormatString;

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
