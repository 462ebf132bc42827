// SDS resource names with a meaning of their own, as Istio's agent serves them: the controller writes them
// into TLS contexts and the proxy resolves them (pilot/pkg/model/credentials, security/pkg/nodeagent).

/** `file-cert:<cert>~<key>`: a certificate and key read from files in the proxy's file system. */
export const FILE_CERT_PREFIX = 'file-cert:';
/** `file-root:<ca>`: a CA bundle read from a file. */
export const FILE_ROOT_PREFIX = 'file-root:';
/** `file-root:system`: the OS trust store (VERIFY_CERTIFICATE_AT_CLIENT, the default CA of DestinationRules). */
export const SYSTEM_ROOT = 'file-root:system';
