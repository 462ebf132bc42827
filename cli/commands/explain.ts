// `meshgate explain`: which listener, filter chain, virtual host, route and cluster a request would meet on a
// gateway, and why; against a live gateway's admin API, or offline on a config directory translated in-process
// as `meshgate local` translates it (the same source, identity, mesh config and translator; no port opened).
import { parseArgs } from 'node:util';
import { relative, resolve } from 'node:path';
import { readFileSync, statSync } from 'node:fs';
import { silentLogger } from '../logger.ts';
import { parseLabels, UsageError } from '../usage-error.ts';
import { meshConfigPath } from '../mesh-config-flag.ts';
import { localIdentity } from './local.ts';
import { ObjectStore } from '../../controller/model/store.ts';
import type { StoreSnapshot } from '../../controller/model/store.ts';
import { formatError, type ValidationError } from '../../controller/model/validation.ts';
import { startLocalDirSource } from '../../controller/sources/local-dir.ts';
import { MeshConfigFile } from '../../controller/sources/mesh-config-file.ts';
import { INSTALLED_MESH_CONFIG, DEFAULT_MESH_CONFIG } from '../../controller/model/mesh-config.ts';
import { PROXY_CONFIG_ANNOTATION, gatewayProxyConfig } from '../../controller/model/proxy-config.ts';
import { Translator } from '../../controller/translate/translate.ts';
import { NO_JWKS_FETCH } from '../../controller/translate/jwt-authn.ts';
import type { GatewayIdentity } from '../../controller/xds/snapshot.ts';
import { normalizeJson } from '../../xds/protos.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../xds/type-urls.ts';
import type { envoy } from '../../xds/envoy.ts';
import { explain, type EnvoyConfig, type ExplainRequest, type Explanation } from '../../gateway/explain/explain.ts';
import { configFromAdmin } from '../../gateway/explain/config-dump.ts';
import { renderExplanation } from '../../gateway/explain/render.ts';
import { annotateWithIstio, type Locate } from './explain-istio.ts';
import { indexPositions } from '../../controller/sources/positions.ts';

export const summary = 'say which listener, route and cluster a request would reach, and why (live or offline)';
export const usage = `usage: meshgate explain --host HOST [--path P] [--method M] [--header K=V ...] [--port N] [--sni S] [--tls]
                        [--admin URL | --config DIR [--namespace NS] [--name NAME] [--labels K=V,...]] [-o json]

Walks a request through the gateway's configuration as the proxy would: the listener and filter chain that take
the connection, the virtual host, each route tested before the one that matches and why it did not, the route's
action (redirect, direct response, rewrite, weighted clusters, retries, timeout, fault, mirror, CORS), the cluster
and its endpoints with their health, the AuthorizationPolicies that allow or deny it, and the Istio object each piece
came from. A 404 or 503 is said in one sentence.
Nothing is sent to the gateway's listeners.

request:
  --host HOST           the Host (:authority) header (required)
  --path P              the path, with query string (default /)
  --method M            the method (default GET)
  --header K=V          a request header; repeat for more (K: V also accepted)
  --port N              the port the client connects to: a listener port, or a Gateway server port (80 finds
                        the listener 0.0.0.0_8080 that serves it); default 80, 443 with --tls
  --tls                 the connection is TLS
  --sni S               the TLS server name (default the host)
  --client IP           the client's address, for AuthorizationPolicy ipBlocks/remoteIpBlocks (default 127.0.0.1)

configuration (one of):
  --admin URL           a running gateway's admin API (default http://127.0.0.1:15000): its /config_dump?include_eds
                        and /clusters?format=json; in Kubernetes, kubectl port-forward to the pod's port 15000
  --config DIR          a directory of Istio/Kubernetes YAML, translated as meshgate local would translate it
    --namespace NS      the gateway's namespace (default istio-system)
    --name NAME         the gateway workload name (default istio-ingressgateway)
    --labels K=V,...    the gateway pod's labels (default istio=ingressgateway,app=istio-ingressgateway)
    --proxy-config YAML the gateway pod's proxy.istio.io/config annotation, as for meshgate local
    --mesh-config FILE  the MeshConfig, as for meshgate local (default: an Istio install's)

output:
  -o, --output FORMAT   text (default) or json

exit status: 0 the request is served (forwarded to a usable endpoint, redirected, or answered by its route);
1 it is not (no listener, no filter chain, 404, 503); 2 a usage error; 3 the configuration could not be read.
`;

export interface ExplainOptions {
  request: ExplainRequest;
  output: 'text' | 'json';
  admin: string;
  config?: string;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  proxyConfig?: string;
  meshConfig?: string;
}

function parseHeader(h: string): [string, string] {
  const m = /^([^=:\s]+)\s*[=:]\s*(.*)$/.exec(h);
  if (!m) throw new UsageError(`--header takes NAME=VALUE (or 'NAME: VALUE'), got '${h}'`);
  return [m[1] as string, m[2] as string];
}

export function parseExplainArgs(argv: string[]): ExplainOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      host: { type: 'string' },
      path: { type: 'string' },
      method: { type: 'string' },
      header: { type: 'string', multiple: true },
      port: { type: 'string' },
      sni: { type: 'string' },
      tls: { type: 'boolean' },
      client: { type: 'string' },
      admin: { type: 'string' },
      config: { type: 'string' },
      namespace: { type: 'string' },
      name: { type: 'string' },
      labels: { type: 'string' },
      'proxy-config': { type: 'string' },
      'mesh-config': { type: 'string' },
      output: { type: 'string', short: 'o' },
    },
  });
  if (!values.host) throw new UsageError('--host HOST is required (the Host header of the request to explain)');
  if (values.admin !== undefined && values.config !== undefined)
    throw new UsageError('--admin and --config exclude each other: explain a live gateway or a config directory');
  const output = values.output ?? 'text';
  if (output !== 'text' && output !== 'json') throw new UsageError(`-o must be text or json, got '${output}'`);
  const path = values.path ?? '/';
  if (!path.startsWith('/')) throw new UsageError(`--path must start with '/', got '${path}'`);
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port must be a port number (1-65535), got '${values.port}'`);
  }
  const request: ExplainRequest = {
    host: values.host,
    path,
    method: (values.method ?? 'GET').toUpperCase(),
    headers: (values.header ?? []).map(parseHeader),
    tls: values.tls === true,
    ...(port !== undefined ? { port } : {}),
    ...(values.sni !== undefined ? { sni: values.sni } : {}),
    ...(values.client !== undefined ? { client: values.client } : {}),
  };
  const o: ExplainOptions = {
    request,
    output,
    admin: (values.admin ?? 'http://127.0.0.1:15000').replace(/\/+$/, ''),
    namespace: values.namespace ?? 'istio-system',
    name: values.name ?? 'istio-ingressgateway',
    labels: parseLabels('labels', values.labels ?? 'istio=ingressgateway,app=istio-ingressgateway'),
  };
  if (values.config !== undefined) {
    const dir = resolve(values.config);
    let isDir: boolean;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) throw new UsageError(`--config ${values.config}: not a directory`);
    o.config = dir;
  }
  if (values['proxy-config'] !== undefined) {
    const pc = gatewayProxyConfig(DEFAULT_MESH_CONFIG.defaultConfig, { [PROXY_CONFIG_ANNOTATION]: values['proxy-config'] });
    if (!pc.ok) throw new UsageError(`--proxy-config: ${pc.error}`);
    o.proxyConfig = values['proxy-config'];
  }
  const mesh = meshConfigPath(values['mesh-config']);
  if (mesh !== undefined) o.meshConfig = mesh;
  return o;
}

/** The configuration could not be read: exit status 3. */
class ReadError extends Error {}

async function fetchJson(url: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new ReadError(
      `cannot reach the gateway's admin API at ${url} (${cause}): is the gateway running? In Kubernetes: kubectl port-forward <gateway pod> 15000, or pass --admin URL or --config DIR`,
    );
  }
  const text = await res.text();
  if (res.status !== 200) throw new ReadError(`${url} answered ${res.status}: ${text.slice(0, 200)}`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ReadError(`${url} did not answer JSON: is ${url.slice(0, url.indexOf('/', 8))} an Envoy or meshgate admin API?`);
  }
}

/** A live gateway's resources, from its admin API. */
export async function liveConfig(admin: string): Promise<EnvoyConfig> {
  const [dump, clusters] = await Promise.all([fetchJson(`${admin}/config_dump?include_eds`), fetchJson(`${admin}/clusters?format=json`)]);
  try {
    return configFromAdmin(dump, clusters);
  } catch (err) {
    throw new ReadError((err as Error).message);
  }
}

export interface OfflineConfig {
  config: EnvoyConfig;
  snapshot: StoreSnapshot;
  identity: GatewayIdentity;
  /** What the directory holds that the controller skips (meshgate local logs the same). */
  errors: ValidationError[];
  /** file:line of an object or one of its fields, the file relative to the working directory. */
  locate: Locate;
}

/** file:line of the objects the directory source read, from the files as written. */
function locator(snapshot: StoreSnapshot): Locate {
  const files = [...new Set(snapshot.objects.flatMap((o) => (o.origin.file ? [o.origin.file.replace(/#\d+$/, '')] : [])))];
  const index = indexPositions(
    files.flatMap((file) => {
      try {
        return [{ file, text: readFileSync(file, 'utf8') }];
      } catch {
        return []; // removed since it was read: no line for its objects
      }
    }),
  );
  return (o, fieldPath) => {
    const p = index.locate(o.kind, o.obj.metadata.namespace ?? 'default', o.obj.metadata.name, fieldPath);
    return p ? `${relative(process.cwd(), p.file) || p.file}:${p.line}` : undefined;
  };
}

/**
 * A config directory's resources, as meshgate local serves them: the directory source, the gateway identity, the
 * mesh config and the translator it uses, and each resource through the Envoy protos (what the proxy receives over
 * xDS). RequestAuthentication jwksUris are not fetched (their JWKS is the never-verifying one until fetched).
 */
export async function offlineConfig(o: ExplainOptions & { config: string }): Promise<OfflineConfig> {
  const store = new ObjectStore();
  const errors: ValidationError[] = [];
  const log = silentLogger();
  const source = await startLocalDirSource({ dir: o.config, store, log, reporter: { report: (e) => errors.push(...e) } });
  await source.close();
  let mesh = INSTALLED_MESH_CONFIG;
  if (o.meshConfig !== undefined) {
    const file = await MeshConfigFile.start({ file: o.meshConfig, log });
    mesh = file.current();
    file.close();
  }
  const identity = localIdentity(o);
  const snapshot = store.snapshot();
  const result = new Translator().translate(snapshot, identity, undefined, NO_JWKS_FETCH, mesh);
  errors.push(...result.errors);
  const r = result.resources;
  const config: EnvoyConfig = {
    listeners: r.listeners.map((l) => normalizeJson(LISTENER_TYPE, l) as envoy.config.listener.v3.Listener),
    routes: r.routes.map((x) => normalizeJson(ROUTE_TYPE, x) as envoy.config.route.v3.RouteConfiguration),
    clusters: r.clusters.map((c) => normalizeJson(CLUSTER_TYPE, c) as envoy.config.cluster.v3.Cluster),
    endpoints: r.endpoints.map((e) => normalizeJson(ENDPOINT_TYPE, e) as envoy.config.endpoint.v3.ClusterLoadAssignment),
  };
  return { config, snapshot, identity, errors, locate: locator(snapshot) };
}

/** The explanation for the options: live, or offline with the Istio objects' sentences and files. */
export async function explainFor(o: ExplainOptions): Promise<{ explanation: Explanation; warnings: string[] }> {
  if (o.config === undefined) return { explanation: explainOrThrow(await liveConfig(o.admin), o.request), warnings: [] };
  const off = await offlineConfig({ ...o, config: o.config });
  const x = explainOrThrow(off.config, o.request);
  return {
    explanation: annotateWithIstio(x, off.config, off.snapshot, off.identity, off.locate),
    warnings: off.errors.map((e) => `skipped: ${formatError(e)}`),
  };
}

function explainOrThrow(config: EnvoyConfig, req: ExplainRequest): Explanation {
  try {
    return explain(config, req);
  } catch (err) {
    throw new ReadError(`the gateway's configuration has a resource the proxy rejects: ${(err as Error).message}`);
  }
}

/** The explanation's fields in the request's order through the gateway (JSON keeps insertion order). */
function inOrder(x: Explanation): Explanation {
  const keys: (keyof Explanation)[] = [
    'request',
    'listener',
    'filterChain',
    'routeConfiguration',
    'policies',
    'virtualHost',
    'skippedRoutes',
    'route',
    'clusters',
    'status',
    'details',
    'outcome',
    'served',
    'why',
  ];
  return Object.fromEntries(keys.filter((k) => x[k] !== undefined).map((k) => [k, x[k]])) as unknown as Explanation;
}

export async function run(argv: string[]): Promise<void> {
  const o = parseExplainArgs(argv);
  let result;
  try {
    result = await explainFor(o);
  } catch (err) {
    if (!(err instanceof ReadError)) throw err;
    process.stderr.write(`meshgate explain: ${err.message}\n`);
    process.exitCode = 3;
    return;
  }
  for (const w of result.warnings) process.stderr.write(`meshgate explain: ${w}\n`);
  const x = result.explanation;
  process.stdout.write(o.output === 'json' ? `${JSON.stringify(inOrder(x), null, 2)}\n` : renderExplanation(x));
  process.exitCode = x.served ? 0 : 1;
}
