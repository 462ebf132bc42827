// Envoy's AccessLog config (envoy.config.accesslog.v3.AccessLog) as Istio sends it on gateway listeners, HCMs and
// tcp_proxies: the envoy.access_loggers.file logger (FileAccessLog: a path, a text or JSON format, the
// envoy.formatter.req_without_query extension) behind an optional filter (response flags, status code, duration,
// the CEL extension filter of Telemetry accessLogging filters, and/or of those). Compiled once per config; anything else is NACKed with the field's name.
import type { envoy } from '../../xds/envoy.ts';
import { CEL_FILTER_TYPE, FILE_ACCESS_LOG_TYPE, REQ_WITHOUT_QUERY_TYPE } from '../../xds/type-urls.ts';
import { responseFlagBit } from '../http/response-flags.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import { compileCelFilter } from './cel-filter.ts';
import { compileJsonFormat, compileTextFormat, type AccessLogEntry, type FormatterExtensions, type LineFormatter } from './formatter.ts';

/** One access logger: lines for the entries its filter passes, written to `path`. */
export interface CompiledAccessLog {
  path: string;
  /** undefined: every entry. */
  filter: ((e: AccessLogEntry) => boolean) | undefined;
  format: LineFormatter;
}

const checkAccessLog = fieldTable('envoy.config.accesslog.v3.AccessLog', { name: true, filter: true, typed_config: true });
const checkFilter = fieldTable('envoy.config.accesslog.v3.AccessLogFilter', {
  response_flag_filter: true,
  status_code_filter: true,
  duration_filter: true,
  and_filter: true,
  or_filter: true,
  extension_filter: true,
});
const checkExtensionFilter = fieldTable('envoy.config.accesslog.v3.ExtensionFilter', { name: true, typed_config: true });
const checkExpressionFilter = fieldTable('envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter', { expression: true });
const checkComparison = fieldTable('envoy.config.accesslog.v3.ComparisonFilter', { op: true, value: true });
const checkRuntimeUInt32 = fieldTable('envoy.config.core.v3.RuntimeUInt32', {
  default_value: true,
  runtime_key: 'this proxy has no runtime: the default_value always applies',
});
// format, json_format and typed_json_format (the deprecated forms of log_format) are NACKed.
const checkFileAccessLog = fieldTable('envoy.extensions.access_loggers.file.v3.FileAccessLog', { path: true, log_format: true });
const checkFormatString = fieldTable('envoy.config.core.v3.SubstitutionFormatString', {
  text_format: true,
  text_format_source: true,
  json_format: true,
  omit_empty_values: true,
  formatters: true,
  content_type: 'the content type of a local reply body; an access log line has none',
  json_format_options: 'Envoy always prints JSON keys sorted (sort_properties is deprecated and without effect)',
});
const checkDataSource = fieldTable('envoy.config.core.v3.DataSource', { inline_string: true }, 'SubstitutionFormatString.text_format_source');
const checkFormatter = fieldTable('envoy.config.core.v3.TypedExtensionConfig', { name: true, typed_config: true }, 'SubstitutionFormatString.formatters');

function compileComparison(c: envoy.config.accesslog.v3.ComparisonFilter | undefined, where: string): (n: number) => boolean {
  const cmp = c ?? {};
  checkComparison(cmp, where);
  const rv = cmp.value ?? {};
  checkRuntimeUInt32(rv, `${where}.value`);
  const v = rv.default_value ?? 0;
  switch (cmp.op ?? 'EQ') {
    case 'EQ':
      return (n) => n === v;
    case 'GE':
      return (n) => n >= v;
    case 'LE':
      return (n) => n <= v;
  }
}

function compileFilter(f: envoy.config.accesslog.v3.AccessLogFilter, where: string): (e: AccessLogEntry) => boolean {
  checkFilter(f, where);
  const set = Object.keys(f).length;
  if (set !== 1) throw new ConfigError(`${where}: an access log filter needs exactly one filter_specifier`);
  if (f.response_flag_filter) {
    let mask = 0;
    for (const [i, code] of (f.response_flag_filter.flags ?? []).entries()) {
      const bit = responseFlagBit(code);
      if (bit === undefined) throw new ConfigError(`${where}.response_flag_filter.flags[${i}]: unknown response flag '${code}'`);
      mask |= bit;
    }
    // No flags listed: any flag set passes.
    return mask === 0 ? (e) => e.responseFlags !== 0 : (e) => (e.responseFlags & mask) !== 0;
  }
  if (f.status_code_filter) {
    const test = compileComparison(f.status_code_filter.comparison, `${where}.status_code_filter.comparison`);
    return (e) => test(e.responseCode);
  }
  if (f.duration_filter) {
    const test = compileComparison(f.duration_filter.comparison, `${where}.duration_filter.comparison`);
    return (e) => test(e.durationMs);
  }
  if (f.extension_filter) {
    const x = f.extension_filter;
    const at = `${where}.extension_filter`;
    checkExtensionFilter(x, at);
    const type = x.typed_config?.['@type'];
    if (type !== CEL_FILTER_TYPE)
      throw new ConfigError(`${at}: access log filter ${type ?? x.name ?? ''} is not supported by this proxy (only ${CEL_FILTER_TYPE})`);
    const cel = x.typed_config as envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter;
    checkExpressionFilter(cel, `${at}.typed_config`);
    return compileCelFilter(cel.expression ?? '', `${at}.typed_config.expression`);
  }
  const list = f.and_filter ?? f.or_filter;
  const key = f.and_filter ? 'and_filter' : 'or_filter';
  const subs = (list?.filters ?? []).map((s, i) => compileFilter(s, `${where}.${key}.filters[${i}]`));
  if (subs.length < 2) throw new ConfigError(`${where}.${key}: needs at least 2 filters`);
  return f.and_filter ? (e) => subs.every((s) => s(e)) : (e) => subs.some((s) => s(e));
}

function extensionsOf(list: readonly envoy.config.core.v3.TypedExtensionConfig[], where: string): FormatterExtensions {
  const ext: FormatterExtensions = { reqWithoutQuery: false };
  for (const [i, f] of list.entries()) {
    checkFormatter(f, `${where}[${i}]`);
    if (f.typed_config?.['@type'] !== REQ_WITHOUT_QUERY_TYPE)
      throw new ConfigError(
        `${where}[${i}]: formatter extension ${f.typed_config?.['@type'] ?? f.name ?? ''} is not supported by this proxy (only ${REQ_WITHOUT_QUERY_TYPE})`,
      );
    ext.reqWithoutQuery = true;
  }
  return ext;
}

/** Envoy's default access log format (SubstitutionFormatUtils DEFAULT_FORMAT), for a FileAccessLog without one. */
const ENVOY_DEFAULT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% ' +
  '%BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" ' +
  '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

/** The line formatter of a FileAccessLog: its log_format, or Envoy's default format when none. */
function compileLogFormat(f: envoy.config.core.v3.SubstitutionFormatString | undefined, where: string): LineFormatter {
  if (!f) return compileTextFormat(ENVOY_DEFAULT_FORMAT);
  checkFormatString(f, where);
  const extensions = extensionsOf(f.formatters ?? [], `${where}.formatters`);
  const kinds = [f.text_format, f.text_format_source, f.json_format].filter((k) => k !== undefined).length;
  if (kinds !== 1) throw new ConfigError(`${where}: exactly one of text_format, text_format_source and json_format is needed`);
  if (f.json_format !== undefined) return compileJsonFormat(f.json_format, { extensions, omitEmptyValues: f.omit_empty_values === true });
  let text = f.text_format;
  if (f.text_format_source !== undefined) {
    checkDataSource(f.text_format_source, `${where}.text_format_source`);
    text = f.text_format_source.inline_string ?? '';
  }
  return compileTextFormat(text ?? '', { omitEmptyValues: f.omit_empty_values === true, extensions });
}

/** Compiles a listener's, HCM's or tcp_proxy's `access_log` list; a config error names the field. */
export function compileAccessLogs(list: readonly envoy.config.accesslog.v3.AccessLog[] | undefined, where: string): CompiledAccessLog[] {
  return (list ?? []).map((a, i) => {
    const at = `${where}[${i}]`;
    checkAccessLog(a, at);
    const type = a.typed_config?.['@type'];
    if (type !== FILE_ACCESS_LOG_TYPE)
      throw new ConfigError(`${at}: access logger ${type ?? a.name ?? ''} is not supported by this proxy (only ${FILE_ACCESS_LOG_TYPE})`);
    const cfg = a.typed_config as envoy.extensions.access_loggers.file.v3.FileAccessLog;
    checkFileAccessLog(cfg, `${at}.typed_config`);
    const path = cfg.path ?? '';
    if (path === '') throw new ConfigError(`${at}.typed_config.path: a file access log needs a path`);
    let format: LineFormatter;
    try {
      format = compileLogFormat(cfg.log_format, `${at}.typed_config.log_format`);
    } catch (e) {
      if (e instanceof ConfigError && !e.message.startsWith(at)) throw new ConfigError(`${at}.typed_config.log_format: ${e.message}`);
      throw e;
    }
    return { path, filter: a.filter ? compileFilter(a.filter, `${at}.filter`) : undefined, format };
  });
}
