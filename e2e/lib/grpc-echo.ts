// A gRPC echo service for the end-to-end suites (@grpc/grpc-js, raw-byte messages, no .proto): unary calls echo
// what they saw (metadata, size) with trailing metadata of their own, `fail` / `flaky` / `internal` / `slow` /
// `big:N` drive errors, retries, timeouts and large replies, and the three streaming kinds. In-process
// (echoServer) or as a pod's process: `node e2e/lib/grpc-echo.ts --host ADDR --port N` prints
// `grpc echo listening on ADDR:N` once it serves.
import * as grpc from '@grpc/grpc-js';

const raw = { serialize: (b: Buffer): Buffer => b, deserialize: (b: Buffer): Buffer => b };
const method = (name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> => ({
  path: `/meshgate.test.Echo/${name}`,
  requestStream,
  responseStream,
  requestSerialize: raw.serialize,
  requestDeserialize: raw.deserialize,
  responseSerialize: raw.serialize,
  responseDeserialize: raw.deserialize,
});
export const ECHO = {
  unary: method('Unary', false, false),
  count: method('Count', false, true),
  sum: method('Sum', true, false),
  chat: method('Chat', true, true),
};
export const EchoClient = grpc.makeGenericClientConstructor(ECHO, 'Echo');
export type Echo = InstanceType<typeof EchoClient> & {
  unary(req: Buffer, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void): grpc.ClientUnaryCall;
  count(req: Buffer): grpc.ClientReadableStream<Buffer>;
  sum(cb: (e: grpc.ServiceError | null, r?: Buffer) => void): grpc.ClientWritableStream<Buffer>;
  chat(): grpc.ClientDuplexStream<Buffer, Buffer>;
};

/** When the server saw a call cancelled (the `forever` stream). */
export const cancelled: number[] = [];

/** The echo server: what a call saw comes back in the reply, with trailing metadata of its own. */
export function echoServer(): grpc.Server {
  const server = new grpc.Server();
  server.addService(ECHO, {
    unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const text = call.request.toString();
      if (text === 'fail') return cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' });
      // UNAVAILABLE on the first attempt: Istio's default retry policy (retryOn ... unavailable) retries it.
      const attempt = String(call.metadata.get('x-envoy-attempt-count')[0] ?? '');
      if (text === 'flaky') return attempt === '1' ? cb({ code: grpc.status.UNAVAILABLE, details: 'try again' }) : cb(null, Buffer.from(`attempt ${attempt}`));
      if (text === 'internal') return cb({ code: grpc.status.INTERNAL, details: `attempt ${attempt}` });
      const reply = (): void => {
        const trailer = new grpc.Metadata();
        trailer.set('x-echo-trailer', 'bye');
        call.sendMetadata(new grpc.Metadata());
        const seen = {
          size: call.request.length,
          head: text.slice(0, 16),
          xfp: call.metadata.get('x-forwarded-proto')[0],
          requestId: call.metadata.get('x-request-id').length === 1,
          custom: call.metadata.get('x-custom')[0],
        };
        cb(null, Buffer.from(JSON.stringify(seen)), trailer);
      };
      if (text === 'slow') setTimeout(reply, 2000);
      else if (text.startsWith('big:')) cb(null, Buffer.alloc(parseInt(text.slice(4), 10), 'b'));
      else reply();
    },
    count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      if (call.request.toString() === 'forever') {
        // One message every 50 ms until the call is cancelled (what the cancellation test watches).
        const timer = setInterval(() => call.write(Buffer.from('tick')), 50);
        call.on('cancelled', () => {
          clearInterval(timer);
          cancelled.push(Date.now());
        });
        return;
      }
      const n = Number(call.request.toString());
      for (let i = 0; i < n; i++) call.write(Buffer.from(`#${i}`));
      call.end();
    },
    sum: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const parts: string[] = [];
      call.on('data', (b: Buffer) => parts.push(b.toString()));
      call.on('end', () => cb(null, Buffer.from(parts.join('+'))));
    },
    chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (b: Buffer) => call.write(Buffer.from(`re:${b.toString()}`)));
      call.on('end', () => call.end());
    },
  });
  return server;
}

if (import.meta.main) {
  const arg = (name: string, dflt: string): string => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
  };
  const host = arg('--host', '127.0.0.1');
  const port = Number(arg('--port', '50051'));
  const server = echoServer();
  server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) {
      process.stderr.write(`grpc echo: cannot listen on ${host}:${port}: ${err.message}\n`);
      process.exit(1);
    }
    process.stdout.write(`grpc echo listening on ${host}:${port}\n`);
  });
  process.on('SIGTERM', () => server.forceShutdown());
}
