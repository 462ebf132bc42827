// `meshgate local`: what it tells the user (a gateway no Gateway selects) and the shape of its log lines.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ObjectStore } from '../../controller/model/store.ts';
import type { KubeObject } from '../../controller/model/objects.ts';
import { parseLocalArgs, reportGatewaySelection, startLocal } from './local.ts';
import { UsageError } from '../usage-error.ts';

const LABELS = { istio: 'ingressgateway', app: 'istio-ingressgateway' };

interface Line {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A pino logger whose lines are kept, raw (to check the keys) and parsed. */
function captureLogger(): { log: pino.Logger; raw: string[]; lines: () => Line[] } {
  const raw: string[] = [];
  const log = pino({ level: 'debug', base: null }, { write: (s: string) => void raw.push(s) });
  return { log, raw, lines: () => raw.map((s) => JSON.parse(s) as Line) };
}

function gateway(name: string, selector?: Record<string, string>): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace: 'apps' },
    spec: { ...(selector ? { selector } : {}), servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
  };
}

const service: KubeObject = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'apps' }, spec: { ports: [{ port: 80 }] } };

const cases: { name: string; steps: ((s: ObjectStore) => void)[]; logs: { level: 'warn' | 'info'; msg: RegExp }[] }[] = [
  {
    name: 'an empty config directory is warned about once, with the labels and the fix',
    steps: [(s) => s.upsert('Service', service)],
    logs: [
      {
        level: 'warn',
        msg: /^no Gateway in the config directory, so this gateway \(labels istio=ingressgateway,app=istio-ingressgateway\) serves no listener: give a Gateway a spec\.selector that is a subset of these labels \(e\.g\. selector: \{istio: ingressgateway\}\)$/,
      },
    ],
  },
  {
    name: 'a Gateway selecting other labels is named with its selector, once while it stays so',
    steps: [(s) => s.upsert('Gateway', gateway('other', { app: 'other' })), (s) => s.upsert('Service', service)],
    logs: [
      { level: 'warn', msg: /^no Gateway in the config directory/ },
      {
        level: 'warn',
        msg: /^no Gateway selects this gateway \(labels istio=ingressgateway,app=istio-ingressgateway\), so it serves no listener: apps\/other selects \{app=other\}; .* or start meshgate local with --labels matching a Gateway's selector$/,
      },
    ],
  },
  {
    name: 'a Gateway that selects this gateway is announced once; removing it warns again',
    steps: [
      (s) => s.upsert('Gateway', gateway('gw', { istio: 'ingressgateway' })),
      (s) => s.upsert('Gateway', gateway('second')),
      (s) => s.replace(() => true, []),
    ],
    logs: [
      { level: 'warn', msg: /^no Gateway in the config directory/ },
      { level: 'info', msg: /^this gateway is now selected by apps\/gw$/ },
      { level: 'warn', msg: /^no Gateway in the config directory/ },
    ],
  },
];

for (const c of cases) {
  test(`gateway selection: ${c.name}`, () => {
    const store = new ObjectStore();
    const { log, lines } = captureLogger();
    const selection = reportGatewaySelection(store, LABELS, log);
    for (const step of c.steps) step(store);
    selection.close();
    assert.deepEqual(
      lines().map((l) => (l.level === 40 ? 'warn' : l.level === 30 ? 'info' : String(l.level))),
      c.logs.map((l) => l.level),
    );
    lines().forEach((l, i) => assert.match(l.msg, c.logs[i]?.msg ?? /^$/));
  });
}

test('gateway selection: a gateway selected from the start says nothing', () => {
  const store = new ObjectStore();
  store.upsert('Gateway', gateway('gw'));
  const { log, raw } = captureLogger();
  reportGatewaySelection(store, LABELS, log).close();
  assert.deepEqual(raw, []);
});

/** The keys of a JSON object line, in order and with repeats (JSON.parse keeps only the last of each). */
function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') {
      let j = i + 1;
      while (line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      if (depth === 1 && line[j + 1] === ':') keys.push(JSON.parse(line.slice(i, j + 1)) as string);
      i = j;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return keys;
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('meshgate local on an unrelated config directory: every log line has each key once, and one warning says no Gateway selects it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-local-cli-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'gateway.yaml'), JSON.stringify(gateway('other', { app: 'other' })));
  const { log, raw, lines } = captureLogger();
  const local = await startLocal(
    {
      config: dir,
      namespace: 'istio-system',
      name: 'istio-ingressgateway',
      labels: LABELS,
      adminPort: 0,
      statusPort: 0,
      metricsPort: 0,
      drainSeconds: 0,
      concurrency: 1,
    },
    log,
  );
  try {
    assert.ok(raw.length > 5, `expected the start-up lines, got ${raw.length}`);
    for (const line of raw) {
      const keys = topLevelKeys(line);
      assert.deepEqual(keys, [...new Set(keys)], `duplicate keys in ${line}`);
    }
    assert.deepEqual(
      ['ads', 'controller', 'local-dir', 'proxy'].filter((c) => !lines().some((l) => l.component === c)),
      [],
      'components without a line',
    );
    const warnings = lines().filter((l) => l.level === 40 && l.msg.startsWith('no Gateway selects this gateway'));
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.component, 'config');
    assert.deepEqual(warnings[0]?.labels, LABELS);
  } finally {
    await local.close();
  }
});

test('--mesh-config: the file is read at start (log component mesh-config, each key once); a missing file is a usage error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-local-mesh-'));
  dirs.push(dir);
  const config = join(dir, 'config');
  mkdirSync(config);
  writeFileSync(join(dir, 'mesh.yaml'), 'rootNamespace: mesh-root\n');
  assert.throws(
    () => parseLocalArgs(['--config', config, '--mesh-config', join(dir, 'nope.yaml')]),
    (e: unknown) => e instanceof UsageError && /--mesh-config .*ENOENT/.test(e.message),
  );
  const o = parseLocalArgs(['--config', config, '--mesh-config', join(dir, 'mesh.yaml'), '--admin-port', '0', '--status-port', '0', '--metrics-port', '0']);
  assert.equal(o.meshConfig, join(dir, 'mesh.yaml'));
  const { log, raw, lines } = captureLogger();
  const local = await startLocal({ ...o, drainSeconds: 0, concurrency: 1 }, log);
  try {
    const loaded = lines().find((l) => l.msg === 'mesh config loaded');
    assert.equal(loaded?.component, 'mesh-config');
    assert.equal(loaded?.rootNamespace, 'mesh-root');
    for (const line of raw) {
      const keys = topLevelKeys(line);
      assert.deepEqual(keys, [...new Set(keys)], `duplicate keys in ${line}`);
    }
  } finally {
    await local.close();
  }
});

test('topLevelKeys reads repeated keys, and skips nested keys and strings that look like keys', () => {
  assert.deepEqual(topLevelKeys('{"a":1,"b":{"a":2},"c":"\\"d\\":","a":[{"e":1}]}'), ['a', 'b', 'c', 'a']);
});
