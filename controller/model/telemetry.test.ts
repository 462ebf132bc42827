// Telemetry selection and merge for a gateway, as istiod's applicableTelemetries, mergeLogs, mergeMetrics and
// Tracing compute it: which Telemetries apply, and what each telemetry kind resolves to.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_MESH_CONFIG, type ExtensionProvider } from './mesh-config.ts';
import { type TelemetryConfig, type TelemetryDefaults, resolveTelemetry } from './telemetry.ts';
import type { TelemetrySpec } from './telemetry-types.ts';
import type { KubeObject } from './objects.ts';
import { ObjectStore } from './store.ts';
import { buildPushContext } from './push-context.ts';

const gw = { rootNamespace: 'istio-system', namespace: 'gateways', labels: { istio: 'ingressgateway' } };
const none: TelemetryDefaults = { accessLogging: [], metrics: [], tracing: [] };
const providers: ExtensionProvider[] = [
  ...DEFAULT_MESH_CONFIG.extensionProviders,
  { name: 'otel', kind: 'other', provider: 'opentelemetry' },
  { name: 'zipkin', kind: 'other', provider: 'zipkin' },
  { name: 'file-a', kind: 'other', provider: 'envoyFileAccessLog', envoyFileAccessLog: { path: '/a', omitEmptyValues: false } },
];

let created = 0;
const tel = (namespace: string, name: string, spec: TelemetrySpec): TelemetryConfig => ({
  kind: 'Telemetry',
  apiVersion: 'telemetry.istio.io/v1',
  name,
  namespace,
  creationTimestamp: new Date(Date.UTC(2025, 0, 1, 0, 0, ++created)).toISOString(),
  labels: {},
  annotations: {},
  origin: {},
  spec,
});
const resolve = (ts: TelemetryConfig[], defaults = none) => resolveTelemetry(ts, gw, defaults, providers);
const logs = (ts: TelemetryConfig[], defaults = none) =>
  resolve(ts, defaults).accessLogging?.map((l) => `${l.provider.name}${l.disabled ? ' off' : ''}${l.filter ? ` [${l.filter}]` : ''}`);

describe('selection', () => {
  test("the root namespace's oldest namespace-wide Telemetry, the gateway namespace's, then those selecting the gateway", () => {
    const root = tel('istio-system', 'root', {});
    const newerRoot = tel('istio-system', 'newer-root', {});
    const ns = tel('gateways', 'ns', {});
    const selected = tel('gateways', 'selected', { selector: { matchLabels: { istio: 'ingressgateway' } } });
    const other = tel('gateways', 'other', { selector: { matchLabels: { app: 'x' } } });
    const targeted = tel('gateways', 'targeted', { targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }] });
    const elsewhere = tel('default', 'elsewhere', {});
    const rootSelected = tel('istio-system', 'root-selected', { selector: { matchLabels: { istio: 'ingressgateway' } } });
    const applied = resolve([root, newerRoot, ns, selected, other, targeted, elsewhere, rootSelected]).applied.map((t) => t.name);
    assert.deepEqual(applied, ['root', 'ns', 'selected']);
  });
});

describe('access logging', () => {
  test('nothing configured: undefined (the legacy accessLogFile applies)', () => {
    assert.equal(resolve([tel('istio-system', 'tracing-only', { tracing: [{}] })]).accessLogging, undefined);
  });
  test('the mesh default providers alone, unknown names dropped, sorted by provider name', () => {
    assert.deepEqual(logs([], { ...none, accessLogging: ['file-a', 'ENVOY', 'missing'] }), ['envoy', 'file-a']);
  });
  test('a later level naming providers replaces the earlier ones; disabled turns a provider off', () => {
    const ts = [
      tel('istio-system', 'root', { accessLogging: [{ providers: [{ name: 'envoy' }] }] }),
      tel('gateways', 'ns', { accessLogging: [{ providers: [{ name: 'file-a' }] }] }),
      tel('gateways', 'sel', { selector: { matchLabels: { istio: 'ingressgateway' } }, accessLogging: [{ disabled: true }] }),
    ];
    assert.deepEqual(logs(ts), ['file-a off']);
  });
  test('each provider keeps the filter of the last entry naming it; an entry inheriting its providers gives no filter', () => {
    const ts = [
      tel('istio-system', 'root', { accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression: 'a' } }] }),
      tel('gateways', 'sel', { selector: { matchLabels: { istio: 'ingressgateway' } }, accessLogging: [{ filter: { expression: 'b' } }] }),
    ];
    assert.deepEqual(logs(ts), ['envoy [a]']);
  });
  test('SERVER entries do not apply to a gateway; CLIENT and CLIENT_AND_SERVER ones do', () => {
    const ts = [
      tel('istio-system', 'root', {
        accessLogging: [
          { providers: [{ name: 'envoy' }], match: { mode: 'CLIENT' }, filter: { expression: 'c' } },
          { providers: [{ name: 'envoy' }], match: { mode: 'SERVER' }, disabled: true },
          { providers: [{ name: 'file-a' }], match: { mode: 'CLIENT_AND_SERVER' } },
        ],
      }),
    ];
    assert.deepEqual(logs(ts), ['envoy [c]', 'file-a']);
  });
});

describe('metrics', () => {
  test('the default provider alone: no overrides on either side', () => {
    const m = resolve([], { ...none, metrics: ['prometheus'] }).metrics;
    assert.deepEqual(Object.fromEntries(m), { prometheus: { client: { disabled: false, overrides: [] }, server: { disabled: false, overrides: [] } } });
  });
  test('no provider in scope: nothing', () => {
    assert.equal(resolve([tel('istio-system', 'root', { metrics: [{ overrides: [{ disabled: true }] }] })]).metrics.size, 0);
  });
  test('all metrics off for CLIENT at the root, one metric back on in the namespace with tags upserted and removed', () => {
    const ts = [
      tel('istio-system', 'root', { metrics: [{ providers: [{ name: 'prometheus' }], overrides: [{ match: { mode: 'CLIENT' }, disabled: true }] }] }),
      tel('gateways', 'ns', {
        metrics: [
          {
            reportingInterval: '10s',
            overrides: [
              {
                match: { metric: 'REQUEST_COUNT', mode: 'CLIENT' },
                disabled: false,
                tagOverrides: { b: { value: 'request.host' }, a: { operation: 'REMOVE' } },
              },
            ],
          },
        ],
      }),
    ];
    const p = resolve(ts).metrics.get('prometheus');
    assert.deepEqual(p, {
      reportingInterval: '10s',
      client: {
        disabled: false,
        overrides: [
          {
            name: 'REQUEST_COUNT',
            disabled: false,
            tags: [
              { name: 'a', remove: true, value: '' },
              { name: 'b', remove: false, value: 'request.host' },
            ],
          },
        ],
      },
      server: { disabled: false, overrides: [] },
    });
  });
  test('disabling all metrics for both sides drops both', () => {
    const ts = [
      tel('istio-system', 'root', { metrics: [{ providers: [{ name: 'prometheus' }], overrides: [{ match: { metric: 'ALL_METRICS' }, disabled: true }] }] }),
    ];
    const p = resolve(ts).metrics.get('prometheus');
    assert.equal(p?.client.disabled, true);
    assert.equal(p?.server.disabled, true);
  });
  test('an override without a match applies to every standard metric, sorted by name', () => {
    const ts = [tel('istio-system', 'root', { metrics: [{ providers: [{ name: 'prometheus' }], overrides: [{ tagOverrides: { x: { value: '"y"' } } }] }] })];
    const names = resolve(ts)
      .metrics.get('prometheus')
      ?.client.overrides.map((o) => o.name);
    assert.deepEqual(names, [
      'GRPC_REQUEST_MESSAGES',
      'GRPC_RESPONSE_MESSAGES',
      'REQUEST_COUNT',
      'REQUEST_DURATION',
      'REQUEST_SIZE',
      'RESPONSE_SIZE',
      'TCP_CLOSED_CONNECTIONS',
      'TCP_OPENED_CONNECTIONS',
      'TCP_RECEIVED_BYTES',
      'TCP_SENT_BYTES',
    ]);
  });
});

describe('tracing', () => {
  test('nothing configured: undefined', () => {
    assert.equal(resolve([]).tracing, undefined);
  });
  test('the first default provider, with sampling and tags overridden by the Telemetries in order', () => {
    const ts = [
      tel('istio-system', 'root', { tracing: [{ randomSamplingPercentage: 50, customTags: { a: { literal: { value: 'x' } } } }] }),
      tel('gateways', 'ns', { tracing: [{ randomSamplingPercentage: 80, match: { mode: 'CLIENT' } }] }),
    ];
    const t = resolve(ts, { ...none, tracing: ['otel', 'zipkin'] }).tracing;
    assert.equal(t?.client.provider?.name, 'otel');
    assert.equal(t?.client.randomSamplingPercentage, 80);
    assert.equal(t?.server.randomSamplingPercentage, 50);
    assert.deepEqual(t?.client.customTags, { a: { literal: { value: 'x' } } });
    assert.equal(t?.client.disabled, false);
    assert.equal(t?.client.useRequestIdForTraceSampling, true);
    assert.equal(t?.client.enableIstioTags, true);
  });
  test('a provider that does not exist leaves the side without one, so disabled', () => {
    const t = resolve([tel('istio-system', 'root', { tracing: [{ providers: [{ name: 'nope' }], match: { mode: 'CLIENT' } }] })], {
      ...none,
      tracing: ['zipkin'],
    }).tracing;
    assert.equal(t?.client.provider, undefined);
    assert.equal(t?.client.disabled, true);
    assert.equal(t?.server.provider?.name, 'zipkin');
    assert.equal(t?.server.disabled, false);
  });
  test('disableSpanReporting and the boolean overrides', () => {
    const t = resolve([
      tel('istio-system', 'root', {
        tracing: [
          {
            providers: [{ name: 'zipkin' }],
            disableSpanReporting: true,
            useRequestIdForTraceSampling: false,
            enableIstioTags: false,
            disableContextPropagation: true,
          },
        ],
      }),
    ]).tracing;
    assert.deepEqual(
      { ...t?.client, provider: t?.client.provider?.name },
      {
        provider: 'zipkin',
        disabled: true,
        useRequestIdForTraceSampling: false,
        enableIstioTags: false,
        disableContextPropagation: true,
      },
    );
  });
});

describe('an invalid update', () => {
  const identity = { namespace: 'istio-system', podName: 'gw-0', labels: { istio: 'ingressgateway' } };
  const object = (expression: string): KubeObject => ({
    apiVersion: 'telemetry.istio.io/v1',
    kind: 'Telemetry',
    metadata: { name: 'mesh-default', namespace: 'istio-system' },
    spec: { accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression } }] },
  });

  test('keeps the version accepted before it (as a webhook refusing the update would), reported; without one, it is left out', () => {
    const store = new ObjectStore();
    store.upsert('Telemetry', object('response.code >= 400'));
    const first = buildPushContext(store.snapshot(), identity);
    assert.deepEqual(
      first.telemetry.accessLogging?.map((l) => l.filter),
      ['response.code >= 400'],
    );

    store.upsert('Telemetry', object('response.code >= '));
    const kept = buildPushContext(store.snapshot(), identity, DEFAULT_MESH_CONFIG, first.acceptedTelemetries);
    assert.deepEqual(
      kept.telemetry.accessLogging?.map((l) => l.filter),
      ['response.code >= 400'],
    );
    assert.equal(kept.errors.length, 1);
    assert.match(kept.errors[0]?.message ?? '', /^must be a valid CEL expression, .*; its last valid version stays in effect until it is fixed$/s);

    const stateless = buildPushContext(store.snapshot(), identity);
    assert.equal(stateless.telemetry.accessLogging, undefined);
    assert.match(stateless.errors[0]?.message ?? '', /; it is left out until it is fixed$/);

    // Deleted: nothing is kept, and a later invalid object of the same name has no earlier version.
    store.delete('Telemetry', 'istio-system', 'mesh-default');
    const gone = buildPushContext(store.snapshot(), identity, DEFAULT_MESH_CONFIG, kept.acceptedTelemetries);
    assert.equal(gone.acceptedTelemetries.size, 0);
  });
});
