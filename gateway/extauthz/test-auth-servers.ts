// Real authorization services for the ext_authz tests: an HTTP one (node:http) and a gRPC one (@grpc/grpc-js
// serving envoy.service.auth.v3.Authorization/Check with the messages from the Envoy protos), each on port 0,
// recording what it was asked and answering with what the test says.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { decodeToJson, encodeJson, type JsonObject } from '../../xds/protos.ts';
import type { envoy } from '../../xds/envoy.ts';
import { silentLogger } from '../../cli/logger.ts';
import { StatsStore } from '../stats/store.ts';
import { ClusterManager } from '../upstream/cluster-manager.ts';

export interface SeenHttp {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  body: Buffer;
}

export type HttpAnswer = (req: SeenHttp, res: ServerResponse) => void;

export class HttpAuthServer {
  readonly seen: SeenHttp[] = [];
  answer: HttpAnswer = (_q, res) => res.end();
  /** Requests whose client went away before the answer. */
  aborted = 0;
  private readonly server: Server;
  port = 0;

  constructor() {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const s: SeenHttp = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) };
        this.seen.push(s);
        res.on('close', () => {
          if (!res.writableFinished) this.aborted++;
        });
        this.answer(s, res);
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

export interface SeenGrpc {
  request: JsonObject;
  metadata: grpc.Metadata;
}

export type GrpcAnswer = (req: SeenGrpc, cb: grpc.sendUnaryData<JsonObject>) => void;

const CHECK_REQUEST = 'envoy.service.auth.v3.CheckRequest';
const CHECK_RESPONSE = 'envoy.service.auth.v3.CheckResponse';

export class GrpcAuthServer {
  readonly seen: SeenGrpc[] = [];
  answer: GrpcAnswer = (_q, cb) => cb(null, { status: { code: 0 } });
  cancelled = 0;
  private readonly server = new grpc.Server();
  port = 0;

  async start(): Promise<this> {
    const def: grpc.ServiceDefinition = {
      Check: {
        path: '/envoy.service.auth.v3.Authorization/Check',
        requestStream: false,
        responseStream: false,
        requestSerialize: (m: JsonObject) => Buffer.from(encodeJson(CHECK_REQUEST, m)),
        requestDeserialize: (b: Buffer) => decodeToJson(CHECK_REQUEST, b),
        responseSerialize: (m: JsonObject) => Buffer.from(encodeJson(CHECK_RESPONSE, m)),
        responseDeserialize: (b: Buffer) => decodeToJson(CHECK_RESPONSE, b),
      },
    };
    this.server.addService(def, {
      Check: (call: grpc.ServerUnaryCall<JsonObject, JsonObject>, cb: grpc.sendUnaryData<JsonObject>) => {
        call.on('cancelled', () => this.cancelled++);
        const s = { request: call.request, metadata: call.metadata };
        this.seen.push(s);
        this.answer(s, cb);
      },
    });
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    return this;
  }

  close(): Promise<void> {
    this.server.forceShutdown();
    return Promise.resolve();
  }
}

/** A STATIC cluster on 127.0.0.1:`port`, HTTP/2 when `h2` (what Istio gives a grpc service port). */
export function staticCluster(name: string, port: number, h2 = false, extra: Partial<envoy.config.cluster.v3.Cluster> = {}): envoy.config.cluster.v3.Cluster {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
    },
    ...(h2
      ? {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
        }
      : {}),
    ...extra,
  };
}

export function clusterManager(clusters: envoy.config.cluster.v3.Cluster[]): { clusters: ClusterManager; store: StatsStore } {
  const store = new StatsStore();
  const m = new ClusterManager(store, silentLogger());
  const r = m.applyCds(clusters, 'v1');
  if (r.errors.length > 0) throw new Error(r.errors.join('; '));
  return { clusters: m, store };
}
