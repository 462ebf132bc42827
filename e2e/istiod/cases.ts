// The inputs of the differential: every golden input of the translator (controller/translate/testdata)
// and every example config, as one YAML stream of objects plus the gateway's identity, which both
// meshgate's translator and istiod's are given.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import type { GatewayIdentity } from '../../controller/xds/snapshot.ts';

export interface DiffCase {
  name: string;
  identity: GatewayIdentity;
  /**
   * The objects, each with its apiVersion (meshgate's golden loader reads kinds alone; istiod needs it), written
   * as YAML 1.1, the version istiod's Go decoder reads: a quoted "yes" must stay quoted, not become a boolean.
   */
  yaml: string;
  /** The mesh config (a golden input's `kind: MeshConfig` document), as YAML; none: istiod's defaults. */
  mesh?: string;
}

const REPO = join(import.meta.dirname, '..', '..');
const GOLDEN_DIR = join(REPO, 'controller/translate/testdata');

const API_VERSION: Readonly<Record<string, string>> = {
  Service: 'v1',
  Pod: 'v1',
  Secret: 'v1',
  Endpoints: 'v1',
  EndpointSlice: 'discovery.k8s.io/v1',
  Gateway: 'networking.istio.io/v1',
  VirtualService: 'networking.istio.io/v1',
  DestinationRule: 'networking.istio.io/v1',
  ServiceEntry: 'networking.istio.io/v1',
  AuthorizationPolicy: 'security.istio.io/v1',
  RequestAuthentication: 'security.istio.io/v1',
  Telemetry: 'telemetry.istio.io/v1',
};

/** `meshgate local`'s defaults. */
const DEFAULT_IDENTITY: GatewayIdentity = {
  namespace: 'istio-system',
  podName: 'istio-ingressgateway',
  labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' },
};

/**
 * Objects and identity from YAML text; a `kind: Identity` document (golden inputs) sets the identity, a
 * `kind: MeshConfig` one the mesh config (its `mesh`: a map, or YAML text).
 */
function caseFromYaml(name: string, text: string): DiffCase {
  let identity = DEFAULT_IDENTITY;
  let mesh: string | undefined;
  const objects: Record<string, unknown>[] = [];
  for (const [i, d] of parseAllDocuments(text).entries()) {
    if (d.errors.length) throw new Error(`${name} document ${i}: ${d.errors[0]?.message}`);
    const o = d.toJS() as (Record<string, unknown> & { kind?: string; identity?: GatewayIdentity; mesh?: unknown }) | null;
    if (!o) continue;
    if (o.kind === 'MeshConfig' && !o.apiVersion) {
      mesh = typeof o.mesh === 'string' ? o.mesh : stringify(o.mesh ?? {}, { lineWidth: 0, version: '1.1' });
      continue;
    }
    if (o.kind === 'Identity' && o.identity) {
      identity = o.identity;
      continue;
    }
    objects.push(o.apiVersion || !o.kind || !API_VERSION[o.kind] ? o : { apiVersion: API_VERSION[o.kind], ...o });
  }
  return { name, identity, yaml: objects.map((o) => stringify(o, { lineWidth: 0, version: '1.1' })).join('---\n'), ...(mesh !== undefined ? { mesh } : {}) };
}

export function goldenCases(): DiffCase[] {
  return readdirSync(GOLDEN_DIR)
    .filter((f) => f.endsWith('.in.yaml'))
    .sort()
    .map((f) => caseFromYaml(`golden/${f.slice(0, -'.in.yaml'.length)}`, readFileSync(join(GOLDEN_DIR, f), 'utf8')));
}

export function exampleCases(): DiffCase[] {
  const root = join(REPO, 'examples');
  return readdirSync(root)
    .filter((d) => statSync(join(root, d)).isDirectory())
    .sort()
    .map((d) => {
      const files = readdirSync(join(root, d))
        .filter((f) => /\.ya?ml$/.test(f))
        .sort();
      return caseFromYaml(`examples/${d}`, files.map((f) => readFileSync(join(root, d, f), 'utf8')).join('\n---\n'));
    });
}
