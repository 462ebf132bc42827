// OpenAPI v3 schemas of Istio's security.istio.io AuthorizationPolicy, RequestAuthentication and PeerAuthentication,
// written for meshgate from the Istio API reference (istio.io/latest/docs/reference/config/security/) with the
// constraints and CEL rules of Istio's own CRDs. As for networking.ts: every field declared, so nothing a user wrote
// is pruned; what needs more than Istio's CRDs check (IP syntax, `when` keys, CUSTOM's restrictions) is checked by
// the controller, which reports it as an Event.
import { matchLabelsSelector, targetRef, targetRefs } from './common.ts';
import { atMostOneOf, boolean, duration, enumOf, list, map, object, rule, string, strings, type Schema } from './openapi.ts';

const values = (what: string): Schema => strings(what);

const serviceAccounts = (what: string): Schema => list(string(undefined, { maxLength: 320 }), what, { maxItems: 16 });

const source = object(
  {
    principals: values('Peer identities (mTLS SPIFFE names without spiffe://, e.g. cluster.local/ns/default/sa/app); `*` wildcards at either end.'),
    notPrincipals: values('Negative match of principals.'),
    requestPrincipals: values('JWT identities `<iss>/<sub>`; `*` wildcards at either end.'),
    notRequestPrincipals: values('Negative match of requestPrincipals.'),
    namespaces: values('Namespaces of the peer identity.'),
    notNamespaces: values('Negative match of namespaces.'),
    serviceAccounts: serviceAccounts('Service accounts of the peer identity, `sa` (the policy namespace) or `ns/sa`.'),
    notServiceAccounts: serviceAccounts('Negative match of serviceAccounts.'),
    ipBlocks: values('Addresses or CIDR ranges of the connection peer.'),
    notIpBlocks: values('Negative match of ipBlocks.'),
    remoteIpBlocks: values('Addresses or CIDR ranges of the original client (X-Forwarded-For, proxy protocol).'),
    notRemoteIpBlocks: values('Negative match of remoteIpBlocks.'),
    trustDomains: values('Trust domains of the peer identity.'),
    notTrustDomains: values('Negative match of trustDomains.'),
  },
  {
    description: 'The source of a request; fields are AND-ed.',
    rules: [
      rule(
        '(has(self.serviceAccounts) || has(self.notServiceAccounts)) ? (!has(self.principals) &&\n!has(self.notPrincipals) && !has(self.namespaces) && !has(self.notNamespaces)) : true',
        'Cannot set serviceAccounts with namespaces or principals',
      ),
    ],
  },
);

const operation = object(
  {
    hosts: values('Hosts (:authority), case-insensitive; `*` wildcards at either end.'),
    notHosts: values('Negative match of hosts.'),
    ports: values('Destination ports, as strings.'),
    notPorts: values('Negative match of ports.'),
    methods: values('HTTP methods.'),
    notMethods: values('Negative match of methods.'),
    paths: values('Paths (normalized); `*` at either end, or {*} and {**} path templates.'),
    notPaths: values('Negative match of paths.'),
  },
  { description: 'The operation of a request; fields are AND-ed.' },
);

const condition = object(
  {
    key: string('The name of an Istio attribute, e.g. request.headers[User-Agent], source.ip, request.auth.claims[iss].'),
    values: values('Values of the attribute, OR-ed.'),
    notValues: values('Negative match of values.'),
  },
  { description: 'An additional condition.', required: ['key'] },
);

const policyRule = object(
  {
    from: list(object({ source }, { description: 'A source.' }), 'Sources, OR-ed; none matches any source.', { maxItems: 512 }),
    to: list(object({ operation }, { description: 'An operation.' }), 'Operations, OR-ed; none matches any operation.'),
    when: list(condition, 'Conditions, AND-ed.'),
  },
  { description: 'Matches requests from a list of sources that perform a list of operations subject to conditions.' },
);

const selector = matchLabelsSelector('Workload selector: the workloads (here: gateway pods) the policy applies to.');

const ONE_TARGET = atMostOneOf(['selector', 'targetRef', 'targetRefs'], 'only one of targetRefs or selector can be set');

export const authorizationPolicySpec = object(
  {
    selector,
    targetRef,
    targetRefs,
    rules: list(policyRule, 'Rules; a request matching any rule triggers the action. Without rules, an ALLOW policy allows nothing.', { maxItems: 512 }),
    action: enumOf(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'], 'The action taken when a rule matches (default ALLOW).'),
    provider: object({ name: string('Name of the extension provider in the mesh config.') }, { description: 'The ext_authz provider of a CUSTOM action.' }),
  },
  // provider is a proto oneof of one field (Istio's CRD has the oneOf, which accepts anything).
  { description: 'Access control for the workloads it selects.', exclusive: [['provider']], rules: [ONE_TARGET] },
);

const nonEmpty = (description?: string): Schema => string(description, { minLength: 1 });
const nonEmptyStrings = (description: string, extra: { maxItems?: number } = {}): Schema => list(nonEmpty(), description, extra);
const jwksUri = (description: string): Schema =>
  string(description, {
    minLength: 1,
    maxLength: 2048,
    'x-kubernetes-validations': [rule('url(self).getScheme() in ["http", "https"]', 'url must have scheme http:// or https://')],
  });

const jwtRule = object(
  {
    issuer: nonEmpty('The issuer of the tokens (the iss claim); with jwks and jwksUri unset, its OpenID discovery document gives the JWKS.'),
    audiences: nonEmptyStrings('Accepted audiences (the aud claim); none: any.'),
    jwksUri: jwksUri('Where the JWKS (public keys) is fetched from, http or https; the controller fetches it and inlines it.'),
    jwks_uri: jwksUri('jwksUri by its proto name.'),
    jwks: string('The JWKS, inline (JSON).'),
    fromHeaders: list(
      object(
        { name: nonEmpty('The header name.'), prefix: string('The prefix before the token, e.g. "Bearer ".') },
        { description: 'A header a token is read from.', required: ['name'] },
      ),
      'Headers tokens are read from; none of the from* fields: Authorization (Bearer) and the access_token parameter.',
    ),
    fromParams: nonEmptyStrings('Query parameters tokens are read from.'),
    fromCookies: nonEmptyStrings('Cookies tokens are read from.'),
    outputPayloadToHeader: string('A header the verified token payload (base64url JSON) is sent upstream in.'),
    forwardOriginalToken: boolean('Keep the token in the request sent upstream.'),
    outputClaimToHeaders: list(
      object(
        {
          header: string('The header to set.', { minLength: 1, pattern: '^[-_A-Za-z0-9]+$' }),
          claim: nonEmpty('The claim whose value it gets.'),
        },
        { description: 'A claim copied into a request header.', required: ['header', 'claim'] },
      ),
      'Claims of the verified token copied into request headers.',
    ),
    timeout: duration('How long fetching the JWKS may take (default 5s).'),
    spaceDelimitedClaims: nonEmptyStrings('Claims besides scope and permission whose string value is split at spaces for matching.', { maxItems: 64 }),
  },
  { description: 'A JWT issuer whose tokens are verified.', rules: [atMostOneOf(['jwksUri', 'jwks_uri', 'jwks'], 'only one of jwks or jwksUri can be set')] },
);

export const requestAuthenticationSpec = object(
  {
    selector,
    targetRef,
    targetRefs,
    jwtRules: list(jwtRule, 'The issuers whose tokens are verified; a request without a token passes (require one with an AuthorizationPolicy).', {
      maxItems: 4096,
    }),
  },
  { description: 'JWT verification for the workloads it selects.', rules: [ONE_TARGET] },
);

const mtls = object(
  { mode: enumOf(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'], 'Whether workloads accept plaintext, mutual TLS or both.') },
  { description: 'Mutual TLS settings.' },
);

/**
 * PeerAuthentication, served for compatibility: Istio's sidecars read it, gateways do not (istiod applies no
 * PeerAuthentication to a gateway's listeners), so meshgate does not watch it; the CRD lets an Istio user's
 * manifests apply unchanged.
 */
export const peerAuthenticationSpec = object(
  {
    selector,
    mtls,
    portLevelMtls: {
      ...map(mtls, 'Mutual TLS settings per workload port (keys are port numbers); needs a selector.'),
      minProperties: 1,
      'x-kubernetes-validations': [rule('self.all(key, 0 < int(key) && int(key) <= 65535)', 'port must be between 1-65535')],
    },
  },
  {
    description: 'Mutual TLS for the workloads it selects (sidecars; gateways ignore it).',
    rules: [
      rule(
        'has(self.portLevelMtls) ? (((has(self.selector) && has(self.selector.matchLabels)) ? self.selector.matchLabels : {}).size() > 0) : true',
        'portLevelMtls requires selector',
      ),
    ],
  },
);
