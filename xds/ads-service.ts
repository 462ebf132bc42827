// The Aggregated Discovery Service (state of the world) as a grpc-js service definition built from the
// protobufjs types, without @grpc/proto-loader.
import type * as grpc from '@grpc/grpc-js';
import protojson from 'protobufjs/ext/protojson.js';
import { lookupType, type Any, type JsonObject } from './protos.ts';

export interface XdsNode {
  id: string;
  cluster: string;
  /** google.protobuf.Struct as plain JSON. */
  metadata: JsonObject;
}

export interface DiscoveryRequest {
  version_info: string;
  node?: XdsNode;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail?: { code: number; message: string };
}

export interface DiscoveryResponse {
  version_info: string;
  resources: Any[];
  type_url: string;
  nonce: string;
}

const REQUEST = 'envoy.service.discovery.v3.DiscoveryRequest';
const RESPONSE = 'envoy.service.discovery.v3.DiscoveryResponse';

export function encodeRequest(r: DiscoveryRequest): Buffer {
  const t = lookupType(REQUEST);
  const json: JsonObject = {
    version_info: r.version_info,
    resource_names: r.resource_names,
    type_url: r.type_url,
    response_nonce: r.response_nonce,
  };
  if (r.node) json.node = r.node;
  if (r.error_detail) json.error_detail = r.error_detail;
  return Buffer.from(t.encode(protojson.fromJson(t, json)).finish());
}

export function decodeRequest(b: Buffer): DiscoveryRequest {
  const t = lookupType(REQUEST);
  const j = protojson.toJson(t, t.decode(b)) as Partial<DiscoveryRequest> & { node?: Partial<XdsNode> };
  const out: DiscoveryRequest = {
    version_info: j.version_info ?? '',
    resource_names: j.resource_names ?? [],
    type_url: j.type_url ?? '',
    response_nonce: j.response_nonce ?? '',
  };
  if (j.node) out.node = { id: j.node.id ?? '', cluster: j.node.cluster ?? '', metadata: j.node.metadata ?? {} };
  if (j.error_detail) out.error_detail = { code: j.error_detail.code ?? 0, message: j.error_detail.message ?? '' };
  return out;
}

export function encodeResponse(r: DiscoveryResponse): Buffer {
  const t = lookupType(RESPONSE);
  return Buffer.from(t.encode(r).finish());
}

export function decodeResponse(b: Buffer): DiscoveryResponse {
  const t = lookupType(RESPONSE);
  const m = t.decode(b) as unknown as DiscoveryResponse;
  return {
    version_info: m.version_info,
    type_url: m.type_url,
    nonce: m.nonce,
    resources: m.resources.map((a) => ({ type_url: a.type_url, value: a.value })),
  };
}

const ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

export const AdsServiceDefinition = {
  StreamAggregatedResources: {
    path: ADS_METHOD,
    requestStream: true,
    responseStream: true,
    originalName: 'StreamAggregatedResources',
    requestSerialize: encodeRequest,
    requestDeserialize: decodeRequest,
    responseSerialize: encodeResponse,
    responseDeserialize: decodeResponse,
  },
} satisfies grpc.ServiceDefinition;
