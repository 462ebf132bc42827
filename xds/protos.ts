// Loads the Envoy v3 API protos shipped by @grpc/grpc-js-xds (never copied into this repo) and converts
// between binary messages, google.protobuf.Any and Envoy's proto3 JSON (snake_case, as config_dump prints).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import protojson from 'protobufjs/ext/protojson.js';
import { TYPE_PREFIX } from './type-urls.ts';

const require = createRequire(import.meta.url);
const XDS_DEPS = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const INCLUDE = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(XDS_DEPS, d));
const PROTOBUF_DIR = dirname(require.resolve('protobufjs/package.json'));
/** Protos this project writes itself: messages of Istio's own extensions, which no npm package ships. */
const OWN_PROTOS = join(dirname(fileURLToPath(import.meta.url)), 'protos');

/** Every type that can appear in a resource or inside an Any we produce must be loaded here. */
const ENTRY_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/grpc_stats/v3/config.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/path/match/uri_template/v3/uri_template_match.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/network/ext_authz/v3/ext_authz.proto',
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/network/dns_resolver/cares/v3/cares_dns_resolver.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/formatter/req_without_query/v3/req_without_query.proto',
  'envoy/extensions/access_loggers/filters/cel/v3/cel.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
  'envoy/config/trace/v3/zipkin.proto',
  'envoy/extensions/request_id/uuid/v3/uuid.proto',
  'envoy/admin/v3/config_dump.proto',
  'envoy/admin/v3/clusters.proto',
  'envoy/admin/v3/listeners.proto',
  'istio/stats.proto',
];

function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    if (isAbsolute(target) && existsSync(target)) return target;
    for (const inc of [...INCLUDE, OWN_PROTOS]) {
      const p = join(inc, target);
      if (existsSync(p)) return p;
    }
    // descriptor.proto is not one of protobufjs' bundled well-known types: point at its copy.
    if (target === 'google/protobuf/descriptor.proto') return join(PROTOBUF_DIR, 'google/protobuf/descriptor.proto');
    if (target.startsWith('google/protobuf/')) return target;
    throw new Error(`proto import not found: ${target}`);
  };
  root.loadSync(ENTRY_FILES, { keepCase: true });
  // Envoy's JSON (config_dump, docs) uses the proto field names: make protojson print them.
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const n of ns.nestedArray) {
      if (n instanceof protobuf.Type) for (const f of n.fieldsArray) (f as { jsonName: string }).jsonName = f.name;
      if (n instanceof protobuf.Namespace) walk(n);
    }
  };
  walk(root);
  return root;
}

let cached: protobuf.Root | undefined;
/** The process-wide root (loaded once, ~150 ms). */
export function envoyRoot(): protobuf.Root {
  cached ??= loadRoot();
  return cached;
}

export function lookupType(typeName: string): protobuf.Type {
  return envoyRoot().lookupType(typeName.startsWith(TYPE_PREFIX) ? typeName.slice(TYPE_PREFIX.length) : typeName);
}

export type JsonObject = { [k: string]: unknown };

export interface Any {
  type_url: string;
  value: Uint8Array;
}

/** Envoy JSON -> binary. Throws on unknown fields or enum names (catches translator typos). */
export function encodeJson(typeUrl: string, json: unknown): Uint8Array {
  const t = lookupType(typeUrl);
  return t.encode(protojson.fromJson(t, json)).finish();
}

/** Binary -> Envoy JSON (proto3 JSON mapping with proto field names). */
export function decodeToJson(typeUrl: string, bytes: Uint8Array): JsonObject {
  const t = lookupType(typeUrl);
  return protojson.toJson(t, t.decode(bytes)) as JsonObject;
}

export function packJson(typeUrl: string, json: unknown): Any {
  return { type_url: typeUrl.startsWith(TYPE_PREFIX) ? typeUrl : TYPE_PREFIX + typeUrl, value: encodeJson(typeUrl, json) };
}

export function unpackToJson(any: Any): JsonObject {
  return decodeToJson(any.type_url, any.value);
}

/** Round-trips Envoy JSON through the schema: validates it and normalises it (durations, defaults, Any). */
export function normalizeJson(typeUrl: string, json: unknown): JsonObject {
  return decodeToJson(typeUrl, encodeJson(typeUrl, json));
}
