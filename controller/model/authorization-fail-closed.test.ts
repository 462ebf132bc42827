// A refused AuthorizationPolicy is enforced in its closed form (failClosedSpec), never left out of a gateway
// whose access it restricts: what each action becomes, and what the report says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failClosedNote, failClosedSpec } from './authorization-policies.ts';

const selector = { matchLabels: { istio: 'ingressgateway' } };

test('a refused ALLOW keeps its selector and allows nothing', () => {
  assert.deepEqual(failClosedSpec({ selector, action: 'ALLOW', rules: [{ from: [{ source: { ipBlocks: ['1.2.3.4/33'] } }] }] }, true), {
    selector,
    action: 'ALLOW',
    rules: [],
  });
  assert.deepEqual(failClosedSpec({ rules: [{}] }, true), { action: 'ALLOW', rules: [] }, 'absent action is ALLOW');
});

test('a refused DENY, CUSTOM or unknown action number denies everything it could apply to', () => {
  for (const action of ['DENY', 'CUSTOM', 9] as const) {
    assert.deepEqual(failClosedSpec({ selector, action, provider: { name: 'x' }, rules: [{ to: [{ operation: { paths: [''] } }] }] }, true), {
      selector,
      action: 'DENY',
      rules: [{}],
    });
  }
});

test('a refused AUDIT is left out; an undecodable spec denies its whole namespace (its selector is not trusted)', () => {
  assert.equal(failClosedSpec({ selector, action: 'AUDIT', rules: [] }, true), undefined);
  assert.deepEqual(failClosedSpec({ selector, action: 'ALLOW' }, false), { action: 'DENY', rules: [{}] });
});

test('the report says what is enforced instead', () => {
  assert.match(failClosedNote({ action: 'ALLOW', rules: [] }), /allows nothing/);
  assert.match(failClosedNote({ action: 'DENY', rules: [{}] }), /DENY of every request/);
  assert.match(failClosedNote(undefined), /ignored/);
});
