// The local directory source against real files in a temporary directory.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ObjectStore } from '../model/store.ts';
import type { ValidationError } from '../model/validation.ts';
import { silentLogger } from '../../cli/logger.ts';
import { parseConfigFile, startLocalDirSource, type LocalDirSource } from './local-dir.ts';

const dirs: string[] = [];
const sources: LocalDirSource[] = [];
after(async () => {
  for (const s of sources) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'meshgate-local-'));
  dirs.push(d);
  return d;
}

async function start(dir: string): Promise<{ store: ObjectStore; errors: ValidationError[]; source: LocalDirSource }> {
  const store = new ObjectStore();
  const errors: ValidationError[] = [];
  const source = await startLocalDirSource({ dir, store, log: silentLogger(), reporter: { report: (e) => errors.push(...e) }, rescanMs: 200 });
  sources.push(source);
  return { store, errors, source };
}

const names = (store: ObjectStore): string[] =>
  store
    .snapshot()
    .objects.map((o) => `${o.kind}/${o.obj.metadata.namespace}/${o.obj.metadata.name}`)
    .sort();

async function eventually(check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const GW = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
`;

const cases: { name: string; file: string; text: string; objects: string[]; errors: RegExp[] }[] = [
  {
    name: 'multi-document YAML yields every object, defaulting the namespace to default',
    file: 'a.yaml',
    text: `${GW}---\napiVersion: v1\nkind: Service\nmetadata: {name: svc, namespace: apps}\nspec: {ports: [{port: 80}]}\n---\n`,
    objects: ['Gateway/default/gw', 'Service/apps/svc'],
    errors: [],
  },
  {
    name: 'a JSON List yields its items',
    file: 'list.json',
    text: JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'cred', namespace: 'istio-system' }, data: {} }],
    }),
    objects: ['Secret/istio-system/cred'],
    errors: [],
  },
  {
    name: 'an unknown kind is reported with file and document and skipped; the rest is kept',
    file: 'b.yml',
    text: `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\n${GW}`,
    objects: ['Gateway/default/gw'],
    errors: [/unknown kind "Deployment"/],
  },
  {
    name: 'a document without metadata.name is reported and skipped',
    file: 'c.yaml',
    text: 'apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\n',
    objects: [],
    errors: [/metadata.name is required/],
  },
  {
    name: 'malformed YAML is reported with the line and only that document is skipped',
    file: 'd.yaml',
    text: `${GW}---\nkind: Service\nmetadata: {name: [unclosed\n`,
    objects: ['Gateway/default/gw'],
    errors: [/malformed YAML \(line \d+/],
  },
  {
    name: 'invalid JSON is reported',
    file: 'e.json',
    text: '{"kind": ',
    objects: [],
    errors: [/invalid JSON/],
  },
];

for (const c of cases) {
  test(`parse: ${c.name}`, () => {
    const r = parseConfigFile(c.text, `/cfg/${c.file}`);
    assert.deepEqual(r.objects.map((o) => `${o.kind}/${o.obj.metadata.namespace}/${o.obj.metadata.name}`).sort(), c.objects);
    assert.equal(r.errors.length, c.errors.length, JSON.stringify(r.errors));
    c.errors.forEach((re, i) => {
      assert.match(r.errors[i]?.message ?? '', re);
      assert.match(r.errors[i]?.origin.file ?? '', new RegExp(`^/cfg/${c.file}`));
    });
  });
}

test('the first load reads nested directories; ignored file types and dot files are skipped', async () => {
  const dir = tempDir();
  mkdirSync(join(dir, 'istio', 'deep'), { recursive: true });
  writeFileSync(join(dir, 'istio', 'deep', 'gw.yaml'), GW);
  writeFileSync(join(dir, 'README.md'), '# not config');
  writeFileSync(join(dir, '.swp.yaml'), 'kind: Service\nmetadata: {name: hidden}\n');
  const { store } = await start(dir);
  assert.deepEqual(names(store), ['Gateway/default/gw']);
});

test('an EnvoyFilter (a kind meshgate does not implement) is reported and not loaded; the rest is', async () => {
  const dir = tempDir();
  writeFileSync(
    join(dir, 'all.yaml'),
    `${GW}---\napiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: lua, namespace: istio-system}\nspec: {}\n`,
  );
  const { store, errors } = await start(dir);
  assert.deepEqual(names(store), ['Gateway/default/gw']);
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.equal(errors[0]?.message, 'EnvoyFilter is not implemented by meshgate: this gateway ignores it (docs/install.md#crds)');
  assert.equal(errors[0]?.origin.file, `${join(dir, 'all.yaml')}#1`);
});

test('edits, new files and deletions are applied within a second, in one store change each', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'gw.yaml'), GW);
  const { store } = await start(dir);
  let changes = 0;
  store.on('change', () => changes++);
  writeFileSync(join(dir, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: httpbin}\nspec: {ports: [{port: 8000}]}\n');
  await eventually(() => names(store).includes('Service/default/httpbin'), 1000);
  writeFileSync(join(dir, 'gw.yaml'), GW.replace('name: gw', 'name: gw2'));
  await eventually(() => names(store).includes('Gateway/default/gw2') && !names(store).includes('Gateway/default/gw'), 1000);
  unlinkSync(join(dir, 'svc.yaml'));
  await eventually(() => !names(store).includes('Service/default/httpbin'), 1000);
  assert.ok(changes >= 3 && changes <= 6, `changes: ${changes}`);
});

test('a file that becomes malformed YAML keeps its last good objects, reported once with line and column, until it parses again', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'gw.yaml'), GW);
  writeFileSync(join(dir, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: t}\n');
  const { store, errors, source } = await start(dir);
  let changes = 0;
  store.on('change', () => changes++);
  // The second document is broken, and the first renamed: neither applies, as `kubectl apply` rejects it.
  writeFileSync(join(dir, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: s2}\n---\nkind: Service\nmetadata: {name: [t\n');
  await eventually(() => errors.length > 0);
  await source.reload();
  await source.reload();
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.match(
    errors[0]?.message ?? '',
    /^malformed YAML \(line 7, column 1\): .*: the file is not applied and its last good version \(2 objects\) stays in effect; fix the file, or delete it to remove those objects$/,
  );
  assert.equal(errors[0]?.origin.file, `${join(dir, 'svc.yaml')}#1`);
  assert.deepEqual(names(store), ['Gateway/default/gw', 'Service/default/s', 'Service/default/t']);
  assert.equal(changes, 0);
  // Valid again: the new content applies.
  writeFileSync(join(dir, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: s2}\n');
  await eventually(() => names(store).includes('Service/default/s2'));
  assert.deepEqual(names(store), ['Gateway/default/gw', 'Service/default/s2']);
});

test('a JSON file that stops parsing keeps its last good object', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'svc.json'), JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'j' } }));
  const { store, errors, source } = await start(dir);
  writeFileSync(join(dir, 'svc.json'), '{"apiVersion": "v1", "kind": ');
  await eventually(() => errors.length > 0);
  await source.reload();
  assert.match(errors[0]?.message ?? '', /^invalid JSON: .*: the file is not applied and its last good version \(1 objects\) stays in effect/);
  assert.deepEqual(names(store), ['Service/default/j']);
});

test('a file truncated to empty (a save in progress) keeps its objects until content arrives; a deleted file removes them', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'gw.yaml'), GW);
  const { store, errors, source } = await start(dir);
  const changes: string[][] = [];
  store.on('change', (kinds) => changes.push([...kinds]));
  writeFileSync(join(dir, 'gw.yaml'), '');
  await eventually(() => errors.length > 0);
  await source.reload();
  assert.equal(errors.length, 1);
  assert.match(
    errors[0]?.message ?? '',
    /^file is empty \(a save in progress\?\): its last good version \(1 objects\) stays in effect until it has content again; delete the file to remove those objects$/,
  );
  assert.deepEqual(names(store), ['Gateway/default/gw']);
  assert.deepEqual(changes, []);
  writeFileSync(join(dir, 'gw.yaml'), GW.replace('name: gw', 'name: gw2'));
  await eventually(() => names(store).includes('Gateway/default/gw2'));
  assert.deepEqual(names(store), ['Gateway/default/gw2']);
  // A file left with only a comment is an intended change, not a save in progress: its objects go.
  writeFileSync(join(dir, 'gw.yaml'), '# nothing here for now\n');
  await eventually(() => names(store).length === 0);
  writeFileSync(join(dir, 'gw.yaml'), GW);
  await eventually(() => names(store).length === 1);
  writeFileSync(join(dir, 'gw.yaml'), '');
  await source.reload();
  assert.deepEqual(names(store), ['Gateway/default/gw']);
  unlinkSync(join(dir, 'gw.yaml'));
  await eventually(() => names(store).length === 0);
});

test('a file that never parsed contributes the documents that do parse', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'mixed.yaml'), `${GW}---\nkind: Service\nmetadata: {name: [unclosed\n`);
  const { store, errors } = await start(dir);
  assert.deepEqual(names(store), ['Gateway/default/gw']);
  assert.match(errors[0]?.message ?? '', /malformed YAML \(line \d+, column \d+\): .*: document skipped$/);
});

function mkfifo(path: string): void {
  execFileSync('mkfifo', [path]);
}

test('a FIFO named *.yaml is skipped and reported once; it never blocks later reloads nor close()', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'gw.yaml'), GW);
  mkfifo(join(dir, 'pipe.yaml'));
  mkdirSync(join(dir, 'sub'));
  mkfifo(join(dir, 'sub', 'fifo-target'));
  symlinkSync(join(dir, 'sub', 'fifo-target'), join(dir, 'sub', 'link.yaml'));
  const store = new ObjectStore();
  const lines: { msg: string; file?: string }[] = [];
  const log = pino({ level: 'warn' }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string; file?: string }) });
  const source = await startLocalDirSource({ dir, store, log, reporter: { report: () => undefined }, rescanMs: 50 });
  sources.push(source);
  assert.deepEqual(names(store), ['Gateway/default/gw']);
  writeFileSync(join(dir, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: s}\n');
  await eventually(() => names(store).includes('Service/default/s'));
  await new Promise((r) => setTimeout(r, 200)); // a few rescans
  const skipped = lines.filter((l) => l.msg.includes('not a regular file'));
  assert.deepEqual(skipped.map((l) => l.file).sort(), [join(dir, 'pipe.yaml'), join(dir, 'sub', 'link.yaml')]);
  assert.match(skipped[0]?.msg ?? '', /is a FIFO, not a regular file: skipped/);
  await source.close();
});

test('a regular file replaced by a FIFO drops its objects without blocking; a regular file again is read', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: s}\n');
  const { store, source } = await start(dir);
  unlinkSync(join(dir, 'svc.yaml'));
  mkfifo(join(dir, 'svc.yaml'));
  await source.reload();
  assert.deepEqual(names(store), []);
  unlinkSync(join(dir, 'svc.yaml'));
  writeFileSync(join(dir, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: s}\n');
  await eventually(() => names(store).includes('Service/default/s'));
});

test('two files defining the same object are reported', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'a.yaml'), GW);
  writeFileSync(join(dir, 'b.yaml'), GW);
  const { errors } = await start(dir);
  assert.equal(errors.length, 1);
  assert.match(errors[0]?.message ?? '', /also defined in .*a\.yaml/);
});

test('a missing directory fails the start with the path in the error', async () => {
  await assert.rejects(
    startLocalDirSource({ dir: '/nonexistent/meshgate-config', store: new ObjectStore(), log: silentLogger(), reporter: { report: () => undefined } }),
    /nonexistent\/meshgate-config/,
  );
});

test('an edit re-parses only the edited file: the objects of the other files stay the same objects', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'gw.yaml'), GW);
  writeFileSync(join(dir, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n');
  const { store, source } = await start(dir);
  const before = (kind: string): unknown => store.snapshot().objects.find((o) => o.kind === kind)?.obj;
  const gw = before('Gateway');
  const changed: string[][] = [];
  store.on('change', (kinds) => changed.push([...kinds]));
  writeFileSync(join(dir, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 81}]}\n');
  await source.reload();
  assert.equal(before('Gateway'), gw, 'the Gateway object was not re-created');
  assert.deepEqual(changed, [['Service']]);
});

test('a file replaced by rename again and again is reloaded on each replacement by the watch, not the rescan', async () => {
  const dir = tempDir();
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: s0}\n');
  const store = new ObjectStore();
  const source = await startLocalDirSource({ dir, store, log: silentLogger(), reporter: { report: () => undefined }, rescanMs: 60_000 });
  sources.push(source);
  for (let i = 1; i <= 4; i++) {
    // An atomic save: written beside the directory, renamed over the old file.
    const tmp = join(dir, '..', `${dir.split('/').pop()}-svc.tmp`);
    writeFileSync(tmp, `apiVersion: v1\nkind: Service\nmetadata: {name: s${i}}\n`);
    renameSync(tmp, join(dir, 'sub', 'svc.yaml'));
    await eventually(() => names(store).includes(`Service/default/s${i}`), 500);
  }
  // A directory created later is watched too.
  mkdirSync(join(dir, 'later'));
  await new Promise((r) => setTimeout(r, 100));
  writeFileSync(join(dir, 'later', 'gw.yaml'), GW);
  await eventually(() => names(store).includes('Gateway/default/gw'), 500);
});
