import { test } from 'node:test';
import assert from 'node:assert/strict';
import { durationSeconds, parseDuration, toEnvoyDuration } from './duration.ts';

const cases: [unknown, string | undefined][] = [
  ['1s', '1s'],
  ['0.5s', '0.500s'],
  ['3m', '180s'],
  ['1h30m', '5400s'],
  ['250ms', '0.250s'],
  ['10us', '0.000010s'],
  ['0', '0s'],
  ['5', undefined],
  ['abc', undefined],
  ['-1s', undefined],
  [undefined, undefined],
];
for (const [input, want] of cases) {
  test(`duration ${JSON.stringify(input)} becomes ${want ?? 'nothing'}`, () => {
    const got = toEnvoyDuration(input);
    if (want === undefined) assert.equal(got, undefined);
    // Envoy's JSON trims trailing zeros differently; compare the value.
    else assert.equal(parseDuration(got), parseDuration(want));
  });
}

test('CORS maxAge is whole seconds', () => assert.equal(durationSeconds('24h'), 86400));
