// Rules of a VirtualService that can never match, from istiod's validation warnings
// (analyzeUnreachableHTTPRules and its TCP and TLS twins): a rule after a rule without matches (the catch-all
// takes every request) or whose matches all repeat earlier ones (IST0130 VirtualServiceUnreachableRule), and a
// match repeating an earlier one or covered by an earlier, shorter prefix with the same other conditions
// (IST0131 VirtualServiceIneffectiveMatch).
import type { HTTPMatchRequest, StringMatch, VirtualServiceSpec } from '../model/istio-types.ts';
import type { AnalysisContext } from './context.ts';
import { type Finding, finding } from './messages.ts';

interface Rule {
  name?: string;
  match?: readonly unknown[];
}

/** A match's identity without its name, as asJSON compares them: fields at their zero value do not count. */
function matchKey(m: unknown): string {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.length ? v.map(strip) : undefined;
    if (v && typeof v === 'object') {
      const entries = Object.entries(v)
        .filter(([k]) => k !== 'name')
        .map(([k, x]) => [k, strip(x)] as const)
        .filter(([, x]) => x !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : 1));
      return entries.length ? Object.fromEntries(entries) : undefined;
    }
    return v === false || v === '' || v === 0 ? undefined : v;
  };
  return JSON.stringify(strip(m) ?? {});
}

const ruleName = (r: Rule, i: number, named: boolean): string => (named && r.name ? JSON.stringify(r.name) : `#${i}`);
const matchName = (m: unknown, j: number, named: boolean): string => {
  const n = named ? (m as { name?: unknown } | null)?.name : undefined;
  return typeof n === 'string' && n ? JSON.stringify(n) : `#${j}`;
};

/** OverlappingMatchValidationForHTTPRoute: a prefix match and its other conditions as exact:/prefix: strings. */
interface PrefixMatch {
  rule: string;
  match: string;
  prefix: string;
  port: number;
  method: string;
  authority: string;
  headers: Map<string, string>;
  queryParams: Map<string, string>;
  withoutHeaders: Map<string, string>;
}

const exactOrPrefix = (m: StringMatch | undefined): string => (m?.exact ? `exact:${m.exact}` : m?.prefix ? `prefix:${m.prefix}` : '');

const conditions = (m: Record<string, StringMatch> | undefined): Map<string, string> => new Map(Object.entries(m ?? {}).map(([k, v]) => [k, exactOrPrefix(v)]));

/** genMatchHTTPRoutes: only matches with a uri prefix take part; no method means GET. */
function prefixMatch(m: HTTPMatchRequest, rule: string, match: string): PrefixMatch | undefined {
  const prefix = m.uri?.prefix;
  if (!prefix) return undefined;
  return {
    rule,
    match,
    prefix,
    port: m.port ?? 0,
    method: exactOrPrefix(m.method) || 'exact:GET',
    authority: exactOrPrefix(m.authority),
    headers: conditions(m.headers),
    queryParams: conditions(m.queryParams),
    withoutHeaders: conditions(m.withoutHeaders),
  };
}

/** coveredValidation: b's prefix starts with a's, and each of a's other conditions is b's or starts with it. */
function covered(a: PrefixMatch, b: PrefixMatch): boolean {
  if (!b.prefix.startsWith(a.prefix) || a.port !== b.port) return false;
  const within = (x: string, y: string): boolean => x === y || x.startsWith(y);
  if (!within(a.method, b.method) || !within(a.authority, b.authority)) return false;
  const sameKeys = (x: Map<string, string>, y: Map<string, string>): boolean =>
    x.size === y.size && [...x].every(([k, v]) => y.has(k) && within(v, y.get(k) ?? ''));
  return sameKeys(a.headers, b.headers) && sameKeys(a.queryParams, b.queryParams) && sameKeys(a.withoutHeaders, b.withoutHeaders);
}

function analyzeRules(
  rules: readonly Rule[],
  section: 'http' | 'tcp' | 'tls',
  report: (type: 'VirtualServiceUnreachableRule' | 'VirtualServiceIneffectiveMatch', field: string, message: string, hint: string) => void,
): void {
  // HTTP rules and matches have names; TCP and TLS ones are numbered.
  const named = section === 'http';
  const seen = new Map<string, number>();
  const prefixes: { at: string; m: PrefixMatch }[] = [];
  let catchAll = -1;
  rules.forEach((r, i) => {
    const matches = r.match ?? [];
    const name = ruleName(r, i, named);
    if (matches.length === 0) {
      if (catchAll >= 0)
        report(
          'VirtualServiceUnreachableRule',
          `spec.${section}[${i}]`,
          `VirtualService rule ${name} not used (only the last rule can have no matches).`,
          `rule #${catchAll} has no match and takes every request first: give this rule a match or remove one of them`,
        );
      catchAll = i;
      return;
    }
    let duplicates = 0;
    matches.forEach((m, j) => {
      if (catchAll >= 0) {
        report(
          'VirtualServiceUnreachableRule',
          `spec.${section}[${i}]`,
          `VirtualService rule ${name} not used (route without matches defined before).`,
          `rule #${catchAll} has no match and takes every request first: move this rule above it`,
        );
        return;
      }
      const key = matchKey(m);
      const first = seen.get(key);
      if (first !== undefined) {
        duplicates++;
        report(
          'VirtualServiceIneffectiveMatch',
          `spec.${section}[${i}].match[${j}]`,
          `VirtualService rule ${name} match ${matchName(m, j, named)} is not used (duplicate/overlapping match in rule ${ruleName(rules[first] ?? {}, first, named)}).`,
          `rule #${first} has the same match and comes first: remove this match or change it`,
        );
        return;
      }
      seen.set(key, i);
      const p = named ? prefixMatch(m as HTTPMatchRequest, name, matchName(m, j, named)) : undefined;
      if (p) prefixes.push({ at: `spec.${section}[${i}].match[${j}]`, m: p });
    });
    if (duplicates === matches.length)
      report(
        'VirtualServiceUnreachableRule',
        `spec.${section}[${i}]`,
        `VirtualService rule ${name} not used (all matches used by prior rules).`,
        "every match of this rule is an earlier rule's: remove the rule or change its matches",
      );
  });
  prefixes.forEach(({ m: a }, i) => {
    for (const { at, m: b } of prefixes.slice(i + 1)) {
      if (b.prefix === a.prefix || !covered(a, b)) continue;
      report(
        'VirtualServiceIneffectiveMatch',
        at,
        `VirtualService rule ${b.rule} match ${b.match} of prefix ${b.prefix} is not used (duplicate/overlapping match in rule ${a.match} of prefix ${a.prefix} on ${a.rule}).`,
        `prefix ${a.prefix} of rule ${a.rule} comes first and takes these requests: put the longer prefix first`,
      );
    }
  });
}

export function unreachableRuleFindings(ctx: AnalysisContext): Finding[] {
  const out: Finding[] = [];
  for (const vs of ctx.virtualServices) {
    const spec: VirtualServiceSpec = vs.spec;
    for (const section of ['http', 'tcp', 'tls'] as const) {
      analyzeRules(spec[section] ?? [], section, (type, field, message, hint) =>
        out.push(finding(type, { kind: 'VirtualService', namespace: vs.namespace, name: vs.name, field, message, hint })),
      );
    }
  }
  return out;
}
