// charts/gateway with values files in the shape of Istio's gateway chart values.yaml, whose settings sit under
// `_internal_defaults_do_not_set` (templates/zzz_istio_defaults.yaml merges them as Istio's zzz_profile.yaml does):
// a file written here from Istio's documented keys, and Istio's own values.yaml from the istio.io/istio Go module
// (scripts/fetch-istio-chart.sh: downloaded once into the Go module cache, never copied into the repository).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { GATEWAY_CHART, REPO, helm, ofKind, only, parseManifests, renderArgs, template, templateError, type K8sObject } from './helm.ts';
import type { HorizontalPodAutoscaler, Service, Workload } from './k8s-types.ts';
import { restrictedPodSecurityViolations } from './pod-security.ts';

const INGRESS = 'istio-ingressgateway';
const WRAPPER = '_internal_defaults_do_not_set';
const SHAPED = 'charts/tests/testdata/istio-shaped-values.yaml';

const tmp = mkdtempSync(join(tmpdir(), 'meshgate-istio-values-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

type Values = Record<string, unknown>;
const isMap = (v: unknown): v is Values => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Helm's coalescing of `over` onto `under` for user files: maps merge key by key, anything else replaces. */
function coalesce(under: Values, over: Values): Values {
  const out: Values = { ...under };
  for (const [k, v] of Object.entries(over)) out[k] = isMap(v) && isMap(out[k]) ? coalesce(out[k], v) : v;
  return out;
}

/** The same settings without the wrapper: its keys at the top level, under the file's own top-level keys. */
function flattened(file: string): string {
  const { [WRAPPER]: wrapper, ...top } = parse(readFileSync(file, 'utf8')) as Values;
  assert.ok(isMap(wrapper), `${file} has a ${WRAPPER} map`);
  const out = join(tmp, `flat-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(out, stringify(coalesce(wrapper, top)));
  return out;
}

/** `helm template` with values files given by absolute path (and --set pairs). */
function renderFiles(files: string[], set: Record<string, string> = {}): K8sObject[] {
  const args = ['template', ...renderArgs(GATEWAY_CHART, INGRESS, { set }), ...files.flatMap((f) => ['--values', f])];
  const r = helm(args);
  assert.equal(r.status, 0, r.stderr);
  return parseManifests(r.stdout);
}

function notesOf(files: string[]): string {
  const r = helm(['install', '--dry-run=client', ...renderArgs(GATEWAY_CHART, INGRESS), ...files.flatMap((f) => ['--values', f])]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.slice(r.stdout.indexOf('NOTES:'));
}

const proxyOf = (d: Workload) => d.spec.template.spec.containers.find((c) => c.name === 'istio-proxy');
const servicePorts = (o: K8sObject[]): string[] => only<Service>(o, 'Service').spec.ports.map((p) => `${p.port}->${p.targetPort}`);

describe(`a values file in Istio's shape (settings under ${WRAPPER})`, () => {
  const shaped = join(REPO, SHAPED);
  const objects = renderFiles([shaped]);
  const d = only<Workload>(objects, 'Deployment');

  test('renders exactly what the same settings render flattened to the top level', () => {
    assert.deepEqual(objects, renderFiles([flattened(shaped)]));
  });

  test("the wrapper's settings apply: Istio's 80/443 target ports (with the unprivileged-port sysctl), PDB, NetworkPolicy, labels, annotations", () => {
    assert.deepEqual(servicePorts(objects), ['15021->15021', '80->80', '443->443']);
    assert.deepEqual(
      proxyOf(d)?.ports?.map((p) => p.containerPort),
      [15021, 80, 443, 15090],
    );
    assert.deepEqual(d.spec.template.spec.securityContext?.sysctls, [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }]);
    assert.deepEqual(restrictedPodSecurityViolations(d.spec.template.spec), []);
    assert.equal(ofKind(objects, 'PodDisruptionBudget').length, 1, 'minReplicas 2 guarantees two replicas');
    assert.equal(ofKind(objects, 'NetworkPolicy').length, 1, 'global.networkPolicy.enabled inside the wrapper');
    assert.equal(d.metadata.labels?.['istio.io/dataplane-mode'], 'none');
    assert.equal(only(objects, 'ServiceAccount').metadata.annotations?.['eks.amazonaws.com/role-arn'], 'arn:aws:iam::123456789012:role/gateway');
    assert.equal(d.spec.template.spec.terminationGracePeriodSeconds, 45);
    assert.equal(only<Service>(objects, 'Service').spec.externalTrafficPolicy, 'Local');
  });

  test('a key set at the top level wins over the wrapper, as in Istio; so does --set', () => {
    const hpa = only<HorizontalPodAutoscaler>(objects, 'HorizontalPodAutoscaler');
    assert.equal(hpa.spec.minReplicas, 2, 'from the wrapper');
    assert.equal(hpa.spec.maxReplicas, 20, 'the top-level key, not the wrapper');
    const set = renderFiles([shaped], { 'service.type': 'NodePort', 'autoscaling.minReplicas': '3' });
    assert.equal(only<Service>(set, 'Service').spec.type, 'NodePort');
    assert.equal(only<HorizontalPodAutoscaler>(set, 'HorizontalPodAutoscaler').spec.minReplicas, 3);
  });

  test("the wrapper's null removes the chart default, as a null at the top level does", () => {
    const file = join(tmp, 'null-cpu.yaml');
    writeFileSync(file, stringify({ [WRAPPER]: { autoscaling: { targetCPUUtilizationPercentage: null, targetMemoryUtilizationPercentage: 70 } } }));
    const hpa = only<HorizontalPodAutoscaler>(renderFiles([file]), 'HorizontalPodAutoscaler');
    assert.deepEqual(
      hpa.spec.metrics.map((m) => m.containerResource?.name),
      ['memory'],
    );
  });

  test('the wrapper counts for NOTES.txt too: a revision set inside it warns', () => {
    const file = join(tmp, 'revision.yaml');
    writeFileSync(file, stringify({ [WRAPPER]: { revision: 'canary' } }));
    assert.match(notesOf([file]), /revision="canary"/);
    assert.doesNotMatch(notesOf([shaped]), /WARNING/);
  });

  const rejected: { name: string; values: Values; message: RegExp }[] = [
    {
      name: 'a misspelt key inside the wrapper',
      values: { [WRAPPER]: { servce: { type: 'NodePort' } } },
      message: /additional properties 'servce' not allowed/,
    },
    {
      name: 'a misspelt nested key inside the wrapper',
      values: { [WRAPPER]: { service: { tpye: 'NodePort' } } },
      message: /at '\/_internal_defaults_do_not_set\/service': additional properties 'tpye' not allowed/,
    },
    { name: 'a wrong type inside the wrapper', values: { [WRAPPER]: { replicaCount: 'two' } }, message: /at '\/_internal_defaults_do_not_set\/replicaCount'/ },
    { name: 'a wrapper inside the wrapper', values: { [WRAPPER]: { [WRAPPER]: {} } }, message: /at '\/_internal_defaults_do_not_set'/ },
  ];
  for (const c of rejected) {
    test(`the schema rejects ${c.name}`, () => {
      const file = join(tmp, `rejected-${rejected.indexOf(c)}.yaml`);
      writeFileSync(file, stringify(c.values));
      const r = helm(['template', ...renderArgs(GATEWAY_CHART, INGRESS), '--values', file]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /values don't meet the specifications of the schema/);
      assert.match(r.stderr, c.message);
    });
  }

  test('a partial image inside the wrapper merges with the chart default; an image without repository fails clearly', () => {
    const file = join(tmp, 'image.yaml');
    writeFileSync(file, stringify({ [WRAPPER]: { image: { tag: 'v9' } } }));
    assert.equal(proxyOf(only<Workload>(renderFiles([file]), 'Deployment'))?.image, 'meshgate:v9');
    assert.match(templateError(GATEWAY_CHART, INGRESS, { set: { 'image.repository': 'null' } }), /image.repository is not set/);
  });
});

describe('files/chart-defaults.yaml, the link to values.yaml the merge compares with', () => {
  const shaped = join(REPO, SHAPED);

  test('helm package stores it as a copy of values.yaml: the packaged chart renders the same', () => {
    const out = join(tmp, 'package');
    const r = helm(['package', GATEWAY_CHART, '--destination', out]);
    assert.equal(r.status, 0, r.stderr);
    const tgz = join(out, readdirSync(out).find((f) => f.endsWith('.tgz')) ?? '');
    const listing = execFileSync('tar', ['-tvzf', tgz], { encoding: 'utf8' });
    assert.match(listing, /^-\S+ .* gateway\/files\/chart-defaults\.yaml$/m, 'a regular file in the package');
    const packaged = helm(['template', ...renderArgs(tgz, INGRESS), '--values', shaped]);
    assert.equal(packaged.status, 0, packaged.stderr);
    assert.deepEqual(parseManifests(packaged.stdout), renderFiles([shaped]));
  });

  test('a checkout without symbolic links (a text file there) fails clearly when the wrapper needs it, and only then', () => {
    const copy = join(tmp, 'gateway-no-symlinks');
    cpSync(GATEWAY_CHART, copy, { recursive: true, dereference: false, verbatimSymlinks: true });
    rmSync(join(copy, 'files/chart-defaults.yaml'));
    writeFileSync(join(copy, 'files/chart-defaults.yaml'), '../values.yaml');
    const r = helm(['template', ...renderArgs(copy, INGRESS), '--values', shaped]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /files\/chart-defaults.yaml does not hold the chart's values.yaml/);
    assert.equal(helm(['template', ...renderArgs(copy, INGRESS)]).status, 0, 'values without the wrapper do not need it');
  });
});

describe('ISTIO_META_* variables', () => {
  test("NOTES.txt names those in env and envVarFrom that meshgate's proxy does not read, and not the two it reads", () => {
    const file = join(tmp, 'meta.yaml');
    writeFileSync(
      file,
      stringify({
        env: { ISTIO_META_HTTP10: '1', ISTIO_META_CLUSTER_ID: 'east', TZ: 'UTC' },
        envVarFrom: [{ name: 'ISTIO_META_ROUTER_MODE', value: 'sni-dnat' }],
      }),
    );
    const text = notesOf([file]);
    assert.match(text, /env ISTIO_META_HTTP10, ISTIO_META_ROUTER_MODE: Istio's agent copies ISTIO_META_\* variables/);
    const only = join(tmp, 'meta-read.yaml');
    writeFileSync(only, stringify({ env: { ISTIO_META_CLUSTER_ID: 'east', ISTIO_META_WORKLOAD_NAME: 'edge' } }));
    assert.doesNotMatch(notesOf([only]), /WARNING/);
  });
});

describe("Istio's own values.yaml (istio.io/istio module, scripts/fetch-istio-chart.sh)", () => {
  let chart: string | undefined;
  let unavailable = '';
  try {
    // Prints "[fetch-istio-chart] cached: ..." or says that it downloads the module.
    chart = execFileSync('bash', [join(REPO, 'scripts/fetch-istio-chart.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 })
      .trim()
      .split('\n')
      .at(-1);
  } catch (err) {
    unavailable = `Istio's chart is not available (${(err as Error).message.split('\n')[0] ?? ''}): these tests need Go and the Go module proxy once`;
  }
  const istioValues = chart ? join(chart, 'values.yaml') : '';

  test('passed unmodified with -f, it installs and renders what its settings render flattened', (t) => {
    if (!chart) return t.skip(unavailable);
    t.diagnostic(`read ${istioValues}`);
    const objects = renderFiles([istioValues]);
    assert.deepEqual(objects, renderFiles([flattened(istioValues)]));
    assert.deepEqual(
      objects.map((o) => o.kind),
      template(GATEWAY_CHART, INGRESS).map((o) => o.kind),
      "the chart's default objects (Istio's values enable no PDB or NetworkPolicy)",
    );
    assert.deepEqual(servicePorts(objects), ['15021->15021', '80->80', '443->443']);
    const d = only<Workload>(objects, 'Deployment');
    assert.deepEqual(d.spec.template.spec.securityContext?.sysctls, [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }]);
    // Istio's podAnnotations ask istiod to inject its gateway template; the pod's label, which istiod's injector
    // reads before the annotation, keeps meshgate's pod uninjected.
    assert.equal(d.spec.template.metadata.annotations?.['sidecar.istio.io/inject'], 'true');
    assert.equal(d.spec.template.metadata.labels['sidecar.istio.io/inject'], 'false');
    assert.doesNotMatch(notesOf([istioValues]), /WARNING/);
  });

  test('helm lint --strict passes with it', (t) => {
    if (!chart) return t.skip(unavailable);
    const r = helm(['lint', '--strict', GATEWAY_CHART, '--values', istioValues]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  test('with the user values on top (-f istio values.yaml -f user.yaml), the user values win', (t) => {
    if (!chart) return t.skip(unavailable);
    const user = join(tmp, 'user.yaml');
    writeFileSync(user, stringify({ service: { type: 'ClusterIP' }, autoscaling: { enabled: false }, replicaCount: 3 }));
    const objects = renderFiles([istioValues, user]);
    assert.equal(only<Service>(objects, 'Service').spec.type, 'ClusterIP');
    assert.equal(ofKind(objects, 'HorizontalPodAutoscaler').length, 0);
    assert.equal(only<Workload>(objects, 'Deployment').spec.replicas, 3);
  });
});
