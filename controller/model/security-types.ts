// security.istio.io AuthorizationPolicy as it appears in YAML (proto3 JSON, camelCase). v1 and v1beta1 share
// one schema (istio/api aliases them). Typed after validation (authorization-policy-validation.ts), which
// checks the shapes, so the translator can trust them.

export const SECURITY_API_GROUP = 'security.istio.io';
export const SECURITY_API_VERSIONS = ['v1', 'v1beta1'] as const;

/** The annotation that turns an ALLOW or DENY policy into shadow rules (evaluated and logged, not enforced). */
export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

/** AuthorizationPolicy.Action; istiod's decoder also takes the enum numbers (0..3). */
export type AuthorizationAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
export const AUTHORIZATION_ACTIONS: readonly AuthorizationAction[] = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'];

interface WorkloadSelector {
  matchLabels?: Record<string, string>;
}

export interface PolicyTargetReference {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}

/** How a security policy picks its workloads: a label selector, or targetRef(s) (at most one kind of the two). */
export interface PolicyAttachment {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
}

export interface Source {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
  trustDomains?: string[];
  notTrustDomains?: string[];
}

export interface Operation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface Condition {
  key?: string;
  values?: string[];
  notValues?: string[];
}

export interface Rule {
  from?: { source?: Source }[];
  to?: { operation?: Operation }[];
  when?: Condition[];
}

export interface AuthorizationPolicySpec extends PolicyAttachment {
  rules?: Rule[];
  /** A name, or (as istiod's decoder accepts) the enum number; absent is ALLOW. */
  action?: AuthorizationAction | number;
  provider?: { name?: string };
}

/** The action a spec's `action` field stands for; undefined for a number outside the enum. */
export function actionOf(spec: AuthorizationPolicySpec): AuthorizationAction | undefined {
  const a = spec.action ?? 'ALLOW';
  return typeof a === 'number' ? AUTHORIZATION_ACTIONS[a] : a;
}

// ---- RequestAuthentication ----------------------------------------------------------------------

/** Where a token is read from: a header, its value after `prefix` (e.g. `Bearer `). */
export interface JWTHeader {
  name?: string;
  prefix?: string;
}

/** A claim copied into a request header. */
export interface ClaimToHeader {
  header?: string;
  claim?: string;
}

/** One JWT issuer a RequestAuthentication validates tokens of (istio.security.v1beta1.JWTRule). */
export interface JWTRule {
  issuer?: string;
  audiences?: string[];
  jwksUri?: string;
  /** Inline JWKS (JSON), used instead of jwksUri. */
  jwks?: string;
  fromHeaders?: JWTHeader[];
  fromParams?: string[];
  fromCookies?: string[];
  outputPayloadToHeader?: string;
  forwardOriginalToken?: boolean;
  outputClaimToHeaders?: ClaimToHeader[];
  /** How long fetching jwksUri (or OpenID discovery) may take, a Go/proto duration; 5s when unset. */
  timeout?: string;
  spaceDelimitedClaims?: string[];
}

export interface RequestAuthenticationSpec extends PolicyAttachment {
  jwtRules?: JWTRule[];
}
