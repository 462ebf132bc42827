// A virtual host's routes indexed by their path matcher, built once per RouteConfiguration, so that finding
// the first matching route does not test every route before it. Envoy evaluates routes in order and the
// first whose whole match (path, headers, query parameters, grpc) holds wins; the index keeps exactly that:
// it only skips routes whose path matcher cannot match the request's path, and of the candidates it returns
// the one with the lowest position whose full match holds (the caller's `test`).
//
// - Case-sensitive `prefix` and `path_separated_prefix` routes: a map from the prefix to the routes using it,
//   looked up once per distinct prefix length with the path's first `length` characters (Envoy's wildcard
//   domains use the same length-keyed scheme). `path_separated_prefix` is a prefix plus a '/'-or-end check,
//   which stays in `test`.
// - Case-sensitive `path` routes: one map lookup with the whole path.
// - Case-insensitive routes: the same two maps keyed by the lowercased key, looked up with the ASCII-lowercased
//   path. A path with a non-ASCII character (lowercasing can change its length) scans every route instead.
// - Everything else (safe_regex, the `''` and `/` prefixes that match every path, case-insensitive keys
//   that are not ASCII once lowercased) is a candidate for every path.

// Path matcher kinds, as compiled by route-config.ts.
/** `prefix: ''` or `prefix: '/'`: every path. */
export const PATH_ANY = 0;
export const PATH_PREFIX = 1;
export const PATH_EXACT = 2;
/** path_separated_prefix: the prefix, then '/' or the end of the path. */
export const PATH_SEPARATED = 3;
export const PATH_REGEX = 4;

/** What the index needs to know of a route's path matcher. */
export interface RoutePathKey {
  pathKind: number;
  /** The prefix or path; lowercased when not case-sensitive. */
  pathKey: string;
  caseSensitive: boolean;
}

interface PathTable {
  /** Prefix -> positions of the routes with that prefix, ascending. */
  prefixes: Map<string, number[]>;
  /** Distinct prefix lengths, ascending. */
  lengths: number[];
  /** Exact path -> positions, ascending. */
  exact: Map<string, number[]>;
}

export interface RouteIndex {
  cs: PathTable | undefined;
  ci: PathTable | undefined;
  /** Positions of the routes that are candidates for every path, ascending. */
  always: number[];
}

/** Below this many routes a plain scan is as fast as the lookups and needs no memory. */
const MIN_INDEXED_ROUTES = 8;

function table(): PathTable {
  return { prefixes: new Map(), lengths: [], exact: new Map() };
}

function add(m: Map<string, number[]>, key: string, i: number): void {
  const l = m.get(key);
  if (l) l.push(i);
  else m.set(key, [i]);
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** The index of `routes`, or undefined when they are too few (or none has an indexable path) to need one. */
export function buildRouteIndex(routes: readonly RoutePathKey[], minRoutes = MIN_INDEXED_ROUTES): RouteIndex | undefined {
  if (routes.length < minRoutes) return undefined;
  let cs: PathTable | undefined;
  let ci: PathTable | undefined;
  const always: number[] = [];
  for (const [i, r] of routes.entries()) {
    const indexed = r.pathKind === PATH_PREFIX || r.pathKind === PATH_EXACT || r.pathKind === PATH_SEPARATED;
    if (!indexed || (!r.caseSensitive && !isAscii(r.pathKey))) {
      always.push(i);
      continue;
    }
    const t = r.caseSensitive ? (cs ??= table()) : (ci ??= table());
    if (r.pathKind === PATH_EXACT) add(t.exact, r.pathKey, i);
    else {
      if (!t.prefixes.has(r.pathKey)) t.lengths.push(r.pathKey.length);
      add(t.prefixes, r.pathKey, i);
    }
  }
  if (!cs && !ci) return undefined;
  for (const t of [cs, ci]) if (t) t.lengths = [...new Set(t.lengths)].sort((a, b) => a - b);
  return { cs, ci, always };
}

/** The lowest position in `list` below `best` whose route passes `test`, else `best`. */
function scan<R, C>(list: readonly number[], best: number, routes: readonly R[], test: (r: R, c: C) => boolean, ctx: C): number {
  for (const i of list) {
    if (i >= best) break;
    if (test(routes[i] as R, ctx)) return i;
  }
  return best;
}

function scanTable<R, C>(t: PathTable, path: string, best: number, routes: readonly R[], test: (r: R, c: C) => boolean, ctx: C): number {
  const e = t.exact.get(path);
  if (e !== undefined) best = scan(e, best, routes, test, ctx);
  for (const n of t.lengths) {
    if (n > path.length) break;
    const l = t.prefixes.get(n === path.length ? path : path.slice(0, n));
    if (l !== undefined) best = scan(l, best, routes, test, ctx);
  }
  return best;
}

/** `path` lowercased if it is ASCII, else undefined. */
function asciiLower(path: string): string | undefined {
  let upper = false;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c >= 0x80) return undefined;
    if (c >= 0x41 && c <= 0x5a) upper = true;
  }
  return upper ? path.toLowerCase() : path;
}

/**
 * The first route (in config order) whose full match holds, `test` deciding for each candidate. `test`
 * must re-check the path matcher: the index only narrows the candidates down to a superset of the routes
 * whose path matches.
 */
export function firstMatch<R, C>(ix: RouteIndex, routes: readonly R[], path: string, test: (r: R, c: C) => boolean, ctx: C): R | undefined {
  let best = routes.length;
  if (ix.cs) best = scanTable(ix.cs, path, best, routes, test, ctx);
  if (ix.ci) {
    const lower = asciiLower(path);
    if (lower === undefined) {
      for (let i = 0; i < best; i++) if (test(routes[i] as R, ctx)) return routes[i];
      return best < routes.length ? routes[best] : undefined;
    }
    best = scanTable(ix.ci, lower, best, routes, test, ctx);
  }
  best = scan(ix.always, best, routes, test, ctx);
  return best < routes.length ? routes[best] : undefined;
}
