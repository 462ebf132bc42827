// OpenAPI v3 schemas of Istio's extensions.istio.io WasmPlugin and TrafficExtension, with the limits and CEL rules of
// Istio's CRDs. meshgate runs no Wasm or Lua filters: both kinds are served so Istio manifests apply, and objects get
// an Unsupported status condition (reason Unsupported, controller/sources/kube/status.ts).
import { matchLabelsSelector, targetRef, targetRefs } from './common.ts';
import { atMostOneOf, enumOf, int32, list, object, rule, string, type Schema } from './openapi.ts';

const match = list(
  object(
    {
      mode: enumOf(['UNDEFINED', 'CLIENT', 'SERVER', 'CLIENT_AND_SERVER'], 'Which traffic of the workload.'),
      ports: list(object({ number: { type: 'integer', minimum: 1, maximum: 65535 } }, { required: ['number'] }), 'Ports of the traffic.', {
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['number'],
      }),
    },
    { description: 'Traffic the plugin applies to.' },
  ),
  'Traffic selectors, OR-ed; none: all traffic.',
);

const url = (schemes: string): Schema => {
  const list = `["", "http", "https", ${schemes}]`;
  return string('Where the module is fetched from: oci://, file://, http(s)://; no scheme is oci.', {
    minLength: 1,
    'x-kubernetes-validations': [
      rule(
        `isURL(self) ? (url(self).getScheme() in ${list}) : (isURL("http://" + self) &&\nurl("http://" + self).getScheme() in ${list})`,
        'url must have schema one of [http, https, file, oci]',
      ),
    ],
  });
};

const wasmFields = (schemes: string): Record<string, Schema> => ({
  url: url(schemes),
  sha256: string('SHA-256 of the module.', { pattern: '(^$|^[a-f0-9]{64}$)' }),
  imagePullPolicy: enumOf(['UNSPECIFIED_POLICY', 'IfNotPresent', 'Always'], 'When an OCI image is pulled again.'),
  imagePullSecret: string('Secret with the credentials of the OCI registry.', { minLength: 1, maxLength: 253 }),
  verificationKey: string('Public key that verifies the module signature.'),
  pluginConfig: { description: 'Configuration handed to the plugin.', type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
  pluginName: string('Name of the plugin in the module.', { minLength: 1, maxLength: 256 }),
  failStrategy: enumOf(['FAIL_CLOSE', 'FAIL_OPEN', 'FAIL_RELOAD'], 'What happens when the plugin fails to load or run.'),
  vmConfig: object(
    {
      env: list(
        object(
          {
            name: string('Variable name.', { minLength: 1, maxLength: 256 }),
            valueFrom: enumOf(['INLINE', 'HOST'], 'Inline value or the host environment.'),
            value: string('The value (INLINE).', { maxLength: 2048 }),
          },
          {
            required: ['name'],
            rules: [rule('(has(self.valueFrom) ? self.valueFrom : "") != "HOST" || !has(self.value)', 'value may only be set when valueFrom is INLINE')],
          },
        ),
        'Environment of the VM.',
        { maxItems: 256, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] },
      ),
    },
    { description: 'Settings of the Wasm VM.' },
  ),
  type: enumOf(['UNSPECIFIED_PLUGIN_TYPE', 'HTTP', 'NETWORK'], 'HTTP or network filter.'),
});

export const wasmPluginSpec = object(
  {
    selector: matchLabelsSelector('The workloads the plugin applies to.'),
    targetRef,
    targetRefs,
    ...wasmFields('"oci", "file"'),
    phase: enumOf(['UNSPECIFIED_PHASE', 'AUTHN', 'AUTHZ', 'STATS'], 'Where in the filter chain the plugin runs.'),
    priority: int32('Order among plugins of the same phase.', { nullable: true }),
    match,
  },
  {
    description: 'A Wasm module loaded as a filter by Istio proxies.',
    required: ['url'],
    rules: [atMostOneOf(['selector', 'targetRef', 'targetRefs'], 'only one of targetRefs or selector can be set')],
  },
);

export const trafficExtensionSpec = object(
  {
    selector: matchLabelsSelector('The workloads the extension applies to.'),
    targetRefs,
    phase: enumOf(['UNSPECIFIED', 'AUTHN', 'AUTHZ', 'STATS'], 'Where in the filter chain the extension runs.'),
    priority: int32('Order among extensions of the same phase.', { nullable: true }),
    match,
    wasm: object(wasmFields('"file", "oci"'), { description: 'A Wasm module.', required: ['url'] }),
    lua: object({ inlineCode: string('The Lua source.', { minLength: 1, maxLength: 65536 }) }, { description: 'A Lua script.', required: ['inlineCode'] }),
  },
  {
    description: 'A Wasm or Lua filter loaded by Istio proxies.',
    exclusive: [['wasm', 'lua']],
    rules: [
      atMostOneOf(['selector', 'targetRefs'], 'only one of targetRefs or selector can be set'),
      rule('has(self.wasm) != has(self.lua)', 'exactly one of wasm or lua must be set'),
    ],
  },
);
