// Telemetry as istiod reads and validates it: its JSON decoding (as for the security kinds: wrong types refuse the
// object, unknown fields are ignored, a null list item is an empty message, a field may also go by its proto name),
// the webhook's metadata check, then ValidateTelemetry (pkg/config/validation): the selector or targetRef(s) as for
// AuthorizationPolicy, then validateTelemetryMetrics, validateTelemetryTracing and validateTelemetryAccessLogging
// with istiod's messages. istiod's messages carry no field path; the paths here say where each one was found.
// Warnings (more than one tracing or tracing provider, an empty tag override name) are left out, as for other kinds.
import { parse as parseCel } from '@marcbachmann/cel-js';
import type { FieldError } from './istio-validation.ts';
import { type Json, Decoder, attachmentErrors, decodeAttachment, metadataError } from './authorization-policy-validation.ts';
import {
  type AccessLogging,
  type Metrics,
  type MetricsOverrides,
  type ProviderRef,
  type TagOverride,
  type TelemetrySpec,
  type Tracing,
  type TracingCustomTag,
  ISTIO_METRICS,
  WORKLOAD_MODES,
} from './telemetry-types.ts';

/** A proto enum as JSON gives it: its name, or its number. */
function decodeEnum<T extends string>(d: Decoder, v: unknown, field: string, names: readonly T[]): T | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string' && (names as readonly string[]).includes(v)) return v as T;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < names.length) return names[v];
  d.errors.push({ field, message: `must be one of ${names.join(', ')}` });
  return undefined;
}

function decodeBool(d: Decoder, v: unknown, field: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  d.errors.push({ field, message: 'must be a boolean' });
  return undefined;
}

function decodeNumber(d: Decoder, v: unknown, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  // proto3 JSON takes a double as a number or a numeric string.
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n === 'number' && !Number.isNaN(n)) return n;
  d.errors.push({ field, message: 'must be a number' });
  return undefined;
}

/** A google.protobuf.Duration in JSON: seconds with up to 9 fractional digits and an `s`. */
const PROTO_DURATION = /^-?[0-9]+(\.[0-9]{1,9})?s$/;

function decodeMode(d: Decoder, m: Json, f: string): { mode?: (typeof WORKLOAD_MODES)[number] } | undefined {
  const match = d.map(m.match, `${f}.match`);
  if (!match) return undefined;
  const mode = decodeEnum(d, match.mode, `${f}.match.mode`, WORKLOAD_MODES);
  return mode === undefined ? {} : { mode };
}

function decodeProviders(d: Decoder, m: Json, f: string): ProviderRef[] | undefined {
  return d.messages(m.providers, `${f}.providers`, (x, g) => {
    const name = d.string(x.name, `${g}.name`);
    return name === undefined ? {} : { name };
  });
}

/** A map of messages; a null value is kept as null (validation names it). */
function decodeMessageMap<T>(d: Decoder, v: unknown, field: string, item: (m: Json, f: string) => T): Record<string, T | null> | undefined {
  const m = d.map(v, field);
  if (!m) return undefined;
  const out: Record<string, T | null> = {};
  for (const [k, x] of Object.entries(m)) {
    if (x === null) out[k] = null;
    else {
      const obj = d.map(x, `${field}.${k}`);
      if (obj) out[k] = item(obj, `${field}.${k}`);
    }
  }
  return out;
}

function decodeTracing(d: Decoder, m: Json, f: string): Tracing {
  const t: Tracing = {};
  const match = decodeMode(d, m, f);
  if (match) t.match = match;
  const providers = decodeProviders(d, m, f);
  if (providers) t.providers = providers;
  const pct = decodeNumber(d, d.field(m, 'randomSamplingPercentage'), `${f}.randomSamplingPercentage`);
  if (pct !== undefined) t.randomSamplingPercentage = pct;
  for (const k of ['disableSpanReporting', 'useRequestIdForTraceSampling', 'enableIstioTags', 'disableContextPropagation'] as const) {
    const b = decodeBool(d, d.field(m, k), `${f}.${k}`);
    if (b !== undefined) t[k] = b;
  }
  const tags = decodeMessageMap(d, d.field(m, 'customTags'), `${f}.customTags`, (x, g): TracingCustomTag => {
    const tag: TracingCustomTag = {};
    const literal = d.map(x.literal, `${g}.literal`);
    if (literal) tag.literal = { value: d.string(literal.value, `${g}.literal.value`) ?? '' };
    for (const k of ['environment', 'header'] as const) {
      const e = d.map(x[k], `${g}.${k}`);
      if (!e) continue;
      tag[k] = { name: d.string(e.name, `${g}.${k}.name`) ?? '' };
      const def = d.string(d.field(e, 'defaultValue'), `${g}.${k}.defaultValue`);
      if (def !== undefined) tag[k].defaultValue = def;
    }
    return tag;
  });
  if (tags) t.customTags = tags;
  return t;
}

function decodeOverride(d: Decoder, m: Json, f: string): MetricsOverrides {
  const o: MetricsOverrides = {};
  const match = d.map(m.match, `${f}.match`);
  if (match) {
    o.match = {};
    const metric = decodeEnum(d, match.metric, `${f}.match.metric`, ISTIO_METRICS);
    if (metric !== undefined) o.match.metric = metric;
    const custom = d.string(d.field(match, 'customMetric'), `${f}.match.customMetric`);
    if (custom !== undefined) o.match.customMetric = custom;
    if (metric !== undefined && custom !== undefined) d.errors.push({ field: `${f}.match`, message: 'metric and customMetric are one of: set only one' });
    const mode = decodeEnum(d, match.mode, `${f}.match.mode`, WORKLOAD_MODES);
    if (mode !== undefined) o.match.mode = mode;
  }
  const disabled = decodeBool(d, m.disabled, `${f}.disabled`);
  if (disabled !== undefined) o.disabled = disabled;
  const tags = decodeMessageMap(d, d.field(m, 'tagOverrides'), `${f}.tagOverrides`, (x, g): TagOverride => {
    const t: TagOverride = {};
    const op = decodeEnum(d, x.operation, `${g}.operation`, ['UPSERT', 'REMOVE'] as const);
    if (op !== undefined) t.operation = op;
    const value = d.string(x.value, `${g}.value`);
    if (value !== undefined) t.value = value;
    return t;
  });
  if (tags) o.tagOverrides = tags;
  return o;
}

function decodeMetrics(d: Decoder, m: Json, f: string): Metrics {
  const out: Metrics = {};
  const providers = decodeProviders(d, m, f);
  if (providers) out.providers = providers;
  const overrides = d.messages(m.overrides, `${f}.overrides`, (x, g) => decodeOverride(d, x, g));
  if (overrides) out.overrides = overrides;
  const interval = d.string(d.field(m, 'reportingInterval'), `${f}.reportingInterval`);
  if (interval !== undefined) {
    if (PROTO_DURATION.test(interval)) out.reportingInterval = interval;
    else d.errors.push({ field: `${f}.reportingInterval`, message: `bad Duration: ${JSON.stringify(interval)} is not a duration such as "10s"` });
  }
  return out;
}

function decodeAccessLogging(d: Decoder, m: Json, f: string): AccessLogging {
  const a: AccessLogging = {};
  const match = decodeMode(d, m, f);
  if (match) a.match = match;
  const providers = decodeProviders(d, m, f);
  if (providers) a.providers = providers;
  const disabled = decodeBool(d, m.disabled, `${f}.disabled`);
  if (disabled !== undefined) a.disabled = disabled;
  const filter = d.map(m.filter, `${f}.filter`);
  if (filter) a.filter = { expression: d.string(filter.expression, `${f}.filter.expression`) ?? '' };
  return a;
}

/** The spec as istiod's decoder reads it, or the reasons it cannot. */
function decodeTelemetry(raw: unknown): { spec: TelemetrySpec; errors: FieldError[] } {
  const d = new Decoder();
  const spec: TelemetrySpec = {};
  const m = d.map(raw, 'spec') ?? {};
  decodeAttachment(d, m, spec);
  const tracing = d.messages(m.tracing, 'spec.tracing', (x, f) => decodeTracing(d, x, f));
  if (tracing) spec.tracing = tracing;
  const metrics = d.messages(m.metrics, 'spec.metrics', (x, f) => decodeMetrics(d, x, f));
  if (metrics) spec.metrics = metrics;
  const logging = d.messages(d.field(m, 'accessLogging'), 'spec.accessLogging', (x, f) => decodeAccessLogging(d, x, f));
  if (logging) spec.accessLogging = logging;
  return { spec, errors: d.errors };
}

/**
 * The syntax error of a CEL expression, undefined when it parses. istiod only parses (cel-go's Parse, no type
 * check); so does this, with the CEL implementation the proxy evaluates filters with.
 */
function celParseError(expression: string): string | undefined {
  try {
    parseCel(expression);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** validateTelemetryProviders: the first provider without a name. */
function providersError(providers: readonly ProviderRef[] | undefined, f: string, add: (f: string, m: string) => void): void {
  const i = (providers ?? []).findIndex((p) => !p.name);
  if (i >= 0) add(`${f}.providers[${i}].name`, 'providers.name may not be empty');
}

/** ValidateTelemetry on a decoded spec, in istiod's order. */
function telemetryErrors(spec: TelemetrySpec): FieldError[] {
  const out: FieldError[] = [];
  const add = (field: string, message: string): void => {
    out.push({ field, message });
  };
  attachmentErrors(spec, add);
  spec.metrics?.forEach((m, i) => {
    const f = `spec.metrics[${i}]`;
    providersError(m.providers, f, add);
    m.overrides?.forEach((o, j) => {
      for (const [name, to] of Object.entries(o.tagOverrides ?? {})) {
        const g = `${f}.overrides[${j}].tagOverrides.${name}`;
        if (to === null) {
          add(g, 'tagOverrides may not be null');
          continue;
        }
        // An unset operation is UPSERT, proto3's zero value.
        if ((to.operation ?? 'UPSERT') === 'UPSERT' && !to.value) add(`${g}.value`, 'tagOverrides.value must be set when operation is UPSERT');
        if (to.operation === 'REMOVE' && to.value) add(`${g}.value`, 'tagOverrides.value may only be set when operation is UPSERT');
      }
      if (o.match?.customMetric === '') add(`${f}.overrides[${j}].match.customMetric`, 'customMetric may not be empty');
    });
  });
  spec.tracing?.forEach((t, i) => {
    const f = `spec.tracing[${i}]`;
    providersError(t.providers, f, add);
    const pct = t.randomSamplingPercentage ?? 0;
    if (pct < 0 || pct > 100) add(`${f}.randomSamplingPercentage`, 'randomSamplingPercentage must be in range [0.0, 100.0]');
    for (const [name, tag] of Object.entries(t.customTags ?? {})) {
      const g = `${f}.customTags.${name}`;
      if (name === '') add(g, 'tag name may not be empty');
      if (tag === null) {
        add(g, `tag '${name}' may not have a nil value`);
        continue;
      }
      // The oneof's first set member is the tag's type.
      if (tag.literal) {
        if (!tag.literal.value) add(`${g}.literal.value`, 'literal tag value may not be empty');
      } else if (tag.header) {
        if (!tag.header.name) add(`${g}.header.name`, 'header tag name may not be empty');
      } else if (tag.environment && !tag.environment.name) add(`${g}.environment.name`, 'environment tag name may not be empty');
    }
  });
  spec.accessLogging?.forEach((l, i) => {
    const f = `spec.accessLogging[${i}]`;
    if (l.filter) {
      const e = celParseError(l.filter.expression ?? '');
      if (e !== undefined) add(`${f}.filter.expression`, `must be a valid CEL expression, ${e}`);
    }
    providersError(l.providers, f, add);
  });
  return out;
}

/**
 * Everything that keeps a Telemetry from being served, in istiod's order: what its decoder refuses, then the
 * metadata check (which stops there), then the spec rules.
 */
export function validateTelemetry(
  meta: { name: string; namespace: string; annotations?: Readonly<Record<string, string>> },
  raw: unknown,
): { spec: TelemetrySpec; errors: FieldError[] } {
  const { spec, errors } = decodeTelemetry(raw);
  if (errors.length) return { spec, errors };
  const m = metadataError(meta.name, meta.namespace, meta.annotations ?? {});
  if (m) return { spec, errors: [m] };
  return { spec, errors: telemetryErrors(spec) };
}
