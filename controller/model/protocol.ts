// Istio's protocol names (pkg/config/protocol/instance.go) and how Kubernetes ports map to them
// (pkg/config/kube/conversion.go, ConvertProtocol).

export type Protocol =
  'TCP' | 'UDP' | 'GRPC' | 'GRPC-Web' | 'HTTP' | 'HTTP_PROXY' | 'HTTP2' | 'HTTPS' | 'TLS' | 'Mongo' | 'Redis' | 'MySQL' | 'UnsupportedProtocol';

const BY_LOWER: Readonly<Record<string, Protocol>> = {
  tcp: 'TCP',
  udp: 'UDP',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-Web',
  http: 'HTTP',
  http_proxy: 'HTTP_PROXY',
  http2: 'HTTP2',
  https: 'HTTPS',
  tls: 'TLS',
  mongo: 'Mongo',
  redis: 'Redis',
  mysql: 'MySQL',
};

/** Case-insensitive, as istiod parses Gateway and ServiceEntry port protocols. */
export function parseProtocol(s: string | undefined): Protocol {
  return BY_LOWER[(s ?? '').toLowerCase()] ?? 'UnsupportedProtocol';
}

/** HTTP-like: one HCM and one RDS per port on a gateway. */
export function isHTTP(p: Protocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'HTTP_PROXY' || p === 'GRPC' || p === 'GRPC-Web';
}

/** Upstream clusters for these get explicit HTTP/2 options. */
export function isHTTP2(p: Protocol): boolean {
  return p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-Web';
}

const WELL_KNOWN_TCP_PORTS = new Set([25, 53, 3306, 27017]);

/** A Kubernetes Service port's protocol: appProtocol, else the port-name prefix before '-'. */
export function kubePortProtocol(port: number, name: string | undefined, proto: string | undefined, appProtocol: string | undefined): Protocol {
  if (proto === 'UDP') return 'UDP';
  let n = name ?? '';
  if (appProtocol !== undefined) {
    n = appProtocol;
    if (n === 'kubernetes.io/h2c') return 'HTTP2';
    if (n === 'kubernetes.io/ws') return 'HTTP';
    if (n === 'kubernetes.io/wss') return 'HTTPS';
  }
  if (n.toLowerCase().startsWith('grpc-web')) return 'GRPC-Web';
  const i = n.indexOf('-');
  if (i >= 0) n = n.slice(0, i);
  const p = parseProtocol(n);
  if (p === 'UnsupportedProtocol' && WELL_KNOWN_TCP_PORTS.has(port)) return 'TCP';
  return p;
}
