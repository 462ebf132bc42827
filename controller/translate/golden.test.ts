// Golden-file tests (as Envoy Gateway does): testdata/<case>.in.yaml holds Istio + Kubernetes objects, the
// proxy's identity (a `kind: Identity` document) and optionally the mesh config (a `kind: MeshConfig` document whose
// `mesh` holds what istiod's ConfigMap `istio` holds under `mesh`, as a map or as YAML text); <case>.out.yaml holds the Envoy resources produced, normalized through the Envoy
// protos (so they are valid Envoy config) and the validation errors. UPDATE_GOLDEN=1 regenerates them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { ObjectStore } from '../model/store.ts';
import { isKind, type KubeObject, storeKind } from '../model/objects.ts';
import { formatError } from '../model/validation.ts';
import type { GatewayIdentity } from '../xds/snapshot.ts';
import { normalizeJson } from '../../xds/protos.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../../xds/type-urls.ts';
import { translate } from './translate.ts';
import { DEFAULT_MESH_CONFIG, type MeshConfig, parseMeshConfig } from '../model/mesh-config.ts';

const DIR = join(import.meta.dirname, 'testdata');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

interface Input {
  identity: GatewayIdentity;
  store: ObjectStore;
  mesh: MeshConfig;
}

function load(file: string): Input {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  let identity: GatewayIdentity | undefined;
  let mesh = DEFAULT_MESH_CONFIG;
  const store = new ObjectStore();
  docs.forEach((d, i) => {
    if (d.errors.length) throw new Error(`${file} document ${i}: ${d.errors[0]?.message}`);
    const o = d.toJS() as (KubeObject & { identity?: GatewayIdentity; mesh?: unknown }) | null;
    if (!o) return;
    if (o.kind === 'MeshConfig') {
      const parsed = parseMeshConfig(typeof o.mesh === 'string' ? o.mesh : stringify(o.mesh ?? {}), `${file} document ${i}`);
      if (!parsed.ok) throw new Error(parsed.errors.join('; '));
      mesh = parsed.mesh;
      return;
    }
    if (o.kind === 'Identity') {
      identity = o.identity;
      return;
    }
    const kind = storeKind(o.apiVersion, o.kind);
    if (!isKind(kind)) throw new Error(`${file} document ${i}: unknown kind ${String(o.kind)}`);
    o.metadata.namespace ??= 'default';
    store.upsert(kind, o, { file: `${file.split('/').pop()}#${i}` });
  });
  identity ??= { namespace: 'istio-system', podName: 'istio-ingressgateway-0', labels: { istio: 'ingressgateway' } };
  return { identity, store, mesh };
}

/** Private keys shown as Envoy's config_dump shows them (base64 of `[redacted]`). */
function redactKeys(secret: Record<string, unknown>): Record<string, unknown> {
  const cert = secret.tls_certificate as { private_key?: unknown } | undefined;
  if (cert?.private_key) cert.private_key = { inline_bytes: Buffer.from('[redacted]').toString('base64') };
  return secret;
}

function render(i: Input): string {
  const { resources, errors } = translate(i.store.snapshot(), i.identity, undefined, i.mesh);
  const out: Record<string, unknown> = {
    errors: errors.map(formatError),
    listeners: resources.listeners.map((l) => normalizeJson(LISTENER_TYPE, l)),
    routes: resources.routes.map((r) => normalizeJson(ROUTE_TYPE, r)),
    clusters: resources.clusters.map((c) => normalizeJson(CLUSTER_TYPE, c)),
    endpoints: resources.endpoints.map((e) => normalizeJson(ENDPOINT_TYPE, e)),
  };
  // SDS secrets only where there are any (the older cases have none).
  if (resources.secrets.length > 0) out.secrets = resources.secrets.map((s) => redactKeys(normalizeJson(SECRET_TYPE, s)));
  return stringify(out, { lineWidth: 0, aliasDuplicateObjects: false });
}

const cases = readdirSync(DIR)
  .filter((f) => f.endsWith('.in.yaml'))
  .map((f) => f.slice(0, -'.in.yaml'.length))
  .sort();

for (const name of cases) {
  test(`translation golden: ${name}`, () => {
    const got = render(load(join(DIR, `${name}.in.yaml`)));
    const outFile = join(DIR, `${name}.out.yaml`);
    if (UPDATE || !existsSync(outFile)) {
      writeFileSync(outFile, got);
      if (!UPDATE) assert.fail(`${outFile} did not exist and was written: review it, then re-run`);
      return;
    }
    assert.equal(got, readFileSync(outFile, 'utf8'), `${name}: translation differs from ${outFile} (UPDATE_GOLDEN=1 regenerates it; review the diff)`);
  });
}
