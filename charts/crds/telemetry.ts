// OpenAPI v3 schema of Istio's telemetry.istio.io Telemetry, written for meshgate from the Istio API reference
// (istio.io/latest/docs/reference/config/telemetry/) with the limits of Istio's own CRD (enums, the sampling range,
// targetRefs size, one of selector and targetRef(s)). As for security.ts: every field declared, so nothing a user
// wrote is pruned; what needs more than a schema (a filter's CEL syntax, tag override values) is checked by the
// controller, which reports it as an Event and a status condition.
import { boolean, double, duration, enumOf, list, map, object, string, stringMap } from './openapi.ts';

const MODES = ['CLIENT_AND_SERVER', 'CLIENT', 'SERVER'];
const mode = object(
  { mode: enumOf(MODES, "Which side of a call: CLIENT (a gateway's side), SERVER or CLIENT_AND_SERVER (default).") },
  { description: 'Which traffic the entry applies to.' },
);

const providers = list(
  object({ name: string('Name of an extension provider of the mesh config (or a built-in one: envoy, prometheus).') }, { description: 'A provider.' }),
  'Providers; none: those of the parent level (or the mesh defaultProviders).',
);

const targetRef = object(
  {
    group: string('Group of the target resource ("" for core).', {
      maxLength: 253,
      pattern: '^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
    }),
    kind: string('Kind of the target resource.', { minLength: 1, maxLength: 63, pattern: '^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$' }),
    name: string('Name of the target resource.', { minLength: 1, maxLength: 253 }),
    namespace: string('Namespace of the referent (cross-namespace references are not supported).'),
  },
  { description: 'A resource the Telemetry attaches to (Gateway API gateways, waypoints, services); Istio gateways use selector.', required: ['kind', 'name'] },
);

const selector = object(
  { matchLabels: stringMap('Labels of the workloads (here: gateway pods) the Telemetry applies to.') },
  { description: 'Workload selector; none: every workload of the namespace (the root namespace: the whole mesh).' },
);

const defaultedName = (what: string): Record<string, ReturnType<typeof string>> => ({
  name: string(`Name of the ${what}.`),
  defaultValue: string(`Value when the ${what} is absent.`),
});

const customTag = object(
  {
    literal: object({ value: string('The tag value.') }, { description: 'A fixed value.' }),
    environment: object(defaultedName('environment variable'), { description: 'An environment variable of the proxy.' }),
    header: object(defaultedName('request header'), { description: 'A request header.' }),
  },
  { description: 'How a span tag gets its value.', exclusive: [['literal', 'environment', 'header']] },
);

const tracing = object(
  {
    match: mode,
    providers,
    randomSamplingPercentage: double('Percentage of requests sampled, 0 to 100.', { minimum: 0, maximum: 100, nullable: true }),
    disableSpanReporting: boolean('Report no spans (context is still propagated).'),
    customTags: map(customTag, 'Extra span tags by name.'),
    useRequestIdForTraceSampling: boolean('Decide sampling from x-request-id (default true).'),
    enableIstioTags: boolean("Add Istio's own span tags (default true)."),
    disableContextPropagation: boolean('Do not propagate trace context upstream.'),
  },
  { description: 'Tracing settings.' },
);

const METRICS = [
  'ALL_METRICS',
  'REQUEST_COUNT',
  'REQUEST_DURATION',
  'REQUEST_SIZE',
  'RESPONSE_SIZE',
  'TCP_OPENED_CONNECTIONS',
  'TCP_CLOSED_CONNECTIONS',
  'TCP_SENT_BYTES',
  'TCP_RECEIVED_BYTES',
  'GRPC_REQUEST_MESSAGES',
  'GRPC_RESPONSE_MESSAGES',
];

const metricsOverride = object(
  {
    match: object(
      {
        metric: enumOf(METRICS, "One of Istio's standard metrics."),
        customMetric: string('A custom metric name.'),
        mode: enumOf(MODES, 'Which side of a call.'),
      },
      { description: 'The metrics overridden; none: all.', exclusive: [['metric', 'customMetric']] },
    ),
    disabled: boolean('Do not record the matched metrics.'),
    tagOverrides: map(
      object(
        {
          operation: enumOf(['UPSERT', 'REMOVE'], 'Add or replace (default), or remove the tag.'),
          value: string('A CEL expression giving the tag value (UPSERT).'),
        },
        { description: 'A tag override.' },
      ),
      'Tags to add, replace or remove, by name.',
    ),
  },
  { description: 'An override of metric generation.' },
);

const metrics = object(
  {
    providers,
    overrides: list(metricsOverride, 'Overrides, later ones winning.'),
    reportingInterval: duration('How often metrics are reported (providers that report periodically).'),
  },
  { description: 'Metrics settings.' },
);

const accessLogging = object(
  {
    match: mode,
    providers,
    disabled: boolean('Turn the providers off.'),
    filter: object(
      { expression: string('A CEL expression; an entry is logged when it is true, e.g. response.code >= 400.') },
      { description: 'Which entries are logged.' },
    ),
  },
  { description: 'Access logging settings.' },
);

export const telemetrySpec = object(
  {
    selector,
    targetRef,
    targetRefs: list(targetRef, 'Resources the Telemetry attaches to.', { maxItems: 16 }),
    tracing: list(tracing, 'Tracing settings (one entry is supported).'),
    metrics: list(metrics, 'Metrics settings.'),
    accessLogging: list(accessLogging, 'Access logging settings.'),
  },
  { description: 'Telemetry (metrics, tracing, access logging) of the workloads it selects.', exclusive: [['selector', 'targetRef', 'targetRefs']] },
);
