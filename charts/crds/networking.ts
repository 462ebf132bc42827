// OpenAPI v3 schemas of Istio's networking.istio.io Gateway, VirtualService, DestinationRule and ServiceEntry,
// written for meshgate from the Istio API reference (istio.io/latest/docs/reference/config/networking/) with the
// constraints and CEL rules of Istio's own CRDs, no more and no less (e2e/kube/crds.test.ts compares the two on a
// real API server): every field declared, deprecated ones and proto names included, so the API server prunes
// nothing a user wrote; what Istio's CRDs admit and istiod's validation refuses (a route with a redirect, a port
// above 65535, a TLS server without credentials) is checked by the controller, which reports it as an Event.
import { exportTo, labelsSelector, matchLabelsSelector } from './common.ts';
import { serviceEndpoint } from './workload.ts';
import {
  atMostOneOf,
  boolean,
  boolValue,
  describe,
  double,
  duration,
  enumOf,
  int32,
  list,
  looseDuration,
  map,
  object,
  port,
  rule,
  string,
  stringMap,
  strings,
  uint32,
  uint32Value,
  uint64,
  type Schema,
} from './openapi.ts';

const percent = object({ value: double('Percentage in [0.0, 100.0] (istiod checks the range).') }, { description: 'A percentage.' });

const stringMatch = object(
  {
    exact: string('Exact string match.'),
    prefix: string('Prefix-based match.'),
    regex: string('RE2 regular expression match.'),
  },
  { description: 'One of exact, prefix or regex; none matches any value (presence only, for headers).', exclusive: [['exact', 'prefix', 'regex']] },
);

const portSelector = object({ number: uint32('Port number.') }, { description: 'A port of the destination.' });

const destination = object(
  {
    host: string('Service name from the service registry: a Kubernetes Service (short or FQDN) or a ServiceEntry host.'),
    subset: string('Name of a subset defined in the DestinationRule of the host.'),
    port: portSelector,
  },
  { description: 'Where the traffic goes.', required: ['host'] },
);

const headerOperations = object(
  {
    set: stringMap('Overwrite these headers.'),
    add: stringMap('Append these headers.'),
    remove: strings('Remove these headers.'),
  },
  { description: 'Header manipulations.' },
);

const headers = object({ request: headerOperations, response: headerOperations }, { description: 'Header manipulation rules for requests and responses.' });

// --- Gateway ---------------------------------------------------------------------------------------------------

const tlsProtocol = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'];

export const serverTLSSettings = object(
  {
    httpsRedirect: boolean('Answer plain HTTP requests with a 301 redirect to HTTPS.'),
    mode: enumOf(['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL'], 'How connections on this port are secured.'),
    serverCertificate: string('File path of the server certificate (PEM).'),
    privateKey: string('File path of the private key (PEM).'),
    caCertificates: string('File path of the CA certificates that verify client certificates.'),
    caCrl: string('File path of the certificate revocation list.'),
    credentialName: string("Name of the Secret, in the gateway's namespace, holding the certificate and key."),
    credentialNames: strings('One or two Secrets (e.g. RSA and ECDSA certificates).', { minItems: 1, maxItems: 2 }),
    caCertCredentialName: string('Name of the Secret or ConfigMap holding the CA certificates.'),
    tlsCertificates: list(object({ serverCertificate: string(), privateKey: string(), caCertificates: string() }), 'One or two certificates from files.', {
      minItems: 1,
      maxItems: 2,
    }),
    subjectAltNames: strings('Accepted subject alternative names of client certificates.'),
    verifyCertificateSpki: strings('Accepted base64 SHA-256 SPKI hashes of client certificates.'),
    verifyCertificateHash: strings('Accepted hex SHA-256 hashes of client certificates.'),
    minProtocolVersion: enumOf(tlsProtocol, 'Minimum TLS version.'),
    maxProtocolVersion: enumOf(tlsProtocol, 'Maximum TLS version.'),
    cipherSuites: strings('Cipher suites, in order of preference.'),
    insecureSkipVerify: boolValue('Accept client certificates that fail verification.'),
  },
  {
    description: 'TLS settings of the server.',
    // Istio's three rules as its CRD has them: the third repeats the first (credentialName with tlsCertificates passes).
    rules: [
      atMostOneOf(['tlsCertificates', 'credentialNames'], 'only one of credentialNames or tlsCertificates can be set'),
      atMostOneOf(['credentialName', 'credentialNames'], 'only one of credentialName or credentialNames can be set'),
      atMostOneOf(['credentialNames', 'tlsCertificates'], 'only one of credentialName or tlsCertificates can be set'),
    ],
  },
);

const server = object(
  {
    port: object(
      {
        number: uint32('Port the gateway listens on (0 with a unix:// bind).'),
        protocol: string('HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, TCP or TLS.'),
        name: string('Label of the port.'),
        targetPort: uint32('Deprecated; has no effect on Gateways.'),
      },
      { description: 'Port, protocol and name of the listener.', required: ['number', 'protocol', 'name'] },
    ),
    bind: string('IP address or unix:// socket the listener binds to; all addresses when empty.'),
    hosts: strings('Hosts exposed by this server: "host", "*.domain", "*", optionally prefixed by "namespace/" (or "./", "*/"); at least one (istiod checks).'),
    tls: serverTLSSettings,
    defaultEndpoint: string('Not implemented by Istio; ignored.'),
    name: string('Optional name of the server, unique within the gateway.'),
  },
  { description: 'A listener of the gateway.', required: ['port', 'hosts'] },
);

export const gatewaySpec = object(
  {
    servers: list(server, 'Servers (listeners) exposed by the gateway.'),
    selector: stringMap('Labels of the gateway pods this configuration applies to.'),
  },
  { description: 'Configuration of a load balancer at the edge of the mesh: ports, protocols, hosts and TLS.' },
);

// --- VirtualService --------------------------------------------------------------------------------------------

const httpMatchRequest = object(
  {
    name: string('Name of the match, appended to the route name.'),
    uri: stringMatch,
    scheme: stringMatch,
    method: stringMatch,
    authority: stringMatch,
    headers: map(stringMatch, 'Header name (lowercase) to match.'),
    port: uint32('Port the request arrived on.'),
    sourceLabels: stringMap('Labels of the client workload.'),
    gateways: strings("Gateways the rule applies to, overriding the VirtualService's."),
    queryParams: map(stringMatch, 'Query parameters to match (exact or regex).'),
    ignoreUriCase: boolean('Match the uri case-insensitively.'),
    withoutHeaders: map(stringMatch, 'Headers that must not match.'),
    sourceNamespace: string('Namespace of the client workload.'),
    statPrefix: string('Prefix of route-level stats.'),
  },
  { description: 'Conditions a request must meet; all of them (AND).' },
);

const httpRouteDestination = object(
  {
    destination,
    weight: int32('Relative share of traffic.'),
    headers,
  },
  { required: ['destination'] },
);

const routeDestination = object({ destination, weight: int32('Relative share of traffic.') }, { required: ['destination'] });

const httpRedirect = object(
  {
    uri: string('Replaces the path of the URL.'),
    authority: string('Replaces the authority (host) of the URL.'),
    port: uint32('Replaces the port of the URL.'),
    derivePort: enumOf(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'], 'Where the redirect port comes from.'),
    scheme: string('Replaces the scheme of the URL.'),
    redirectCode: uint32('HTTP status of the redirect, 301 by default.'),
    prefixRewrite: string('Replaces the matched prefix of the path.'),
  },
  { description: 'Answer with a redirect.', exclusive: [['port', 'derivePort']] },
);

const httpDirectResponse = object(
  {
    status: uint32('HTTP status of the response (istiod checks 200-599).'),
    body: object(
      { string: string('Body as text.'), bytes: string('Body as base64.', { format: 'byte' }) },
      { description: 'Body of the response.', exclusive: [['string', 'bytes']] },
    ),
  },
  { description: 'Answer with a fixed response.', required: ['status'] },
);

const httpRewrite = object(
  {
    uri: string('Rewrites the matched part of the path (the prefix, or the whole path for exact matches).'),
    authority: string('Rewrites the Host/:authority header.'),
    uriRegexRewrite: object(
      { match: string('RE2 regular expression.'), rewrite: string('Replacement, with \\1 style groups.') },
      { description: 'Rewrites the path with a regular expression.' },
    ),
  },
  { description: 'Rewrites the request before forwarding it.' },
);

const httpRetry = object(
  {
    attempts: int32('Number of retries.'),
    perTryTimeout: duration('Timeout of each attempt.'),
    retryOn: string('Conditions for a retry, comma-separated (Envoy retry-on policies and status codes).'),
    retryRemoteLocalities: boolValue('Retry to other localities.'),
    retryIgnorePreviousHosts: boolValue('Retry on a host not tried before (default true).'),
    backoff: duration('Base interval between retries.'),
  },
  { description: 'Retry policy.' },
);

const httpFaultInjection = object(
  {
    delay: object(
      {
        percent: int32('Deprecated: use percentage.'),
        fixedDelay: duration('Delay before forwarding the request.'),
        exponentialDelay: duration('Not implemented by Istio.'),
        percentage: percent,
      },
      { description: 'Delay requests.', exclusive: [['fixedDelay', 'exponentialDelay']] },
    ),
    abort: object(
      {
        httpStatus: int32('HTTP status to answer with.'),
        grpcStatus: string('gRPC status to answer with.'),
        http2Error: string('Not implemented by Istio.'),
        percentage: percent,
      },
      { description: 'Abort requests.', exclusive: [['httpStatus', 'grpcStatus', 'http2Error']] },
    ),
  },
  { description: 'Fault injection.' },
);

const corsPolicy = object(
  {
    allowOrigin: strings('Deprecated: use allowOrigins.'),
    allowOrigins: list(stringMatch, 'Origins allowed to make requests.'),
    allowMethods: strings('Access-Control-Allow-Methods.'),
    allowHeaders: strings('Access-Control-Allow-Headers.'),
    exposeHeaders: strings('Access-Control-Expose-Headers.'),
    maxAge: duration('Access-Control-Max-Age.'),
    allowCredentials: boolValue('Access-Control-Allow-Credentials.'),
    unmatchedPreflights: enumOf(['UNSPECIFIED', 'FORWARD', 'IGNORE'], 'What to do with preflights from other origins.'),
  },
  { description: 'Cross-origin resource sharing policy.' },
);

const httpRoute = object(
  {
    name: string('Name of the route, for logs and stats.'),
    match: list(httpMatchRequest, 'Match conditions; any of them (OR). Empty matches everything.'),
    route: list(httpRouteDestination, 'Weighted destinations.'),
    redirect: httpRedirect,
    directResponse: httpDirectResponse,
    delegate: object(
      { name: string('Name of the delegate VirtualService.'), namespace: string('Its namespace.') },
      { description: 'Hand the route over to another VirtualService.' },
    ),
    rewrite: httpRewrite,
    timeout: duration('Request timeout.'),
    retries: httpRetry,
    fault: httpFaultInjection,
    mirror: describe(destination, 'Mirror requests to this destination as well.'),
    mirrors: list(object({ destination, percentage: percent }, { required: ['destination'] }), 'Mirror requests to these destinations as well.'),
    mirrorPercent: uint32Value('Deprecated: use mirrorPercentage.'),
    mirror_percent: uint32Value('mirrorPercent by its proto name (deprecated).'),
    mirrorPercentage: percent,
    corsPolicy,
    headers,
  },
  // A rule routes, redirects or answers directly: istiod rejects two of these, Istio's CRD does not.
  { description: 'An HTTP rule: match conditions and what to do with matching requests.' },
);

const tlsRoute = object(
  {
    match: list(
      object(
        {
          sniHosts: strings('SNI values to match (wildcards allowed).'),
          destinationSubnets: strings('Destination IPv4/IPv6 subnets.'),
          port: uint32('Port the connection arrived on.'),
          sourceLabels: stringMap('Labels of the client workload.'),
          gateways: strings('Gateways the rule applies to.'),
          sourceNamespace: string('Namespace of the client workload.'),
        },
        { required: ['sniHosts'] },
      ),
      'Match conditions; any of them (OR).',
    ),
    route: list(routeDestination, 'Weighted destinations.'),
  },
  { description: 'A rule for TLS connections, matched on SNI, forwarded without termination.', required: ['match'] },
);

const tcpRoute = object(
  {
    match: list(
      object({
        destinationSubnets: strings('Destination IPv4/IPv6 subnets.'),
        port: uint32('Port the connection arrived on.'),
        sourceSubnet: string('Source subnet (deprecated).'),
        sourceLabels: stringMap('Labels of the client workload.'),
        gateways: strings('Gateways the rule applies to.'),
        sourceNamespace: string('Namespace of the client workload.'),
      }),
      'Match conditions; any of them (OR).',
    ),
    route: list(routeDestination, 'Weighted destinations.'),
  },
  { description: 'A rule for opaque TCP connections.' },
);

export const virtualServiceSpec = object(
  {
    hosts: strings('Destination hosts these rules apply to (names, wildcards, or IPs).'),
    gateways: strings('Gateways ("namespace/name", "name" or the reserved "mesh") the rules apply to.'),
    http: list(httpRoute, 'HTTP rules, evaluated in order.'),
    tls: list(tlsRoute, 'TLS passthrough rules.'),
    tcp: list(tcpRoute, 'TCP rules.'),
    exportTo,
  },
  { description: 'Routing rules for traffic to a set of hosts.' },
);

// --- DestinationRule -------------------------------------------------------------------------------------------

const consistentHash = object(
  {
    httpHeaderName: string('Hash on this request header.'),
    httpCookie: object(
      {
        name: string('Name of the cookie.'),
        path: string('Path of the cookie.'),
        ttl: looseDuration('Lifetime of the cookie; a new one is generated when absent.'),
        attributes: list(object({ name: string(), value: string() }, { required: ['name'] }), 'Cookie attributes.'),
      },
      { description: 'Hash on this cookie.', required: ['name'] },
    ),
    useSourceIp: boolean('Hash on the client IP.'),
    httpQueryParameterName: string('Hash on this query parameter.'),
    ringHash: object({ minimumRingSize: uint64('Minimum number of virtual nodes.') }, { description: 'Ring hash.' }),
    maglev: object({ tableSize: uint64('Size of the lookup table (a prime).') }, { description: 'Maglev.' }),
    minimumRingSize: uint64('Deprecated: use ringHash.'),
  },
  {
    description: 'Consistent hashing (session affinity).',
    exclusive: [
      ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'],
      ['ringHash', 'maglev'],
    ],
  },
);

const failover = list(object({ from: string(), to: string() }), 'Region to fail over to when endpoints in `from` are unhealthy.');

const loadBalancer = object(
  {
    simple: enumOf(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'], 'Standard load balancing algorithm.'),
    consistentHash,
    localityLbSetting: object(
      {
        distribute: list(object({ from: string(), to: map(uint32()) }), 'Weights of the localities that traffic from a locality goes to.'),
        failover,
        failoverPriority: strings('Labels that order endpoints for failover.'),
        enabled: boolValue('Enable locality load balancing.'),
      },
      { description: 'Locality-weighted load balancing.' },
    ),
    zoneAwareLbSetting: object(
      {
        enabled: boolValue('Enable zone-aware load balancing.'),
        failover,
        failoverPriority: strings('Labels that order endpoints for failover.'),
        minClusterSize: uint32('Minimum cluster size for zone-aware routing.', { minimum: 1, nullable: true }),
      },
      { description: 'Zone-aware load balancing.' },
    ),
    warmupDurationSecs: duration('Deprecated: use warmup.'),
    warmup: object(
      {
        duration: duration('Warm-up period of a new endpoint.'),
        minimumPercent: double('Starting traffic percentage.', { minimum: 0, maximum: 100, nullable: true }),
        aggression: double('Curve of the ramp (1.0 linear).', { minimum: 0, nullable: true }),
      },
      { description: 'Slow start of new endpoints.', required: ['duration'] },
    ),
  },
  {
    description: 'Load balancing policy.',
    // warmupDurationSecs (deprecated) and warmup are not exclusive in Istio's CRD: istiod takes warmup.
    exclusive: [['simple', 'consistentHash']],
  },
);

export const connectionPool = object(
  {
    tcp: object(
      {
        maxConnections: int32('Maximum connections to a destination host.'),
        connectTimeout: duration('TCP connect timeout.'),
        tcpKeepalive: object(
          {
            probes: uint32('Probes sent before the connection is dead.'),
            time: duration('Idle time before the first probe.'),
            interval: duration('Interval between probes.'),
          },
          { description: 'TCP keepalive.' },
        ),
        maxConnectionDuration: duration('Maximum lifetime of a connection.'),
        idleTimeout: looseDuration('Idle timeout of a connection.'),
      },
      { description: 'Settings common to HTTP and TCP.' },
    ),
    http: object(
      {
        http1MaxPendingRequests: int32('Maximum requests queued for a connection.'),
        http2MaxRequests: int32('Maximum active requests to the destination.'),
        maxRequestsPerConnection: int32('Maximum requests per connection; 1 disables keep-alive.'),
        maxRetries: int32('Maximum outstanding retries to the destination.'),
        idleTimeout: duration('Idle timeout of an upstream connection.'),
        h2UpgradePolicy: enumOf(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'], 'Upgrade HTTP/1.1 connections to HTTP/2.'),
        useClientProtocol: boolean("Use the client's HTTP version upstream."),
        maxConcurrentStreams: int32('Maximum concurrent streams per HTTP/2 connection.'),
        http2KeepAlive: object(
          { interval: duration('Interval of HTTP/2 PINGs.'), timeout: duration('Timeout of a PING.') },
          { description: 'HTTP/2 keepalive.' },
        ),
      },
      { description: 'HTTP settings.' },
    ),
  },
  { description: 'Connection pool (circuit breaker) settings.' },
);

const outlierDetection = object(
  {
    consecutiveErrors: int32('Deprecated: use consecutive5xxErrors.'),
    splitExternalLocalOriginErrors: boolean('Count local-origin failures apart from upstream errors.'),
    consecutiveLocalOriginFailures: uint32Value('Local-origin failures before ejection.'),
    consecutiveGatewayErrors: uint32Value('502, 503 and 504 errors before ejection.'),
    consecutive5xxErrors: uint32Value('5xx errors before ejection.'),
    interval: duration('Time between ejection sweeps.'),
    baseEjectionTime: duration('Minimum ejection duration.'),
    maxEjectionPercent: int32('Maximum percentage of hosts ejected.'),
    minHealthPercent: int32('Outlier detection stops below this percentage of healthy hosts.'),
    outlierDetectionHttpErrorCodes: list(uint32(undefined, { minimum: 100, maximum: 599 }), 'HTTP status codes counted as errors.'),
  },
  { description: 'Ejection of unhealthy hosts.' },
);

const clientTLS = object(
  {
    mode: enumOf(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'], 'TLS to the upstream.'),
    clientCertificate: string('File path of the client certificate (MUTUAL).'),
    privateKey: string('File path of the private key (MUTUAL).'),
    caCertificates: string('File path of the CA certificates that verify the server.'),
    credentialName: string('Secret holding the client certificate, key and CA certificates.'),
    subjectAltNames: strings('Accepted subject alternative names of the server certificate.'),
    sni: string('SNI sent in the handshake.'),
    insecureSkipVerify: boolValue('Do not verify the server certificate.'),
    caCrl: string('File path of the certificate revocation list.'),
  },
  { description: 'TLS settings of connections to the upstream.' },
);

const trafficPolicyFields: Record<string, Schema> = {
  loadBalancer,
  connectionPool,
  outlierDetection,
  tls: clientTLS,
};

const trafficPolicy = object(
  {
    ...trafficPolicyFields,
    portLevelSettings: list(object({ port: portSelector, ...trafficPolicyFields }), 'Policies for individual ports, overriding the destination-level ones.', {
      maxItems: 4096,
    }),
    tunnel: object(
      {
        protocol: string('CONNECT (default) or POST.'),
        targetHost: string('Host of the tunnel target.'),
        targetPort: uint32('Port of the tunnel target.'),
      },
      { description: 'Tunnel TCP over HTTP.', required: ['targetHost', 'targetPort'] },
    ),
    proxyProtocol: object({ version: enumOf(['V1', 'V2'], 'PROXY protocol version.') }, { description: 'Send the PROXY protocol header upstream.' }),
    retryBudget: object(
      {
        percent: double('Percentage of active requests that may be retries.', { minimum: 0, maximum: 100, nullable: true }),
        minRetryConcurrency: uint32('Retries always allowed.'),
        budgetInterval: looseDuration('Interval over which the budget is computed.'),
      },
      { description: 'Limits retries to a share of active requests.' },
    ),
  },
  { description: 'Traffic policies: load balancing, connection pool, outlier detection, TLS.' },
);

export const destinationRuleSpec = object(
  {
    host: string('The service the rule applies to: a Kubernetes Service (short or FQDN) or a ServiceEntry host.'),
    trafficPolicy,
    subsets: list(
      object(
        {
          name: string('Name of the subset, referenced by routes.'),
          labels: stringMap('Labels that select the endpoints of the subset.'),
          trafficPolicy,
        },
        { required: ['name'] },
      ),
      'Named sets of endpoints (versions) of the service.',
    ),
    exportTo,
    workloadSelector: matchLabelsSelector('Restricts the rule to these workloads.'),
  },
  { description: 'Policies applied to traffic to a service after routing.', required: ['host'] },
);

// --- ServiceEntry ----------------------------------------------------------------------------------------------

const servicePort = object(
  {
    number: port('Port number.'),
    protocol: string('HTTP, HTTPS, GRPC, HTTP2, MONGO, TCP or TLS.', { maxLength: 256 }),
    name: string('Label of the port.', { maxLength: 256 }),
    targetPort: port('Port of the endpoints, when it differs.'),
  },
  { required: ['number', 'name'] },
);

const resolutionOrNone = '(has(self.resolution) ? self.resolution : "NONE")';

export const serviceEntrySpec = object(
  {
    hosts: list(
      string(undefined, { 'x-kubernetes-validations': [rule('self != "*"', 'hostname cannot be wildcard')] }),
      'Hosts of the service (DNS names, wildcards).',
      {
        minItems: 1,
        maxItems: 256,
      },
    ),
    addresses: list(string(undefined, { maxLength: 64 }), 'Virtual IPs or CIDRs of the service.', { maxItems: 256 }),
    ports: list(servicePort, 'Ports of the service.', {
      maxItems: 256,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
      'x-kubernetes-validations': [rule('self.all(l1, self.exists_one(l2, l1.number == l2.number))', 'port number cannot be duplicated')],
    }),
    location: enumOf(['MESH_EXTERNAL', 'MESH_INTERNAL'], 'Whether the service is part of the mesh.'),
    resolution: enumOf(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'], 'How endpoints are resolved.'),
    endpoints: list(serviceEndpoint, 'Endpoints of the service.', { maxItems: 4096 }),
    workloadSelector: labelsSelector('Selects pods or WorkloadEntries as endpoints.'),
    exportTo,
    subjectAltNames: strings("Accepted subject alternative names of the endpoints' certificates."),
  },
  {
    description: 'Adds a service (external, or not in the registry) to the service registry.',
    required: ['hosts'],
    rules: [
      atMostOneOf(['workloadSelector', 'endpoints'], 'only one of WorkloadSelector or Endpoints can be set'),
      rule(
        `!((has(self.addresses) ? self.addresses : []).exists(k, k.contains("/")) && !(${resolutionOrNone} in ["STATIC", "NONE"]))`,
        'CIDR addresses are allowed only for NONE/STATIC resolution types',
      ),
      rule(`(${resolutionOrNone} == "NONE") ? !has(self.endpoints) : true`, 'NONE mode cannot set endpoints'),
      rule(
        '((has(self.resolution) ? self.resolution : "") == "DNS_ROUND_ROBIN") ? ((has(self.endpoints) ? self.endpoints : []).size() <= 1) : true',
        'DNS_ROUND_ROBIN mode cannot have multiple endpoints',
      ),
    ],
  },
);
