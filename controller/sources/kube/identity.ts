// The gateway proxy's identity as istiod builds it for a gateway workload (Proxy.SetWorkloadLabels in
// pilot/pkg/model/context.go): the labels of its Pod from the registry when the Pod is found there, otherwise
// the labels the agent sent, which it reads from the Downward API file /etc/istio/pod/labels.
import { readFileSync, statSync } from 'node:fs';
import type { Logger } from 'pino';
import { parseLabelsFile } from '../../../xds/labels-file.ts';
import type { GatewayIdentity } from '../../xds/snapshot.ts';

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

export interface IdentityOptions {
  podName: string;
  podNamespace: string;
  /** Downward API labels file, re-read when it changes (the kubelet rewrites it on relabel). */
  labelsFile?: string;
  /** Labels from the environment (POD_LABELS); the file's labels win over these. */
  envLabels?: Readonly<Record<string, string>>;
  /** The labels of the pod in the registry, when found there: these win, as in istiod. */
  registryLabels?: () => Readonly<Record<string, string>> | undefined;
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
    return { namespace: o.podNamespace, podName: o.podName, labels };
  };
}
