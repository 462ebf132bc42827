// scripts/package-charts.sh: the packaged charts and the index.yaml of a Helm chart repository, and the packages
// themselves installed (client-side dry run), rendered, linted and read as a user of the repository would.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { BASE_CHART, GATEWAY_CHART, REPO, helm } from './helm.ts';

const URL_BASE = 'https://charts.example.test/meshgate';
const SOURCE = 'https://example.test/meshgate';

interface IndexEntry {
  name: string;
  version: string;
  appVersion: string;
  kubeVersion: string;
  digest: string;
  urls: string[];
  home?: string;
  sources?: string[];
  icon?: string;
}

interface ChartYaml {
  name: string;
  version: string;
  appVersion: string;
  kubeVersion: string;
}

const charts = [
  { dir: BASE_CHART, chart: parse(readFileSync(join(BASE_CHART, 'Chart.yaml'), 'utf8')) as ChartYaml },
  { dir: GATEWAY_CHART, chart: parse(readFileSync(join(GATEWAY_CHART, 'Chart.yaml'), 'utf8')) as ChartYaml },
];
let out = '';
let stdout = '';

before(() => {
  out = mkdtempSync(join(tmpdir(), 'meshgate-charts-'));
  stdout = execFileSync('bash', [join(REPO, 'scripts/package-charts.sh'), '--out', out, '--url', URL_BASE, '--source', SOURCE], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 300_000,
  });
});
after(() => rmSync(out, { recursive: true, force: true }));

function tgz(c: ChartYaml): string {
  return join(out, `${c.name}-${c.version}.tgz`);
}

describe('scripts/package-charts.sh', () => {
  test('prints the output directory, with one package per chart, named <chart>-<version>.tgz after Chart.yaml', () => {
    assert.equal(stdout.trim().split('\n').at(-1), out);
    for (const { chart } of charts) assert.ok(existsSync(tgz(chart)), tgz(chart));
  });

  test("index.yaml lists each chart with Chart.yaml's version, appVersion and kubeVersion, the package's sha256 and its URL under --url", () => {
    const index = parse(readFileSync(join(out, 'index.yaml'), 'utf8')) as { apiVersion: string; entries: Record<string, IndexEntry[]> };
    assert.equal(index.apiVersion, 'v1');
    assert.deepEqual(Object.keys(index.entries).sort(), charts.map((c) => c.chart.name).sort());
    for (const { chart } of charts) {
      const [entry, ...more] = index.entries[chart.name] ?? [];
      assert.ok(entry && more.length === 0, `one ${chart.name} entry`);
      assert.equal(entry.version, chart.version);
      assert.equal(entry.appVersion, chart.appVersion);
      assert.equal(entry.kubeVersion, chart.kubeVersion);
      assert.equal(
        entry.digest,
        createHash('sha256')
          .update(readFileSync(tgz(chart)))
          .digest('hex'),
      );
      assert.deepEqual(entry.urls, [`${URL_BASE}/${chart.name}-${chart.version}.tgz`]);
      assert.equal(entry.home, SOURCE);
      assert.deepEqual(entry.sources, [SOURCE]);
      assert.match(entry.icon ?? '', /^data:image\/svg\+xml;base64,/);
    }
  });

  test('the checkout is untouched: --source went into the packaged Chart.yaml only', () => {
    for (const { dir } of charts) assert.doesNotMatch(readFileSync(join(dir, 'Chart.yaml'), 'utf8'), /^(home|sources):/m);
  });

  test('each package holds Chart.yaml, values.yaml, values.schema.json, README.md and the templates, nothing from outside the chart', () => {
    for (const { dir, chart } of charts) {
      const files = execFileSync('tar', ['-tzf', tgz(chart)], { encoding: 'utf8' })
        .trim()
        .split('\n');
      for (const f of ['Chart.yaml', 'values.yaml', 'values.schema.json', 'README.md']) assert.ok(files.includes(`${chart.name}/${f}`), `${chart.name}/${f}`);
      assert.ok(files.some((f) => f.startsWith(`${chart.name}/templates/`)));
      for (const f of files) assert.ok(existsSync(join(dir, f.slice(chart.name.length + 1))), `${f} comes from ${dir}`);
    }
  });

  test('helm lint --strict of each package reports nothing', () => {
    for (const { chart } of charts) {
      const r = helm(['lint', '--strict', tgz(chart)]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.doesNotMatch(r.stdout, /\[(INFO|WARNING|ERROR)\]/, r.stdout);
    }
  });

  test('helm template from a package renders what the chart directory renders', () => {
    for (const { dir, chart } of charts) {
      const release = chart.name === 'base' ? 'istio-base' : 'istio-ingressgateway';
      const fromDir = helm(['template', release, dir, '-n', 'istio-system']);
      const fromTgz = helm(['template', release, tgz(chart), '-n', 'istio-system']);
      assert.equal(fromTgz.status, 0, fromTgz.stderr);
      assert.ok(fromTgz.stdout.includes('kind: '), 'objects rendered');
      assert.equal(fromTgz.stdout, fromDir.stdout);
    }
  });

  test('helm install --dry-run from the packages: the CRDs, then an ingress and an egress gateway with their NOTES', () => {
    const [base, gateway] = charts.map((c) => tgz(c.chart)) as [string, string];
    const crds = helm(['install', '--dry-run=client', 'istio-base', base, '-n', 'istio-system']);
    assert.equal(crds.status, 0, crds.stderr);
    assert.match(crds.stdout, /kind: CustomResourceDefinition/);
    const ingress = helm(['install', '--dry-run=client', 'istio-ingressgateway', gateway, '-n', 'istio-system']);
    assert.equal(ingress.status, 0, ingress.stderr);
    assert.match(ingress.stdout, /NOTES:[\s\S]*istio: ingressgateway/);
    const egress = helm(['install', '--dry-run=client', 'istio-egressgateway', gateway, '-n', 'istio-system', '-f', join(GATEWAY_CHART, 'values-egress.yaml')]);
    assert.equal(egress.status, 0, egress.stderr);
    assert.match(egress.stdout, /type: ClusterIP/);
  });

  test('helm show readme of a package prints its README; helm show chart its kubeVersion, home and sources', () => {
    for (const { dir, chart } of charts) {
      const readme = helm(['show', 'readme', tgz(chart)]);
      assert.equal(readme.status, 0, readme.stderr);
      assert.equal(readme.stdout.trim(), readFileSync(join(dir, 'README.md'), 'utf8').trim());
      const shown = parse(helm(['show', 'chart', tgz(chart)]).stdout) as IndexEntry;
      assert.equal(shown.kubeVersion, chart.kubeVersion);
      assert.equal(shown.home, SOURCE);
    }
  });
});

describe('helm lint --strict of the chart directories reports nothing', () => {
  const cases = [
    { dir: BASE_CHART, values: [] },
    { dir: GATEWAY_CHART, values: [] },
    { dir: GATEWAY_CHART, values: ['charts/gateway/values-egress.yaml'] },
  ];
  for (const c of cases) {
    test(`${c.dir.slice(REPO.length)}${c.values.length ? ' with the egress values' : ''}: no INFO, WARNING or ERROR`, () => {
      const r = helm(['lint', '--strict', c.dir, ...c.values.flatMap((v) => ['--values', join(REPO, v)])]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.doesNotMatch(r.stdout, /\[(INFO|WARNING|ERROR)\]/, r.stdout);
    });
  }
});

describe('the packaged directory served over HTTP, as from a static host', () => {
  test('without --url: helm repo add, search and template through the index, whose URLs are relative', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-charts-'));
    const home = mkdtempSync(join(tmpdir(), 'meshgate-helm-'));
    // Only the files the script wrote, read-only, from 127.0.0.1 on a port of our own.
    const server = createServer((req, res) => {
      const name = basename(req.url ?? '');
      const file = join(dir, name);
      if (req.url !== `/charts/${name}` || !existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200).end(readFileSync(file));
    });
    try {
      execFileSync('bash', [join(REPO, 'scripts/package-charts.sh'), '--out', dir], { stdio: 'ignore' });
      const fetched = execFileSync('bash', [join(REPO, 'scripts/fetch-helm.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const helmBin = process.env.MESHGATE_HELM ?? join(fetched.trim().split('\n').at(-1) ?? '', 'helm');
      const index = parse(readFileSync(join(dir, 'index.yaml'), 'utf8')) as { entries: Record<string, IndexEntry[]> };
      assert.deepEqual(index.entries.gateway?.[0]?.urls, [`gateway-${charts[1]?.chart.version}.tgz`]);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      // helm runs asynchronously: this process serves its requests meanwhile.
      const env = {
        PATH: process.env.PATH,
        HOME: home,
        HELM_CACHE_HOME: join(home, 'cache'),
        HELM_CONFIG_HOME: join(home, 'config'),
        HELM_DATA_HOME: join(home, 'data'),
        KUBECONFIG: join(home, 'none'),
      };
      const run = async (args: string[]): Promise<string> => (await promisify(execFile)(helmBin, args, { env, encoding: 'utf8', timeout: 60_000 })).stdout;
      await run(['repo', 'add', 'meshgate', `http://127.0.0.1:${port}/charts`]);
      const search = await run(['search', 'repo', 'meshgate/', '-o', 'json']);
      assert.deepEqual(
        (JSON.parse(search) as { name: string; version: string }[]).map((e) => `${e.name} ${e.version}`).sort(),
        charts.map((c) => `meshgate/${c.chart.name} ${c.chart.version}`).sort(),
      );
      const rendered = await run(['template', 'istio-ingressgateway', 'meshgate/gateway', '-n', 'istio-system', '--version', charts[1]?.chart.version ?? '']);
      assert.match(rendered, /kind: Deployment/);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
    }
  });
});
