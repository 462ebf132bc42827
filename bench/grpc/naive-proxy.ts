// The "obvious" gRPC proxy the goal compares with: a @grpc/grpc-js server that forwards every unary call
// of the echo service to the backend with a @grpc/grpc-js client, metadata passed on.
// Usage: node naive-proxy.ts LISTEN_PORT BACKEND_HOST:PORT
import * as grpc from '@grpc/grpc-js';
import { ECHO, EchoClient, type Echo } from '../../e2e/lib/grpc-echo.ts';

const [port = '0', backend = ''] = process.argv.slice(2);
const upstream = new EchoClient(backend, grpc.credentials.createInsecure()) as Echo;
const server = new grpc.Server();
server.addService(
  { unary: ECHO.unary },
  {
    unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
      upstream.unary(call.request, call.metadata, {}, (err, reply) => (err ? cb(err) : cb(null, reply))),
  },
);
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  process.stdout.write(`naive proxy listening on 127.0.0.1:${port}\n`);
});
process.on('SIGTERM', () => server.forceShutdown());
