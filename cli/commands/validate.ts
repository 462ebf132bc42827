// `meshgate validate`: istiod's validation and the gateway analyzers of `istioctl analyze` over a directory,
// files or a cluster, offline (no gateway running). Prints istioctl's lines with the file:line of the offending
// field and a fix hint; exits 1 when a finding is at the failure level (Error by default), as a CI step or a
// pre-commit hook wants.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { CONFIG_FILE, parseConfigFile } from '../../controller/sources/local-dir.ts';
import { indexPositions, type PositionIndex } from '../../controller/sources/positions.ts';
import { ObjectStore } from '../../controller/model/store.ts';
import type { Kind, KubeObject, StoredObject } from '../../controller/model/objects.ts';
import type { ValidationError } from '../../controller/model/validation.ts';
import { analyze } from '../../controller/analyze/analyze.ts';
import { duplicateFindings, fileFindings } from '../../controller/analyze/config-files.ts';
import { type Finding, type Level, LEVELS, documentationUrl } from '../../controller/analyze/messages.ts';
import { KubeApiError, KubeClient, type KubeList, loadKubeConfig } from '../../controller/sources/kube/client.ts';
import { IstioDiscovery, type IstioGroup, NETWORKING, SECURITY, TELEMETRY } from '../../controller/sources/kube/discovery.ts';
import { SECRET_FIELD_SELECTOR } from '../../controller/sources/kube/source.ts';
import { silentLogger } from '../logger.ts';
import { StartupError, UsageError, parseLabels } from '../usage-error.ts';

export const summary = 'check Istio/Kubernetes config offline: istiod validation and the istioctl analyze checks for gateways';
export const usage = `usage: meshgate validate [DIR | -f FILE ... | --kubeconfig K [-n NS]] [flags]

Runs istiod's validation on every Istio object and the checks of 'istioctl analyze' that concern a gateway
(a Gateway selecting no workload or with a port its Service lacks, a VirtualService bound to a missing
Gateway or to hosts no server has, a route to a host without a Service or to a subset no DestinationRule
defines, a credentialName Secret missing or invalid, conflicting Gateways or certificates, TLS without
certificate verification, unreachable routes), plus meshgate's own (MG codes). Each finding: level, Istio's code and message, the object with the file:line of the
offending field, and a hint. Nothing runs: no gateway, no network unless --kubeconfig.

flags:
  DIR, -f, --filename PATH  files or directories of YAML/JSON (recursive; .yaml/.yml/.json), as
                            'meshgate local --config' reads them; repeatable
  --kubeconfig FILE         read the objects from this cluster's API server instead
  -n, --namespace NS        with --kubeconfig: report on objects in NS only (every namespace is read)
  --gateway-namespace NS    files only: the namespace of the gateway workload 'meshgate local' runs as
                            (default istio-system), counted as a Pod beside the Pods in the files
  --gateway-labels K=V,...  files only: its labels (default istio=ingressgateway,app=istio-ingressgateway)
  -o, --output FORMAT       log (default), json or yaml
  --fail-on LEVEL           exit 1 when a finding is at LEVEL or worse: error (default), warning or info
                            (istioctl's --failure-threshold Error|Warning|Info is also accepted)

exit status: 0 nothing at the failure level, 1 findings at it (or the cluster could not be read), 2 usage.

pre-commit hook (.git/hooks/pre-commit):
  npx meshgate validate config/ || { echo 'meshgate validate failed: see above'; exit 1; }
`;

interface Options {
  paths: string[];
  kubeconfig?: string;
  namespace?: string;
  gatewayNamespace: string;
  gatewayLabels: Record<string, string>;
  output: 'log' | 'json' | 'yaml';
  failOn: Level;
}

function parseLevel(flag: string, v: string): Level {
  const level = LEVELS.find((l) => l.toLowerCase() === v.toLowerCase());
  if (!level) throw new UsageError(`--${flag} must be error, warning or info, got '${v}'`);
  return level;
}

function parseValidateArgs(argv: string[]): Options {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      filename: { type: 'string', short: 'f', multiple: true },
      kubeconfig: { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      'gateway-namespace': { type: 'string' },
      'gateway-labels': { type: 'string' },
      output: { type: 'string', short: 'o' },
      'fail-on': { type: 'string' },
      'failure-threshold': { type: 'string' },
    },
  });
  const paths = [...positionals, ...(values.filename ?? [])];
  if (values.kubeconfig !== undefined && paths.length > 0) throw new UsageError('give either files (DIR, -f) or --kubeconfig, not both');
  if (values.kubeconfig === undefined && paths.length === 0) throw new UsageError('nothing to validate: give a directory, -f FILE or --kubeconfig FILE');
  if (values.namespace !== undefined && values.kubeconfig === undefined) throw new UsageError('-n/--namespace goes with --kubeconfig');
  const output = values.output ?? 'log';
  if (output !== 'log' && output !== 'json' && output !== 'yaml') throw new UsageError(`--output must be log, json or yaml, got '${output}'`);
  const failOn = values['fail-on'] ?? values['failure-threshold'];
  return {
    paths,
    ...(values.kubeconfig !== undefined ? { kubeconfig: values.kubeconfig } : {}),
    ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
    gatewayNamespace: values['gateway-namespace'] ?? 'istio-system',
    gatewayLabels: parseLabels('gateway-labels', values['gateway-labels'] ?? 'istio=ingressgateway,app=istio-ingressgateway'),
    output,
    failOn: failOn === undefined ? 'Error' : parseLevel(values['fail-on'] !== undefined ? 'fail-on' : 'failure-threshold', failOn),
  };
}

/** The config files under each path, in path order, walked as the local source walks its directory (no dot entries). */
function configFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (p: string, top: boolean): void => {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new UsageError(`${p}: no such file or directory`);
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(p).sort()) if (!name.startsWith('.')) walk(join(p, name), false);
    } else if (st.isFile() && (top || CONFIG_FILE.test(p))) out.push(p);
  };
  for (const p of paths) walk(p, true);
  return out;
}

interface Loaded {
  objects: StoredObject[];
  errors: ValidationError[];
  positions?: PositionIndex;
  target: string;
}

function loadFiles(o: Options): Loaded {
  const files = configFiles(o.paths).map((f) => {
    // Printed relative to the working directory, as the user wrote them (istioctl prints the path given).
    const rel = relative(process.cwd(), resolve(f));
    return { file: rel.startsWith('..') ? resolve(f) : rel, text: readFileSync(f, 'utf8') };
  });
  const objects: StoredObject[] = [];
  const errors: ValidationError[] = [];
  for (const f of files) {
    const parsed = parseConfigFile(f.text, f.file);
    objects.push(...parsed.objects);
    errors.push(...parsed.errors);
  }
  return { objects, errors, positions: indexPositions(files), target: o.paths.join(', ') };
}

/** The Pod `meshgate local` runs as (its --namespace and --labels), unless the files hold one of that name. */
function localGatewayPod(o: Options, objects: readonly StoredObject[]): StoredObject[] {
  const name = 'istio-ingressgateway';
  if (objects.some((s) => s.kind === 'Pod' && s.obj.metadata.name === name && s.obj.metadata.namespace === o.gatewayNamespace)) return [];
  const obj: KubeObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: o.gatewayNamespace, labels: o.gatewayLabels } };
  return [{ kind: 'Pod', obj, origin: {} }];
}

const ISTIO_KINDS: readonly { group: IstioGroup; plurals: Partial<Record<Kind, string>> }[] = [
  {
    group: NETWORKING,
    plurals: { Gateway: 'gateways', VirtualService: 'virtualservices', DestinationRule: 'destinationrules', ServiceEntry: 'serviceentries' },
  },
  { group: SECURITY, plurals: { AuthorizationPolicy: 'authorizationpolicies', RequestAuthentication: 'requestauthentications' } },
  { group: TELEMETRY, plurals: { Telemetry: 'telemetries' } },
  // Kinds meshgate does not implement, listed to say so (MG0005), as the controller marks them Unsupported.
  {
    group: NETWORKING,
    plurals: {
      EnvoyFilter: 'envoyfilters',
      Sidecar: 'sidecars',
      WorkloadEntry: 'workloadentries',
      WorkloadGroup: 'workloadgroups',
      ProxyConfig: 'proxyconfigs',
    },
  },
  { group: { group: 'extensions.istio.io', versions: ['v1alpha1'] }, plurals: { WasmPlugin: 'wasmplugins', TrafficExtension: 'trafficextensions' } },
];

const CORE_KINDS: readonly { kind: Kind; path: string; apiVersion: string; fieldSelector?: string }[] = [
  { kind: 'Service', path: '/api/v1/services', apiVersion: 'v1' },
  { kind: 'Pod', path: '/api/v1/pods', apiVersion: 'v1' },
  { kind: 'Secret', path: '/api/v1/secrets', apiVersion: 'v1', fieldSelector: SECRET_FIELD_SELECTOR },
];

/** Every object of the kinds the gateway reads, in every namespace, listed once (no watch). */
async function loadCluster(o: Options & { kubeconfig: string }): Promise<Loaded> {
  let client: KubeClient;
  try {
    client = new KubeClient(loadKubeConfig(o.kubeconfig));
  } catch (err) {
    throw new StartupError((err as Error).message);
  }
  const objects: StoredObject[] = [];
  const get = async (path: string, fieldSelector: string | undefined): Promise<KubeList> => {
    // 429 is the API server asking to come back (a CRD just installed answers "storage is (re)initializing").
    for (let attempt = 1; ; attempt++) {
      try {
        return await client.json<KubeList>('GET', path, { timeoutMs: 30_000, ...(fieldSelector ? { query: { fieldSelector } } : {}) });
      } catch (err) {
        if (!(err instanceof KubeApiError && err.status === 429) || attempt === 10) throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  };
  const list = async (kind: Kind, path: string, apiVersion: string, fieldSelector?: string): Promise<void> => {
    const l = await get(path, fieldSelector);
    // A list's items carry no kind or apiVersion: the list's own.
    for (const item of l.items) objects.push({ kind, obj: { ...item, kind, apiVersion }, origin: {} });
  };
  try {
    for (const { group, plurals } of ISTIO_KINDS) {
      const discovery = new IstioDiscovery(client, silentLogger(), group);
      for (const [kind, plural] of Object.entries(plurals) as [Kind, string][]) {
        let version: string;
        try {
          version = await discovery.version(plural);
        } catch (err) {
          if (err instanceof KubeApiError && err.status === 404) continue; // CRD not installed: no such objects
          throw err;
        }
        await list(kind, `/apis/${group.group}/${version}/${plural}`, `${group.group}/${version}`);
      }
    }
    for (const c of CORE_KINDS) await list(c.kind, c.path, c.apiVersion, c.fieldSelector);
  } catch (err) {
    throw new StartupError(`cannot read the cluster (${client.server}): ${(err as Error).message}`);
  }
  return { objects, errors: [], target: o.namespace ? `namespace: ${o.namespace}` : 'all namespaces' };
}

/** istioctl's `Kind namespace/name` (a document that is no object: `document N`). */
const objectName = (f: Finding): string => (f.namespace === '' ? `${f.kind} ${f.name}` : `${f.kind} ${f.namespace}/${f.name}`);

/** istioctl's `(Kind namespace/name file:line)`. */
const origin = (f: Finding): string => `${objectName(f)}${f.position ? ` ${f.position.file}:${f.position.line}` : ''}`;

function formatFindings(findings: readonly Finding[], output: Options['output']): string {
  if (output === 'log') return findings.map((f) => `${f.level} [${f.code}] (${origin(f)}) ${f.message}\n  hint: ${f.hint}\n`).join('');
  // istioctl's JSON fields (code, level, origin, reference, message, documentationUrl), then meshgate's.
  const rows = findings.map((f) => ({
    code: f.code,
    level: f.level,
    origin: objectName(f),
    ...(f.position ? { reference: `${f.position.file}:${f.position.line}` } : {}),
    message: f.message,
    ...(documentationUrl(f.code) ? { documentationUrl: documentationUrl(f.code) } : {}),
    type: f.type,
    kind: f.kind,
    namespace: f.namespace,
    name: f.name,
    ...(f.field ? { field: f.field } : {}),
    ...(f.position ? { file: f.position.file, line: f.position.line } : {}),
    hint: f.hint,
  }));
  return output === 'json' ? `${JSON.stringify(rows, null, 2)}\n` : stringify(rows);
}

export async function run(argv: string[]): Promise<void> {
  const o = parseValidateArgs(argv);
  const loaded = o.kubeconfig !== undefined ? await loadCluster({ ...o, kubeconfig: o.kubeconfig }) : loadFiles(o);
  const store = new ObjectStore();
  const extra = [...fileFindings(loaded.errors), ...duplicateFindings(loaded.objects)];
  const pods = o.kubeconfig === undefined ? localGatewayPod(o, loaded.objects) : [];
  for (const s of [...loaded.objects, ...pods]) store.upsert(s.kind, s.obj, s.origin);
  let findings = analyze(store.snapshot(), loaded.positions, extra);
  if (o.namespace !== undefined) findings = findings.filter((f) => f.namespace === o.namespace);
  process.stdout.write(formatFindings(findings, o.output));
  if (o.output === 'log') {
    const count = (l: Level): number => findings.filter((f) => f.level === l).length;
    process.stderr.write(
      findings.length === 0
        ? `\u2714 No validation issues found when analyzing ${loaded.target}.\n`
        : `${count('Error')} error(s), ${count('Warning')} warning(s), ${count('Info')} info\n`,
    );
  }
  const failAt = LEVELS.indexOf(o.failOn);
  if (findings.some((f) => LEVELS.indexOf(f.level) <= failAt)) process.exitCode = 1;
}
