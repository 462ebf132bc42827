import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fieldTable, fieldTables } from './fields.ts';
import { ConfigError } from './json.ts';

test('a field the table does not list is a ConfigError naming it; listed fields and @type pass; the table is registered', () => {
  const check = fieldTable('envoy.config.core.v3.RuntimeUInt32', { default_value: true, runtime_key: 'not read' }, 'test');
  check({ default_value: 1, runtime_key: 'k' }, 'x');
  check({ '@type': 'u', default_value: 1 } as never, 'x');
  const strict = fieldTable('envoy.config.core.v3.RuntimeUInt32', { default_value: true }, 'strict');
  assert.throws(
    () => strict({ default_value: 1, runtime_key: 'k' }, 'x.y'),
    (e: unknown) => e instanceof ConfigError && e.message === "x.y: field 'runtime_key' is not supported by this proxy",
  );
  assert.deepEqual(
    fieldTables().map((t) => t.context),
    ['test', 'strict'],
  );
});
