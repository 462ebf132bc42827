// Label selectors as Istio uses them: a selector matches when it is a subset of the labels.
export type Labels = Readonly<Record<string, string>>;

/** True when every key of `selector` is in `labels` with the same value (an empty selector matches all). */
export function isSubset(selector: Labels | undefined, labels: Labels | undefined): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector)) if (labels?.[k] !== v) return false;
  return true;
}
