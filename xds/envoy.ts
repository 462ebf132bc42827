// The typed contract: Envoy's messages in the proto3 JSON form both halves exchange (generated from the
// protos by xds/gen-types.ts), and the few helpers that build or read the JSON-only pieces (Any, Duration,
// 64-bit integers) the same way on both sides.
import type { Any, Duration, Int64, TypeUrls } from './generated/envoy.d.ts';

export type { Any, Duration, Int64, JsonValue, TypeUrls, envoy, stats } from './generated/envoy.d.ts';

/** A message wrapped in an Any, in proto3 JSON: its type URL beside its fields. */
export function typedAny<U extends keyof TypeUrls>(typeUrl: U, message: TypeUrls[U]): Any {
  return { '@type': typeUrl, ...message };
}

/** Reads an Any as the message of `typeUrl` (the caller has checked its `@type`). */
export function unpackAny<U extends keyof TypeUrls>(any: Any, _typeUrl: U): TypeUrls[U] {
  // proto3 JSON of an Any is the message's own fields beside '@type': the decoder produced them from
  // the message's schema, so they have its shape.
  return any;
}

/** A proto3 JSON Duration in milliseconds, `dflt` when absent. */
export function durationMs(d: Duration | undefined, dflt: number): number {
  return d === undefined ? dflt : Math.round(Number(d.slice(0, -1)) * 1000);
}

/** A 64-bit integer field (a string in proto3 JSON) as a number, `dflt` when absent. */
export function int64(v: Int64 | undefined, dflt = 0): number {
  return v === undefined ? dflt : Number(v);
}
