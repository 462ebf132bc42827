// Which version of each networking.istio.io resource the API server serves. Istio's CRDs serve v1, v1beta1
// and v1alpha3 with one schema; older installs lack v1. Prefer the newest served version, per resource.
import type { Logger } from 'pino';
import { KubeApiError, type KubeClient } from './client.ts';

const ISTIO_GROUP = 'networking.istio.io';
const ISTIO_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'] as const;

interface APIGroup {
  versions?: { version: string }[];
}
interface APIResourceList {
  resources?: { name: string }[];
}

/** Finds the served version of Istio resources; cached until `invalidate()` (a 404 on a watched path). */
export class IstioDiscovery {
  private cache: Promise<Map<string, string>> | undefined;
  private readonly client: KubeClient;
  private readonly log: Logger;
  constructor(client: KubeClient, log: Logger) {
    this.client = client;
    this.log = log;
  }

  invalidate(): void {
    this.cache = undefined;
  }

  /** The version to use for `plural` (e.g. `gateways`). Throws a KubeApiError 404 when none is served. */
  async version(plural: string): Promise<string> {
    this.cache ??= this.discover().catch((err: unknown) => {
      this.cache = undefined;
      throw err;
    });
    const v = (await this.cache).get(plural);
    if (!v) {
      this.cache = undefined;
      throw new KubeApiError(
        404,
        'NotFound',
        `${plural}.${ISTIO_GROUP} is not served by the API server (versions ${ISTIO_VERSIONS.join(', ')} tried): install the Istio CRDs, e.g. helm install meshgate-base charts/base`,
      );
    }
    return v;
  }

  private async discover(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let group: APIGroup;
    try {
      group = await this.client.json<APIGroup>('GET', `/apis/${ISTIO_GROUP}`, { timeoutMs: 30_000 });
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return out; // group not installed: every plural fails with a clear message
      throw err;
    }
    const served = new Set((group.versions ?? []).map((v) => v.version));
    // Walk from the oldest to the newest so the newest version that serves a plural wins.
    for (const version of [...ISTIO_VERSIONS].reverse()) {
      if (!served.has(version)) continue;
      const list = await this.client.json<APIResourceList>('GET', `/apis/${ISTIO_GROUP}/${version}`, { timeoutMs: 30_000 });
      for (const r of list.resources ?? []) if (!r.name.includes('/')) out.set(r.name, version);
    }
    this.log.debug({ versions: Object.fromEntries(out) }, 'discovered networking.istio.io versions');
    return out;
  }
}
