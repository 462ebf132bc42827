/* global document, window, location, navigator, fetch, URLSearchParams */
// The route map page: polls /routemap?format=json, lays the graph out in six columns (listeners -> filter chains
// -> virtual hosts -> routes -> clusters -> endpoints) and draws the edges in SVG. Names come from user
// configuration: they only ever go into the page as text (textContent, setAttribute), never as markup, and
// links are only the admin's own /config_dump queries.
'use strict';

const COLUMNS = [
  ['listener', 'Listeners'],
  ['filter_chain', 'Filter chains'],
  ['virtual_host', 'Virtual hosts'],
  ['route', 'Routes'],
  ['cluster', 'Clusters'],
  ['endpoint', 'Endpoints'],
];
const SVG = 'http://www.w3.org/2000/svg';
const GAP = 8;
const TOP = 28;
const params = new URLSearchParams(location.search);
const refreshSeconds = Math.max(1, Number(params.get('refresh')) || 5);
// explain's default is the local admin on 127.0.0.1:15000; any other page origin is named explicitly.
const DEFAULT_ADMIN = ['http://127.0.0.1:15000', 'http://localhost:15000'];
const adminFlag = DEFAULT_ADMIN.includes(location.origin) ? '' : ` --admin ${location.origin}`;

const map = document.getElementById('map');
const edgesSvg = document.getElementById('edges');
const statusEl = document.getElementById('status');
const filterEl = document.getElementById('filter');

let shape = '';
let current = { nodes: [], edges: [] };
/** Node id -> its element. */
let elements = new Map();

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function explainLine(cmd) {
  return cmd.replace(/^meshgate explain/, `meshgate explain${adminFlag}`);
}

function renderStats(dl, stats) {
  dl.replaceChildren();
  for (const s of stats) {
    const dt = el('dt', '', s.label);
    if (s.stat) dt.title = s.stat;
    const dd = el('dd', '', String(s.value));
    dd.dataset.stat = s.label;
    dl.append(dt, dd);
  }
}

function renderNode(n) {
  const box = el('div', `node kind-${n.kind}`);
  box.dataset.kind = n.kind;
  box.dataset.id = n.id;
  box.append(el('div', 'name', n.name));
  if (n.detail.length > 0) {
    const ul = el('ul', 'detail');
    for (const d of n.detail) ul.append(el('li', '', d));
    box.append(ul);
  }
  box.append(el('div', 'health'));
  const dl = el('dl', 'stats');
  box.append(dl);
  const links = el('div', 'links');
  if (n.configDump.startsWith('/config_dump?')) {
    const a = el('a', 'dump', 'config_dump');
    a.setAttribute('href', n.configDump);
    links.append(a);
  }
  if (n.explain) {
    const line = explainLine(n.explain);
    const b = el('button', 'copy', 'copy explain');
    b.type = 'button';
    b.addEventListener('click', () => {
      if (navigator.clipboard) void navigator.clipboard.writeText(line).then(() => (b.textContent = 'copied'));
    });
    links.append(b);
    box.append(links, el('code', 'explain', line));
  } else box.append(links);
  updateNode(box, n);
  return box;
}

function updateNode(box, n) {
  for (const c of [...box.classList]) if (c.startsWith('health-')) box.classList.remove(c);
  const h = box.querySelector('.health');
  if (n.health) {
    box.classList.add(`health-${n.health}`);
    h.textContent = n.hostHealth ?? n.health;
  } else h.textContent = '';
  renderStats(box.querySelector('dl.stats'), n.stats);
}

/** Parents of each node, in edge order. */
function parentsOf(edges) {
  const out = new Map();
  for (const e of edges) {
    if (!out.has(e.to)) out.set(e.to, []);
    out.get(e.to).push(e.from);
  }
  return out;
}

/**
 * Positions: each column keeps the server's order, re-sorted by the first parent's rank (fewer crossings); a
 * node sits level with its first parent when there is room, else right below the one above it.
 */
function layout(nodes, edges) {
  const parents = parentsOf(edges);
  const rank = new Map();
  const top = new Map();
  let height = 0;
  for (const [kind] of COLUMNS) {
    const col = nodes.filter((n) => n.kind === kind);
    const key = (n) => {
      const ps = parents.get(n.id) ?? [];
      return ps.length > 0 ? Math.min(...ps.map((p) => rank.get(p) ?? Infinity)) : Infinity;
    };
    col.forEach((n, i) => (n.order = i));
    col.sort((a, b) => key(a) - key(b) || a.order - b.order);
    let y = TOP;
    col.forEach((n, i) => {
      rank.set(n.id, i);
      const box = elements.get(n.id);
      const first = (parents.get(n.id) ?? [])[0];
      const want = first !== undefined && top.has(first) ? top.get(first) : y;
      const at = Math.max(y, want);
      top.set(n.id, at);
      box.style.top = `${at}px`;
      y = at + box.offsetHeight + GAP;
    });
    height = Math.max(height, y);
  }
  for (const c of map.querySelectorAll('.column')) c.style.height = `${height}px`;
}

/** The point at t of the cubic Bézier curve p0..p3. */
function bezierAt(t, p0, p1, p2, p3) {
  const u = 1 - t;
  const at = (i) => u * u * u * p0[i] + 3 * u * u * t * p1[i] + 3 * u * t * t * p2[i] + t * t * t * p3[i];
  return [at(0), at(1)];
}

function drawEdges(edges) {
  const base = map.getBoundingClientRect();
  edgesSvg.setAttribute('width', String(map.scrollWidth));
  edgesSvg.setAttribute('height', String(map.scrollHeight));
  edgesSvg.replaceChildren();
  for (const e of edges) {
    const a = elements.get(e.from);
    const b = elements.get(e.to);
    if (!a || !b) continue;
    const ra = a.getBoundingClientRect();
    const rb = b.getBoundingClientRect();
    const x1 = ra.right - base.left;
    const y1 = ra.top - base.top + Math.min(ra.height / 2, 14);
    const x2 = rb.left - base.left;
    const y2 = rb.top - base.top + Math.min(rb.height / 2, 14);
    const mx = (x1 + x2) / 2;
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`);
    path.dataset.from = e.from;
    path.dataset.to = e.to;
    edgesSvg.append(path);
    if (e.label) {
      // On the curve near its target, where edges from one route (weights, mirror) have fanned out.
      const [lx, ly] = bezierAt(0.7, [x1, y1], [mx, y1], [mx, y2], [x2, y2]);
      const t = document.createElementNS(SVG, 'text');
      t.setAttribute('x', String(lx - 14));
      t.setAttribute('y', String(ly - 3));
      t.textContent = e.label;
      edgesSvg.append(t);
    }
  }
}

function render(data) {
  for (const c of map.querySelectorAll('.column')) c.remove();
  elements = new Map();
  for (const [kind, title] of COLUMNS) {
    const col = el('section', 'column');
    col.dataset.kind = kind;
    col.append(el('h2', '', title));
    for (const n of data.nodes.filter((x) => x.kind === kind)) {
      const box = renderNode(n);
      elements.set(n.id, box);
      col.append(box);
    }
    map.append(col);
  }
  layout(data.nodes, data.edges);
  drawEdges(data.edges);
  applyFilter();
}

/** The filter dims what does not match, except the paths through a match (its ancestors and descendants). */
function applyFilter() {
  const q = filterEl.value.trim().toLowerCase();
  const keep = new Set();
  if (q) {
    const down = new Map();
    const up = parentsOf(current.edges);
    for (const e of current.edges) {
      if (!down.has(e.from)) down.set(e.from, []);
      down.get(e.from).push(e.to);
    }
    const walk = (id, next, seen) => {
      if (seen.has(id)) return;
      seen.add(id);
      keep.add(id);
      for (const x of next.get(id) ?? []) walk(x, next, seen);
    };
    const seenUp = new Set();
    const seenDown = new Set();
    for (const n of current.nodes) {
      if (`${n.name}\n${n.detail.join('\n')}`.toLowerCase().includes(q)) {
        walk(n.id, up, seenUp);
        walk(n.id, down, seenDown);
      }
    }
  }
  for (const [id, box] of elements) box.classList.toggle('dim', q !== '' && !keep.has(id));
  for (const p of edgesSvg.querySelectorAll('path')) p.classList.toggle('dim', q !== '' && !(keep.has(p.dataset.from) && keep.has(p.dataset.to)));
}

async function refresh() {
  try {
    const r = await fetch('/routemap?format=json', { cache: 'no-store' });
    if (!r.ok) throw new Error(`/routemap?format=json answered ${r.status}`);
    const data = await r.json();
    // What changes a box's size or the edges: anything else (counts, health) is updated in place.
    const next = JSON.stringify([data.nodes.map((n) => [n.id, n.name, n.detail, n.explain, n.health !== undefined, n.stats.map((s) => s.label)]), data.edges]);
    current = data;
    if (next !== shape) {
      shape = next;
      render(data);
    } else {
      for (const n of data.nodes) {
        const box = elements.get(n.id);
        if (box) updateNode(box, n);
      }
    }
    statusEl.className = '';
    statusEl.textContent = `${data.nodes.length} nodes, updated ${new Date().toLocaleTimeString()} (every ${refreshSeconds} s)`;
  } catch (e) {
    statusEl.className = 'error';
    statusEl.textContent = `refresh failed: ${e instanceof Error ? e.message : String(e)}`;
  }
}

filterEl.addEventListener('input', applyFilter);
window.addEventListener('resize', () => drawEdges(current.edges));
void refresh();
window.setInterval(() => void refresh(), refreshSeconds * 1000);
