// RequirementRule.match: which requests a rule's requirement applies to (jwt_authn/matcher.cc). Envoy's JWT
// filter has its own RouteMatch evaluation, narrower than the router's:
//   - the path specifier (prefix, path, safe_regex, path_separated_prefix, path_match_policy) is matched on
//     :path without its query and fragment, honouring case_sensitive (not for safe_regex); a request without
//     :path has the path '' (so prefix "" matches it) except for safe_regex, which never matches it;
//     connect_matcher matches CONNECT requests;
//   - headers and query_parameters are matched as the router matches them;
//   - runtime_fraction, grpc, tls_context and dynamic_metadata are not looked at (the rule applies as if they
//     were absent).
import type { envoy } from '../../xds/envoy.ts';
import { pathWithoutQuery } from '../rbac/request.ts';
import { compileUriTemplate } from '../rbac/uri-template.ts';
import { compileHeaderMatcher, compileQueryParameterMatcher, compileStringMatcher, type HeaderMatch, type QueryMatch } from '../router/matchers.ts';
import { unpackAny } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { anyType, ConfigError } from '../xds/json.ts';
import { regexMatcher } from '../xds/regex-matcher.ts';

interface RuleRequest {
  method: string;
  path: string;
  authority: string;
  scheme: string;
  headers: readonly string[];
}

export type RuleMatch = (req: RuleRequest) => boolean;

const IGNORED = "not evaluated by Envoy's jwt_authn filter either: the rule applies as if it were absent";
const checkRouteMatch = fieldTable(
  'envoy.config.route.v3.RouteMatch',
  {
    prefix: true,
    path: true,
    safe_regex: true,
    connect_matcher: true,
    path_separated_prefix: true,
    path_match_policy: true,
    case_sensitive: true,
    headers: true,
    query_parameters: true,
    runtime_fraction: IGNORED,
    grpc: IGNORED,
    tls_context: IGNORED,
    dynamic_metadata: IGNORED,
  },
  'jwt_authn RequirementRule.match',
);
const checkConnectMatcher = fieldTable('envoy.config.route.v3.RouteMatch.ConnectMatcher', {});
const checkPathMatchPolicy = fieldTable(
  'envoy.config.core.v3.TypedExtensionConfig',
  { name: true, typed_config: true },
  'jwt_authn RouteMatch.path_match_policy',
);
const checkUriTemplateConfig = fieldTable(
  'envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig',
  { path_template: true },
  'jwt_authn RouteMatch.path_match_policy',
);
const URI_TEMPLATE = 'envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig';

/** Compiles a RequirementRule's RouteMatch. */
export function compileRuleMatch(m: envoy.config.route.v3.RouteMatch, where: string): RuleMatch {
  checkRouteMatch(m, where);
  const caseSensitive = m.case_sensitive ?? true;
  const specifiers = (['prefix', 'path', 'safe_regex', 'connect_matcher', 'path_separated_prefix', 'path_match_policy'] as const).filter(
    (k) => m[k] !== undefined,
  );
  if (specifiers.length !== 1)
    throw new ConfigError(`${where}: exactly one of prefix, path, safe_regex, connect_matcher, path_separated_prefix, path_match_policy is required`);
  const headers: HeaderMatch[] = (m.headers ?? []).map((h, i) => compileHeaderMatcher(h, `${where}.headers[${i}]`));
  const query: QueryMatch[] = (m.query_parameters ?? []).map((q, i) => compileQueryParameterMatcher(q, `${where}.query_parameters[${i}]`));
  const base = (req: RuleRequest): boolean => {
    for (const h of headers) if (!h(req)) return false;
    if (query.length > 0) {
      const q = req.path.indexOf('?');
      const params = new URLSearchParams(q < 0 ? '' : req.path.slice(q + 1));
      for (const qm of query) if (!qm(params)) return false;
    }
    return true;
  };
  let path: (p: string) => boolean;
  if (m.prefix !== undefined) {
    const sm = compileStringMatcher({ prefix: m.prefix, ignore_case: !caseSensitive }, `${where}.prefix`);
    path = (p) => sm(p);
  } else if (m.path !== undefined) {
    const sm = compileStringMatcher({ exact: m.path, ignore_case: !caseSensitive }, `${where}.path`);
    path = (p) => sm(p);
  } else if (m.safe_regex !== undefined) {
    const re = regexMatcher(m.safe_regex, `${where}.safe_regex`);
    return (req) => base(req) && req.path !== '' && re.fullMatch(pathWithoutQuery(req.path));
  } else if (m.path_separated_prefix !== undefined) {
    const prefix = m.path_separated_prefix;
    if (!/^[^?#]+[^?#/]$/.test(prefix))
      throw new ConfigError(`${where}.path_separated_prefix: '${prefix}' must not be empty, hold '?' or '#', or end with '/'`);
    const sm = compileStringMatcher({ prefix, ignore_case: !caseSensitive }, `${where}.path_separated_prefix`);
    const n = prefix.length;
    path = (p) => p.length >= n && sm(p) && (p.length === n || p.charCodeAt(n) === 0x2f);
  } else if (m.path_match_policy !== undefined) {
    path = uriTemplate(m.path_match_policy, `${where}.path_match_policy`);
  } else {
    checkConnectMatcher(m.connect_matcher ?? {}, `${where}.connect_matcher`);
    return (req) => req.method === 'CONNECT' && base(req);
  }
  const p = path;
  return (req) => base(req) && p(pathWithoutQuery(req.path));
}

function uriTemplate(v: envoy.config.core.v3.TypedExtensionConfig, where: string): (p: string) => boolean {
  checkPathMatchPolicy(v, where);
  const cfg = v.typed_config;
  if (cfg === undefined || anyType(cfg) !== URI_TEMPLATE)
    throw new ConfigError(`${where}.typed_config: only ${URI_TEMPLATE} is supported, not '${cfg === undefined ? 'none' : anyType(cfg)}'`);
  const u = unpackAny(cfg, `type.googleapis.com/${URI_TEMPLATE}`);
  checkUriTemplateConfig(u, `${where}.typed_config`);
  return compileUriTemplate(u.path_template ?? '', `${where}.typed_config.path_template`);
}
