// The ext_authz filters istiod builds for the mesh config's envoyExtAuthzHttp and envoyExtAuthzGrpc extension
// providers (pilot/pkg/security/authz/builder/extauthz.go processExtensionProvider, buildExtAuthzHTTP/GRPC,
// generateHTTPConfig/GRPCConfig). A provider that fails any check (its name, port, service lookup, statusOnError,
// pathPrefix, a lone `*` header pattern) carries an error instead, and a CUSTOM policy naming it is enforced as a
// denial of what its rules match (rbac.ts), as istiod does.
import type { envoy } from '../../xds/envoy.ts';
import {
  type ExtensionProvider,
  type EnvoyExtAuthzHttpProvider,
  type ExtAuthzRequestBody,
  type ProtoDuration,
  extAuthzProviderErrors,
} from '../model/mesh-config.ts';
import type { PushContext } from '../model/push-context.ts';

export const HTTP_EXT_AUTHZ_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz' as const;
export const NETWORK_EXT_AUTHZ_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz' as const;

/** Where the CUSTOM RBAC filter records the name of the shadow rule that matched (RBACExtAuthzShadowRulesStatPrefix + RBACShadowEffectivePolicyID). */
export const EXT_AUTHZ_SHADOW_STAT_PREFIX = 'istio_ext_authz_';
const EXT_AUTHZ_MATCH_PREFIX = 'istio-ext-authz';

type HttpExtAuthz = envoy.extensions.filters.http.ext_authz.v3.ExtAuthz;
type NetworkExtAuthz = envoy.extensions.filters.network.ext_authz.v3.ExtAuthz;
type StringMatcher = envoy.type.matcher.v3.StringMatcher;
type ListStringMatcher = envoy.type.matcher.v3.ListStringMatcher;
type MetadataMatcher = envoy.type.matcher.v3.MetadataMatcher;

/** One provider, built: the HTTP filter config, the network one (gRPC providers only), or why it cannot be used. */
export interface BuiltExtAuthz {
  http?: HttpExtAuthz;
  tcp?: NetworkExtAuthz;
  error?: string;
}

/** generateFilterMatcherForProvider: run only when the RBAC filter `filter` matched a rule of this provider. */
export function filterEnabledMetadata(filter: string, provider: string): MetadataMatcher {
  return {
    filter,
    path: [{ key: `${EXT_AUTHZ_SHADOW_STAT_PREFIX}shadow_effective_policy_id` }],
    value: { string_match: { prefix: `${EXT_AUTHZ_MATCH_PREFIX}-${provider}` } },
  };
}

/** validateProviderName: a DNS-1123 label's characters, at most 63. */
function providerNameError(name: string): string | undefined {
  if (name.length > 63) return `provider name too long (max 63 characters): ${name.length}`;
  for (const [i, c] of [...name].entries()) {
    if (/[a-z0-9-]/.test(c)) continue;
    if (/[A-Z]/.test(c)) return `uppercase letters not allowed (use lowercase): character '${c}' at position ${i}`;
    return `invalid character '${c}' at position ${i} (only lowercase letters, digits, and hyphens allowed)`;
  }
  if (name.startsWith('-') || name.endsWith('-')) return 'provider name cannot start or end with hyphen';
  return undefined;
}

/** model.LookupCluster: the service's hostname and its outbound cluster, or why it is not in the registry. */
export function lookupCluster(push: PushContext, service: string, port: number): { hostname: string; cluster: string } | { error: string } {
  if (service === '') return { error: 'service must not be empty' };
  const found = (hostname: string): { hostname: string; cluster: string } => ({ hostname, cluster: `outbound|${port}||${hostname}` });
  const parts = service.split('/');
  if (parts.length === 2) {
    const [namespace = '', name = ''] = parts;
    if (push.namespacesOfHost(name).includes(namespace)) return found(name);
  } else {
    const namespaces = push.namespacesOfHost(service);
    if (namespaces.length === 1) return found(service);
    if (namespaces.length > 1)
      return {
        error: `found ${service} in multiple namespaces [${namespaces.join(' ')}], specify the namespace explicitly in the format of <Namespace>/<Hostname>`,
      };
  }
  return { error: `could not find service ${service} in Istio service registry` };
}

/** A proto Duration in Envoy's JSON form; istiod's default timeout is 600s. */
function timeoutOrDefault(t: ProtoDuration | undefined): string {
  if (!t) return '600s';
  const negative = t.seconds < 0 || t.nanos < 0;
  const sec = Math.abs(t.seconds);
  const nanos = Math.abs(t.nanos);
  const frac = nanos === 0 ? '' : `.${String(nanos).padStart(9, '0').replace(/0+$/, '')}`;
  return `${negative ? '-' : ''}${sec}${frac}s`;
}

/** generateHeaders: `*x` a suffix, `x*` a prefix, else exact; all case-insensitive. Undefined for none. */
function headerMatchers(headers: readonly string[]): ListStringMatcher | undefined {
  if (headers.length === 0) return undefined;
  return {
    patterns: headers.map((h): StringMatcher => {
      if (h.startsWith('*')) return { suffix: h.slice(1), ignore_case: true };
      if (h.endsWith('*')) return { prefix: h.slice(0, -1), ignore_case: true };
      return { exact: h, ignore_case: true };
    }),
  };
}

function withRequestBody(b: ExtAuthzRequestBody | undefined): HttpExtAuthz['with_request_body'] {
  return b ? { max_request_bytes: b.maxRequestBytes, allow_partial_message: b.allowPartialMessage, pack_as_bytes: b.packAsBytes } : undefined;
}

const statusOf = (s: string): HttpExtAuthz['status_on_error'] => (s === '' ? undefined : ({ code: Number(s) } as unknown as HttpExtAuthz['status_on_error']));

/** What buildExtAuthz* checks beyond the provider's validation (extAuthzProviderErrors): the service lookup. */
function checks(push: PushContext, c: { service: string; port: number }): { errors: string[]; target?: { hostname: string; cluster: string } } {
  const target = lookupCluster(push, c.service, c.port);
  return 'error' in target ? { errors: [target.error] } : { errors: [], target };
}

/** buildExtAuthzHTTP + generateHTTPConfig. */
function buildHttp(push: PushContext, c: EnvoyExtAuthzHttpProvider): BuiltExtAuthz {
  const { errors, target } = checks(push, c);
  const wildcard: [string, readonly string[]][] = [
    ['IncludeRequestHeadersInCheck', c.includeRequestHeadersInCheck],
    ['IncludeHeadersInCheck', c.includeHeadersInCheck],
    ['HeadersToDownstreamOnDeny', c.headersToDownstreamOnDeny],
    ['HeadersToDownstreamOnAllow', c.headersToDownstreamOnAllow],
    ['HeadersToUpstreamOnAllow', c.headersToUpstreamOnAllow],
  ];
  for (const [f, values] of wildcard)
    for (const v of values) if (v === '*') errors.push(`a single wildcard ("*") is not supported, change it to either prefix or suffix match: ${f}`);
  if (errors.length || !target) return { error: errors.join('; ') };

  const additional = Object.keys(c.includeAdditionalHeadersInCheck).sort();
  const service: envoy.extensions.filters.http.ext_authz.v3.HttpService = {
    path_prefix: c.pathPrefix,
    // The URI is required but not used by the filter; the cluster is.
    server_uri: { uri: `http://${target.hostname}`, cluster: target.cluster, timeout: timeoutOrDefault(c.timeout) as envoy.config.core.v3.HttpUri['timeout'] },
    ...(additional.length
      ? { authorization_request: { headers_to_add: additional.map((key) => ({ key, value: c.includeAdditionalHeadersInCheck[key] ?? '' })) } }
      : {}),
  };
  if (c.headersToUpstreamOnAllow.length || c.headersToDownstreamOnDeny.length || c.headersToDownstreamOnAllow.length) {
    const upstream = headerMatchers(c.headersToUpstreamOnAllow);
    const onDeny = headerMatchers(c.headersToDownstreamOnDeny);
    const onAllow = headerMatchers(c.headersToDownstreamOnAllow);
    service.authorization_response = {
      ...(upstream ? { allowed_upstream_headers: upstream } : {}),
      ...(onDeny ? { allowed_client_headers: onDeny } : {}),
      ...(onAllow ? { allowed_client_headers_on_success: onAllow } : {}),
    };
  }
  // includeHeadersInCheck (deprecated) only when includeRequestHeadersInCheck is empty.
  const allowed = headerMatchers(c.includeRequestHeadersInCheck) ?? headerMatchers(c.includeHeadersInCheck);
  const status = statusOf(c.statusOnError);
  const body = withRequestBody(c.includeRequestBodyInCheck);
  const http: HttpExtAuthz = {
    ...(status ? { status_on_error: status } : {}),
    failure_mode_allow: c.failOpen,
    transport_api_version: 'V3',
    http_service: service,
    ...(body ? { with_request_body: body } : {}),
    ...(allowed ? { allowed_headers: allowed } : {}),
  };
  return { http };
}

/** buildExtAuthzGRPC + generateGRPCConfig: an HTTP filter and a network one sharing the gRPC service. */
function buildGrpc(push: PushContext, c: Extract<ExtensionProvider, { kind: 'envoyExtAuthzGrpc' }>['envoyExtAuthzGrpc']): BuiltExtAuthz {
  const { errors, target } = checks(push, c);
  if (errors.length || !target) return { error: errors.join('; ') };
  const grpc: envoy.config.core.v3.GrpcService = {
    envoy_grpc: { cluster_name: target.cluster, authority: target.hostname },
    timeout: timeoutOrDefault(c.timeout) as envoy.config.core.v3.GrpcService['timeout'],
  };
  const status = statusOf(c.statusOnError);
  const body = withRequestBody(c.includeRequestBodyInCheck);
  return {
    http: {
      ...(status ? { status_on_error: status } : {}),
      failure_mode_allow: c.failOpen,
      grpc_service: grpc,
      transport_api_version: 'V3',
      ...(body ? { with_request_body: body } : {}),
    },
    tcp: { stat_prefix: 'tcp.', failure_mode_allow: c.failOpen, transport_api_version: 'V3', grpc_service: grpc },
  };
}

/**
 * processExtensionProvider: every ext_authz provider of the mesh config by name (other kinds are not listed). A
 * provider with an empty, repeated or malformed name, or an invalid config, maps to its error.
 */
export function resolveExtAuthzProviders(push: PushContext): Map<string, BuiltExtAuthz> {
  const resolved = new Map<string, BuiltExtAuthz>();
  push.mesh.extensionProviders.forEach((p, i) => {
    if (p.kind === 'other') return;
    const errs: string[] = [];
    if (p.name === '') errs.push(`extension provider name must not be empty, found empty at index: ${i}`);
    else if (resolved.has(p.name)) errs.push(`extension provider name must be unique, found duplicate: ${p.name}`);
    if (p.name !== '') {
      const e = providerNameError(p.name);
      if (e) errs.push(`invalid provider name ${JSON.stringify(p.name)}: ${e}`);
    }
    // agent.ValidateExtensionProviderEnvoyExtAuthz* first: only a provider that passes is built.
    const invalid = extAuthzProviderErrors(p);
    let built: BuiltExtAuthz = {};
    if (invalid.length) errs.push(`failed to parse extension provider ${JSON.stringify(p.name)}: ${invalid.join('; ')}`);
    else {
      built = p.kind === 'envoyExtAuthzHttp' ? buildHttp(push, p.envoyExtAuthzHttp) : buildGrpc(push, p.envoyExtAuthzGrpc);
      if (built.error) errs.push(`failed to parse extension provider ${JSON.stringify(p.name)}: ${built.error}`);
    }
    resolved.set(p.name, errs.length ? { error: errs.join('; ') } : built);
  });
  return resolved;
}

/** getExtAuthz: the built provider a CUSTOM policy names, or why it cannot be used. */
export function extAuthzFor(resolved: ReadonlyMap<string, BuiltExtAuthz>, provider: string): BuiltExtAuthz & { error?: string } {
  const found = resolved.get(provider);
  if (!found) return { error: `available providers are [${[...resolved.keys()].join(' ')}] but found ${JSON.stringify(provider)}` };
  if (found.error) return { error: `found errors in provider ${provider}: ${found.error}` };
  return found;
}
