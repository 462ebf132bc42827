// Istio's canonical service of a workload (pkg/kube/labels CanonicalService), which both halves need: the
// controller for endpoints' `istio.workload` metadata, the proxy for its own node labels (the sidecar injector
// labels every injected pod, Istio's gateways included, with the result).
const CANONICAL_NAME_LABEL = 'service.istio.io/canonical-name';
const CANONICAL_REVISION_LABEL = 'service.istio.io/canonical-revision';

/** The canonical name and revision from the usual labels, else the workload name and `latest`. */
export function canonicalService(labels: Readonly<Record<string, string>>, workloadName: string): { name: string; revision: string } {
  const name = labels[CANONICAL_NAME_LABEL] ?? labels['app.kubernetes.io/name'] ?? labels.app ?? workloadName;
  const revision = labels[CANONICAL_REVISION_LABEL] ?? labels['app.kubernetes.io/version'] ?? labels.version ?? 'latest';
  return { name, revision };
}

/** A pod's labels as the injector leaves them: the canonical labels added when absent. */
export function withCanonicalLabels(labels: Readonly<Record<string, string>>, workloadName: string): Record<string, string> {
  const c = canonicalService(labels, workloadName);
  return { ...labels, [CANONICAL_NAME_LABEL]: c.name, [CANONICAL_REVISION_LABEL]: c.revision };
}
