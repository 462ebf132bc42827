import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firstHeaderValue, headerIndex, joinedHeaderValue, removeHeader, setHeader } from './header-list.ts';

const H = ['a', '1', 'b', '2', 'a', '3', 'c', '', 'a', '4'];

const reads: { name: string; header: string; index: number; first: string | undefined; joined: string | undefined }[] = [
  { name: 'a header repeated three times', header: 'a', index: 0, first: '1', joined: '1,3,4' },
  { name: 'a header present once', header: 'b', index: 2, first: '2', joined: '2' },
  { name: 'an empty value is a value', header: 'c', index: 6, first: '', joined: '' },
  { name: 'an absent header', header: 'd', index: -1, first: undefined, joined: undefined },
  { name: 'a value is never taken for a name', header: '2', index: -1, first: undefined, joined: undefined },
];

for (const c of reads) {
  test(`reading ${c.name}: index, first value (ORIGINAL_DST) and values joined with ',' (matching)`, () => {
    assert.equal(headerIndex(H, c.header), c.index);
    assert.equal(firstHeaderValue(H, c.header), c.first);
    assert.equal(joinedHeaderValue(H, c.header), c.joined);
  });
}

const writes: { name: string; op: (h: string[]) => void; want: string[] }[] = [
  { name: 'set replaces the first in place and drops the others', op: (h) => setHeader(h, 'a', 'x'), want: ['a', 'x', 'b', '2', 'c', ''] },
  { name: 'set of an absent header appends it', op: (h) => setHeader(h, 'd', 'x'), want: [...H, 'd', 'x'] },
  { name: 'set of a single header keeps its place', op: (h) => setHeader(h, 'b', 'x'), want: ['a', '1', 'b', 'x', 'a', '3', 'c', '', 'a', '4'] },
  { name: 'remove drops every entry', op: (h) => removeHeader(h, 'a'), want: ['b', '2', 'c', ''] },
  { name: 'remove from an index keeps the earlier entries', op: (h) => removeHeader(h, 'a', 2), want: ['a', '1', 'b', '2', 'c', ''] },
  { name: 'remove of an absent header changes nothing', op: (h) => removeHeader(h, 'd'), want: H },
];

for (const c of writes) {
  test(`writing: ${c.name}`, () => {
    const h = H.slice();
    c.op(h);
    assert.deepEqual(h, c.want);
  });
}
