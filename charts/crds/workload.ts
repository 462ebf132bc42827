// OpenAPI v3 schemas of Istio's networking.istio.io WorkloadEntry (also a ServiceEntry endpoint) and WorkloadGroup,
// written for meshgate from the Istio API reference with the limits and CEL rules of Istio's CRDs. meshgate reads
// ServiceEntry endpoints; it does not implement WorkloadEntry or WorkloadGroup objects (VM workloads), which are
// served so Istio manifests apply, and get an Unsupported status condition.
import { int32, list, map, object, port, rule, string, stringMap, uint32, type Schema } from './openapi.ts';

const UDS_ABSOLUTE = rule(
  'self.startsWith("unix://") ? (self.substring(7, 8) == "/" || self.substring(7, 8) == "@") : true',
  'UDS must be an absolute path or abstract socket',
);
const UDS_NOT_DIR = rule('self.startsWith("unix://") ? !self.endsWith("/") : true', 'UDS may not be a dir');
const UDS_NO_PORTS = rule('(has(self.address) ? self.address : "").startsWith("unix://") ? !has(self.ports) : true', 'UDS may not include ports');
const ADDRESS_REQUIRED = rule('has(self.address) || has(self.network)', 'Address is required');

const boundedMap = (description: string, maxProperties: number): Schema => ({ ...stringMap(description), maxProperties });

const workloadEntryFields = {
  address: string('IP address or DNS name of the endpoint (or unix:// socket).', { maxLength: 256, 'x-kubernetes-validations': [UDS_ABSOLUTE, UDS_NOT_DIR] }),
  ports: {
    ...map(port(), 'Port name to endpoint port.'),
    maxProperties: 128,
    'x-kubernetes-validations': [rule('self.all(key, size(key) < 63 && key.matches("^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$"))', 'port name must be valid')],
  },
  labels: boundedMap('Labels of the endpoint.', 256),
  network: string('Network of the endpoint.', { maxLength: 2048 }),
  locality: string('region/zone/subzone of the endpoint.', { maxLength: 2048 }),
  weight: uint32('Load balancing weight.'),
  serviceAccount: string('Service account of the endpoint.', { maxLength: 253 }),
};

/** A ServiceEntry endpoint, and a WorkloadEntry's spec: an address (or a network) is required. */
export const serviceEndpoint = object(workloadEntryFields, { description: 'An endpoint of the service.', rules: [ADDRESS_REQUIRED, UDS_NO_PORTS] });

export const workloadEntrySpec = object(workloadEntryFields, {
  description: 'A non-Kubernetes workload (a VM, a bare-metal host) as an endpoint of the mesh.',
  rules: [ADDRESS_REQUIRED, UDS_NO_PORTS],
});

const count = (description: string): Schema => int32(description, { minimum: 0 });
const probePort = port('Port to probe.');

const probe = object(
  {
    initialDelaySeconds: count('Seconds before the first probe.'),
    timeoutSeconds: count('Seconds before a probe times out.'),
    periodSeconds: count('Seconds between probes.'),
    successThreshold: count('Consecutive successes to be healthy.'),
    failureThreshold: count('Consecutive failures to be unhealthy.'),
    httpGet: object(
      {
        path: string('Path to request.'),
        port: probePort,
        host: string('Host to connect to.'),
        scheme: string('HTTP (default) or HTTPS.', {
          'x-kubernetes-validations': [rule('self in ["", "HTTP", "HTTPS"]', 'scheme must be one of [HTTP, HTTPS]')],
        }),
        httpHeaders: list(object({ name: string('Header name.', { pattern: '^[-_A-Za-z0-9]+$' }), value: string('Header value.') }), 'Request headers.'),
      },
      { description: 'An HTTP GET probe.', required: ['port'] },
    ),
    tcpSocket: object({ host: string('Host to connect to.'), port: probePort }, { description: 'A TCP connect probe.', required: ['port'] }),
    exec: object(
      { command: list(string(undefined, { minLength: 1 }), 'Command and arguments.') },
      { description: 'A command run on the workload.', required: ['command'] },
    ),
    grpc: object({ port: probePort, service: string('Service name of the gRPC health check.') }, { description: 'A gRPC health check.' }),
  },
  { description: 'Readiness probe of the workloads, run by the Istio agent.', exclusive: [['httpGet', 'tcpSocket', 'exec', 'grpc']] },
);

export const workloadGroupSpec = object(
  {
    metadata: object(
      { labels: boundedMap('Labels of the WorkloadEntries.', 256), annotations: boundedMap('Annotations of the WorkloadEntries.', 256) },
      { description: 'Metadata given to the generated WorkloadEntries.' },
    ),
    template: object(workloadEntryFields, {
      description: 'Template of the generated WorkloadEntries (address and labels come from each workload).',
      rules: [UDS_NO_PORTS],
    }),
    probe,
  },
  { description: 'A group of non-Kubernetes workloads, from which WorkloadEntries are generated.', required: ['template'] },
);
