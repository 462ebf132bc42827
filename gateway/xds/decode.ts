// Decodes xDS resources (Any) to Envoy JSON. Unlike xds/protos.ts' unpackToJson it survives nested Any
// values whose type is not loaded (Istio's own filters such as istio.stats, TypedStruct configs): those
// are rendered as `{"@type": "<type url>"}`, so the parser that reads them names the type (and NACKs it unless
// the proxy knows it is harmless) instead of the whole decode failing.
import protobuf from 'protobufjs';
import protojson from 'protobufjs/ext/protojson.js';
import type { TypeUrls } from '../../xds/envoy.ts';
import { envoyRoot, lookupType, type Any } from '../../xds/protos.ts';
import type { Json } from './json.ts';

// Unknown Anys are swapped for a StringValue carrying this prefix and the original type URL.
const PLACEHOLDER_PREFIX = 'meshgate-unknown-any:';

function knownType(typeUrl: string): boolean {
  try {
    envoyRoot().lookupType(typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
    return true;
  } catch {
    return false;
  }
}

const STRING_VALUE = lookupType('google.protobuf.StringValue');

/** Replaces Any values of unknown types (recursively) by a placeholder that remembers the URL. */
function scrub(m: unknown, depth = 0): void {
  if (depth > 64 || m === null || typeof m !== 'object') return;
  if (Array.isArray(m)) {
    for (const x of m) scrub(x, depth + 1);
    return;
  }
  const msg = m as { $type?: protobuf.Type; type_url?: string; value?: Uint8Array } & Record<string, unknown>;
  if (msg.$type?.fullName === '.google.protobuf.Any' && typeof msg.type_url === 'string') {
    if (!knownType(msg.type_url)) {
      msg.value = STRING_VALUE.encode({ value: PLACEHOLDER_PREFIX + msg.type_url }).finish();
      msg.type_url = 'type.googleapis.com/google.protobuf.StringValue';
      return;
    }
    // Known type: decode, scrub inside, re-encode.
    const t = lookupType(msg.type_url);
    const inner = t.decode(msg.value ?? new Uint8Array());
    scrub(inner, depth + 1);
    msg.value = t.encode(inner).finish();
    return;
  }
  for (const k of Object.keys(msg)) {
    const v = msg[k];
    if (v && typeof v === 'object' && !(v instanceof Uint8Array)) scrub(v, depth + 1);
  }
}

function restore(j: unknown, depth = 0): void {
  if (depth > 64 || j === null || typeof j !== 'object') return;
  if (Array.isArray(j)) {
    for (const x of j) restore(x, depth + 1);
    return;
  }
  const o = j as Json;
  const t = o['@type'];
  const v = o.value;
  if (t === 'type.googleapis.com/google.protobuf.StringValue' && typeof v === 'string' && v.startsWith(PLACEHOLDER_PREFIX)) {
    const url = v.slice(PLACEHOLDER_PREFIX.length);
    for (const k of Object.keys(o)) delete o[k];
    o['@type'] = url;
    return;
  }
  for (const v of Object.values(o)) restore(v, depth + 1);
}

/**
 * A resource (Any) of type `typeUrl` -> its proto3 JSON, tolerant of unknown nested types. Throws on
 * undecodable bytes or another type.
 */
export function decodeResource<U extends keyof TypeUrls>(typeUrl: U, any: Any): TypeUrls[U] {
  if (any.type_url !== typeUrl) throw new Error(`a ${any.type_url} resource, not ${typeUrl}`);
  const t = lookupType(any.type_url);
  const msg = t.decode(any.value);
  let json: Json;
  try {
    json = protojson.toJson(t, msg) as Json;
  } catch {
    scrub(msg);
    json = protojson.toJson(t, msg) as Json;
    restore(json);
  }
  // protojson wrote it from the message's own schema: it has the message's shape.
  return json;
}
