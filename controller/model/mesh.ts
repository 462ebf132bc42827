// The mesh-wide settings istiod reads from its MeshConfig, at the defaults meshgate runs with: it has no
// MeshConfig of its own (pkg/config/mesh DefaultMeshConfig).

/** meshConfig.rootNamespace: DestinationRules and AuthorizationPolicies here apply mesh-wide. */
export const ROOT_NAMESPACE = 'istio-system';

/** meshConfig.trustDomain, with no trustDomainAliases. */
export const TRUST_DOMAIN = 'cluster.local';
