// Admin /routemap (meshgate's, not Envoy's): an HTML page drawing the route map, and ?format=json, the graph it
// polls (routemap.ts) computed from the same dumps as /config_dump?include_eds, /clusters?format=json and
// /stats. The page's script and style ship in assets/ and are inlined, so it needs nothing but this port
// (no CDN, works offline); a Content-Security-Policy allows exactly them, and the script puts every name from
// the configuration into the page as text, never as markup.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { envoy } from '../../xds/envoy.ts';
import { HISTOGRAM, type StatSample } from '../stats/store.ts';
import type { AdminContext } from './admin-server.ts';
import { renderClustersJson } from './clusters.ts';
import { buildRouteMap } from './routemap.ts';

const asset = (name: string): string => readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8');

interface Page {
  html: string;
  csp: string;
}

let page: Page | undefined;

/** The HTML with the script and style inlined, read once; the CSP names their hashes. */
function routeMapPage(): Page {
  if (page) return page;
  const script = asset('routemap.js');
  const style = asset('routemap.css');
  const hash = (s: string): string => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
  const html = asset('routemap.html')
    // Replacer functions: the assets' text is inserted as it is (a string replacement would expand `$&`).
    .replace('<style></style>', () => `<style>${style}</style>`)
    .replace('<script></script>', () => `<script>${script}</script>`);
  const csp = `default-src 'none'; script-src ${hash(script)}; style-src ${hash(style)}; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
  page = { html, csp };
  return page;
}

/** Counters and gauges by name (histograms have no single value to show). */
function statValues(samples: readonly StatSample[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) if (s.kind !== HISTOGRAM) out.set(s.name, s.value);
  return out;
}

export async function routeMapReply(ctx: AdminContext, q: URLSearchParams): Promise<{ status: number; type: string; body: string; headers?: string[] }> {
  if (q.get('format') === 'json') {
    const clusters = JSON.parse(renderClustersJson(ctx.clusters(), await ctx.hostStats())) as envoy.admin.v3.Clusters;
    const map = buildRouteMap(ctx.configDump(true), clusters, statValues(await ctx.stats()));
    return { status: 200, type: 'application/json', body: JSON.stringify(map, null, 1) + '\n' };
  }
  const p = routeMapPage();
  return { status: 200, type: 'text/html; charset=UTF-8', body: p.html, headers: ['content-security-policy', p.csp] };
}
