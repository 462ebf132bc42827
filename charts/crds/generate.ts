// Writes the CustomResourceDefinitions of charts/base/templates (one file per kind) from the schemas in
// networking.ts, workload.ts, sidecar.ts, envoyfilter.ts, security.ts, telemetry.ts and extensions.ts: every kind
// Istio's base chart ships, with its versions and served/storage flags. Run after editing a schema:
//
//   node charts/crds/generate.ts           # rewrite the files
//   node charts/crds/generate.ts --check   # exit 1 if a file differs (the chart tests do the same)
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { istioStatus } from './common.ts';
import { envoyFilterSpec } from './envoyfilter.ts';
import { trafficExtensionSpec, wasmPluginSpec } from './extensions.ts';
import { destinationRuleSpec, gatewaySpec, serviceEntrySpec, virtualServiceSpec } from './networking.ts';
import type { Schema } from './openapi.ts';
import { proxyConfigSpec, sidecarSpec } from './sidecar.ts';
import { authorizationPolicySpec, peerAuthenticationSpec, requestAuthenticationSpec } from './security.ts';
import { telemetrySpec } from './telemetry.ts';
import { workloadEntrySpec, workloadGroupSpec } from './workload.ts';

/** An Istio API group. */
interface Group {
  name: string;
  /** The categories `kubectl get <category>` lists, as Istio's CRDs declare them. */
  categories: string[];
}

const NETWORKING: Group = { name: 'networking.istio.io', categories: ['istio-io', 'networking-istio-io'] };
const SECURITY: Group = { name: 'security.istio.io', categories: ['istio-io', 'security-istio-io'] };
const TELEMETRY: Group = { name: 'telemetry.istio.io', categories: ['istio-io', 'telemetry-istio-io'] };
const EXTENSIONS: Group = { name: 'extensions.istio.io', categories: ['istio-io', 'extensions-istio-io'] };

/** Served versions (all with one schema) and the stored one, as Istio's CRDs have them for each kind. */
interface Versions {
  served: readonly string[];
  storage: string;
}
const NETWORKING_VERSIONS: Versions = { served: ['v1', 'v1alpha3', 'v1beta1'], storage: 'v1' };
const SECURITY_VERSIONS: Versions = { served: ['v1', 'v1beta1'], storage: 'v1' };
// Istio still stores Telemetry as v1alpha1 (v1 is served with the same schema).
const TELEMETRY_VERSIONS: Versions = { served: ['v1', 'v1alpha1'], storage: 'v1alpha1' };
const only = (version: string): Versions => ({ served: [version], storage: version });

export const TEMPLATES_DIR = fileURLToPath(new URL('../base/templates/', import.meta.url));

interface PrinterColumn {
  name: string;
  type: 'string' | 'date';
  jsonPath: string;
  description: string;
}

interface Kind {
  group: Group;
  versions: Versions;
  kind: string;
  plural: string;
  shortName?: string;
  spec: Schema;
  specRequired: boolean;
  columns: PrinterColumn[];
  /** Whether meshgate's controller implements the kind; the others get an Unsupported status condition. */
  honoured: boolean;
  /** The file of charts/crds its schema is written in. */
  source: string;
}

const AGE: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since the object was created.',
};

const col = (name: string, jsonPath: string, description: string): PrinterColumn => ({ name, type: 'string', jsonPath, description });

const net = { group: NETWORKING, versions: NETWORKING_VERSIONS, source: 'networking.ts' };
const sec = { group: SECURITY, versions: SECURITY_VERSIONS, source: 'security.ts' };

/** Every kind of Istio's base chart, in the order of its crd-all.gen.yaml. */
export const KINDS: Kind[] = [
  {
    group: EXTENSIONS,
    versions: only('v1alpha1'),
    source: 'extensions.ts',
    kind: 'TrafficExtension',
    plural: 'trafficextensions',
    spec: trafficExtensionSpec,
    specRequired: true,
    columns: [AGE],
    honoured: false,
  },
  {
    group: EXTENSIONS,
    versions: only('v1alpha1'),
    source: 'extensions.ts',
    kind: 'WasmPlugin',
    plural: 'wasmplugins',
    spec: wasmPluginSpec,
    specRequired: true,
    columns: [AGE],
    honoured: false,
  },
  {
    ...net,
    kind: 'DestinationRule',
    plural: 'destinationrules',
    shortName: 'dr',
    spec: destinationRuleSpec,
    specRequired: false,
    columns: [col('Host', '.spec.host', 'The service the policies apply to.'), AGE],
    honoured: true,
  },
  {
    group: NETWORKING,
    versions: only('v1alpha3'),
    source: 'envoyfilter.ts',
    kind: 'EnvoyFilter',
    plural: 'envoyfilters',
    spec: envoyFilterSpec,
    specRequired: false,
    columns: [],
    honoured: false,
  },
  { ...net, kind: 'Gateway', plural: 'gateways', shortName: 'gw', spec: gatewaySpec, specRequired: false, columns: [], honoured: true },
  {
    group: NETWORKING,
    versions: only('v1beta1'),
    source: 'sidecar.ts',
    kind: 'ProxyConfig',
    plural: 'proxyconfigs',
    spec: proxyConfigSpec,
    specRequired: false,
    columns: [],
    honoured: false,
  },
  {
    ...net,
    kind: 'ServiceEntry',
    plural: 'serviceentries',
    shortName: 'se',
    spec: serviceEntrySpec,
    specRequired: true,
    columns: [
      col('Hosts', '.spec.hosts', 'Hosts of the service.'),
      col('Location', '.spec.location', 'Inside or outside the mesh.'),
      col('Resolution', '.spec.resolution', 'How endpoints are resolved.'),
      AGE,
    ],
    honoured: true,
  },
  { ...net, source: 'sidecar.ts', kind: 'Sidecar', plural: 'sidecars', spec: sidecarSpec, specRequired: false, columns: [], honoured: false },
  {
    ...net,
    kind: 'VirtualService',
    plural: 'virtualservices',
    shortName: 'vs',
    spec: virtualServiceSpec,
    specRequired: false,
    columns: [col('Gateways', '.spec.gateways', 'Gateways the routes apply to.'), col('Hosts', '.spec.hosts', 'Destination hosts of the routes.'), AGE],
    honoured: true,
  },
  {
    ...net,
    source: 'workload.ts',
    kind: 'WorkloadEntry',
    plural: 'workloadentries',
    shortName: 'we',
    spec: workloadEntrySpec,
    specRequired: true,
    columns: [AGE, col('Address', '.spec.address', 'Address of the workload.')],
    honoured: false,
  },
  {
    ...net,
    source: 'workload.ts',
    kind: 'WorkloadGroup',
    plural: 'workloadgroups',
    shortName: 'wg',
    spec: workloadGroupSpec,
    specRequired: true,
    columns: [AGE],
    honoured: false,
  },
  {
    ...sec,
    kind: 'AuthorizationPolicy',
    plural: 'authorizationpolicies',
    shortName: 'ap',
    spec: authorizationPolicySpec,
    specRequired: false,
    columns: [col('Action', '.spec.action', 'The operation to take.'), AGE],
    honoured: true,
  },
  {
    ...sec,
    kind: 'PeerAuthentication',
    plural: 'peerauthentications',
    shortName: 'pa',
    spec: peerAuthenticationSpec,
    specRequired: false,
    columns: [col('Mode', '.spec.mtls.mode', 'Defines the mTLS mode used for peer authentication.'), AGE],
    // Gateways ignore PeerAuthentication in Istio too (it configures sidecars' inbound mTLS): nothing to report.
    honoured: true,
  },
  {
    ...sec,
    kind: 'RequestAuthentication',
    plural: 'requestauthentications',
    shortName: 'ra',
    spec: requestAuthenticationSpec,
    specRequired: false,
    columns: [],
    honoured: true,
  },
  {
    group: TELEMETRY,
    versions: TELEMETRY_VERSIONS,
    source: 'telemetry.ts',
    kind: 'Telemetry',
    plural: 'telemetries',
    shortName: 'telemetry',
    spec: telemetrySpec,
    specRequired: false,
    columns: [AGE],
    honoured: true,
  },
];

export function crdFileName(k: Kind): string {
  return `crd-${k.plural}.yaml`;
}

export function crdObject(k: Kind): Record<string, unknown> {
  const openAPIV3Schema: Schema = {
    description: `${k.kind} (${k.group.name}), as defined by the Istio API; served by meshgate's chart.`,
    type: 'object',
    properties: {
      spec: k.spec,
      status: istioStatus,
    },
    ...(k.specRequired ? { required: ['spec'] } : {}),
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${k.plural}.${k.group.name}`,
      // helm uninstall (or a chart upgrade dropping a CRD) must never delete every resource of the kind.
      annotations: { 'helm.sh/resource-policy': 'keep' },
      labels: { 'app.kubernetes.io/part-of': 'meshgate' },
    },
    spec: {
      group: k.group.name,
      names: {
        kind: k.kind,
        listKind: `${k.kind}List`,
        plural: k.plural,
        singular: k.kind.toLowerCase(),
        ...(k.shortName ? { shortNames: [k.shortName] } : {}),
        categories: k.group.categories,
      },
      scope: 'Namespaced',
      versions: k.versions.served.map((name) => ({
        name,
        served: true,
        storage: name === k.versions.storage,
        subresources: { status: {} },
        ...(k.columns.length ? { additionalPrinterColumns: k.columns } : {}),
        schema: { openAPIV3Schema },
      })),
    },
  };
}

export function renderCrd(k: Kind): string {
  const header =
    `# ${k.kind} CRD, generated by charts/crds/generate.ts from charts/crds/${k.source}: edit those and run\n` +
    '# `node charts/crds/generate.ts`. Plain YAML (no template directives): `kubectl apply -f` works on it too.\n';
  return header + stringify(crdObject(k), { aliasDuplicateObjects: false, lineWidth: 0 });
}

function main(argv: string[]): void {
  const check = argv.includes('--check');
  let stale = 0;
  for (const k of KINDS) {
    const path = TEMPLATES_DIR + crdFileName(k);
    const want = renderCrd(k);
    let have = '';
    try {
      have = readFileSync(path, 'utf8');
    } catch {
      // missing: written below, or reported as stale
    }
    if (have === want) continue;
    if (check) {
      process.stderr.write(`${path} is out of date: run node charts/crds/generate.ts\n`);
      stale++;
    } else {
      writeFileSync(path, want);
      process.stdout.write(`wrote ${path}\n`);
    }
  }
  if (stale) process.exitCode = 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
