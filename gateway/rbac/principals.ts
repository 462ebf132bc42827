// config.rbac.v3.Principal: who sends a request (Envoy Matcher::create for a Principal, matchers.cc).
import type { envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import { wireString } from '../../xds/header-bytes.ts';
import { compileStringMatcher } from '../router/matchers.ts';
import { compileMetadataMatcher } from '../router/metadata-matcher.ts';
import { all, always, any, compileList, headerMatcher, ipMatcher, refuse, urlPathMatcher } from './matchers.ts';
import { exactlyOne } from './oneof.ts';
import { directRemoteAddress, isTls, remoteAddress, type RbacMatcher } from './request.ts';

const checkPrincipal = fieldTable('envoy.config.rbac.v3.Principal', {
  and_ids: true,
  or_ids: true,
  any: true,
  authenticated: true,
  source_ip: true,
  direct_remote_ip: true,
  remote_ip: true,
  header: true,
  url_path: true,
  metadata: true,
  not_id: true,
});
const checkSet = fieldTable('envoy.config.rbac.v3.Principal.Set', { ids: true });
const checkAuthenticated = fieldTable('envoy.config.rbac.v3.Principal.Authenticated', { principal_name: true });

function set(s: envoy.config.rbac.v3.Principal.Set | undefined, where: string): RbacMatcher[] {
  const v = s ?? {};
  checkSet(v, where);
  return compileList(v.ids, `${where}.ids`, compilePrincipal);
}

/**
 * Envoy AuthenticatedMatcher: only a TLS connection matches. Without principal_name any TLS connection does
 * (a client certificate or not); with it, the name is matched against each URI SAN of the peer certificate,
 * then each DNS SAN, then its subject ('' without a certificate, which a pattern like `.*` matches).
 */
function authenticated(a: envoy.config.rbac.v3.Principal.Authenticated | undefined, where: string): RbacMatcher {
  const v = a ?? {};
  checkAuthenticated(v, where);
  if (v.principal_name === undefined) return isTls;
  const sm = compileStringMatcher(v.principal_name, `${where}.principal_name`);
  return (req) => {
    if (!isTls(req)) return false;
    const cert = req.peerCertificate;
    if (cert === undefined) return sm('');
    for (const uri of cert.uriSans) if (sm(wireString(uri))) return true;
    for (const dns of cert.dnsSans) if (sm(wireString(dns))) return true;
    return sm(wireString(cert.subject));
  };
}

/** config.rbac.v3.Principal -> its matcher. Kinds this proxy cannot enforce are ConfigErrors. */
export function compilePrincipal(p: envoy.config.rbac.v3.Principal, where: string): RbacMatcher {
  refuse(p, 'filter_state', where, 'filter_state principals are not supported by this proxy');
  checkPrincipal(p, where);
  const kind = exactlyOne(p, where, 'a principal');
  const w = `${where}.${kind}`;
  switch (kind) {
    case 'and_ids':
      return all(set(p.and_ids, w));
    case 'or_ids':
      return any(set(p.or_ids, w));
    case 'any':
      return always(p.any, w);
    case 'authenticated':
      return authenticated(p.authenticated, w);
    case 'source_ip':
      // Deprecated: the connection's remote address, which is the peer's here (the proxy has no PROXY protocol).
      return ipMatcher(p.source_ip ?? {}, w, directRemoteAddress);
    case 'direct_remote_ip':
      return ipMatcher(p.direct_remote_ip ?? {}, w, directRemoteAddress);
    case 'remote_ip':
      return ipMatcher(p.remote_ip ?? {}, w, remoteAddress);
    case 'header':
      return headerMatcher(p.header ?? {}, w);
    case 'url_path':
      return urlPathMatcher(p.url_path ?? {}, w);
    case 'metadata':
      return compileMetadataMatcher(p.metadata ?? {}, w);
    case 'not_id': {
      const m = compilePrincipal(p.not_id ?? {}, w);
      return (req) => !m(req);
    }
    default:
      throw new ConfigError(`${w}: not supported by this proxy`);
  }
}
