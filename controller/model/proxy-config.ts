// The gateway's ProxyConfig as Istio's agent builds it and sends it to istiod in its node metadata (PROXY_CONFIG):
// the mesh config's `defaultConfig` with the pod's `proxy.istio.io/config` annotation applied over it
// (pilot-agent ConstructProxyConfig -> getMeshConfig -> mesh.ApplyProxyConfig -> MergeProxyConfig), then validated
// (ValidateMeshConfigProxyConfig). istiod reads `gatewayTopology` from it for every gateway listener
// (pilot/pkg/networking/core/gateway.go buildGatewayConnectionManager): numTrustedProxies becomes the HCM's
// xff_num_trusted_hops, forwardClientCertDetails its XFCC handling, proxyProtocol a PROXY protocol listener filter.
//
// The annotation is YAML or JSON (YAML 1.1 through sigs.k8s.io/yaml, then golang/protobuf's jsonpb): fields by JSON
// or proto name, unknown fields ignored, a wrong type fails the whole annotation, `null` keeps the mesh default.
// The merge replaces whole top-level fields (a `gatewayTopology` in the annotation replaces the mesh default's
// whole `gatewayTopology`), except `proxyMetadata`, whose keys are merged, and the five `proxyHeaders` headers,
// each kept from the mesh default when the annotation leaves it out. An annotation Istio's agent cannot apply
// stops it from starting (the pod never becomes ready); meshgate refuses it likewise (see gatewayProxyConfig).
import { parseDocument } from 'yaml';
import { decodeProxyConfig, type GatewayTopology, type ProxyConfig } from './mesh-config.ts';

/** The pod annotation holding a ProxyConfig override (istio.io/api annotation.ProxyConfig). */
export const PROXY_CONFIG_ANNOTATION = 'proxy.istio.io/config';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** protobuf's JSON name of a field: `num_trusted_proxies` -> `numTrustedProxies` (a JSON name stays as it is). */
const jsonName = (key: string): string => key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/**
 * The fields of a decoded object by JSON name, as jsonpb reads them: a field written both ways takes the value
 * of its JSON-name spelling; a `null` field is left out (jsonpb skips it, keeping what was there).
 */
function fields(o: Obj): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const spelt = new Map<string, string>();
  for (const [k, v] of Object.entries(o)) {
    const name = jsonName(k);
    const prev = spelt.get(name);
    if (prev !== undefined && prev === name) continue; // the JSON name was already read: it wins
    spelt.set(name, k);
    out.set(name, v);
  }
  for (const [k, v] of [...out]) if (v === null) out.delete(k);
  return out;
}

/** ProxyConfig.ProxyHeaders fields MergeProxyConfig keeps from the base when the override leaves them unset. */
const PROXY_HEADERS = ['forwardedClientCert', 'requestId', 'attemptCount', 'server', 'envoyDebugHeaders'] as const;

/**
 * mesh.MergeProxyConfig: `overlay` (a decoded annotation) applied over `base`'s fields. Returns the merged object
 * in JSON names; decodeProxyConfig types and validates it.
 */
export function mergeProxyConfig(base: Readonly<Obj>, overlay: Readonly<Obj>): Obj {
  const out = Object.fromEntries(fields(base));
  for (const [name, v] of fields(overlay)) {
    const prev = out[name];
    if (name === 'proxyMetadata' && isObj(prev) && isObj(v)) out[name] = { ...prev, ...v };
    else if (name === 'proxyHeaders' && isObj(prev) && isObj(v)) {
      const given = fields(v);
      const kept = fields(prev);
      const merged = Object.fromEntries(given);
      for (const h of PROXY_HEADERS) if (!given.has(h) && kept.has(h)) merged[h] = kept.get(h);
      out[name] = merged;
    } else out[name] = v;
  }
  return out;
}

type AnnotationResult = { ok: true; overlay: Obj | undefined } | { ok: false; error: string };

/**
 * The `proxy.istio.io/config` annotation's value decoded as sigs.k8s.io/yaml does (YAML 1.1, JSON being YAML):
 * undefined for an empty or `null` annotation (nothing to apply), an error for invalid YAML or a value that is not
 * a map.
 */
function parseProxyConfigAnnotation(text: string): AnnotationResult {
  if (text === '') return { ok: true, overlay: undefined };
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: true });
  // The parser's first line (it names line and column; the rest is a source excerpt).
  if (doc.errors.length) return { ok: false, error: `not valid YAML or JSON: ${doc.errors[0]?.message.split('\n')[0] ?? ''}` };
  const v: unknown = doc.toJS({ maxAliasCount: 100 });
  if (v === null || v === undefined) return { ok: true, overlay: undefined };
  if (!isObj(v)) return { ok: false, error: `must be a map of ProxyConfig fields, got ${JSON.stringify(v)}` };
  return { ok: true, overlay: v };
}

export type GatewayProxyConfigResult = { ok: true; config: ProxyConfig } | { ok: false; error: string };

/**
 * The ProxyConfig the gateway's agent would send: `meshDefault` (meshConfig.defaultConfig) with the pod's
 * `proxy.istio.io/config` annotation applied over it, validated. An annotation that does not parse, holds a field of
 * the wrong type, or makes the merged config invalid is an error naming the field, as pilot-agent's
 * `failed to unmarshal mesh config from annotation` (and then it does not start).
 */
export function gatewayProxyConfig(meshDefault: ProxyConfig, annotations: Readonly<Record<string, string>> | undefined): GatewayProxyConfigResult {
  const text = annotations?.[PROXY_CONFIG_ANNOTATION];
  const parsed = text === undefined ? undefined : parseProxyConfigAnnotation(text);
  if (parsed && !parsed.ok) return { ok: false, error: `annotation ${PROXY_CONFIG_ANNOTATION}: ${parsed.error}` };
  let config = meshDefault;
  if (parsed?.overlay) {
    const decoded = decodeProxyConfig(mergeProxyConfig(meshDefault.raw, parsed.overlay), 'proxyConfig');
    if (decoded.errors.length) return { ok: false, error: `annotation ${PROXY_CONFIG_ANNOTATION}: ${decoded.errors.join('; ')}` };
    config = decoded.config;
  }
  const { error } = gatewayTopologySettings(config.gatewayTopology);
  if (error) return { ok: false, error: parsed?.overlay ? `annotation ${PROXY_CONFIG_ANNOTATION}: ${error}` : `meshConfig.defaultConfig.${error}` };
  return { ok: true, config };
}

type ForwardClientCertDetails = 'SANITIZE' | 'FORWARD_ONLY' | 'APPEND_FORWARD' | 'SANITIZE_SET' | 'ALWAYS_FORWARD_ONLY';

const ENVOY_XFCC: ReadonlySet<string> = new Set<ForwardClientCertDetails>([
  'SANITIZE',
  'FORWARD_ONLY',
  'APPEND_FORWARD',
  'SANITIZE_SET',
  'ALWAYS_FORWARD_ONLY',
]);

/** What a gateway HCM and listener take from gatewayTopology. */
export interface GatewayTopologySettings {
  /** HCM xff_num_trusted_hops. */
  xffNumTrustedHops: number;
  /** HCM forward_client_cert_details (the mesh enum less one: MeshConfigToEnvoyForwardClientCertDetails). */
  forwardClientCertDetails: ForwardClientCertDetails;
  /** HCM set_current_client_cert_details is set (subject, cert, dns, uri) only for APPEND_FORWARD and SANITIZE_SET. */
  setCurrentClientCertDetails: boolean;
  /** A PROXY protocol listener filter first on every TCP listener. */
  proxyProtocol: boolean;
}

/**
 * buildGatewayConnectionManager and buildGatewayListeners: no gatewayTopology is 0 trusted hops and SANITIZE_SET;
 * forwardClientCertDetails UNDEFINED (0) also means SANITIZE_SET. Returns an error for an enum number Envoy has no
 * value for (istiod would send it, and Envoy would reject the listener).
 */
export function gatewayTopologySettings(t: GatewayTopology | undefined): { settings: GatewayTopologySettings; error?: string } {
  const given = t?.forwardClientCertDetails ?? 'UNDEFINED';
  const known = given === 'UNDEFINED' || ENVOY_XFCC.has(given);
  const mode = (given === 'UNDEFINED' || !known ? 'SANITIZE_SET' : given) as ForwardClientCertDetails;
  const settings: GatewayTopologySettings = {
    xffNumTrustedHops: t?.numTrustedProxies ?? 0,
    forwardClientCertDetails: mode,
    setCurrentClientCertDetails: mode === 'APPEND_FORWARD' || mode === 'SANITIZE_SET',
    proxyProtocol: t?.proxyProtocol !== undefined,
  };
  if (known) return { settings };
  return {
    settings,
    error: `gatewayTopology.forwardClientCertDetails: ${given} is not a ForwardClientCertDetails value (UNDEFINED, SANITIZE, FORWARD_ONLY, APPEND_FORWARD, SANITIZE_SET, ALWAYS_FORWARD_ONLY or 0 to 5)`,
  };
}
