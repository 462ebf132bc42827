// A tiny state-of-the-world ADS server for tests: serves hand-written Envoy JSON (as istiod would send it),
// pushes on set(), and records every DiscoveryRequest (ACKs and NACKs) the proxy sends.
import * as grpc from '@grpc/grpc-js';
import { AdsServiceDefinition, type DiscoveryRequest, type DiscoveryResponse } from '../../xds/ads-service.ts';
import { packJson, type Any } from '../../xds/protos.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../xds/type-urls.ts';

type Call = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

interface Sub {
  names: string[];
  nonce: number;
}

export class TestAdsServer {
  readonly server = new grpc.Server();
  readonly requests: DiscoveryRequest[] = [];
  port = 0;
  private readonly resources = new Map<string, { name: string; any: Any }[]>();
  private version = 0;
  private readonly calls = new Map<Call, Map<string, Sub>>();

  constructor() {
    this.server.addService(AdsServiceDefinition, {
      StreamAggregatedResources: (call: Call) => {
        const subs = new Map<string, Sub>();
        this.calls.set(call, subs);
        call.on('data', (req: DiscoveryRequest) => {
          this.requests.push(req);
          if (req.error_detail) return; // NACK: istiod records it and does not answer
          const sub = subs.get(req.type_url);
          const namesChanged = !sub || sub.names.join(',') !== req.resource_names.join(',');
          if (!sub || req.response_nonce === '' || namesChanged) {
            subs.set(req.type_url, { names: req.resource_names, nonce: sub?.nonce ?? 0 });
            this.push(call, req.type_url);
          }
        });
        call.on('end', () => {
          this.calls.delete(call);
          call.end();
        });
        call.on('error', () => this.calls.delete(call));
      },
    });
  }

  async start(): Promise<void> {
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  private push(call: Call, typeUrl: string): void {
    const sub = this.calls.get(call)?.get(typeUrl);
    // Like istiod before its first push: a type nobody set yet gets no answer.
    const all = this.resources.get(typeUrl);
    if (!sub || !all) return;
    const wildcard = typeUrl === LISTENER_TYPE || typeUrl === CLUSTER_TYPE;
    const chosen = wildcard ? all : all.filter((r) => sub.names.includes(r.name));
    sub.nonce++;
    call.write({ version_info: `v${this.version}`, resources: chosen.map((r) => r.any), type_url: typeUrl, nonce: `n${sub.nonce}` });
  }

  /** Replaces the resources of a type (Envoy JSON) and pushes them to every connected proxy. */
  set(typeUrl: string, resources: Record<string, unknown>[]): void {
    this.version++;
    this.resources.set(
      typeUrl,
      resources.map((r) => ({
        name: typeof r.name === 'string' ? r.name : typeof r.cluster_name === 'string' ? r.cluster_name : '',
        any: packJson(typeUrl, r),
      })),
    );
    for (const call of this.calls.keys()) this.push(call, typeUrl);
  }

  /** Raw Anys (e.g. a resource with a type the proxy does not know). */
  setRaw(typeUrl: string, resources: { name: string; any: Any }[]): void {
    this.version++;
    this.resources.set(typeUrl, resources);
    for (const call of this.calls.keys()) this.push(call, typeUrl);
  }

  /** Requests of a type, newest last. */
  requestsOf(typeUrl: string): DiscoveryRequest[] {
    return this.requests.filter((r) => r.type_url === typeUrl);
  }

  /** Ends every stream (the proxy must reconnect). */
  dropStreams(): void {
    for (const call of this.calls.keys()) call.end();
    this.calls.clear();
  }

  async stop(): Promise<void> {
    for (const call of this.calls.keys()) call.destroy();
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.server.forceShutdown();
  }
}

export { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE };
