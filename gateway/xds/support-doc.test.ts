import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { envoyRoot } from '../../xds/protos.ts';
import { fieldTables } from './fields.ts';
import { SUPPORT_DOC, renderSupportDoc } from './support-doc.ts';

test('every field table of the proxy names a message that exists, and only fields that message has', () => {
  const root = envoyRoot();
  assert.ok(fieldTables().length > 0);
  for (const t of fieldTables()) {
    const type = root.lookupType(t.message);
    for (const f of Object.keys(t.fields)) assert.ok(type.fields[f], `${t.message} has no field ${f}`);
  }
});

test('docs/xds-support.md is generated from the current tables (node gateway/xds/support-doc.ts --write)', () => {
  assert.equal(readFileSync(SUPPORT_DOC, 'utf8'), renderSupportDoc());
});
