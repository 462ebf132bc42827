// Where meshgate's translation deliberately differs from istiod's, each with its reason. The differential
// (differential.test.ts) fails on any other difference, and on an entry here that no case needs any more.
import type { Difference } from './normalize.ts';

export interface Allowed {
  type: 'listeners' | 'routes' | 'clusters' | 'endpoints' | 'rejected';
  /** The resource name (a cluster load assignment's cluster_name; `Kind ns/name` for rejected objects). */
  resource?: RegExp;
  /** The path inside the resource (normalize.ts's notation). */
  path: RegExp;
  /** Only where istiod's side is this (e.g. an ISTIO_MUTUAL context), when the path alone says too little. */
  istiod?: RegExp;
  /** Only in these cases, when the reason is a property of the input the difference cannot show. */
  cases?: RegExp;
  /** Only where both sides' values say so, when a pattern on one side says too little. */
  when?: (d: Difference) => boolean;
  why: string;
}

const ISTIO_MUTUAL = /"istio-peer-exchange"/;
const NO_MESH_CA = 'needs the mesh CA (ISTIO_MUTUAL), which meshgate does not have';

// A chain is named by its match, or by its index where two chains have the same match (both sides build them).
const LOGICAL_DNS =
  'a LOGICAL_DNS cluster (DNS_ROUND_ROBIN ServiceEntry) whose host a newer DNS ServiceEntry of the same namespace also declares: istiod puts both ServiceEntries\' endpoints in it, which Envoy refuses ("LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint"); meshgate sends the first only (golden logical-dns-merged-endpoints)';
/** The same address (the rest of an lb_endpoint, its telemetry metadata, is allowed apart). */
const sameEndpoint = (a: unknown, b: unknown): boolean =>
  JSON.stringify((a as { endpoint?: unknown } | undefined)?.endpoint) === JSON.stringify((b as { endpoint?: unknown } | undefined)?.endpoint);

const HCM = String.raw`\.filter_chains\[(?:match=.*?|\d+)\]\.filters\[envoy\.filters\.network\.http_connection_manager\]\.typed_config`;
const TELEMETRY = 'telemetry plumbing, not request handling: it comes with Istio telemetry (issue 14)';

export const ALLOWED: readonly Allowed[] = [
  {
    type: 'listeners',
    path: new RegExp(`(${HCM}\\.http_filters\\[envoy\\.filters\\.http\\.rbac(#\\d+)?\\]|\\.filters\\[envoy\\.filters\\.network\\.rbac(#\\d+)?\\])`),
    cases: /^golden\/authz-validation$/,
    why: "AuthorizationPolicies istiod's webhook refuses: istiod leaves them out, relying on the webhook to keep them out of the cluster; meshgate (no webhook, a CRD schema that lets some through, local files) reports them and enforces them closed (an ALLOW allows nothing, a DENY or CUSTOM denies all it could apply to), so a refused policy never opens the gateway",
  },
  {
    type: 'listeners',
    path: new RegExp(`${HCM}\\.http_filters\\[envoy\\.filters\\.http\\.jwt_authn\\]`),
    cases: /^golden\/authn-validation$/,
    why: "RequestAuthentications istiod's webhook refuses: istiod leaves them out, relying on the webhook to keep them out of the cluster, which leaves their tokens unverified (an AuthorizationPolicy denying one principal or claim would let them through); meshgate reports them and enforces them closed: each rule keeps its issuer and token locations with istiod's public-only JWKS, so its tokens get 401",
  },
  {
    type: 'listeners',
    path: new RegExp(`${HCM}\\.http_filters\\[istio\\.(metadata_exchange|alpn)\\]$`),
    why: "Istio's own filters (peer metadata for telemetry, ALPN override for in-mesh mTLS): their protos are not published, and neither changes what a client or backend of a gateway sees",
  },
  {
    type: 'clusters',
    path: /^\.filters$/,
    why: "the upstream istio.metadata_exchange filter: Istio's own peer-metadata exchange for telemetry (unpublished proto)",
  },
  {
    type: 'clusters',
    path: /^\.transport_socket_matches$/,
    why: 'auto mTLS (tlsMode: istio endpoints get ISTIO_MUTUAL) needs the mesh CA, which meshgate does not have: it talks plain TCP to pods, as istiod does to endpoints without a sidecar',
  },
  {
    type: 'listeners',
    path: /\.filters\[envoy\.filters\.network\.mongo_proxy\]$/,
    why: 'MONGO servers are proxied as plain TCP (tcp_proxy, which follows it in the chain): mongo_proxy only decodes the protocol for stats',
  },
  {
    type: 'clusters',
    path: /^\.dns_jitter$/,
    why: "Cluster.dns_jitter is newer than the Envoy API protos meshgate encodes with (@grpc/grpc-js-xds's snapshot): it cannot be sent, and it only spreads DNS refreshes over time",
  },
  {
    type: 'listeners',
    path: new RegExp(`${HCM}\\.tracing\\.provider\\.typed_config\\.service_name$`),
    why: "the OpenTelemetry tracer's service name is the node's service cluster (<app>.<namespace>), which a real gateway's bootstrap sends istiod; the oracle's proxy has no bootstrap node, so istiod leaves it empty there",
  },
  { type: 'clusters', path: /^\.(alt_stat_name|metadata\.filter_metadata\.istio(\..*)?)$/, why: `stat names and Istio metadata of clusters: ${TELEMETRY}` },
  { type: 'clusters', path: /\.lb_endpoints\[\d+\]\.metadata\.filter_metadata\.istio\.workload$/, why: `endpoint workload metadata: ${TELEMETRY}` },
  { type: 'endpoints', path: /\.lb_endpoints\[\d+\]\.metadata\.filter_metadata\.istio\.workload$/, why: `endpoint workload metadata: ${TELEMETRY}` },
  {
    type: 'clusters',
    path: /^(\.transport_socket)?$/,
    istiod: ISTIO_MUTUAL,
    why: `a cluster whose DestinationRule asks for ISTIO_MUTUAL, or auto mTLS on an ORIGINAL_DST cluster, ${NO_MESH_CA}: meshgate reports the DestinationRule and builds no such cluster or context`,
  },
  {
    type: 'endpoints',
    resource: /\|mesh\.example\.com$/,
    path: /^$/,
    cases: /^golden\/tls-upstream-variants$/,
    why: `the endpoints of the ISTIO_MUTUAL clusters above (mesh.example.com), which meshgate does not build`,
  },
  {
    type: 'listeners',
    path: /^\.filter_chains\[match=.*\]$/,
    cases: /^golden\/tls-ingress-sni-hosts$/,
    why: 'an HTTPS server whose credential is missing or invalid, or which asks for ISTIO_MUTUAL: istiod still sends its chain, whose certificate never arrives; meshgate leaves the chain out and reports why (docs/tls.md)',
  },
  {
    type: 'clusters',
    path: /^\.load_assignment\.endpoints\[0\]\.lb_endpoints$/,
    when: (d) =>
      Array.isArray(d.istiod) && d.istiod.length > 1 && Array.isArray(d.meshgate) && d.meshgate.length === 1 && sameEndpoint(d.istiod[0], d.meshgate[0]),
    why: LOGICAL_DNS,
  },
  {
    type: 'clusters',
    path: /^\.load_assignment\.endpoints\[0\]\.load_balancing_weight$/,
    when: (d) => typeof d.istiod === 'number' && typeof d.meshgate === 'number' && d.istiod > d.meshgate,
    why: `the locality weight of such a LOGICAL_DNS cluster, the sum of the endpoints sent: ${LOGICAL_DNS}`,
  },
];

export function allowedBy(d: Difference, caseName: string): Allowed | undefined {
  return ALLOWED.find(
    (a) =>
      a.type === d.type &&
      (!a.resource || a.resource.test(d.resource)) &&
      a.path.test(d.path) &&
      (!a.istiod || (d.istiod !== undefined && a.istiod.test(JSON.stringify(d.istiod)))) &&
      (!a.cases || a.cases.test(caseName)) &&
      (!a.when || a.when(d)),
  );
}
