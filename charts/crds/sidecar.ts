// OpenAPI v3 schemas of Istio's networking.istio.io Sidecar and ProxyConfig, with the limits and CEL rules of Istio's
// CRDs. meshgate does not implement either (both configure sidecar proxies, or the Istio agent): they are served so
// Istio manifests apply, and objects get an Unsupported status condition.
import { matchLabelsSelector, labelsSelector } from './common.ts';
import { connectionPool, serverTLSSettings } from './networking.ts';
import { enumOf, int32, map, list, object, string, strings, uint32 } from './openapi.ts';

const CAPTURE_MODES = ['DEFAULT', 'IPTABLES', 'NONE'];

const sidecarPort = object(
  {
    number: uint32('Port number.'),
    protocol: string('Protocol of the port.'),
    name: string('Label of the port.'),
    targetPort: uint32('Port of the workload, when it differs.'),
  },
  { description: 'A port of the listener.' },
);

const ingressListener = object(
  {
    port: sidecarPort,
    bind: string('Address the listener binds to.'),
    captureMode: enumOf(CAPTURE_MODES, 'How traffic reaches the listener.'),
    defaultEndpoint: string('Where traffic is forwarded: 127.0.0.1:PORT, 0.0.0.0:PORT or a unix:// socket.'),
    tls: serverTLSSettings,
    connectionPool,
  },
  { description: 'An inbound listener of the sidecar.', required: ['port'] },
);

const egressListener = object(
  {
    port: sidecarPort,
    bind: string('Address the listener binds to.'),
    captureMode: enumOf(CAPTURE_MODES, 'How traffic reaches the listener.'),
    hosts: strings('Services reachable through the listener, as namespace/dnsName.'),
  },
  { description: 'An outbound listener of the sidecar.', required: ['hosts'] },
);

export const sidecarSpec = object(
  {
    workloadSelector: labelsSelector('The workloads the Sidecar applies to; none: every workload of the namespace.'),
    ingress: list(ingressListener, 'Inbound listeners.'),
    egress: list(egressListener, 'Outbound listeners.'),
    inboundConnectionPool: connectionPool,
    outboundTrafficPolicy: object(
      {
        mode: enumOf(['REGISTRY_ONLY', 'ALLOW_ANY'], 'Whether unknown destinations are reachable.'),
        egressProxy: object(
          { host: string('Service name.'), subset: string('Subset of the service.'), port: object({ number: uint32('Port number.') }) },
          { description: 'Where unknown destinations are sent (ALLOW_ANY).', required: ['host'] },
        ),
      },
      { description: 'Traffic to destinations outside the service registry.' },
    ),
  },
  { description: 'Configuration of sidecar proxies (not of gateways).' },
);

export const proxyConfigSpec = object(
  {
    selector: matchLabelsSelector('The workloads the ProxyConfig applies to.'),
    concurrency: int32('Worker threads of the proxy.', { minimum: 0, nullable: true }),
    environmentVariables: map(string(undefined, { maxLength: 2048 }), 'Environment variables of the proxy.'),
    image: object({ imageType: string('Image variant: default, debug or distroless.') }, { description: 'Image of the proxy.' }),
  },
  { description: 'Settings of Istio proxies (applied by the injector and the agent).' },
);
