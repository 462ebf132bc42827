// Writes charts/<chart>/README.md (what `helm show readme` prints) from the chart's Chart.yaml, values.yaml and
// values.schema.json, in the manner of helm-docs: a table of every value with its type (from the schema), its
// default (from values.yaml) and its description (the comment lines right above the key in values.yaml, else the
// schema's description). Keys the schema accepts but values.yaml leaves unset are listed too, with the comment
// of a commented-out `# key: value` line when there is one.
//
// Usage: node scripts/chart-readme.ts           (rewrites both READMEs)
//        node scripts/chart-readme.ts --check   (exit status 1 and the stale files' names when one is out of date)
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const REPO = fileURLToPath(new URL('../', import.meta.url));
export const CHARTS = ['charts/gateway', 'charts/base'];
export const REGENERATE = 'node scripts/chart-readme.ts';

interface SchemaNode {
  type?: string | string[];
  $ref?: string;
  description?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: unknown;
  enum?: unknown[];
  oneOf?: SchemaNode[];
  anyOf?: SchemaNode[];
  allOf?: SchemaNode[];
  definitions?: Record<string, SchemaNode>;
}

interface Row {
  key: string;
  type: string;
  default: string;
  description: string;
}

type Values = Record<string, unknown>;

function isRecord(v: unknown): v is Values {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Descriptions from values.yaml by key path: the comment lines right above a key (no blank line between). A
 * comment line shaped like a key (`# loadBalancerClass: ""`, a key left unset) also gets the comment lines above
 * it since the previous such line; those count only for keys values.yaml does not set. Keys inside list items
 * are not values of the chart and are skipped.
 */
export function comments(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const commented = new Map<string, string>();
  const stack: { indent: number; key: string }[] = [];
  let block: { indent: number; lines: string[]; since: string[]; keys: [string, string[]][] } | undefined;
  let sequenceIndent = -1;
  let previous: { indent: number; description: string } | undefined;
  const pathAt = (indent: number, key: string): string => [...stack.filter((s) => s.indent < indent).map((s) => s.key), key].join('.');
  // A blank line at the end flushes a trailing comment block.
  for (const line of [...text.split('\n'), '']) {
    const indent = line.length - line.trimStart().length;
    const body = line.trim();
    if (sequenceIndent >= 0 && body !== '' && indent > sequenceIndent) continue;
    if (body === '' || body.startsWith('- ')) {
      previous = undefined;
      if (block) while (stack.length && (stack.at(-1)?.indent ?? 0) >= block.indent) stack.pop();
      for (const [key, lines] of block?.keys ?? []) if (lines.length && block) commented.set(pathAt(block.indent, key), lines.join(' '));
      block = undefined;
      sequenceIndent = body === '' ? sequenceIndent : indent;
      continue;
    }
    sequenceIndent = -1;
    if (body.startsWith('#')) {
      previous = undefined;
      const c = body.replace(/^#\s?/, '');
      block ??= { indent, lines: [], since: [], keys: [] };
      const keyLine = /^([A-Za-z_][\w-]*): \S/.exec(c);
      if (keyLine && indent === block.indent) {
        block.keys.push([keyLine[1] as string, block.since]);
        block.since = [];
      } else block.since.push(c);
      block.lines.push(c);
      continue;
    }
    const key = /^("[^"]+"|'[^']+'|[^\s:#][^:#]*?):(\s|$)/.exec(body)?.[1]?.replace(/^["']|["']$/g, '');
    if (key === undefined) continue;
    while (stack.length && (stack.at(-1)?.indent ?? 0) >= indent) stack.pop();
    const path = pathAt(indent, key);
    // A one-line key right below a one-line sibling, without a comment of its own, shares the sibling's (a
    // commented group such as nodeSelector, tolerations, affinity).
    const oneLine = /:\s+[^\s#]/.test(body);
    const description = block?.lines.length ? block.lines.join(' ') : oneLine && previous?.indent === indent ? previous.description : undefined;
    if (description) out.set(path, description);
    previous = description && oneLine ? { indent, description } : undefined;
    for (const [k, lines] of block?.keys ?? []) if (lines.length) commented.set(pathAt(indent, k), lines.join(' '));
    block = undefined;
    stack.push({ indent, key });
  }
  for (const [path, description] of commented) if (!out.has(path)) out.set(path, description);
  return out;
}

function resolve(root: SchemaNode, node: SchemaNode): SchemaNode {
  let n = node;
  for (let i = 0; i < 10; i++) {
    if (n.$ref) n = n.$ref === '#' ? root : (root.definitions?.[n.$ref.replace('#/definitions/', '')] ?? {});
    else if (!n.type && n.allOf?.[0]) n = n.allOf[0];
    else return n;
  }
  return n;
}

function typeName(root: SchemaNode, node: SchemaNode | undefined, value: unknown): string {
  const types = new Set<string>();
  const add = (n: SchemaNode): void => {
    const r = resolve(root, n);
    if (r.type) for (const t of [r.type].flat()) types.add(t);
    else if (r.enum) for (const v of r.enum) types.add(v === null ? 'null' : typeof v);
    for (const alt of [...(r.oneOf ?? []), ...(r.anyOf ?? [])]) add(alt);
  };
  if (node) add(node);
  if (types.size === 0) types.add(Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value);
  return [...types].join(' or ');
}

/** A map the chart defines field by field, with defaults in values.yaml: documented field by field. */
function fieldByField(schema: SchemaNode | undefined, value: unknown): schema is SchemaNode {
  return (
    !!schema && schema.type === 'object' && !!schema.properties && schema.additionalProperties === false && isRecord(value) && Object.keys(value).length > 0
  );
}

function rows(root: SchemaNode, schema: SchemaNode | undefined, values: Values, docs: Map<string, string>, prefix: string): Row[] {
  const out: Row[] = [];
  const row = (key: string, node: SchemaNode | undefined, value: unknown, isSet: boolean): Row => ({
    key: prefix + key,
    type: typeName(root, node, value),
    default: isSet ? `\`${cell(JSON.stringify(value))}\`` : 'unset',
    description: docs.get(prefix + key) ?? node?.description ?? (node ? resolve(root, node).description : undefined) ?? '',
  });
  for (const [key, value] of Object.entries(values)) {
    const node = schema?.properties?.[key];
    if (fieldByField(node, value) && isRecord(value)) out.push(...rows(root, node, value, docs, `${prefix}${key}.`));
    else out.push(row(key, node, value, true));
  }
  for (const [key, node] of Object.entries(schema?.properties ?? {})) {
    if (key in values) continue;
    // Helm's values shared with parent charts: nothing to document for a chart that reads none of them.
    if (prefix === '' && key === 'global' && !node.description) continue;
    out.push(row(key, node, undefined, false));
  }
  return out;
}

/** Markdown table cell: one line, pipes escaped, and `<` outside code spans so that `<name>` is not taken for HTML. */
function cell(text: string): string {
  return text
    .replace(/\s*\n\s*/g, ' ')
    .split('`')
    .map((part, i) => (i % 2 === 0 ? part.replace(/</g, '\\<') : part))
    .join('`')
    .replace(/\|/g, '\\|');
}

export function valueRows(chartDir: string): Row[] {
  const dir = join(REPO, chartDir);
  const text = readFileSync(join(dir, 'values.yaml'), 'utf8');
  const values = (parse(text) as Values | null) ?? {};
  const schema = JSON.parse(readFileSync(join(dir, 'values.schema.json'), 'utf8')) as SchemaNode;
  return rows(schema, schema, values, comments(text), '');
}

interface ChartYaml {
  name: string;
  description: string;
  version: string;
  appVersion?: string;
  kubeVersion?: string;
}

const INSTALL: Record<string, string> = {
  base: 'helm install istio-base ./charts/base -n istio-system --create-namespace',
  gateway: [
    "# The CRDs first, unless the cluster has Istio's:",
    'helm install istio-base ./charts/base -n istio-system --create-namespace',
    "# An ingress gateway, with the Service, labels and ports of Istio's istio-ingressgateway:",
    'helm install istio-ingressgateway ./charts/gateway -n istio-system',
    '# An egress gateway (a ClusterIP Service):',
    'helm install istio-egressgateway ./charts/gateway -n istio-system -f charts/gateway/values-egress.yaml',
  ].join('\n'),
};

export function renderReadme(chartDir: string): string {
  const chart = parse(readFileSync(join(REPO, chartDir, 'Chart.yaml'), 'utf8')) as ChartYaml;
  const table = valueRows(chartDir).map((r) => `| \`${cell(r.key)}\` | ${cell(r.type)} | ${r.default} | ${cell(r.description)} |`);
  const lines = [
    `# ${chart.name}`,
    '',
    `<!-- Generated by scripts/chart-readme.ts from Chart.yaml, values.yaml and values.schema.json: edit those, then run \`${REGENERATE}\`. -->`,
    '',
    chart.description.trim(),
    '',
    `Chart version ${chart.version}, app version ${chart.appVersion ?? chart.version}, Kubernetes ${chart.kubeVersion ?? 'any'}.`,
    'The installation guide, with what differs from Istio and why, is docs/install.md in the meshgate repository.',
    '',
    '## Install',
    '',
    '```sh',
    INSTALL[chart.name] ?? `helm install ${chart.name} ./${chartDir}`,
    '```',
    '',
    '## Values',
    '',
  ];
  if (table.length === 0) lines.push('This chart has no values.');
  else lines.push('| Key | Type | Default | Description |', '|---|---|---|---|', ...table);
  return `${lines.join('\n')}\n`;
}

function main(): void {
  const check = process.argv.includes('--check');
  const stale: string[] = [];
  for (const chart of CHARTS) {
    const file = join(REPO, chart, 'README.md');
    const text = renderReadme(chart);
    let current = '';
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      // missing: stale
    }
    if (current === text) continue;
    stale.push(`${chart}/README.md`);
    if (!check) writeFileSync(file, text);
  }
  if (check && stale.length) {
    process.stderr.write(`stale: ${stale.join(', ')}; run \`${REGENERATE}\`\n`);
    process.exitCode = 1;
  } else if (stale.length) process.stdout.write(`wrote ${stale.join(', ')}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
