#!/usr/bin/env node
// Where a V8 CPU profile (.cpuprofile, from `node --cpu-prof`, e.g. `bench/run.sh --profile`) spends its time:
// the functions with the most self time, and the same samples grouped by script (meshgate's own files,
// node:internal, undici, ...). Chrome DevTools (Performance / JavaScript Profiler: Load) shows the full tree.
// usage: node bench/tools/profile-top.ts FILE.cpuprofile... [--top 30]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' } } });
if (!positionals.length) {
  process.stderr.write('usage: profile-top.ts FILE.cpuprofile... [--top 30]\n');
  process.exit(2);
}
const top = Number(values.top);
const cwd = `${process.cwd()}/`;

/** A short name for where a function lives: repo-relative path, node:internal/..., or the package name. */
function where(url: string): string {
  if (!url) return '(native / V8)';
  const u = url.replace(/^file:\/\//, '');
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (nm) return `npm:${nm[1]}`;
  return u.startsWith(cwd) ? u.slice(cwd.length) : u;
}

for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const hits = new Map<number, number>();
  if (p.samples) for (const id of p.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  else for (const n of p.nodes) hits.set(n.id, n.hitCount ?? 0);
  const all = [...hits.values()].reduce((s, x) => s + x, 0) || 1;
  // Percentages are of the busy samples: an idle server's (idle) samples would drown everything else.
  const idle = p.nodes.filter((n) => n.callFrame.functionName === '(idle)').reduce((s, n) => s + (hits.get(n.id) ?? 0), 0);
  const total = all - idle || 1;
  if (total < 50) {
    // e.g. bin/meshgate's `node -e` version check, which inherits NODE_OPTIONS=--cpu-prof too
    process.stdout.write(`${file}: only ${total} busy samples (a short-lived helper process?): skipped\n\n`);
    continue;
  }
  const msPerSample = (p.endTime - p.startTime) / 1000 / all;
  const byFn = new Map<string, number>();
  const byScript = new Map<string, number>();
  for (const n of p.nodes) {
    const h = hits.get(n.id) ?? 0;
    const f = n.callFrame;
    if (!h || f.functionName === '(idle)') continue;
    const fn = `${f.functionName || '(anonymous)'}  ${where(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + h);
    const s = f.url ? where(f.url) : f.functionName.startsWith('(') ? f.functionName : '(native / V8)';
    byScript.set(s, (byScript.get(s) ?? 0) + h);
  }
  const pct = (h: number): string => `${((100 * h) / total).toFixed(1).padStart(5)}%`;
  const lines = [
    `${file}: ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s, ${all} samples (${msPerSample.toFixed(2)} ms each), ${((100 * idle) / all).toFixed(0)}% idle`,
    `percentages below are of the ${total} busy samples (${((total * msPerSample) / 1000).toFixed(1)} s of CPU on the main thread)`,
    '',
    'self time by function:',
  ];
  for (const [fn, h] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(h)}  ${fn}`);
  lines.push('', 'self time by script:');
  for (const [s, h] of [...byScript].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(h)}  ${s}`);
  process.stdout.write(`${lines.join('\n')}\n\n`);
}
