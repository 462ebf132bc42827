// charts/base against Istio's own CRDs, on a real kube-apiserver (its OpenAPI validation, pruning and CEL rules):
//
// 1. A differential: Istio's crd-all.gen.yaml (the istio.io/istio module the istiod oracle pins, fetched into the
//    Go module cache by scripts/fetch-istio-crds.sh, never committed) is installed, every object of
//    charts/tests/testdata/istio-{valid,admitted,invalid}.yaml is created with dryRun=All and strict field
//    validation, and the answers are recorded; then Istio's CRDs are deleted, ours (charts/base/templates) created,
//    and the same objects give the same answers: accepted with the same stored spec, or rejected with the same
//    errors. The testdata's own claims are checked against Istio's CRDs too (valid and admitted ones accepted,
//    invalid ones rejected at the field they name, by the CEL rule they name).
// 2. A kind meshgate does not implement: an EnvoyFilter applied beside a running gateway (the chart's controller,
//    with the chart's RBAC) gets the gateway's condition, status False, reason Unsupported, once per generation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { KubeApiError } from '../../controller/sources/kube/client.ts';
import type { KubeObject } from '../../controller/model/objects.ts';
import { statusConditionType, UNSUPPORTED_REASON, type IstioCondition } from '../../controller/sources/kube/status.ts';
import { REPO, eventually } from '../lib/process.ts';
import { exec, startCluster, type Cluster } from './cluster.ts';
import type { GatewayPod } from './gateway-pod.ts';
import { Kube } from './kube.ts';
import { setupSuite, startIngressPod, type Suite } from './suite.ts';

interface Crd {
  metadata: { name: string };
  spec: { group: string; names: { kind: string; plural: string } };
}

/** What the API server answered to a dry-run create. */
interface Outcome {
  accepted: boolean;
  /** The stored spec (after pruning and defaulting), when accepted. */
  spec?: unknown;
  /** The error entries, sorted, when rejected. */
  errors?: string[];
}

const NAMESPACE = 'crd-cases';
const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

const docsOf = (text: string): KubeObject[] =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);

const testdata = (name: string): KubeObject[] => docsOf(readFileSync(join(REPO, 'charts/tests/testdata', name), 'utf8'));

/** `POST ...: 422 Invalid: Kind.group "name" is invalid: [a, b]` -> the entries, sorted (their order is the server's walk). */
function errorEntries(message: string): string[] {
  const body = message.replace(/^POST \S+: \d+ \w+: /, '');
  const list = /is invalid: \[(.*)\]$/s.exec(body)?.[1] ?? /is invalid: (.*)$/s.exec(body)?.[1];
  if (list === undefined) return [body];
  return list.split(/, (?=(?:spec|metadata|status|<nil>)\b)/).sort();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// It creates and deletes CRDs: never on a cluster of E2E_KUBECONFIG, where that would delete every Istio object.
const SHARED_CLUSTER = process.env.E2E_KUBECONFIG
  ? 'E2E_KUBECONFIG is set: replacing the CRDs of a shared cluster would delete its Istio objects; run it on e2e/kube/cluster.sh'
  : false;

describe("kubernetes: charts/base accepts and rejects what Istio's CRDs do", { skip: SHARED_CLUSTER }, () => {
  let cluster: Cluster;
  let kube: Kube;
  let istioCrds: Crd[];
  let ourCrds: Crd[];
  const cases = [
    ...testdata('istio-valid.yaml').map((o) => ({ o, expect: 'valid' as const })),
    ...testdata('istio-admitted.yaml').map((o) => ({ o, expect: 'admitted' as const })),
    ...testdata('istio-invalid.yaml').map((o) => ({ o, expect: 'invalid' as const })),
  ];
  const key = (o: KubeObject): string => `${o.apiVersion} ${o.kind} ${o.metadata.name}`;
  const results: { istio: Map<string, Outcome>; ours: Map<string, Outcome> } = { istio: new Map(), ours: new Map() };

  async function install(crds: Crd[]): Promise<void> {
    for (const c of crds) await kube.client.json('POST', CRDS, { body: c });
    for (const c of crds) {
      await eventually(
        `${c.metadata.name} Established`,
        async () => {
          const got = await kube.client.json<{ status?: { conditions?: { type: string; status: string }[] } }>('GET', `${CRDS}/${c.metadata.name}`);
          return got.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') || undefined;
        },
        60_000,
        200,
      );
    }
  }

  async function uninstall(crds: Crd[]): Promise<void> {
    for (const c of crds) await kube.client.json('DELETE', `${CRDS}/${c.metadata.name}`);
    for (const c of crds) {
      await eventually(
        `${c.metadata.name} deleted`,
        async () => {
          try {
            await kube.client.json('GET', `${CRDS}/${c.metadata.name}`);
            return undefined;
          } catch (err) {
            return err instanceof KubeApiError && err.status === 404 ? true : undefined;
          }
        },
        60_000,
        200,
      );
    }
  }

  /** A dry-run create with strict field validation: an unknown (pruned) field is an error, as with kubectl --validate=strict. */
  async function tryCreate(crds: Crd[], o: KubeObject): Promise<Outcome> {
    const [group = '', version = ''] = o.apiVersion.split('/');
    const plural = crds.find((c) => c.spec.group === group && c.spec.names.kind === o.kind)?.spec.names.plural;
    assert.ok(plural, `no CRD for ${o.apiVersion} ${o.kind}`);
    const path = `/apis/${group}/${version}/namespaces/${NAMESPACE}/${plural}`;
    const body = { ...o, metadata: { ...o.metadata, namespace: NAMESPACE } };
    for (let attempt = 0; ; attempt++) {
      try {
        const created = await kube.client.json<KubeObject>('POST', path, { body, query: { dryRun: 'All', fieldValidation: 'Strict' } });
        return { accepted: true, spec: created.spec };
      } catch (err) {
        if (!(err instanceof KubeApiError)) throw err;
        // A just-established CRD can answer 404 for a moment.
        if (err.status === 404 && attempt < 20) {
          await sleep(250);
          continue;
        }
        assert.ok(err.status === 422 || err.status === 400, `${key(o)}: ${err.message}`);
        return { accepted: false, errors: errorEntries(err.message) };
      }
    }
  }

  before(
    async () => {
      const out = await exec('bash', [join(REPO, 'scripts/fetch-istio-crds.sh')], {}, 15 * 60_000);
      const file = /^\/\S+\/crd-all\.gen\.yaml$/m.exec(out)?.[0];
      assert.ok(file, `scripts/fetch-istio-crds.sh printed no path: ${out}`);
      istioCrds = docsOf(readFileSync(file, 'utf8')) as unknown as Crd[];
      const dir = join(REPO, 'charts/base/templates');
      ourCrds = readdirSync(dir)
        .filter((f) => f.startsWith('crd-'))
        .flatMap((f) => docsOf(readFileSync(join(dir, f), 'utf8'))) as unknown as Crd[];
      cluster = await startCluster();
      kube = new Kube(cluster.kubeconfig);
      await kube.ensureNamespace(NAMESPACE);

      await install(istioCrds);
      for (const c of cases) results.istio.set(key(c.o), await tryCreate(istioCrds, c.o));
      await uninstall(istioCrds);
      await install(ourCrds);
      for (const c of cases) results.ours.set(key(c.o), await tryCreate(ourCrds, c.o));
    },
    { timeout: 20 * 60_000 },
  );

  after(async () => cluster?.stop(), { timeout: 120_000 });

  test('charts/base has a CRD of the same name for every CRD of Istio, and no other', () => {
    assert.deepEqual(ourCrds.map((c) => c.metadata.name).sort(), istioCrds.map((c) => c.metadata.name).sort());
  });

  test("the testdata's claims hold for Istio's own CRDs", () => {
    for (const { o, expect } of cases) {
      const r = results.istio.get(key(o));
      if (expect !== 'invalid') {
        assert.equal(r?.accepted, true, `${key(o)} (${expect}): ${r?.errors?.join('; ')}`);
        continue;
      }
      assert.equal(r?.accepted, false, `${key(o)}: Istio's CRDs accept it`);
      const at = o.metadata.annotations?.['test.meshgate.io/rejected-at'] ?? '';
      const cel = o.metadata.annotations?.['test.meshgate.io/cel'];
      assert.ok(
        // Most errors start with the field; oneOf errors name it inside (`<nil>: ... "spec.x" must validate one and only
        // one schema`), strict decoding errors too (`unknown field "spec.http.route"`).
        r.errors?.some((e) => (e.startsWith(`${at}: `) || e.includes(`"${at}`)) && (!cel || e.includes(cel))),
        `${key(o)}: expected an error at ${at}${cel ? ` from "${cel}"` : ''}, got ${r.errors?.join('; ')}`,
      );
    }
    const rejected = cases.filter((c) => results.istio.get(key(c.o))?.accepted === false).length;
    assert.ok(rejected >= 60, `only ${rejected} objects rejected by Istio's CRDs: the table lost its invalid cases`);
  });

  test("every object gets the same answer from charts/base as from Istio's CRDs", (t) => {
    const rejected = [...results.istio.values()].filter((r) => !r.accepted).length;
    t.diagnostic(`${cases.length} objects: ${cases.length - rejected} accepted and ${rejected} rejected by Istio's CRDs`);
    const differences: string[] = [];
    for (const { o } of cases) {
      const istio = results.istio.get(key(o));
      const ours = results.ours.get(key(o));
      if (JSON.stringify(istio) !== JSON.stringify(ours)) differences.push(`${key(o)}:\n  Istio: ${JSON.stringify(istio)}\n  ours:  ${JSON.stringify(ours)}`);
    }
    assert.deepEqual(differences, []);
  });
});

describe('kubernetes: objects of a kind meshgate does not implement get an Unsupported condition', () => {
  let s: Suite;
  let gw: GatewayPod;
  let type: string;
  const filter = (priority: number): KubeObject => ({
    apiVersion: 'networking.istio.io/v1alpha3',
    kind: 'EnvoyFilter',
    metadata: { name: 'add-header', namespace: s.ns.app },
    spec: {
      workloadSelector: { labels: { istio: 'ingressgateway' } },
      priority,
      configPatches: [
        { applyTo: 'HTTP_FILTER', match: { context: 'GATEWAY' }, patch: { operation: 'INSERT_FIRST', value: { name: 'envoy.filters.http.lua' } } },
      ],
    },
  });
  const path = (): string => `/apis/networking.istio.io/v1alpha3/namespaces/${s.ns.app}/envoyfilters/add-header`;
  const ours = async (): Promise<IstioCondition | undefined> => {
    const o = await s.kube.client.json<KubeObject>('GET', path());
    return ((o.status as { conditions?: IstioCondition[] } | undefined)?.conditions ?? []).find((c) => c.type === type);
  };

  before(
    async () => {
      s = await setupSuite();
      gw = await startIngressPod(s);
      type = statusConditionType(s.ns.gw, gw.pod.metadata.labels ?? {});
    },
    { timeout: 10 * 60_000 },
  );

  after(
    async () => {
      await gw?.stop();
      await s?.cleanup();
    },
    { timeout: 120_000 },
  );

  test('an EnvoyFilter gets status False, reason Unsupported, for its generation; a new generation is written again', async () => {
    await s.kube.client.json('POST', `/apis/networking.istio.io/v1alpha3/namespaces/${s.ns.app}/envoyfilters`, { body: filter(1) });
    const cond = await eventually('the condition on the EnvoyFilter', ours, 30_000, 250);
    assert.equal(cond.status, 'False');
    assert.equal(cond.reason, UNSUPPORTED_REASON);
    assert.equal(cond.message, 'EnvoyFilter is not implemented by meshgate: this gateway ignores it (docs/install.md#crds)');
    assert.equal(Number(cond.observedGeneration), 1);

    const current = await s.kube.client.json<KubeObject>('GET', path());
    await s.kube.client.json('PUT', path(), { body: { ...current, spec: filter(2).spec } });
    const next = await eventually('observedGeneration 2', async () => ((await ours())?.observedGeneration === 2 ? ours() : undefined), 30_000, 250);
    assert.equal(next?.reason, UNSUPPORTED_REASON);
    assert.equal(next?.lastTransitionTime, cond.lastTransitionTime, 'the status did not change: the transition time stays');
  });
});
