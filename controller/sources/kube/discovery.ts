// Which version of each resource of an Istio API group the API server serves. Istio's networking.istio.io
// CRDs serve v1, v1beta1 and v1alpha3 with one schema, security.istio.io v1 and v1beta1; older installs lack
// v1. Prefer the newest served version, per resource.
import type { Logger } from 'pino';
import { KubeApiError, type KubeClient } from './client.ts';

/** An API group and its versions, newest first. */
export interface IstioGroup {
  group: string;
  versions: readonly string[];
  /** How to install the CRDs, for the error when the API server serves none of the versions. */
  install?: string;
}

export const NETWORKING: IstioGroup = { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'] };
export const SECURITY: IstioGroup = { group: 'security.istio.io', versions: ['v1', 'v1beta1'] };
export const TELEMETRY: IstioGroup = { group: 'telemetry.istio.io', versions: ['v1', 'v1alpha1'] };
/** The Kubernetes Gateway API (standard channel): ReferenceGrant is v1beta1 before Gateway API 1.5. */
export const GATEWAY_API: IstioGroup = {
  group: 'gateway.networking.k8s.io',
  versions: ['v1', 'v1beta1'],
  install: 'install the Gateway API standard CRDs if you use it (docs/gateway-api.md); the Istio API is served without them',
};

interface APIGroup {
  versions?: { version: string }[];
}
interface APIResourceList {
  resources?: { name: string }[];
}

/** Finds the served version of one group's resources; cached until `invalidate()` (a 404 on a watched path). */
export class IstioDiscovery {
  private cache: Promise<Map<string, string>> | undefined;
  private readonly client: KubeClient;
  private readonly log: Logger;
  readonly group: string;
  private readonly versions: readonly string[];
  private readonly install: string;
  constructor(client: KubeClient, log: Logger, group: IstioGroup = NETWORKING) {
    this.client = client;
    this.log = log;
    this.group = group.group;
    this.versions = group.versions;
    this.install = group.install ?? 'install the Istio CRDs, e.g. helm install meshgate-base charts/base';
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
        `${plural}.${this.group} is not served by the API server (versions ${this.versions.join(', ')} tried): ${this.install}`,
      );
    }
    return v;
  }

  private async discover(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let group: APIGroup;
    try {
      group = await this.client.json<APIGroup>('GET', `/apis/${this.group}`, { timeoutMs: 30_000 });
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return out; // group not installed: every plural fails with a clear message
      throw err;
    }
    const served = new Set((group.versions ?? []).map((v) => v.version));
    // Walk from the oldest to the newest so the newest version that serves a plural wins.
    for (const version of [...this.versions].reverse()) {
      if (!served.has(version)) continue;
      const list = await this.client.json<APIResourceList>('GET', `/apis/${this.group}/${version}`, { timeoutMs: 30_000 });
      for (const r of list.resources ?? []) if (!r.name.includes('/')) out.set(r.name, version);
    }
    this.log.debug({ versions: Object.fromEntries(out) }, `discovered ${this.group} versions`);
    return out;
  }
}
