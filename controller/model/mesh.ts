// The trust domain istiod's RBAC translation matches principals against when no mesh config says otherwise
// (pkg/config/mesh DefaultMeshConfig); the mesh config itself is read by mesh-config.ts.

/** meshConfig.trustDomain, with no trustDomainAliases. */
export const TRUST_DOMAIN = 'cluster.local';
