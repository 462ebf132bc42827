// The gateway proxy's identity as istiod builds it for a gateway workload (Proxy.SetWorkloadLabels in
// pilot/pkg/model/context.go): the labels of its Pod from the registry when the Pod is found there, otherwise
// the labels the agent sent, which it reads from the Downward API file /etc/istio/pod/labels. The pod's
// annotations are the agent's, read once at start from /etc/istio/pod/annotations (bootstrap.ReadPodAnnotations):
// its proxy.istio.io/config goes into the ProxyConfig the agent sends istiod (model/proxy-config.ts).
import { readFileSync, statSync } from 'node:fs';
import type { Logger } from 'pino';
import { parseLabelsFile } from '../../../xds/labels-file.ts';
import type { GatewayIdentity } from '../../xds/snapshot.ts';
import { PROXY_CONFIG_ANNOTATION } from '../../model/proxy-config.ts';

/** `k=v,k2=v2` (the POD_LABELS environment variable). */
export function parseLabelsEnv(text: string, name = 'POD_LABELS'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const i = part.indexOf('=');
    if (i <= 0) throw new Error(`${name} takes key=value pairs separated by commas, got '${part}'`);
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

/**
 * The annotations of the gateway pod meshgate reads (proxy.istio.io/config) from a Downward API annotations file,
 * once, as Istio's agent does when it starts: a file that cannot be read or parsed is logged and the pod taken to
 * have no annotations (the agent's ReadPodAnnotations warning), so the mesh default ProxyConfig applies.
 */
export function readPodAnnotations(file: string, log: Logger): Record<string, string> {
  let all: Record<string, string>;
  try {
    all = parseLabelsFile(readFileSync(file, 'utf8'), file);
  } catch (err) {
    log
      .child({ component: 'identity' })
      .warn({ file, err: (err as Error).message }, 'cannot read the pod annotations file: the mesh default proxy config applies');
    return {};
  }
  const proxyConfig = all[PROXY_CONFIG_ANNOTATION];
  return proxyConfig === undefined ? {} : { [PROXY_CONFIG_ANNOTATION]: proxyConfig };
}

export interface IdentityOptions {
  podName: string;
  podNamespace: string;
  /** Downward API labels file, re-read when it changes (the kubelet rewrites it on relabel). */
  labelsFile?: string;
  /** Labels from the environment (POD_LABELS); the file's labels win over these. */
  envLabels?: Readonly<Record<string, string>>;
  /** The labels of the pod in the registry, when found there: these win, as in istiod. */
  registryLabels?: () => Readonly<Record<string, string>> | undefined;
  /** The pod annotations read at start (readPodAnnotations). */
  annotations?: Readonly<Record<string, string>>;
  log: Logger;
}

/** Returns the identity function the controller calls on every push. */
export function gatewayIdentity(o: IdentityOptions): () => GatewayIdentity {
  const log = o.log.child({ component: 'identity' });
  let cached: { key: string; labels: Record<string, string> } | undefined;
  let lastSource = '';
  let lastFileError = '';

  const fileLabels = (): Record<string, string> | undefined => {
    if (!o.labelsFile) return undefined;
    try {
      const st = statSync(o.labelsFile);
      const key = `${st.mtimeMs}:${st.size}:${st.ino}`;
      if (cached?.key !== key) cached = { key, labels: parseLabelsFile(readFileSync(o.labelsFile, 'utf8'), o.labelsFile) };
      lastFileError = '';
      return cached.labels;
    } catch (err) {
      const msg = (err as Error).message;
      if (msg !== lastFileError) {
        log.warn(
          { file: o.labelsFile, err: msg },
          'cannot read the pod labels file: using the last labels read, or POD_LABELS (check the Downward API volume)',
        );
        lastFileError = msg;
      }
      return cached?.labels;
    }
  };

  return () => {
    const registry = o.registryLabels?.();
    let labels: Readonly<Record<string, string>>;
    let source: string;
    if (registry) {
      labels = registry;
      source = 'registry';
    } else {
      const file = fileLabels();
      labels = { ...o.envLabels, ...file };
      source = file ? 'labels-file' : 'env';
    }
    if (source !== lastSource) {
      log.info({ source, pod: `${o.podNamespace}/${o.podName}`, labels }, 'gateway pod labels');
      lastSource = source;
    }
    const annotations = o.annotations && Object.keys(o.annotations).length > 0 ? { annotations: o.annotations } : {};
    return { namespace: o.podNamespace, podName: o.podName, labels, ...annotations };
  };
}
