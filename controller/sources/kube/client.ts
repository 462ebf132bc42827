// A small Kubernetes REST client. @kubernetes/client-node's KubeConfig does configuration and authentication
// (kubeconfig files, in-cluster service account with its token re-read every minute, client certificates,
// exec/OIDC plugins, proxies); the requests themselves are plain node:http(s), so the list/watch loop in
// reflector.ts controls every timeout, abort and retry itself (the 1.4.0 informer stops for good on the
// first watch error).
import { existsSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import type { KubeObject } from '../../model/objects.ts';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** A Kubernetes `Status` object, as the API server sends it in error bodies and watch ERROR events. */
export interface KubeStatus {
  kind?: string;
  status?: string;
  code?: number;
  reason?: string;
  message?: string;
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject | KubeStatus;
}

export interface KubeList {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: KubeObject[];
}

/** An HTTP error answer of the API server, or (status 0) a request that never got one. */
export class KubeApiError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.name = 'KubeApiError';
    this.status = status;
    this.reason = reason;
  }
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOpts {
  query?: Query;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  /** Whole-request timeout (not used for watches, which have their own idle watchdog). */
  timeoutMs?: number;
}

/**
 * Loads credentials the way the controller is meant to run: an explicit kubeconfig when given; otherwise the
 * pod's service account when running in a cluster; otherwise $KUBECONFIG or ~/.kube/config (for development).
 */
export function loadKubeConfig(kubeconfig?: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfig) {
    if (!existsSync(kubeconfig))
      throw new Error(`kubeconfig ${kubeconfig} does not exist: pass --kubeconfig with a readable file, or omit it to use the pod's service account`);
    kc.loadFromFile(kubeconfig);
  } else if (process.env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) {
    kc.loadFromCluster();
  } else if (process.env.KUBECONFIG || existsSync(`${process.env.HOME ?? ''}/.kube/config`)) {
    kc.loadFromDefault();
  } else {
    throw new Error(
      'no Kubernetes credentials: not in a cluster (KUBERNETES_SERVICE_HOST unset or no service-account token at ' +
        `${SERVICE_ACCOUNT_TOKEN}), no $KUBECONFIG and no ~/.kube/config. Pass --kubeconfig PATH.`,
    );
  }
  if (!kc.getCurrentCluster()) throw new Error(`kubeconfig${kubeconfig ? ` ${kubeconfig}` : ''} has no current context with a cluster: set current-context`);
  return kc;
}

export class KubeClient {
  readonly server: string;
  private readonly kc: KubeConfig;

  constructor(kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.kc = kc;
    this.server = cluster.server.replace(/\/+$/, '');
  }

  /** One request with a JSON answer. Throws KubeApiError for HTTP errors and unreachable servers. */
  async json<T>(method: string, path: string, opts: RequestOpts = {}): Promise<T> {
    const signals = [AbortSignal.timeout(opts.timeoutMs ?? 60_000)];
    if (opts.signal) signals.push(opts.signal);
    const signal = AbortSignal.any(signals);
    const res = await this.send(method, path, { ...opts, signal });
    const text = await readBody(res, signal, method, path);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw errorFromResponse(method, path, status, text);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new KubeApiError(
        status,
        'InvalidResponse',
        `${method} ${path}: the API server answered ${status} with a body that is not JSON: ${text.slice(0, 200)}`,
      );
    }
  }

  /**
   * One watch request: calls `onEvent` for every event until the server ends the stream (resolves) or the
   * request fails (rejects with KubeApiError, or the abort reason when `signal` fires).
   */
  async watch(path: string, query: Query, onEvent: (e: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    const res = await this.send('GET', path, { query: { ...query, watch: 'true' }, signal });
    const status = res.statusCode ?? 0;
    if (status !== 200) throw errorFromResponse('WATCH', path, status, await readBody(res, signal, 'WATCH', path));
    res.setEncoding('utf8');
    let buf = '';
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        res.destroy();
        reject(err);
      };
      const onAbort = (): void => fail(abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while (!settled && (nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          let ev: WatchEvent;
          try {
            ev = JSON.parse(line) as WatchEvent;
          } catch {
            fail(new KubeApiError(200, 'InvalidResponse', `WATCH ${path}: a watch event is not JSON: ${line.slice(0, 200)}`));
            return;
          }
          try {
            onEvent(ev);
          } catch (e) {
            fail(e instanceof Error ? e : new Error(String(e)));
          }
        }
      });
      res.on('end', () => {
        signal.removeEventListener('abort', onAbort);
        if (settled) return;
        settled = true;
        resolve();
      });
      res.on('error', (err) => fail(signal.aborted ? abortError(signal) : connectionError('WATCH', path, err)));
      res.on('aborted', () =>
        fail(signal.aborted ? abortError(signal) : new KubeApiError(0, 'ConnectionLost', `WATCH ${path}: the API server closed the connection mid-stream`)),
      );
    });
  }

  private async send(method: string, path: string, opts: RequestOpts): Promise<IncomingMessage> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const ro: RequestOptions = { method, headers: { accept: 'application/json' } };
    try {
      await this.kc.applyToHTTPSOptions(ro);
    } catch (err) {
      throw new KubeApiError(0, 'AuthFailed', `${method} ${path}: could not get credentials from the kubeconfig: ${(err as Error).message}`);
    }
    const body = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    if (body) Object.assign(ro.headers as object, { 'content-type': opts.contentType ?? 'application/json', 'content-length': body.length });
    if (opts.signal) ro.signal = opts.signal;
    const doRequest = url.protocol === 'http:' ? httpRequest : httpsRequest;
    return new Promise((resolve, reject) => {
      let req: ClientRequest;
      try {
        req = doRequest(url, ro, resolve);
      } catch (err) {
        reject(connectionError(method, path, err as Error));
        return;
      }
      // A dead peer (the API server's node vanished) is otherwise only noticed after the OS gives up.
      req.on('socket', (s) => s.setKeepAlive(true, 15_000));
      req.on('error', (err) => reject(opts.signal?.aborted ? abortError(opts.signal) : connectionError(method, path, err)));
      req.end(body);
    });
  }
}

function abortError(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new DOMException('aborted', 'AbortError');
}

function connectionError(method: string, path: string, err: Error): KubeApiError {
  const code = (err as { code?: string }).code;
  return new KubeApiError(0, code ?? 'ConnectionError', `${method} ${path}: ${code ? `${code} ` : ''}${err.message}`);
}

function errorFromResponse(method: string, path: string, status: number, text: string): KubeApiError {
  let st: KubeStatus = {};
  try {
    st = JSON.parse(text) as KubeStatus;
  } catch {
    /* not a Status object */
  }
  const reason = st.reason ?? `HTTP${status}`;
  return new KubeApiError(status, reason, `${method} ${path}: ${status} ${reason}: ${st.message ?? text.slice(0, 200)}`);
}

async function readBody(res: IncomingMessage, signal: AbortSignal, method: string, path: string): Promise<string> {
  res.setEncoding('utf8');
  let text = '';
  try {
    for await (const chunk of res) text += chunk as string;
  } catch (err) {
    if (signal.aborted) throw abortError(signal);
    throw connectionError(method, path, err as Error);
  }
  return text;
}
