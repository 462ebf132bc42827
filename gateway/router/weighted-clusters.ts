// weighted_clusters selection (Envoy WeightedClusterEntry picking): a random value in [0, total_weight)
// falls into one destination's [begin, end) slice, in configuration order.

/** The index of the chosen destination, or -1 when there is none (total weight 0). */
export function pickWeighted(weights: readonly { weight: number }[], totalWeight: number, random: () => number = Math.random): number {
  let r = Math.floor(random() * totalWeight);
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i]?.weight ?? 0;
    if (r < w) return i;
    r -= w;
  }
  return -1;
}
