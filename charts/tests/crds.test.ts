// charts/base: the Istio CRDs, every kind Istio's base chart ships (networking, security, telemetry and extensions
// kinds, with Istio's served versions and stored version), structural schemas with Istio's CEL rules, generated
// files up to date, and what the schemas accept and reject (testdata/istio-*.yaml). The CEL rules themselves are
// evaluated by a real API server, beside Istio's own CRDs, in e2e/kube/crds.test.ts.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { NOT_HONOURED_KINDS } from '../../controller/model/objects.ts';
import { crdFileName, KINDS, renderCrd, TEMPLATES_DIR } from '../crds/generate.ts';
import type { Schema } from '../crds/openapi.ts';
import { BASE_CHART, REPO, helm, parseManifests, template, templateError, type K8sObject } from './helm.ts';
import { structuralErrors, validate } from './openapi.ts';

interface CrdVersion {
  name: string;
  served: boolean;
  storage: boolean;
  subresources?: { status?: Record<string, never> };
  schema: { openAPIV3Schema: Schema };
}

interface Crd extends K8sObject {
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string; singular: string; listKind: string; shortNames?: string[]; categories?: string[] };
    versions: CrdVersion[];
  };
}

interface IstioResource extends K8sObject {
  spec?: unknown;
  status?: unknown;
}

// Istio's base chart at the version e2e/istiod/oracle/go.mod pins: groups, served versions, the stored one.
const NETWORKING = { group: 'networking.istio.io', versions: ['v1', 'v1alpha3', 'v1beta1'], storage: 'v1', category: 'networking-istio-io' };
const SECURITY = { group: 'security.istio.io', versions: ['v1', 'v1beta1'], storage: 'v1', category: 'security-istio-io' };
const TELEMETRY = { group: 'telemetry.istio.io', versions: ['v1', 'v1alpha1'], storage: 'v1alpha1', category: 'telemetry-istio-io' };
const EXTENSIONS = { group: 'extensions.istio.io', versions: ['v1alpha1'], storage: 'v1alpha1', category: 'extensions-istio-io' };

/**
 * `rules`: how many CEL rules Istio's CRD of the kind has (counted in its crd-all.gen.yaml); `preserved`: where
 * Istio's schema keeps unknown fields (status, and free-form plugin config or Envoy patches).
 */
const EXPECTED: {
  kind: string;
  rules: number;
  plural: string;
  shortName?: string;
  group: string;
  versions: string[];
  storage: string;
  category: string;
  preserved?: string[];
}[] = [
  { kind: 'TrafficExtension', rules: 8, plural: 'trafficextensions', ...EXTENSIONS, preserved: ['.spec.wasm.pluginConfig'] },
  { kind: 'WasmPlugin', rules: 8, plural: 'wasmplugins', ...EXTENSIONS, preserved: ['.spec.pluginConfig'] },
  { kind: 'DestinationRule', rules: 47, plural: 'destinationrules', shortName: 'dr', ...NETWORKING },
  {
    kind: 'EnvoyFilter',
    rules: 5,
    plural: 'envoyfilters',
    ...NETWORKING,
    versions: ['v1alpha3'],
    storage: 'v1alpha3',
    preserved: ['.spec.configPatches[].patch.value'],
  },
  { kind: 'Gateway', rules: 3, plural: 'gateways', shortName: 'gw', ...NETWORKING },
  { kind: 'ProxyConfig', rules: 3, plural: 'proxyconfigs', ...NETWORKING, versions: ['v1beta1'], storage: 'v1beta1' },
  { kind: 'ServiceEntry', rules: 15, plural: 'serviceentries', shortName: 'se', ...NETWORKING },
  { kind: 'Sidecar', rules: 18, plural: 'sidecars', ...NETWORKING },
  { kind: 'VirtualService', rules: 6, plural: 'virtualservices', shortName: 'vs', ...NETWORKING },
  { kind: 'WorkloadEntry', rules: 6, plural: 'workloadentries', shortName: 'we', ...NETWORKING },
  { kind: 'WorkloadGroup', rules: 9, plural: 'workloadgroups', shortName: 'wg', ...NETWORKING },
  { kind: 'AuthorizationPolicy', rules: 7, plural: 'authorizationpolicies', shortName: 'ap', ...SECURITY },
  { kind: 'PeerAuthentication', rules: 5, plural: 'peerauthentications', shortName: 'pa', ...SECURITY },
  { kind: 'RequestAuthentication', rules: 10, plural: 'requestauthentications', shortName: 'ra', ...SECURITY },
  { kind: 'Telemetry', rules: 9, plural: 'telemetries', shortName: 'telemetry', ...TELEMETRY },
];

/** Every CEL rule of a schema: `path: rule` (path as in the walk below). */
function celRules(s: Schema, path = ''): string[] {
  const out = (s['x-kubernetes-validations'] ?? []).map((r) => `${path || '.'}: ${r.message}`);
  for (const [k, p] of Object.entries(s.properties ?? {})) out.push(...celRules(p, `${path}.${k}`));
  if (s.items) out.push(...celRules(s.items, `${path}[]`));
  if (s.additionalProperties) out.push(...celRules(s.additionalProperties, `${path}{}`));
  return out;
}

function readDocs(path: string): IstioResource[] {
  return parseManifests(readFileSync(join(REPO, path), 'utf8'));
}

describe('charts/base', () => {
  test('lints with --strict', () => {
    const r = helm(['lint', '--strict', BASE_CHART]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  test('takes no values: a typo fails with a clear message', () => {
    assert.match(templateError(BASE_CHART, 'meshgate-base', { set: { crds: 'false' } }), /additional properties 'crds' not allowed/);
  });

  const rendered = template(BASE_CHART, 'meshgate-base') as Crd[];

  test("renders exactly the fifteen CRDs of Istio's base chart, one file per kind, as plain YAML that kubectl can apply directly", () => {
    assert.deepEqual(
      rendered.map((o) => o.kind),
      EXPECTED.map(() => 'CustomResourceDefinition'),
    );
    const files = readdirSync(TEMPLATES_DIR)
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    assert.deepEqual(files, EXPECTED.map((e) => `crd-${e.plural}.yaml`).sort());
    for (const f of files) {
      const text = readFileSync(join(TEMPLATES_DIR, f), 'utf8');
      assert.ok(!text.includes('{{'), `${f} has template directives`);
      const docs = parseAllDocuments(text);
      assert.equal(docs.length, 1, f);
      const fromFile = docs[0]?.toJS() as Crd;
      assert.deepEqual(
        rendered.find((c) => c.metadata.name === fromFile.metadata.name),
        fromFile,
        f,
      );
    }
  });

  for (const e of EXPECTED) {
    describe(e.kind, () => {
      const crd = rendered.find((c) => c.spec.names.kind === e.kind);

      test(`is ${e.plural}.${e.group}, namespaced, with Istio's names${e.shortName ? ` and short name ${e.shortName}` : ''}`, () => {
        assert.ok(crd);
        assert.equal(crd.metadata.name, `${e.plural}.${e.group}`);
        assert.equal(crd.spec.group, e.group);
        assert.equal(crd.spec.scope, 'Namespaced');
        assert.deepEqual(crd.spec.names, {
          kind: e.kind,
          listKind: `${e.kind}List`,
          plural: e.plural,
          singular: e.kind.toLowerCase(),
          ...(e.shortName ? { shortNames: [e.shortName] } : {}),
          categories: ['istio-io', e.category],
        });
      });

      test(`serves ${e.versions.join(', ')} with one schema and stores ${e.storage}`, () => {
        assert.ok(crd);
        assert.deepEqual(
          crd.spec.versions.map((v) => [v.name, v.served, v.storage]),
          e.versions.map((v) => [v, true, v === e.storage]),
        );
        const [v1, ...others] = crd.spec.versions;
        for (const v of others) assert.deepEqual(v.schema, v1?.schema, v.name);
        for (const v of crd.spec.versions) assert.deepEqual(v.subresources, { status: {} }, v.name);
      });

      test(`has a structural schema that declares spec and keeps open only status${e.preserved ? ` and ${e.preserved.join(', ')}` : ''}`, () => {
        assert.ok(crd);
        const schema = crd.spec.versions[0]?.schema.openAPIV3Schema;
        assert.ok(schema);
        assert.deepEqual(structuralErrors(schema), []);
        assert.deepEqual(Object.keys(schema.properties ?? {}), ['spec', 'status']);
        // x-kubernetes-preserve-unknown-fields only on status, which Istio's controllers write.
        const preserved: string[] = [];
        const walk = (s: Schema, path: string): void => {
          if (s['x-kubernetes-preserve-unknown-fields']) preserved.push(path);
          for (const [k, p] of Object.entries(s.properties ?? {})) walk(p, `${path}.${k}`);
          if (s.items) walk(s.items, `${path}[]`);
          if (s.additionalProperties) walk(s.additionalProperties, `${path}{}`);
        };
        walk(schema, '');
        assert.deepEqual(preserved.sort(), [...(e.preserved ?? []), '.status'].sort());
      });

      test(`carries Istio's ${e.rules} CEL validation rules (x-kubernetes-validations)`, () => {
        const schema = crd?.spec.versions[0]?.schema.openAPIV3Schema;
        assert.ok(schema);
        assert.equal(celRules(schema).length, e.rules, celRules(schema).join('\n'));
        for (const r of celRules(schema)) assert.match(r, /^[.\w[\]{}]+: \S/);
      });

      test('survives helm uninstall (helm.sh/resource-policy: keep)', () => {
        assert.equal(crd?.metadata.annotations?.['helm.sh/resource-policy'], 'keep');
      });
    });
  }

  test('the kinds marked not honoured are exactly those the controller watches to mark Unsupported', () => {
    assert.deepEqual(
      KINDS.filter((k) => !k.honoured)
        .map((k) => k.kind)
        .sort(),
      [...NOT_HONOURED_KINDS].sort(),
    );
  });

  test('the CRD files are what charts/crds/generate.ts writes from charts/crds/*.ts', () => {
    for (const k of KINDS) {
      const file = readFileSync(join(TEMPLATES_DIR, crdFileName(k)), 'utf8');
      assert.equal(file, renderCrd(k), `${crdFileName(k)} is stale: run node charts/crds/generate.ts`);
    }
  });
});

describe('CRD schemas against Istio resources', () => {
  const crds = template(BASE_CHART, 'meshgate-base') as Crd[];

  function schemaFor(r: IstioResource): Schema {
    const [group, version] = r.apiVersion.split('/');
    const crd = crds.find((c) => c.spec.group === group && c.spec.names.kind === r.kind);
    assert.ok(crd, `no CRD for ${r.apiVersion} ${r.kind}`);
    const v = crd.spec.versions.find((x) => x.name === version && x.served);
    assert.ok(v, `${r.kind} ${version} is not served`);
    return v.schema.openAPIV3Schema;
  }

  /** apiVersion, kind and metadata are the API server's; the CRD schema governs the rest. */
  function errorsOf(r: IstioResource): string[] {
    const body: Record<string, unknown> = {};
    if (r.spec !== undefined) body.spec = r.spec;
    if (r.status !== undefined) body.status = r.status;
    return validate(body, schemaFor(r));
  }

  const valid = readDocs('charts/tests/testdata/istio-valid.yaml');
  const admitted = readDocs('charts/tests/testdata/istio-admitted.yaml');
  const invalid = readDocs('charts/tests/testdata/istio-invalid.yaml');

  /** The schema node of a field path as the API server reports it (spec.http[0].timeout). */
  function nodeAt(schema: Schema, path: string): Schema | undefined {
    let node: Schema | undefined = schema;
    for (const part of path.match(/[^.[\]]+|\[\d+\]/g) ?? []) {
      if (!node) return undefined;
      node = part.startsWith('[') ? node.items : (node.properties?.[part] ?? node.additionalProperties);
    }
    return node;
  }

  test('the valid examples cover every kind in every served version', () => {
    const seen = new Set(valid.map((r) => `${r.kind} ${r.apiVersion}`));
    for (const e of EXPECTED) {
      for (const v of e.versions) assert.ok(seen.has(`${e.kind} ${e.group}/${v}`), `${e.kind} ${v}`);
    }
  });

  for (const r of [...valid, ...admitted]) {
    test(`accepts ${r.apiVersion} ${r.kind} ${r.metadata.name} without pruning any field`, () => {
      assert.deepEqual(errorsOf(r), []);
    });
  }

  for (const r of invalid) {
    const at = r.metadata.annotations?.['test.meshgate.io/rejected-at'] ?? '';
    const cel = r.metadata.annotations?.['test.meshgate.io/cel'];
    test(`rejects ${r.kind} ${r.metadata.name} at ${at}${cel ? ` (CEL: ${cel})` : ''}`, () => {
      assert.ok(at, 'the example names the field that is rejected');
      if (cel) {
        // No CEL evaluator here: the rule must sit on that field (e2e/kube/crds.test.ts has the API server run it).
        const rules = nodeAt(schemaFor(r), at)?.['x-kubernetes-validations'] ?? [];
        assert.ok(
          rules.some((x) => x.message === cel),
          `no CEL rule "${cel}" at ${at}: ${JSON.stringify(rules)}`,
        );
        return;
      }
      const errors = errorsOf(r);
      assert.ok(
        errors.some((e) => e.startsWith(`${at}: `)),
        `expected an error at ${at}, got: ${errors.join('; ') || 'none'}`,
      );
    });
  }
});
