import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { DEFAULT_MESH_CONFIG } from '../model/mesh-config.ts';
import { MeshConfigFile } from './mesh-config-file.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function logger(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

/** Resolves when the source emits 'change', or fails after `ms`. */
function changed(s: MeshConfigFile, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no mesh config change within the timeout')), ms);
    s.once('change', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

test('a valid file is read; an edit is picked up by the directory watch', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-'));
  dirs.push(dir);
  const file = join(dir, 'mesh');
  writeFileSync(file, 'rootNamespace: one\n');
  const { log } = logger();
  const s = await MeshConfigFile.start({ file, log, rescanMs: 60_000 });
  try {
    assert.equal(s.current().rootNamespace, 'one');
    const next = changed(s);
    writeFileSync(file, 'rootNamespace: two\n');
    await next;
    assert.equal(s.current().rootNamespace, 'two');
  } finally {
    s.close();
  }
});

test('a ConfigMap volume update (..data symlink swap) is picked up', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-cm-'));
  dirs.push(dir);
  // The kubelet's layout: mesh -> ..data/mesh, ..data -> ..<timestamp>; an update writes a new timestamped
  // directory, points ..data_tmp at it and renames ..data_tmp over ..data.
  mkdirSync(join(dir, '..v1'));
  writeFileSync(join(dir, '..v1', 'mesh'), 'trustDomain: a.example\n');
  symlinkSync('..v1', join(dir, '..data'));
  symlinkSync('..data/mesh', join(dir, 'mesh'));
  const { log } = logger();
  const s = await MeshConfigFile.start({ file: join(dir, 'mesh'), log, rescanMs: 60_000 });
  try {
    assert.equal(s.current().trustDomain, 'a.example');
    const next = changed(s);
    mkdirSync(join(dir, '..v2'));
    writeFileSync(join(dir, '..v2', 'mesh'), 'trustDomain: b.example\n');
    symlinkSync('..v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    await next;
    assert.equal(s.current().trustDomain, 'b.example');
  } finally {
    s.close();
  }
});

test('an invalid file is logged with where and how to fix it, and the last good mesh config keeps serving', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-bad-'));
  dirs.push(dir);
  const file = join(dir, 'mesh.yaml');
  writeFileSync(file, 'rootNamespace: good\n');
  const { log, lines } = logger();
  const s = await MeshConfigFile.start({ file, log, rescanMs: 60_000 });
  try {
    const good = s.current();
    writeFileSync(file, 'rootNamespace: [not, a, string]\n');
    await s.reload();
    assert.equal(s.current(), good);
    const err = lines.find((l) => l.level === 50);
    assert.match(
      String(err?.msg),
      /invalid mesh config, keeping the last good one: .*mesh\.yaml: meshConfig\.rootNamespace: must be a string.*fix: correct the file/,
    );
    // The same bad content is not reported again on every re-read.
    await s.reload();
    assert.equal(lines.filter((l) => l.level === 50).length, 1);
  } finally {
    s.close();
  }
});

test('an invalid file at start serves istiod defaults', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-start-'));
  dirs.push(dir);
  const file = join(dir, 'mesh');
  writeFileSync(file, 'trustDomain: "bad_domain"\n');
  const { log, lines } = logger();
  const s = await MeshConfigFile.start({ file, log, rescanMs: 60_000 });
  s.close();
  assert.equal(s.current(), DEFAULT_MESH_CONFIG);
  assert.match(String(lines.find((l) => l.level === 50)?.msg), /keeping the default one/);
});
