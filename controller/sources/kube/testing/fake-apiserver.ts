// A small fake Kubernetes API server for unit tests of the list/watch loop: LIST with resourceVersion and
// field selectors, WATCH with history replay, bookmarks and 410 Gone, discovery of the Istio API groups (and the Gateway API's),
// Events, GET of one object and merge patches of its /status (resourceVersion precondition: 409), and knobs to misbehave (HTTP errors, clean watch ends, ERROR 410, hung watches, going down).
// Only what the Kubernetes source uses; the e2e suite runs against a real kube-apiserver.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { KubeObject } from '../../../model/objects.ts';

export interface Resource {
  /** `/api/v1` or `/apis/<group>/<version>` */
  prefix: string;
  plural: string;
  kind: string;
  /** Whether LIST items carry apiVersion/kind (true for CRDs, false for built-in types, as a real server). */
  itemsTyped?: boolean;
}

interface Change {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  res: Resource;
  obj: KubeObject;
}

interface OpenWatch {
  res: Resource;
  namespace: string | undefined;
  fieldSelector: string | undefined;
  http: ServerResponse;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: URLSearchParams;
  body?: unknown;
  /** When the request arrived (Date.now()). */
  at: number;
}

export const CORE_RESOURCES: Resource[] = [
  { prefix: '/api/v1', plural: 'services', kind: 'Service' },
  { prefix: '/api/v1', plural: 'pods', kind: 'Pod' },
  { prefix: '/api/v1', plural: 'secrets', kind: 'Secret' },
  { prefix: '/apis/discovery.k8s.io/v1', plural: 'endpointslices', kind: 'EndpointSlice' },
];

export const istioResources = (version: string): Resource[] =>
  [
    ['gateways', 'Gateway'],
    ['virtualservices', 'VirtualService'],
    ['destinationrules', 'DestinationRule'],
    ['serviceentries', 'ServiceEntry'],
  ].map(([plural, kind]) => ({ prefix: `/apis/networking.istio.io/${version}`, plural: plural ?? '', kind: kind ?? '', itemsTyped: true }));

/** security.istio.io resources (AuthorizationPolicy, RequestAuthentication) of one version. */
export const securityResources = (version: string): Resource[] => [
  { prefix: `/apis/security.istio.io/${version}`, plural: 'authorizationpolicies', kind: 'AuthorizationPolicy', itemsTyped: true },
  { prefix: `/apis/security.istio.io/${version}`, plural: 'requestauthentications', kind: 'RequestAuthentication', itemsTyped: true },
];

/** telemetry.istio.io Telemetry of one version. */
export const telemetryResources = (version: string): Resource[] => [
  { prefix: `/apis/telemetry.istio.io/${version}`, plural: 'telemetries', kind: 'Telemetry', itemsTyped: true },
];

export class FakeApiServer {
  port = 0;
  readonly requests: RequestRecord[] = [];
  /** Events written through POST/PATCH, by namespace/name. */
  readonly events = new Map<string, Record<string, unknown>>();
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly resources: Resource[];
  private readonly objects = new Map<string, { res: Resource; obj: KubeObject }>();
  private history: Change[] = [];
  private rv = 100;
  /** Watches from a resourceVersion older than this get 410 (as after a compaction or restart). */
  private oldestRv = 0;
  private readonly watches = new Set<OpenWatch>();
  private failures: { match: (r: RequestRecord) => boolean; status: number; times: number }[] = [];
  private hangWatches = false;

  constructor(resources: Resource[] = [...CORE_RESOURCES, ...istioResources('v1'), ...securityResources('v1'), ...telemetryResources('v1')]) {
    this.resources = resources;
  }

  async start(port = 0): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    const a = server.address();
    this.port = typeof a === 'object' && a ? a.port : 0;
  }

  /** Goes down: open connections are reset and new ones refused until `start(this.port)`. */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    this.watches.clear();
    for (const sock of this.sockets) sock.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  kubeconfig(): string {
    return JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: `http://127.0.0.1:${this.port}`, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'fake', user: { token: 'fake-token' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
      'current-context': 'fake',
    });
  }

  // --- the data --------------------------------------------------------------------------------------

  private key(res: Resource, ns: string | undefined, name: string): string {
    return `${res.prefix}/${res.plural}/${ns ?? ''}/${name}`;
  }

  private resourceOfKind(kind: string): Resource {
    const r = this.resources.find((x) => x.kind === kind);
    if (!r) throw new Error(`fake apiserver: no resource for kind ${kind}`);
    return r;
  }

  /**
   * Creates or replaces an object (bumps its resourceVersion, notifies watches). As a real server with a status
   * subresource: the status of an existing object is kept, and a new spec bumps metadata.generation.
   */
  apply(obj: KubeObject): KubeObject {
    const res = this.resourceOfKind(obj.kind);
    const k = this.key(res, obj.metadata.namespace, obj.metadata.name);
    const prev = this.objects.get(k)?.obj;
    const existed = prev !== undefined;
    const generation = prev
      ? (prev.metadata.generation ?? 1) + (JSON.stringify(prev.spec) === JSON.stringify(obj.spec) ? 0 : 1)
      : (obj.metadata.generation ?? 1);
    const stored: KubeObject = {
      ...obj,
      ...(prev && 'status' in prev && res.itemsTyped ? { status: prev.status } : {}),
      apiVersion: res.prefix.replace(/^\/apis?\//, ''),
      metadata: { ...obj.metadata, generation, resourceVersion: String(++this.rv), uid: obj.metadata.uid ?? `uid-${obj.metadata.name}` },
    };
    this.objects.set(k, { res, obj: stored });
    this.publish({ rv: this.rv, type: existed ? 'MODIFIED' : 'ADDED', res, obj: stored });
    return stored;
  }

  remove(kind: string, namespace: string, name: string): void {
    const res = this.resourceOfKind(kind);
    const k = this.key(res, namespace, name);
    const cur = this.objects.get(k);
    if (!cur) throw new Error(`fake apiserver: ${kind} ${namespace}/${name} does not exist`);
    this.objects.delete(k);
    const obj = { ...cur.obj, metadata: { ...cur.obj.metadata, resourceVersion: String(++this.rv) } };
    this.publish({ rv: this.rv, type: 'DELETED', res, obj });
  }

  get(kind: string, namespace: string, name: string): KubeObject | undefined {
    return this.objects.get(this.key(this.resourceOfKind(kind), namespace, name))?.obj;
  }

  /**
   * Forgets the watch history (as etcd compaction or an API server restart does): watches resuming from an
   * older resourceVersion get 410 Gone. Open watches get an ERROR 410 event and are closed when `notify`.
   */
  compact(notify = true): void {
    this.history = [];
    this.oldestRv = this.rv + 1;
    if (!notify) return;
    for (const w of this.watches) {
      w.http.end(
        JSON.stringify({
          type: 'ERROR',
          object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired', message: 'too old resource version' },
        }) + '\n',
      );
    }
    this.watches.clear();
  }

  /** Ends every open watch cleanly (as the API server does after timeoutSeconds). */
  endWatches(): void {
    for (const w of this.watches) w.http.end();
    this.watches.clear();
  }

  /** Sends a BOOKMARK with the current resourceVersion on every open watch. */
  bookmark(): void {
    for (const w of this.watches)
      w.http.write(
        JSON.stringify({ type: 'BOOKMARK', object: { kind: w.res.kind, apiVersion: w.res.prefix, metadata: { resourceVersion: String(this.rv) } } }) + '\n',
      );
  }

  /** The next `times` requests matching `match` are answered with HTTP `status`. */
  fail(status: number, match: (r: RequestRecord) => boolean = () => true, times = 1): void {
    this.failures.push({ match, status, times });
  }

  /** While on, watch requests are accepted (200, headers sent) and then never get a byte. */
  setHangWatches(on: boolean): void {
    this.hangWatches = on;
  }

  openWatches(): number {
    return this.watches.size;
  }

  watchRequests(plural?: string): RequestRecord[] {
    return this.requests.filter((r) => r.query.get('watch') === 'true' && (!plural || r.path.endsWith(`/${plural}`)));
  }

  listRequests(plural?: string): RequestRecord[] {
    const isList = (r: RequestRecord): boolean => this.resources.some((x) => r.path.startsWith(x.prefix) && r.path.endsWith(`/${x.plural}`));
    return this.requests.filter((r) => r.method === 'GET' && r.query.get('watch') !== 'true' && isList(r) && (!plural || r.path.endsWith(`/${plural}`)));
  }

  private publish(c: Change): void {
    this.history.push(c);
    for (const w of this.watches)
      if (this.visible(w.res, w.namespace, w.fieldSelector, c.res, c.obj)) w.http.write(JSON.stringify({ type: c.type, object: c.obj }) + '\n');
  }

  private visible(want: Resource, ns: string | undefined, fieldSelector: string | undefined, res: Resource, obj: KubeObject): boolean {
    if (res !== want) return false;
    if (ns !== undefined && obj.metadata.namespace !== ns) return false;
    for (const term of (fieldSelector ?? '').split(',').filter(Boolean)) {
      const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(term);
      if (!m) continue;
      const [, field, op, value] = m;
      const actual =
        field === 'metadata.name'
          ? obj.metadata.name
          : field === 'metadata.namespace'
            ? obj.metadata.namespace
            : field === 'type'
              ? (obj as { type?: string }).type
              : undefined;
      if (op === '!=' ? actual === value : actual !== value) return false;
    }
    return true;
  }

  // --- HTTP ------------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    let body: unknown;
    if (req.method === 'POST' || req.method === 'PATCH' || req.method === 'PUT') {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      body = JSON.parse(Buffer.concat(chunks).toString() || 'null');
    }
    const rec: RequestRecord = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, body, at: Date.now() };
    this.requests.push(rec);
    const f = this.failures.find((x) => x.times > 0 && x.match(rec));
    if (f) {
      f.times--;
      return this.status(res, f.status, f.status === 410 ? 'Expired' : 'InternalError', `injected failure ${f.status}`);
    }
    const group = /^\/apis\/([a-z.]+\.istio\.io|gateway\.networking\.k8s\.io)$/.exec(url.pathname);
    if (group) return this.discoveryGroup(res, group[1] ?? '');
    const ver = /^\/apis\/([a-z.]+\.istio\.io|gateway\.networking\.k8s\.io)\/([^/]+)$/.exec(url.pathname);
    if (ver) return this.discoveryVersion(res, ver[1] ?? '', ver[2] ?? '');
    const ev = /^\/api\/v1\/namespaces\/([^/]+)\/events(?:\/([^/]+))?$/.exec(url.pathname);
    if (ev) return this.eventsApi(req.method ?? '', ev[1] ?? '', ev[2], body, res);

    for (const r of this.resources) {
      const one = new RegExp(`^${r.prefix.replace(/[./]/g, '\\$&')}/namespaces/([^/]+)/${r.plural}/([^/]+)(/status)?$`).exec(url.pathname);
      if (one) return this.objectApi(req, r, one[1] ?? '', decodeURIComponent(one[2] ?? ''), one[3] !== undefined, body, res);
      const m = new RegExp(`^${r.prefix.replace(/[./]/g, '\\$&')}(?:/namespaces/([^/]+))?/${r.plural}$`).exec(url.pathname);
      if (!m) continue;
      const ns = m[1];
      const fieldSelector = url.searchParams.get('fieldSelector') ?? undefined;
      if (url.searchParams.get('watch') === 'true') return this.watch(r, ns, fieldSelector, url.searchParams.get('resourceVersion') ?? '', res);
      const items = [...this.objects.values()]
        .filter((o) => this.visible(r, ns, fieldSelector, o.res, o.obj))
        .map((o) => (r.itemsTyped ? o.obj : (({ apiVersion: _a, kind: _k, ...rest }) => rest)(o.obj)));
      return this.json(res, 200, {
        apiVersion: r.prefix.replace(/^\/apis?\//, ''),
        kind: `${r.kind}List`,
        metadata: { resourceVersion: String(this.rv) },
        items,
      });
    }
    this.status(res, 404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
  }

  private watch(r: Resource, ns: string | undefined, fieldSelector: string | undefined, from: string, res: ServerResponse): void {
    const fromRv = Number(from);
    if (!from || !Number.isFinite(fromRv)) return this.status(res, 400, 'BadRequest', 'the fake apiserver needs a resourceVersion to watch from');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (this.hangWatches) return; // accepted, then silence
    if (fromRv + 1 < this.oldestRv) {
      res.end(
        JSON.stringify({
          type: 'ERROR',
          object: {
            kind: 'Status',
            apiVersion: 'v1',
            status: 'Failure',
            code: 410,
            reason: 'Expired',
            message: `too old resource version: ${fromRv} (${this.oldestRv})`,
          },
        }) + '\n',
      );
      return;
    }
    for (const c of this.history)
      if (c.rv > fromRv && this.visible(r, ns, fieldSelector, c.res, c.obj)) res.write(JSON.stringify({ type: c.type, object: c.obj }) + '\n');
    const w: OpenWatch = { res: r, namespace: ns, fieldSelector, http: res };
    this.watches.add(w);
    res.on('close', () => this.watches.delete(w));
  }

  private discoveryGroup(res: ServerResponse, group: string): void {
    const versions = [...new Set(this.resources.filter((r) => r.prefix.startsWith(`/apis/${group}/`)).map((r) => r.prefix.split('/')[3]))];
    if (versions.length === 0) return this.status(res, 404, 'NotFound', 'the server could not find the requested resource');
    this.json(res, 200, {
      kind: 'APIGroup',
      apiVersion: 'v1',
      name: group,
      versions: versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v })),
    });
  }

  private discoveryVersion(res: ServerResponse, group: string, version: string): void {
    const rs = this.resources.filter((r) => r.prefix === `/apis/${group}/${version}`);
    if (rs.length === 0) return this.status(res, 404, 'NotFound', 'the server could not find the requested resource');
    this.json(res, 200, {
      kind: 'APIResourceList',
      groupVersion: `${group}/${version}`,
      resources: rs.map((r) => ({ name: r.plural, namespaced: true, kind: r.kind, verbs: ['get', 'list', 'watch'] })),
    });
  }

  /** GET of one object; PATCH (JSON merge patch) of its status, with metadata.resourceVersion as a precondition. */
  private objectApi(req: IncomingMessage, r: Resource, ns: string, name: string, status: boolean, body: unknown, res: ServerResponse): void {
    const k = this.key(r, ns, name);
    const cur = this.objects.get(k);
    if (!cur) return this.status(res, 404, 'NotFound', `${r.plural} "${name}" not found`);
    if (req.method === 'GET') return this.json(res, 200, cur.obj);
    if (req.method !== 'PATCH' || !status) return this.status(res, 405, 'MethodNotAllowed', 'the fake apiserver takes GET and PATCH of /status only');
    if (req.headers['content-type'] !== 'application/merge-patch+json') return this.status(res, 415, 'UnsupportedMediaType', 'merge patches only');
    const patch = body as { metadata?: { resourceVersion?: string }; status?: Record<string, unknown> | null };
    const want = patch.metadata?.resourceVersion;
    if (want !== undefined && want !== cur.obj.metadata.resourceVersion)
      return this.status(res, 409, 'Conflict', `Operation cannot be fulfilled on ${r.plural} "${name}": the object has been modified`);
    const merged = mergePatch(cur.obj.status ?? {}, patch.status ?? {}) as Record<string, unknown>;
    const stored: KubeObject = { ...cur.obj, status: merged, metadata: { ...cur.obj.metadata, resourceVersion: String(++this.rv) } };
    this.objects.set(k, { res: r, obj: stored });
    this.publish({ rv: this.rv, type: 'MODIFIED', res: r, obj: stored });
    this.json(res, 200, stored);
  }

  private eventsApi(method: string, ns: string, name: string | undefined, body: unknown, res: ServerResponse): void {
    if (method === 'POST') {
      const ev = body as { metadata: { name: string } };
      const k = `${ns}/${ev.metadata.name}`;
      if (this.events.has(k)) return this.status(res, 409, 'AlreadyExists', `events "${ev.metadata.name}" already exists`);
      this.events.set(k, body as Record<string, unknown>);
      return this.json(res, 201, body);
    }
    if (method === 'PATCH' && name) {
      const cur = this.events.get(`${ns}/${name}`);
      if (!cur) return this.status(res, 404, 'NotFound', `events "${name}" not found`);
      Object.assign(cur, body);
      return this.json(res, 200, cur);
    }
    this.status(res, 405, 'MethodNotAllowed', 'only POST and PATCH on events');
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private status(res: ServerResponse, code: number, reason: string, message: string): void {
    this.json(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
  }
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
