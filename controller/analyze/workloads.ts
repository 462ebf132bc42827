// Gateway selectors against the Pods they select, as istioctl's gateway analyzers read them.
import type { Config, ConfigMeta } from '../model/config.ts';
import type { GatewaySpec } from '../model/istio-types.ts';
import { isSubset } from '../model/labels.ts';
import { fieldKey } from './messages.ts';

/** labels.SelectorFromSet(selector).String(): `k=v` pairs sorted by key, joined by commas. */
export function selectorString(selector: Readonly<Record<string, string>> | undefined): string {
  return Object.entries(selector ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** The field istioctl points at for a selector problem: the selector's first label (util.GatewaySelector). */
export function selectorField(selector: Readonly<Record<string, string>> | undefined): string | undefined {
  const first = selectorString(selector).split(',')[0]?.split('=')[0];
  return first ? `spec.selector${fieldKey(first)}` : undefined;
}

/** The Pods a Gateway's selector selects, in any namespace (an empty selector selects every Pod). */
export function selectedPods(gw: Config<GatewaySpec>, pods: readonly ConfigMeta[]): ConfigMeta[] {
  return pods.filter((p) => isSubset(gw.spec.selector, p.labels));
}
