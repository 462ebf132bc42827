import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pickWeighted } from './weighted-clusters.ts';

const cases: { name: string; weights: number[]; draws: [number, number][] }[] = [
  // [random() value, expected index]: slices are [0,50) and [50,100).
  {
    name: '50/50 slices',
    weights: [50, 50],
    draws: [
      [0, 0],
      [0.49, 0],
      [0.5, 1],
      [0.999, 1],
    ],
  },
  {
    name: '90/10',
    weights: [90, 10],
    draws: [
      [0.89, 0],
      [0.9, 1],
    ],
  },
  {
    name: 'weights need not sum to 100 (Envoy sums them)',
    weights: [1, 2],
    draws: [
      [0.33, 0],
      [0.34, 1],
      [0.99, 1],
    ],
  },
  {
    name: 'a zero-weight entry is never chosen',
    weights: [0, 5, 0, 5],
    draws: [
      [0, 1],
      [0.49, 1],
      [0.5, 3],
      [0.99, 3],
    ],
  },
];

for (const c of cases) {
  test(`weighted clusters: ${c.name}`, () => {
    const ws = c.weights.map((weight) => ({ weight }));
    const total = c.weights.reduce((a, b) => a + b, 0);
    for (const [r, want] of c.draws)
      assert.equal(
        pickWeighted(ws, total, () => r),
        want,
        `random ${r}`,
      );
  });
}

test('weighted clusters: the distribution follows the weights (20/30/50 over 100k picks, within 1%)', () => {
  const ws = [{ weight: 20 }, { weight: 30 }, { weight: 50 }];
  const n = 100_000;
  const counts = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    const k = pickWeighted(ws, 100);
    counts[k] = (counts[k] ?? 0) + 1;
  }
  [0.2, 0.3, 0.5].forEach((p, i) => assert.ok(Math.abs((counts[i] ?? 0) / n - p) < 0.01, `${i}: ${(counts[i] ?? 0) / n}`));
});

test('weighted clusters: total weight 0 picks nothing', () => assert.equal(pickWeighted([{ weight: 0 }], 0), -1));
