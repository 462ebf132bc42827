// Istio's sample external authorizer (samples/extauthz), as the "External Authorization" task deploys it: an HTTP
// check service and an envoy.service.auth.v3.Authorization/Check gRPC service that allow a request carrying
// `x-ext-authz: allow` and deny anything else with 403 and the sample's body, reporting the verdict in
// `x-ext-authz-check-result`. Both listen on ports the test owns (port 0 unless given) and record what they were
// asked. Run as a script it is the sample's "pod" in the Kubernetes e2e: `--host`, `--http-port`, `--grpc-port`.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { decodeToJson, encodeJson, type JsonObject } from '../../xds/protos.ts';

const CHECK_HEADER = 'x-ext-authz';
const ALLOWED = 'allow';
const RESULT_HEADER = 'x-ext-authz-check-result';
export const DENY_BODY = `denied by ext_authz for not found header \`${CHECK_HEADER}: ${ALLOWED}\` in the request`;
const PERMISSION_DENIED = 7;

export interface ExtAuthzSample {
  host: string;
  httpPort: number;
  grpcPort: number;
  /** Check requests the HTTP service got: method, path and headers (lowercase). */
  httpSeen: { method: string; path: string; headers: Record<string, string | string[] | undefined> }[];
  /** CheckRequests the gRPC service got, as proto3 JSON. */
  grpcSeen: JsonObject[];
  /** Stops the HTTP service only (the gateway then meets a connection failure). */
  stopHttp(): Promise<void>;
  close(): Promise<void>;
}

function httpHeaders(req: JsonObject): Record<string, string> {
  const attrs = req['attributes'] as JsonObject | undefined;
  const http = (attrs?.['request'] as JsonObject | undefined)?.['http'] as JsonObject | undefined;
  return (http?.['headers'] as Record<string, string> | undefined) ?? {};
}

export async function startExtAuthzSample(host: string, ports: { http?: number; grpc?: number } = {}): Promise<ExtAuthzSample> {
  const httpSeen: ExtAuthzSample['httpSeen'] = [];
  const grpcSeen: JsonObject[] = [];
  const http: Server = createServer((req, res) => {
    httpSeen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      if (req.headers[CHECK_HEADER] === ALLOWED) {
        res.writeHead(200, { [RESULT_HEADER]: 'allowed' });
        res.end();
        return;
      }
      res.writeHead(403, { [RESULT_HEADER]: 'denied', 'content-type': 'text/plain' });
      res.end(DENY_BODY);
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(ports.http ?? 0, host, resolve);
  });
  const server = new grpc.Server();
  const REQ = 'envoy.service.auth.v3.CheckRequest';
  const RES = 'envoy.service.auth.v3.CheckResponse';
  server.addService(
    {
      Check: {
        path: '/envoy.service.auth.v3.Authorization/Check',
        requestStream: false,
        responseStream: false,
        requestSerialize: (m: JsonObject) => Buffer.from(encodeJson(REQ, m)),
        requestDeserialize: (b: Buffer) => decodeToJson(REQ, b),
        responseSerialize: (m: JsonObject) => Buffer.from(encodeJson(RES, m)),
        responseDeserialize: (b: Buffer) => decodeToJson(RES, b),
      },
    },
    {
      Check: (call: grpc.ServerUnaryCall<JsonObject, JsonObject>, cb: grpc.sendUnaryData<JsonObject>) => {
        grpcSeen.push(call.request);
        const result = (v: string): JsonObject => ({ header: { key: RESULT_HEADER, value: v } });
        if (httpHeaders(call.request)[CHECK_HEADER] === ALLOWED) {
          cb(null, { status: { code: 0 }, ok_response: { headers: [result('allowed')] } });
          return;
        }
        cb(null, {
          status: { code: PERMISSION_DENIED },
          denied_response: { status: { code: 'Forbidden' }, body: DENY_BODY, headers: [result('denied')] },
        });
      },
    },
  );
  const grpcPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${ports.grpc ?? 0}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  let httpOpen = true;
  const stopHttp = (): Promise<void> => {
    if (!httpOpen) return Promise.resolve();
    httpOpen = false;
    http.closeAllConnections();
    return new Promise((resolve) => http.close(() => resolve()));
  };
  return {
    host,
    httpPort: (http.address() as AddressInfo).port,
    grpcPort,
    httpSeen,
    grpcSeen,
    stopHttp,
    close: async () => {
      server.forceShutdown();
      await stopHttp();
    },
  };
}

if (import.meta.main) {
  const arg = (name: string, dflt: string): string => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
  };
  const host = arg('--host', '127.0.0.1');
  startExtAuthzSample(host, { http: Number(arg('--http-port', '8000')), grpc: Number(arg('--grpc-port', '9000')) }).then(
    (s) => {
      process.stdout.write(`ext-authz listening on ${host}:${s.httpPort} (http) and ${host}:${s.grpcPort} (grpc)\n`);
      process.on('SIGTERM', () => void s.close().then(() => process.exit(0)));
    },
    (e: unknown) => {
      process.stderr.write(`ext-authz: cannot listen on ${host}: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
