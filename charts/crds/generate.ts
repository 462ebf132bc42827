// Writes the CustomResourceDefinitions of charts/base/templates (one file per kind) from the schemas in
// networking.ts, security.ts and telemetry.ts. Run after editing a schema:
//
//   node charts/crds/generate.ts           # rewrite the files
//   node charts/crds/generate.ts --check   # exit 1 if a file differs (the chart tests do the same)
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { destinationRuleSpec, gatewaySpec, serviceEntrySpec, virtualServiceSpec } from './networking.ts';
import { authorizationPolicySpec, peerAuthenticationSpec, requestAuthenticationSpec } from './security.ts';
import { telemetrySpec } from './telemetry.ts';
import type { Schema } from './openapi.ts';

/** An Istio API group: every version is served with the same schema; v1 is stored (as in Istio 1.22+). */
interface Group {
  name: string;
  versions: readonly string[];
  /** The categories `kubectl get <category>` lists, as Istio's CRDs declare them. */
  categories: string[];
  /** The file of charts/crds its schemas are written in. */
  source: string;
}

export const NETWORKING: Group = {
  name: 'networking.istio.io',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  categories: ['istio-io', 'networking-istio-io'],
  source: 'networking.ts',
};
export const SECURITY: Group = { name: 'security.istio.io', versions: ['v1', 'v1beta1'], categories: ['istio-io', 'security-istio-io'], source: 'security.ts' };
export const TELEMETRY: Group = {
  name: 'telemetry.istio.io',
  versions: ['v1', 'v1alpha1'],
  categories: ['istio-io', 'telemetry-istio-io'],
  source: 'telemetry.ts',
};
export const STORAGE_VERSION = 'v1';
export const TEMPLATES_DIR = fileURLToPath(new URL('../base/templates/', import.meta.url));

interface PrinterColumn {
  name: string;
  type: 'string' | 'date';
  jsonPath: string;
  description: string;
}

interface Kind {
  group: Group;
  kind: string;
  plural: string;
  shortName: string;
  spec: Schema;
  specRequired: boolean;
  columns: PrinterColumn[];
}

const AGE: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since the object was created.',
};

export const KINDS: Kind[] = [
  { group: NETWORKING, kind: 'Gateway', plural: 'gateways', shortName: 'gw', spec: gatewaySpec, specRequired: false, columns: [AGE] },
  {
    group: NETWORKING,
    kind: 'VirtualService',
    plural: 'virtualservices',
    shortName: 'vs',
    spec: virtualServiceSpec,
    specRequired: false,
    columns: [
      { name: 'Gateways', type: 'string', jsonPath: '.spec.gateways', description: 'Gateways the routes apply to.' },
      { name: 'Hosts', type: 'string', jsonPath: '.spec.hosts', description: 'Destination hosts of the routes.' },
      AGE,
    ],
  },
  {
    group: NETWORKING,
    kind: 'DestinationRule',
    plural: 'destinationrules',
    shortName: 'dr',
    spec: destinationRuleSpec,
    specRequired: true,
    columns: [{ name: 'Host', type: 'string', jsonPath: '.spec.host', description: 'The service the policies apply to.' }, AGE],
  },
  {
    group: NETWORKING,
    kind: 'ServiceEntry',
    plural: 'serviceentries',
    shortName: 'se',
    spec: serviceEntrySpec,
    specRequired: true,
    columns: [
      { name: 'Hosts', type: 'string', jsonPath: '.spec.hosts', description: 'Hosts of the service.' },
      { name: 'Location', type: 'string', jsonPath: '.spec.location', description: 'Inside or outside the mesh.' },
      { name: 'Resolution', type: 'string', jsonPath: '.spec.resolution', description: 'How endpoints are resolved.' },
      AGE,
    ],
  },
  {
    group: SECURITY,
    kind: 'AuthorizationPolicy',
    plural: 'authorizationpolicies',
    shortName: 'ap',
    spec: authorizationPolicySpec,
    specRequired: false,
    columns: [{ name: 'Action', type: 'string', jsonPath: '.spec.action', description: 'The operation to take.' }, AGE],
  },
  {
    group: SECURITY,
    kind: 'RequestAuthentication',
    plural: 'requestauthentications',
    shortName: 'ra',
    spec: requestAuthenticationSpec,
    specRequired: false,
    columns: [AGE],
  },
  {
    group: SECURITY,
    kind: 'PeerAuthentication',
    plural: 'peerauthentications',
    shortName: 'pa',
    spec: peerAuthenticationSpec,
    specRequired: false,
    columns: [{ name: 'Mode', type: 'string', jsonPath: '.spec.mtls.mode', description: 'Defines the mTLS mode used for peer authentication.' }, AGE],
  },
  { group: TELEMETRY, kind: 'Telemetry', plural: 'telemetries', shortName: 'telemetry', spec: telemetrySpec, specRequired: false, columns: [AGE] },
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
      // Istio's IstioStatus, left open as in Istio's CRDs: istiod writes its conditions and validationMessages when it
      // runs, meshgate's controller its own condition type (docs/security-policy.md#status), each keeping the others'.
      status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
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
        shortNames: [k.shortName],
        categories: k.group.categories,
      },
      scope: 'Namespaced',
      versions: k.group.versions.map((name) => ({
        name,
        served: true,
        storage: name === STORAGE_VERSION,
        subresources: { status: {} },
        additionalPrinterColumns: k.columns,
        schema: { openAPIV3Schema },
      })),
    },
  };
}

export function renderCrd(k: Kind): string {
  const header =
    `# ${k.kind} CRD, generated by charts/crds/generate.ts from charts/crds/${k.group.source}: edit those and run\n` +
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
