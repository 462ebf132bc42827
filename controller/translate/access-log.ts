// The access log istiod configures from the mesh config when no Telemetry API provider applies
// (pilot/pkg/networking/core/accesslog.go, pilot/pkg/model/telemetry_logging.go FileAccessLogFromMeshConfig):
// `accessLogFile` set -> an `envoy.access_loggers.file` logger on every gateway HCM and tcp_proxy, and on the
// listener itself with a response_flag_filter NR (connections no filter chain matched), unless
// `disableEnvoyListenerLog`. `accessLogEncoding` TEXT uses `accessLogFormat` (a newline appended when missing) or
// Istio's EnvoyTextLogFormat; JSON uses `accessLogFormat` parsed as a JSON object, or Istio's default labels when it
// is empty or does not parse (istiod logs the error and falls back). A format naming %REQ_WITHOUT_QUERY gets the
// envoy.formatter.req_without_query formatter extension. With defaultProviders.accessLogging (the Telemetry API's
// mesh default), the named envoyFileAccessLog providers replace that logger (telemetryAccessLog).
import type { envoy, JsonValue } from '../../xds/envoy.ts';
import { typedAny } from '../../xds/envoy.ts';
import { FILE_ACCESS_LOG_TYPE, REQ_WITHOUT_QUERY_TYPE } from '../../xds/type-urls.ts';
import type { EnvoyFileAccessLogProvider, MeshConfig } from '../model/mesh-config.ts';
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

const withReqWithoutQuery = (f: FormatString, needs: boolean): FormatString => (needs ? { ...f, formatters: [reqWithoutQueryFormatter()] } : f);

/** The text format string istiod writes: the given one with a newline appended when missing, or Istio's default. */
const textFormat = (text: string): string => (text === '' ? ISTIO_TEXT_LOG_FORMAT : text.endsWith('\n') ? text : `${text}\n`);

/** The log_format FileAccessLogFromMeshConfig builds for the mesh's encoding and format. */
function meshLogFormat(mesh: MeshConfig): FormatString {
  if (mesh.accessLogEncoding === 'JSON') {
    const json = (mesh.accessLogFormat !== '' ? parseJsonFormat(mesh.accessLogFormat) : undefined) ?? { ...ISTIO_JSON_LOG_FORMAT };
    // accessLogJSONFormatters: only top-level string values are looked at.
    const needs = Object.values(json).some((v) => typeof v === 'string' && v.includes(REQ_WITHOUT_QUERY));
    return withReqWithoutQuery({ json_format: json, json_format_options: {} }, needs);
  }
  const text = textFormat(mesh.accessLogFormat);
  return withReqWithoutQuery({ text_format_source: { inline_string: text } }, text.includes(REQ_WITHOUT_QUERY));
}

/** fileAccessLogFromTelemetry: an envoyFileAccessLog provider's own path and format. */
function providerFileAccessLog(p: EnvoyFileAccessLogProvider): envoy.extensions.access_loggers.file.v3.FileAccessLog {
  const omit = p.omitEmptyValues ? { omit_empty_values: true } : {};
  let logFormat: FormatString | undefined;
  const f = p.logFormat;
  if (f?.labels !== undefined) {
    const labels = Object.keys(f.labels).length ? (f.labels as Record<string, JsonValue>) : { ...ISTIO_JSON_LOG_FORMAT };
    const needs = Object.values(labels).some((v) => typeof v === 'string' && v.includes(REQ_WITHOUT_QUERY));
    logFormat = withReqWithoutQuery({ json_format: labels, json_format_options: {}, ...omit }, needs);
  } else if (f === undefined || f.text !== undefined) {
    const text = textFormat(f?.text ?? '');
    logFormat = withReqWithoutQuery({ text_format_source: { inline_string: text }, ...omit }, text.includes(REQ_WITHOUT_QUERY));
  }
  // A logFormat with neither text nor labels: istiod sends no format (Envoy's own default).
  return { path: p.path === '' ? '/dev/stdout' : p.path, ...(logFormat ? { log_format: logFormat } : {}) };
}

/**
 * Telemetry.AccessLogging without Telemetry resources: the mesh's defaultProviders.accessLogging, each name the
 * first extension provider of that name (any case), sorted by provider name. The built-in `envoy` provider without a
 * format of its own takes the mesh's accessLogEncoding and accessLogFormat. Only file providers make a logger here
 * (the gRPC and OpenTelemetry ones are not implemented by meshgate's proxy). undefined: none, the legacy
 * accessLogFile applies.
 */
function telemetryFileAccessLogs(mesh: MeshConfig, filter?: envoy.config.accesslog.v3.AccessLogFilter): AccessLog[] | undefined {
  if (mesh.defaultAccessLogging.length === 0) return undefined;
  const found: { name: string; config: envoy.extensions.access_loggers.file.v3.FileAccessLog }[] = [];
  for (const n of new Set(mesh.defaultAccessLogging)) {
    const p = mesh.extensionProviders.find((e) => e.name.toLowerCase() === n.toLowerCase());
    const f = p?.kind === 'other' ? p.envoyFileAccessLog : undefined;
    if (!p || !f) continue;
    const config =
      p.name === 'envoy' && f.logFormat === undefined && !f.omitEmptyValues ? { path: f.path, log_format: meshLogFormat(mesh) } : providerFileAccessLog(f);
    found.push({ name: p.name, config });
  }
  if (found.length === 0) return undefined;
  return found
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((x) => ({ name: 'envoy.access_loggers.file', ...(filter ? { filter } : {}), typed_config: typedAny(FILE_ACCESS_LOG_TYPE, x.config) }));
}

/** The file access log of the mesh config, or none when accessLogFile is empty. */
function meshFileAccessLog(mesh: MeshConfig, filter?: envoy.config.accesslog.v3.AccessLogFilter): AccessLog[] {
  const telemetry = telemetryFileAccessLogs(mesh, filter);
  if (telemetry) return telemetry;
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
