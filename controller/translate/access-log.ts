// The access log istiod configures (pilot/pkg/networking/core/accesslog.go, pilot/pkg/model/telemetry_logging.go).
// With Telemetry API settings (an applicable Telemetry's accessLogging, or meshConfig.defaultProviders.accessLogging:
// PushContext.telemetry.accessLogging), one logger per provider in scope that is not disabled, sorted by provider
// name (telemetryAccessLog): an envoyFileAccessLog provider's own path and format; the built-in `envoy` provider
// without a format of its own takes the mesh's accessLogEncoding and accessLogFormat. A Telemetry filter becomes
// Envoy's CEL extension filter (envoy.access_loggers.extension_filters.cel), AND-ed after the listener's NR filter.
// When no provider in scope can log, the mesh config's legacy logger applies (FileAccessLogFromMeshConfig):
// `accessLogFile` set -> an `envoy.access_loggers.file` logger on every gateway HCM and tcp_proxy, and on the
// listener itself with a response_flag_filter NR (connections no filter chain matched), unless
// `disableEnvoyListenerLog`. `accessLogEncoding` TEXT uses `accessLogFormat` (a newline appended when missing) or
// Istio's EnvoyTextLogFormat; JSON uses `accessLogFormat` parsed as a JSON object, or Istio's default labels when it
// is empty or does not parse (istiod logs the error and falls back). A format naming %REQ_WITHOUT_QUERY gets the
// envoy.formatter.req_without_query formatter extension.
import type { envoy, JsonValue } from '../../xds/envoy.ts';
import { typedAny } from '../../xds/envoy.ts';
import { CEL_FILTER_TYPE, FILE_ACCESS_LOG_TYPE, REQ_WITHOUT_QUERY_TYPE } from '../../xds/type-urls.ts';
import type { EnvoyFileAccessLogProvider, ExtensionProvider, MeshConfig } from '../model/mesh-config.ts';
import type { PushContext } from '../model/push-context.ts';
import { ISTIO_JSON_LOG_FORMAT, ISTIO_TEXT_LOG_FORMAT } from '../../xds/istio-access-log.ts';

type AccessLog = envoy.config.accesslog.v3.AccessLog;
type FormatString = envoy.config.core.v3.SubstitutionFormatString;
type AccessLogFilter = envoy.config.accesslog.v3.AccessLogFilter;

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

/** The provider kinds istiod makes an access logger of (telemetryAccessLog); the others log nothing. */
const LOGGING_PROVIDERS = new Set(['envoyFileAccessLog', 'envoyHttpAls', 'envoyTcpAls', 'envoyOtelAls']);

/**
 * telemetryAccessLog: the FileAccessLog of an envoyFileAccessLog provider; null for a provider that logs nothing;
 * undefined for the gRPC and OpenTelemetry access log services, which istiod configures and meshgate's proxy does not
 * implement (they count as configured, so the legacy accessLogFile does not come back, but give no logger).
 */
function providerAccessLog(mesh: MeshConfig, p: ExtensionProvider): envoy.extensions.access_loggers.file.v3.FileAccessLog | null | undefined {
  if (p.kind !== 'other' || !LOGGING_PROVIDERS.has(p.provider)) return null;
  const f = p.envoyFileAccessLog;
  if (!f) return undefined;
  // The built-in provider without a format of its own follows the mesh's encoding and format.
  if (p.name === 'envoy' && f.logFormat === undefined && !f.omitEmptyValues) return { path: f.path, log_format: meshLogFormat(mesh) };
  return providerFileAccessLog(f);
}

/** buildAccessLogFilterFromTelemetry: a Telemetry filter expression as Envoy's CEL access log filter. */
const celFilter = (expression: string): AccessLogFilter => ({
  extension_filter: { name: 'envoy.access_loggers.extension_filters.cel', typed_config: typedAny(CEL_FILTER_TYPE, { expression }) },
});

/** buildAccessLogFilter: none, the one filter, or both AND-ed. */
function andFilters(filters: AccessLogFilter[]): AccessLogFilter | undefined {
  if (filters.length <= 1) return filters[0];
  return { and_filter: { filters } };
}

/**
 * buildAccessLogFromTelemetry: the loggers of the Telemetry API settings, each behind `base` (the listener's NR
 * filter) and its CEL filter; undefined when none applies, so that the legacy accessLogFile logger does.
 */
function telemetryAccessLogs(push: Pick<PushContext, 'mesh' | 'telemetry'>, base?: AccessLogFilter): AccessLog[] | undefined {
  const cfgs = push.telemetry.accessLogging;
  if (!cfgs) return undefined;
  const built = cfgs.map((c) => ({ c, log: providerAccessLog(push.mesh, c.provider) })).filter((x) => x.log !== null);
  if (built.length === 0) return undefined;
  const out: AccessLog[] = [];
  for (const { c, log } of built) {
    if (c.disabled || !log) continue;
    const filter = andFilters([...(base ? [base] : []), ...(c.filter !== undefined ? [celFilter(c.filter)] : [])]);
    out.push({ name: 'envoy.access_loggers.file', ...(filter ? { filter } : {}), typed_config: typedAny(FILE_ACCESS_LOG_TYPE, log) });
  }
  return out;
}

/** The access log of the Telemetry API settings, else the mesh config's file access log (none when accessLogFile is empty). */
function gatewayAccessLogs(push: Pick<PushContext, 'mesh' | 'telemetry'>, filter?: AccessLogFilter): AccessLog[] {
  const telemetry = telemetryAccessLogs(push, filter);
  if (telemetry) return telemetry;
  const mesh = push.mesh;
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
export function filterAccessLogs(push: Pick<PushContext, 'mesh' | 'telemetry'>): AccessLog[] {
  return gatewayAccessLogs(push);
}

/** setListenerAccessLog: the listener's access_log, for connections no filter chain matched (flag NR). */
export function listenerAccessLogs(push: Pick<PushContext, 'mesh' | 'telemetry'>): AccessLog[] {
  if (push.mesh.disableEnvoyListenerLog) return [];
  return gatewayAccessLogs(push, { response_flag_filter: { flags: ['NR'] } });
}
