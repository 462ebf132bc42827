// Where meshgate's translation deliberately differs from istiod's, each with its reason. The differential
// (differential.test.ts) fails on any other difference, and on an entry here that no case needs any more.
import type { Difference } from './normalize.ts';

export interface Allowed {
  type: 'listeners' | 'routes' | 'clusters' | 'endpoints' | 'rejected';
  /** The resource name (a cluster load assignment's cluster_name; `Kind ns/name` for rejected objects). */
  resource?: RegExp;
  /** The path inside the resource (normalize.ts's notation). */
  path: RegExp;
  why: string;
}

export const ALLOWED: readonly Allowed[] = [];

export function allowedBy(d: Difference): Allowed | undefined {
  return ALLOWED.find((a) => a.type === d.type && (!a.resource || a.resource.test(d.resource)) && a.path.test(d.path));
}
