// Which Telemetry resources apply to a gateway proxy and what they resolve to, as istiod computes it
// (pilot/pkg/model/telemetry.go: applicableTelemetries, mergeLogs + AccessLogging, mergeMetrics, Tracing).
//
// Selection (applicableTelemetries), each list in creation order:
//   1. the root namespace's first Telemetry without selector or targetRef(s) (mesh-wide);
//   2. the gateway namespace's first such Telemetry, when that namespace is not the root one;
//   3. every Telemetry of the gateway's namespace that has a selector or targetRef(s) and attaches to the gateway
//      (ShouldAttachPolicy, as for the security policies: `attaches`).
// Later levels override earlier ones, field by field as each merge below says.
//
// One pure function, resolveTelemetry, gives everything the translation needs; its result:
//
//   accessLogging: undefined when no applicable Telemetry has accessLogging and the mesh has no
//       defaultProviders.accessLogging (the legacy meshConfig.accessLogFile applies); otherwise one entry per
//       provider in scope that names an extension provider (matched in any case), sorted by that provider's name:
//       { provider, disabled, filter? } where `filter` is the CEL expression of the last matching entry that named
//       the provider, and `disabled` says the provider was turned off (it then logs nothing; and, as in istiod, the
//       legacy accessLogFile does not come back while any entry is listed).
//   metrics: Map from provider name (as referenced) to { client, server, reportingInterval? }; each side is
//       { disabled: all metrics off (no stats filter), overrides: [{ name: metric (REQUEST_COUNT ... or a custom
//       one), disabled, tags: [{ name, remove, value }] sorted by name }] sorted by metric name }.
//       Empty map: no metrics provider is in scope.
//   tracing: undefined when no applicable Telemetry has tracing and the mesh has no defaultProviders.tracing
//       (the proxy config's tracing applies); otherwise { client, server }, each { provider?, disabled,
//       randomSamplingPercentage?, customTags?, useRequestIdForTraceSampling, enableIstioTags,
//       disableContextPropagation }. disabled is also true when no provider was found.
//
// A gateway's listeners are of class Gateway, which istiod treats as the CLIENT side: access logging matches
// entries whose mode is CLIENT or CLIENT_AND_SERVER (or unset), and the metrics and tracing of a gateway are the
// `client` halves.
import type { Config } from './config.ts';
import type { Labels } from './labels.ts';
import type { ExtensionProvider } from './mesh-config.ts';
import { attaches } from './authorization-policies.ts';
import {
  type AccessLogging,
  type Metrics,
  type ProviderRef,
  type TelemetrySpec,
  type Tracing,
  type TracingCustomTag,
  ISTIO_METRICS,
} from './telemetry-types.ts';

export type TelemetryConfig = Config<TelemetrySpec>;

/** The mesh's defaultProviders (Telemetry API defaults), by kind of telemetry. */
export interface TelemetryDefaults {
  accessLogging: readonly string[];
  metrics: readonly string[];
  tracing: readonly string[];
}

interface ResolvedAccessLog {
  provider: ExtensionProvider;
  disabled: boolean;
  /** A CEL expression: only the entries it is true for are logged. */
  filter?: string;
}

interface TagOverrideConfig {
  name: string;
  remove: boolean;
  value: string;
}

interface MetricOverrideConfig {
  name: string;
  disabled: boolean;
  tags: TagOverrideConfig[];
}

interface MetricConfig {
  /** Every metric off for this side: no stats filter. */
  disabled: boolean;
  overrides: MetricOverrideConfig[];
}

export interface MetricsConfig {
  client: MetricConfig;
  server: MetricConfig;
  /** The last reportingInterval given for the provider (a proto Duration, "10s"). */
  reportingInterval?: string;
}

export interface TracingSpec {
  provider?: ExtensionProvider;
  disabled: boolean;
  randomSamplingPercentage?: number;
  customTags?: Readonly<Record<string, TracingCustomTag | null>>;
  useRequestIdForTraceSampling: boolean;
  enableIstioTags: boolean;
  disableContextPropagation: boolean;
}

interface TracingConfig {
  client: TracingSpec;
  server: TracingSpec;
}

export interface ResolvedTelemetry {
  /** The Telemetries that apply, in the order they merge (for reports and debugging). */
  applied: readonly TelemetryConfig[];
  accessLogging: ResolvedAccessLog[] | undefined;
  metrics: Map<string, MetricsConfig>;
  tracing: TracingConfig | undefined;
}

export interface TelemetryGateway {
  rootNamespace: string;
  /** The gateway pod's namespace (istiod's proxy.ConfigNamespace). */
  namespace: string;
  labels: Labels;
}

const hasTarget = (t: TelemetryConfig): boolean =>
  Object.keys(t.spec.selector?.matchLabels ?? {}).length > 0 || (t.spec.targetRefs?.length ?? 0) > 0 || t.spec.targetRef !== undefined;

/** The Telemetries applying to the gateway, root first (applicableTelemetries), from valid ones sorted by creation. */
function selectTelemetries(sorted: readonly TelemetryConfig[], gw: TelemetryGateway): TelemetryConfig[] {
  const namespaceWide = (ns: string): TelemetryConfig | undefined => sorted.find((t) => t.namespace === ns && !hasTarget(t));
  const out: TelemetryConfig[] = [];
  const root = gw.rootNamespace === '' ? undefined : namespaceWide(gw.rootNamespace);
  if (root) out.push(root);
  if (gw.namespace !== gw.rootNamespace) {
    const own = namespaceWide(gw.namespace);
    if (own) out.push(own);
  }
  for (const t of sorted) if (t.namespace === gw.namespace && hasTarget(t) && attaches(t, gw.namespace, gw.labels)) out.push(t);
  return out;
}

const names = (providers: readonly ProviderRef[] | undefined): string[] => (providers ?? []).map((p) => p.name ?? '');

/** fetchProvider: the first extension provider of that name, in any case. */
const fetchProvider = (providers: readonly ExtensionProvider[], name: string): ExtensionProvider | undefined =>
  providers.find((p) => p.name.toLowerCase() === name.toLowerCase());

/** matchWorkloadMode for a gateway (CLIENT). */
const matchesGateway = (l: AccessLogging): boolean => l.match?.mode === undefined || l.match.mode === 'CLIENT_AND_SERVER' || l.match.mode === 'CLIENT';

/** mergeLogs: provider name -> disabled and filter, for the gateway's mode. */
function mergeLogs(logs: readonly (readonly AccessLogging[])[], defaults: readonly string[]): Map<string, { disabled: boolean; filter?: string }> {
  const out = new Map<string, { disabled: boolean; filter?: string }>();
  if (logs.length === 0) {
    for (const p of defaults) out.set(p, { disabled: false });
    return out;
  }
  // The last level naming providers (for this mode) decides which are in scope; each named provider keeps the
  // filter of the last entry naming it. An entry inheriting its providers does not give them its filter.
  let scope: readonly string[] = defaults;
  const filters = new Map<string, string | undefined>();
  for (const level of logs) {
    const named = new Set<string>();
    for (const l of level) {
      if (!matchesGateway(l)) continue;
      for (const p of names(l.providers)) {
        named.add(p);
        filters.set(p, l.filter?.expression);
      }
    }
    if (named.size > 0) scope = [...named];
  }
  const inScope = new Set(scope);
  let parent: readonly string[] = defaults;
  for (const level of logs) {
    for (const l of level) {
      const listed = names(l.providers);
      const providers = listed.length > 0 ? listed : parent;
      parent = providers;
      for (const p of providers) {
        if (!inScope.has(p) || !matchesGateway(l)) continue;
        const filter = filters.get(p);
        out.set(p, l.disabled === true ? { disabled: true } : { disabled: false, ...(filter !== undefined ? { filter } : {}) });
      }
    }
  }
  return out;
}

function accessLogging(
  applied: readonly TelemetryConfig[],
  defaults: TelemetryDefaults,
  providers: readonly ExtensionProvider[],
): ResolvedAccessLog[] | undefined {
  const logs = applied.map((t) => t.spec.accessLogging ?? []).filter((l) => l.length > 0);
  if (logs.length === 0 && defaults.accessLogging.length === 0) return undefined;
  const out: ResolvedAccessLog[] = [];
  for (const [name, spec] of mergeLogs(logs, defaults.accessLogging)) {
    const provider = fetchProvider(providers, name);
    if (!provider) continue;
    out.push({ provider, disabled: spec.disabled, ...(spec.filter !== undefined ? { filter: spec.filter } : {}) });
  }
  // Go's sort.Slice is not stable; two names resolving to one provider give equal entries anyway.
  return out.sort((a, b) => (a.provider.name < b.provider.name ? -1 : a.provider.name > b.provider.name ? 1 : 0));
}

const ALL_METRICS = ISTIO_METRICS.filter((m) => m !== 'ALL_METRICS').sort();

type Side = 'client' | 'server';
const sidesOf = (mode: string | undefined): Side[] => (mode === 'CLIENT' ? ['client'] : mode === 'SERVER' ? ['server'] : ['client', 'server']);

/** mergeMetrics: provider -> the normalized metric overrides of each side. */
function mergeMetrics(metrics: readonly Metrics[], defaults: readonly string[]): Map<string, MetricsConfig> {
  interface Override {
    disabled?: boolean;
    tags?: Map<string, TagOverrideConfig>;
  }
  const providers = new Map<string, Partial<Record<Side, Map<string, Override>>>>();
  if (metrics.length === 0) for (const p of defaults) providers.set(p, {});
  let scope: readonly string[] = defaults;
  for (const m of metrics) if (names(m.providers).length > 0) scope = names(m.providers);
  const inScope = new Set(scope);
  let parent: readonly string[] = defaults;
  const allDisabled = new Set<string>();
  const intervals = new Map<string, string>();
  for (const m of metrics) {
    const listed = names(m.providers);
    const provs = listed.length > 0 ? listed : parent;
    parent = provs;
    for (const provider of provs) {
      if (!inScope.has(provider)) continue;
      if (m.reportingInterval !== undefined) intervals.set(provider, m.reportingInterval);
      let mp = providers.get(provider);
      if (!mp) providers.set(provider, (mp = { client: new Map(), server: new Map() }));
      for (const o of m.overrides ?? []) {
        const metric = o.match?.metric;
        const custom = o.match?.customMetric;
        const isAll = custom === undefined && (metric === undefined || metric === 'ALL_METRICS');
        if (isAll && o.disabled === true) {
          for (const side of sidesOf(o.match?.mode)) allDisabled.add(`${provider}/${side}`);
          continue;
        }
        const matched = custom !== undefined ? [custom] : isAll ? ALL_METRICS : [metric as string];
        for (const side of sidesOf(o.match?.mode)) {
          // A narrower override after a mesh-wide "disable all" turns the side back on.
          allDisabled.delete(`${provider}/${side}`);
          const bySide = (mp[side] ??= new Map<string, Override>());
          for (const name of matched) {
            const cur: Override = bySide.get(name) ?? {};
            if (o.disabled !== undefined) cur.disabled = o.disabled;
            for (const [tag, to] of Object.entries(o.tagOverrides ?? {})) {
              if (to === null) continue;
              cur.tags ??= new Map();
              const remove = to.operation === 'REMOVE';
              cur.tags.set(tag, { name: tag, remove, value: remove ? '' : (to.value ?? '') });
            }
            bySide.set(name, cur);
          }
        }
      }
    }
  }
  const byName = <T extends { name: string }>(a: T, b: T): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const out = new Map<string, MetricsConfig>();
  for (const [provider, modes] of providers) {
    const cfg: MetricsConfig = { client: { disabled: false, overrides: [] }, server: { disabled: false, overrides: [] } };
    const interval = intervals.get(provider);
    if (interval !== undefined) cfg.reportingInterval = interval;
    for (const side of ['client', 'server'] as const) {
      const overrides = modes[side];
      if (!overrides) continue;
      if (allDisabled.has(`${provider}/${side}`)) {
        cfg[side].disabled = true;
        continue;
      }
      for (const [name, o] of overrides) {
        cfg[side].overrides.push({ name, disabled: o.disabled === true, tags: [...(o.tags?.values() ?? [])].sort(byName) });
      }
      cfg[side].overrides.sort(byName);
    }
    out.set(provider, cfg);
  }
  return out;
}

/** Tracing: the default provider, then each applicable tracing entry's overrides, shallowly. */
function tracing(all: readonly Tracing[], defaults: readonly string[], providers: readonly ExtensionProvider[]): TracingConfig | undefined {
  if (all.length === 0 && defaults.length === 0) return undefined;
  const base = (): TracingSpec => ({ disabled: false, useRequestIdForTraceSampling: true, enableIstioTags: true, disableContextPropagation: false });
  const cfg: TracingConfig = { client: base(), server: base() };
  const set = (specs: TracingSpec[], f: (s: TracingSpec) => void): void => specs.forEach(f);
  const first = defaults[0];
  if (first !== undefined) {
    const p = fetchProvider(providers, first);
    set([cfg.client, cfg.server], (s) => (p ? (s.provider = p) : delete s.provider));
  }
  for (const t of all) {
    const specs = t.match?.mode === 'CLIENT' ? [cfg.client] : t.match?.mode === 'SERVER' ? [cfg.server] : [cfg.client, cfg.server];
    const listed = names(t.providers);
    // Only one provider per side: the first named one (even when it is not found).
    if (listed[0] !== undefined) {
      const p = fetchProvider(providers, listed[0]);
      set(specs, (s) => (p ? (s.provider = p) : delete s.provider));
    }
    if (t.disableSpanReporting !== undefined) set(specs, (s) => (s.disabled = t.disableSpanReporting === true));
    if (t.customTags !== undefined) set(specs, (s) => (s.customTags = t.customTags));
    if (t.randomSamplingPercentage !== undefined) set(specs, (s) => (s.randomSamplingPercentage = t.randomSamplingPercentage));
    if (t.useRequestIdForTraceSampling !== undefined) set(specs, (s) => (s.useRequestIdForTraceSampling = t.useRequestIdForTraceSampling === true));
    if (t.enableIstioTags !== undefined) set(specs, (s) => (s.enableIstioTags = t.enableIstioTags === true));
    if (t.disableContextPropagation !== undefined) set(specs, (s) => (s.disableContextPropagation = t.disableContextPropagation === true));
  }
  for (const s of [cfg.client, cfg.server]) if (!s.provider) s.disabled = true;
  return cfg;
}

/**
 * The Telemetry API settings of a gateway: the applicable Telemetries (valid ones, sorted by creation) merged over
 * the mesh's defaultProviders, with provider names resolved against the mesh's extensionProviders.
 */
export function resolveTelemetry(
  sorted: readonly TelemetryConfig[],
  gw: TelemetryGateway,
  defaults: TelemetryDefaults,
  providers: readonly ExtensionProvider[],
): ResolvedTelemetry {
  const applied = selectTelemetries(sorted, gw);
  return {
    applied,
    accessLogging: accessLogging(applied, defaults, providers),
    metrics: mergeMetrics(
      applied.flatMap((t) => t.spec.metrics ?? []),
      defaults.metrics,
    ),
    tracing: tracing(
      applied.flatMap((t) => t.spec.tracing ?? []),
      defaults.tracing,
      providers,
    ),
  };
}
