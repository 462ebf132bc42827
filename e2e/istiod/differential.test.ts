// The istiod differential: for every golden input of the translator and every example config, what istiod's
// own translation sends a gateway (the oracle) against what meshgate's translator produces. Any difference
// not in allowlist.ts fails the case; an allowlist entry no case uses fails too.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ALLOWED, allowedBy, type Allowed } from './allowlist.ts';
import { exampleCases, goldenCases } from './cases.ts';
import { istiodResources } from './istiod-side.ts';
import { meshgateResources } from './meshgate-side.ts';
import { compare, formatDifference } from './normalize.ts';

/** The oracle binary: $ISTIOD_ORACLE, else built (or found in the cache) by build.sh. */
function oracle(): string {
  if (process.env.ISTIOD_ORACLE) return process.env.ISTIOD_ORACLE;
  const out = execFileSync('bash', [join(import.meta.dirname, 'build.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop() ?? '';
}

describe('istiod differential: the translator against istiod on every golden input and example', () => {
  const bin = oracle();
  const used = new Set<Allowed>();

  for (const c of [...goldenCases(), ...exampleCases()]) {
    test(c.name, async () => {
      const [istiod, meshgate] = await Promise.all([istiodResources(bin, c), Promise.resolve(meshgateResources(c))]);
      const unexpected: string[] = [];
      for (const d of compare(istiod, meshgate)) {
        const a = allowedBy(d, c.name);
        if (a) used.add(a);
        else unexpected.push(formatDifference(d));
      }
      const why = istiod.rejections.length ? `\nistiod rejected: ${istiod.rejections.join('; ')}` : '';
      assert.deepEqual(unexpected, [], `${c.name}: ${unexpected.length} difference(s) from istiod${why}`);
    });
  }

  test('every allowlist entry is still needed by some case', () => {
    const stale = ALLOWED.filter((a) => !used.has(a));
    assert.deepEqual(
      stale.map((a) => `${a.type} ${a.path}: ${a.why}`),
      [],
      'allowlist entries that no case needs any more: remove them',
    );
  });
});
