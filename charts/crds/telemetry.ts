// OpenAPI v3 schema of Istio's telemetry.istio.io Telemetry, written for meshgate from the Istio API reference
// (istio.io/latest/docs/reference/config/telemetry/) with the constraints and CEL rules of Istio's own CRD. As for
// security.ts: every field declared, so nothing a user wrote is pruned; what needs more than Istio's CRD checks (a
// filter's CEL syntax) is checked by the controller, which reports it as an Event and a status condition.
import { matchLabelsSelector, targetRef, targetRefs } from './common.ts';
import { atMostOneOf, boolValue, double, duration, enumOf, list, map, object, rule, string } from './openapi.ts';

const MODES = ['CLIENT_AND_SERVER', 'CLIENT', 'SERVER'];
const mode = object(
  { mode: enumOf(MODES, "Which side of a call: CLIENT (a gateway's side), SERVER or CLIENT_AND_SERVER (default).") },
  { description: 'Which traffic the entry applies to.' },
);

const providers = list(
  object(
    { name: string('Name of an extension provider of the mesh config (or a built-in one: envoy, prometheus).', { minLength: 1 }) },
    { description: 'A provider.', required: ['name'] },
  ),
  'Providers; none: those of the parent level (or the mesh defaultProviders).',
);

const selector = matchLabelsSelector('Workload selector; none: every workload of the namespace (the root namespace: the whole mesh).');

const named = (what: string, description: string) =>
  object(
    { name: string(`Name of the ${what}.`, { minLength: 1 }), defaultValue: string(`Value when the ${what} is absent.`) },
    { description, required: ['name'] },
  );
const valued = (value: string, description: string) => object({ value: string(value, { minLength: 1 }) }, { description, required: ['value'] });

const customTag = object(
  {
    literal: valued('The tag value.', 'A fixed value.'),
    environment: named('environment variable', 'An environment variable of the proxy.'),
    header: named('request header', 'A request header.'),
    formatter: valued('An access log formatter, e.g. %REQ(x-user)%.', 'The value of an access log substitution formatter.'),
  },
  { description: 'How a span tag gets its value.', exclusive: [['literal', 'environment', 'header', 'formatter']] },
);

const tracing = object(
  {
    match: mode,
    providers,
    randomSamplingPercentage: double('Percentage of requests sampled, 0 to 100.', { minimum: 0, maximum: 100, nullable: true }),
    disableSpanReporting: boolValue('Report no spans (context is still propagated).'),
    customTags: map(customTag, 'Extra span tags by name.'),
    useRequestIdForTraceSampling: boolValue('Decide sampling from x-request-id (default true).'),
    enableIstioTags: boolValue("Add Istio's own span tags (default true)."),
    disableContextPropagation: boolValue('Do not propagate trace context upstream.'),
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
        customMetric: string('A custom metric name.', { minLength: 1 }),
        mode: enumOf(MODES, 'Which side of a call.'),
      },
      { description: 'The metrics overridden; none: all.', exclusive: [['metric', 'customMetric']] },
    ),
    disabled: boolValue('Do not record the matched metrics.'),
    tagOverrides: map(
      object(
        {
          operation: enumOf(['UPSERT', 'REMOVE'], 'Add or replace (default), or remove the tag.'),
          value: string('A CEL expression giving the tag value (UPSERT).'),
        },
        {
          description: 'A tag override.',
          rules: [
            rule('((has(self.operation) ? self.operation : "") == "UPSERT") ? (self.value != "") : true', 'value must be set when operation is UPSERT'),
            rule('((has(self.operation) ? self.operation : "") == "REMOVE") ? !has(self.value) : true', 'value must not be set when operation is REMOVE'),
          ],
        },
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
    disabled: boolValue('Turn the providers off.'),
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
    targetRefs,
    tracing: list(tracing, 'Tracing settings (one entry is supported).'),
    metrics: list(metrics, 'Metrics settings.'),
    accessLogging: list(accessLogging, 'Access logging settings.'),
  },
  {
    description: 'Telemetry (metrics, tracing, access logging) of the workloads it selects.',
    rules: [atMostOneOf(['selector', 'targetRef', 'targetRefs'], 'only one of targetRefs or selector can be set')],
  },
);
