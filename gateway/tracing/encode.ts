// Spans on the wire: an OTLP ExportTraceServiceRequest (protobuf, for OTLP/gRPC and OTLP/HTTP, as Envoy's
// OpenTelemetry tracer sends) and a Zipkin v2 JSON list (Envoy's Zipkin tracer with collector_endpoint_version
// HTTP_JSON). Tags are string attributes, as Envoy's setTag writes them; the `error` tag also sets the OTLP status.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { KIND_CLIENT, type Span } from './span.ts';

const PROTO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'xds', 'protos', 'opentelemetry', 'trace.proto');
const PKG = 'opentelemetry.proto.collector.trace.v1';

let request: protobuf.Type | undefined;
let response: protobuf.Type | undefined;
function types(): { request: protobuf.Type; response: protobuf.Type } {
  if (!request || !response) {
    const root = new protobuf.Root().loadSync(PROTO, { keepCase: true });
    request = root.lookupType(`${PKG}.ExportTraceServiceRequest`);
    response = root.lookupType(`${PKG}.ExportTraceServiceResponse`);
  }
  return { request, response };
}

const STATUS_ERROR = 2;

function attributes(flat: readonly string[]): { key: string; value: { string_value: string } }[] {
  const out: { key: string; value: { string_value: string } }[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push({ key: flat[i] as string, value: { string_value: flat[i + 1] as string } });
  return out;
}

/** Nanoseconds as the decimal string protobufjs turns into a fixed64. */
const nanos = (us: number): string => String(BigInt(us) * 1000n);

/** One ExportTraceServiceRequest: one resource (service.name), Envoy's instrumentation scope, the spans. */
export function encodeOtlp(serviceName: string, spans: readonly Span[]): Uint8Array {
  const { request: T } = types();
  const msg = {
    resource_spans: [
      {
        resource: { attributes: attributes(['service.name', serviceName || 'unknown_service:envoy']) },
        scope_spans: [
          {
            scope: { name: 'envoy' },
            spans: spans.map((s) => ({
              trace_id: Buffer.from(s.traceId.padStart(32, '0'), 'hex'),
              span_id: Buffer.from(s.spanId, 'hex'),
              ...(s.parentId ? { parent_span_id: Buffer.from(s.parentId, 'hex') } : {}),
              trace_state: s.tracestate,
              name: s.name,
              kind: s.kind,
              start_time_unix_nano: nanos(s.startUs),
              end_time_unix_nano: nanos(s.endUs),
              attributes: attributes(s.tags),
              ...(s.tag('error') === 'true' ? { status: { code: STATUS_ERROR } } : {}),
            })),
          },
        ],
      },
    ],
  };
  return T.encode(T.fromObject(msg)).finish();
}

/** The partial_success of an OTLP answer (rejected spans and why), undefined when it does not decode. */
export function decodeOtlpResponse(body: Uint8Array): { rejected: number; message: string } | undefined {
  try {
    const o = types().response.toObject(types().response.decode(body), { longs: Number }) as {
      partial_success?: { rejected_spans?: number; error_message?: string };
    };
    return { rejected: o.partial_success?.rejected_spans ?? 0, message: o.partial_success?.error_message ?? '' };
  } catch {
    return undefined;
  }
}

/** Zipkin v2 spans (api/v2/spans JSON): ids in hex, microsecond times, the local endpoint, string tags. */
export function encodeZipkin(serviceName: string, localIp: string, spans: readonly Span[]): string {
  return JSON.stringify(
    spans.map((s) => {
      const tags: Record<string, string> = {};
      for (let i = 0; i < s.tags.length; i += 2) tags[s.tags[i] as string] = s.tags[i + 1] as string;
      return {
        traceId: s.traceId,
        ...(s.parentId ? { parentId: s.parentId } : {}),
        id: s.spanId,
        kind: s.kind === KIND_CLIENT ? 'CLIENT' : 'SERVER',
        name: s.name,
        timestamp: s.startUs,
        duration: Math.max(1, s.endUs - s.startUs),
        localEndpoint: { serviceName, ...(localIp.includes(':') ? { ipv6: localIp } : localIp ? { ipv4: localIp } : {}) },
        tags,
      };
    }),
  );
}
