// The Dockerfile, checked without a Docker engine: what it copies exists and is in the build context, every
// module the CLI loads at runtime is in the image, and the image starts the command the chart gives its
// containers, as uid 1337, stopping with SIGTERM.
import assert from 'node:assert/strict';
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { GATEWAY_CHART, REPO, only, template } from './helm.ts';
import type { Workload } from './k8s-types.ts';

interface Instruction {
  keyword: string;
  args: string;
}

/** Dockerfile instructions, with line continuations joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line) && !current) continue;
    current += line.replace(/\\$/, ' ');
    if (line.endsWith('\\')) continue;
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(current);
    if (m?.[1] && m[2] !== undefined) out.push({ keyword: m[1].toUpperCase(), args: m[2].trim() });
    current = '';
  }
  return out;
}

/** Stages of the Dockerfile, each with its instructions. */
function stages(list: Instruction[]): { from: string; name?: string; body: Instruction[] }[] {
  const out: { from: string; name?: string; body: Instruction[] }[] = [];
  for (const i of list) {
    if (i.keyword === 'FROM') {
      const [from = '', , name] = i.args.split(/\s+/);
      out.push({ from, ...(name ? { name } : {}), body: [] });
    } else out.at(-1)?.body.push(i);
  }
  return out;
}

/** .dockerignore semantics: patterns in order, the last match wins, `!` re-includes; a match on a directory covers its contents. */
function dockerIgnored(patterns: string[], path: string): boolean {
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const pattern = (negate ? raw.slice(1) : raw).replace(/\/+$/, '');
    const re = new RegExp(
      '^' +
        pattern
          .split('**')
          .map((part) =>
            part
              .replace(/[.+^${}()|[\]\\]/g, '\\$&')
              .replace(/\*/g, '[^/]*')
              .replace(/\?/g, '[^/]'),
          )
          .join('.*')
          .replace(/\.\*\//g, '(.*/)?') +
        '(/.*)?$',
    );
    if (re.test(path)) ignored = !negate;
  }
  return ignored;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(REPO, join(e.parentPath, e.name)));
}

const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
const all = instructions(dockerfile);
// ARGs before the first FROM belong to no stage.
const [deps, final] = stages(all);
const ignorePatterns = readFileSync(join(REPO, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const contextCopies = all.filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from')).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
const copiedDirs = contextCopies.filter((p) => existsSync(join(REPO, p)) && statSync(join(REPO, p)).isDirectory());

describe('Dockerfile', () => {
  test('builds from node:24-slim in two stages: production dependencies, then the runtime image', () => {
    assert.match(dockerfile, /^ARG NODE_IMAGE=node:24-slim$/m);
    assert.equal(deps?.from, '${NODE_IMAGE}');
    assert.equal(deps?.name, 'deps');
    assert.equal(final?.from, '${NODE_IMAGE}');
    const install = deps?.body.find((i) => i.keyword === 'RUN')?.args ?? '';
    for (const flag of ['npm ci', '--omit=dev', '--ignore-scripts']) assert.ok(install.includes(flag), flag);
    assert.ok(final?.body.some((i) => i.keyword === 'COPY' && i.args === '--from=deps /app/node_modules ./node_modules'));
  });

  test('every path it copies from the build context exists and is not excluded by .dockerignore', () => {
    assert.deepEqual(
      contextCopies.sort(),
      ['bin', 'cli', 'controller', 'gateway', 'package-lock.json', 'package.json', 'package.json', 'package-lock.json', 'xds'].sort(),
    );
    for (const p of contextCopies) {
      assert.ok(existsSync(join(REPO, p)), `${p} does not exist in the repository`);
      assert.equal(dockerIgnored(ignorePatterns, p), false, `${p} is excluded by .dockerignore`);
    }
  });

  test('.dockerignore keeps sources in the context and leaves tests, test data and node_modules out', () => {
    assert.equal(dockerIgnored(ignorePatterns, 'cli/main.ts'), false);
    assert.equal(dockerIgnored(ignorePatterns, 'xds/protos.ts'), false);
    assert.equal(dockerIgnored(ignorePatterns, 'xds/protos.test.ts'), true);
    assert.equal(dockerIgnored(ignorePatterns, 'controller/translate/testdata/a.in.yaml'), true);
    assert.equal(dockerIgnored(ignorePatterns, 'node_modules/yaml/package.json'), true);
    assert.equal(dockerIgnored(ignorePatterns, 'e2e/local/walkthrough.test.ts'), true);
    assert.equal(dockerIgnored(ignorePatterns, 'charts/gateway/values.yaml'), true);
  });

  test('runs as uid/gid 1337, stops with SIGTERM, and starts `meshgate` (bin/meshgate on PATH)', () => {
    const last = (k: string): string | undefined => final?.body.filter((i) => i.keyword === k).at(-1)?.args;
    assert.equal(last('USER'), '1337:1337');
    assert.equal(last('STOPSIGNAL'), 'SIGTERM');
    assert.deepEqual(JSON.parse(last('ENTRYPOINT') ?? 'null'), ['meshgate']);
    assert.match(last('ENV') ?? '', /PATH=\/app\/bin:\$PATH/);
    // cli/logger.ts loads pino-pretty (a dev dependency) on a TTY unless told not to.
    assert.match(last('ENV') ?? '', /MESHGATE_LOG_PRETTY=0/);
    assert.equal(last('WORKDIR'), '/app');
    accessSync(join(REPO, 'bin/meshgate'), constants.X_OK);
    // bin/meshgate must exec node (not run it as a child) so that node receives SIGTERM.
    assert.match(readFileSync(join(REPO, 'bin/meshgate'), 'utf8'), /^exec "\$node_bin" "\$\{v8_flags\[@\]\}" "\$here\/cli\/main\.ts" "\$@"$/m);
  });

  test("the chart starts both containers with the image's command", () => {
    const d = only<Workload>(template(GATEWAY_CHART, 'istio-ingressgateway'), 'Deployment');
    for (const c of d.spec.template.spec.containers) assert.deepEqual(c.command, ['meshgate'], c.name);
  });
});

describe('runtime modules in the image', () => {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  const IMPORT_PATTERNS = [
    /^\s*import\s+(?!type\s)[^'"]*?\bfrom\s+['"]([^'"]+)['"]/gm,
    /^\s*import\s+['"]([^'"]+)['"]/gm,
    /^\s*export\s+(?!type\s)[^'"]*?\bfrom\s+['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire(?:\.resolve)?\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];

  function specifiers(source: string): string[] {
    const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
    return IMPORT_PATTERNS.flatMap((re) => [...code.matchAll(re)].map((m) => m[1] ?? ''));
  }

  function packageName(spec: string): string {
    const parts = spec.split('/');
    return spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? spec);
  }

  /** Files reachable from cli/main.ts through static and literal dynamic imports, and the packages they use. */
  function reachable(): { files: string[]; packages: Set<string>; missing: string[] } {
    const files: string[] = [];
    const packages = new Set<string>();
    const missing: string[] = [];
    const queue = [join(REPO, 'cli/main.ts')];
    const seen = new Set(queue);
    while (queue.length) {
      const file = queue.shift() ?? '';
      if (!existsSync(file)) {
        missing.push(relative(REPO, file));
        continue;
      }
      files.push(relative(REPO, file));
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        if (spec.startsWith('.')) {
          if (!spec.endsWith('.ts') && !spec.endsWith('.js')) continue; // e.g. '../package.json'
          const target = resolve(dirname(file), spec);
          if (!seen.has(target)) {
            seen.add(target);
            queue.push(target);
          }
        } else if (!isBuiltin(spec)) packages.add(packageName(spec));
      }
    }
    return { files, packages, missing };
  }

  const { files, packages, missing } = reachable();

  test('every source file the CLI imports exists', () => {
    assert.deepEqual(missing, []);
  });

  test('every source file the CLI imports is in a directory the image copies, and in the build context', () => {
    for (const f of files) {
      assert.ok(
        copiedDirs.some((d) => f.startsWith(`${d}/`)),
        `${f} is outside ${copiedDirs.join(', ')}`,
      );
      assert.equal(dockerIgnored(ignorePatterns, f), false, `${f} is excluded by .dockerignore`);
    }
    for (const d of copiedDirs.filter((x) => x !== 'bin')) {
      assert.ok(
        filesUnder(join(REPO, d)).some((f) => files.includes(f)),
        `${d} is copied but nothing in it is used`,
      );
    }
  });

  test('every package the CLI imports is a production dependency (npm ci --omit=dev installs it)', () => {
    assert.ok(packages.size > 0);
    for (const p of packages) {
      assert.ok(pkg.dependencies?.[p], `${p} is imported at runtime but is ${pkg.devDependencies?.[p] ? 'a devDependency' : 'not a dependency'}`);
    }
  });
});
