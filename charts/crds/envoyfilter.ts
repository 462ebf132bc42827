// OpenAPI v3 schema of Istio's networking.istio.io EnvoyFilter, with the limits and CEL rules of Istio's CRD (patch
// values are free-form Envoy config, kept as written). meshgate does not apply EnvoyFilters: its proxy implements the
// subset of Envoy Istio gateways use, and patches written for Envoy's full API would not mean the same. The kind is
// served so Istio manifests apply, and objects get an Unsupported status condition.
import { labelsSelector, targetRefs } from './common.ts';
import { atMostOneOf, enumOf, int32, list, object, port, rule, string, stringMap, uint32 } from './openapi.ts';

const filterMatch = object(
  { name: string('Name of the filter.'), subFilter: object({ name: string('Name of the sub-filter.') }, { description: 'A filter inside the filter.' }) },
  { description: 'A filter of the chain.' },
);

const listenerMatch = object(
  {
    portNumber: uint32('Port of the listener.'),
    portName: string('Not implemented by Istio.'),
    filterChain: object(
      {
        name: string('Name of the filter chain.'),
        sni: string('SNI of the filter chain.'),
        transportProtocol: string('raw_buffer or tls.'),
        applicationProtocols: string('Application protocols, comma-separated.'),
        filter: filterMatch,
        destinationPort: uint32('Destination port of the filter chain.'),
      },
      { description: 'A filter chain of the listener.' },
    ),
    listenerFilter: string('A listener filter.'),
    name: string('Name of the listener.'),
  },
  { description: 'Matches a listener.' },
);

const routeConfigurationMatch = object(
  {
    portNumber: uint32('Port of the route configuration.'),
    portName: string('Port name of the gateway server.'),
    gateway: string('The Istio Gateway (namespace/name).'),
    vhost: object(
      {
        name: string('Name of the virtual host.'),
        domainName: string('A domain of the virtual host.'),
        route: object(
          { name: string('Name of the route.'), action: enumOf(['ANY', 'ROUTE', 'REDIRECT', 'DIRECT_RESPONSE'], 'Action of the route.') },
          { description: 'A route of the virtual host.' },
        ),
      },
      { description: 'A virtual host.' },
    ),
    name: string('Name of the route configuration.'),
  },
  { description: 'Matches a route configuration.' },
);

const match = object(
  {
    context: enumOf(['ANY', 'SIDECAR_INBOUND', 'SIDECAR_OUTBOUND', 'GATEWAY', 'WAYPOINT'], 'Which proxies and traffic.'),
    proxy: object(
      { proxyVersion: string('Regular expression on the proxy version.'), metadata: stringMap('Node metadata to match.') },
      { description: 'Matches proxies.' },
    ),
    listener: listenerMatch,
    routeConfiguration: routeConfigurationMatch,
    cluster: object(
      { portNumber: uint32('Service port.'), service: string('Service FQDN.'), subset: string('Subset.'), name: string('Cluster name.') },
      { description: 'Matches a cluster.' },
    ),
    waypoint: object(
      {
        filter: filterMatch,
        route: object({ name: string('Name of the route.') }, { description: 'A route.' }),
        portNumber: port('Port of the waypoint listener.'),
      },
      { description: 'Matches waypoint configuration.' },
    ),
  },
  {
    description: 'What to patch.',
    exclusive: [['listener', 'routeConfiguration', 'cluster', 'waypoint']],
    rules: [
      rule(
        'has(self.context) ? ((self.context == "WAYPOINT") ? has(self.waypoint) : !has(self.waypoint)) : !has(self.waypoint)',
        'only support waypointMatch when context is WAYPOINT',
      ),
    ],
  },
);

const patch = object(
  {
    operation: enumOf(
      ['INVALID', 'MERGE', 'ADD', 'REMOVE', 'INSERT_BEFORE', 'INSERT_AFTER', 'INSERT_FIRST', 'REPLACE', 'MERGE_AND_REPLACE_LIST'],
      'How to patch.',
    ),
    value: { description: 'Envoy configuration of the patch, as written.', type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    filterClass: enumOf(['UNSPECIFIED', 'AUTHN', 'AUTHZ', 'STATS'], 'Where an inserted filter goes.'),
  },
  { description: 'The patch.' },
);

export const envoyFilterSpec = object(
  {
    workloadSelector: labelsSelector('The workloads the patches apply to.'),
    targetRefs,
    configPatches: list(
      object(
        {
          applyTo: enumOf(
            [
              'INVALID',
              'LISTENER',
              'FILTER_CHAIN',
              'NETWORK_FILTER',
              'HTTP_FILTER',
              'ROUTE_CONFIGURATION',
              'VIRTUAL_HOST',
              'HTTP_ROUTE',
              'CLUSTER',
              'EXTENSION_CONFIG',
              'BOOTSTRAP',
              'LISTENER_FILTER',
            ],
            'What the patch applies to.',
          ),
          match,
          patch,
        },
        { description: 'A patch.' },
      ),
      'Patches, applied in order.',
    ),
    priority: int32('Order among EnvoyFilters.'),
  },
  {
    description: 'Patches to the Envoy configuration istiod generates.',
    rules: [atMostOneOf(['workloadSelector', 'targetRefs'], 'only one of targetRefs or workloadSelector can be set')],
  },
);
