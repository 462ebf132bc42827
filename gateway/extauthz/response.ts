// The authorization service's answer, as Envoy's ext_authz clients reduce it (filters/common/ext_authz/ext_authz.h
// Response): OK with request header mutations, Denied with the reply to send, or Error.
export type CheckStatus = 'ok' | 'denied' | 'error';

export interface AuthzResponse {
  status: CheckStatus;
  /** Request headers to overwrite (setCopy). */
  headersToSet: [string, string][];
  /** Request headers to add beside existing ones (addCopy). */
  headersToAdd: [string, string][];
  /** Appended to an existing request header only, joined with ',' (appendCopy). */
  headersToAppend: [string, string][];
  headersToRemove: string[];
  /** Response headers on success: added to (addCopy) or set on (setCopy) the upstream's response. */
  responseHeadersToAdd: [string, string][];
  responseHeadersToSet: [string, string][];
  queryToSet: [string, string][];
  queryToRemove: string[];
  /** Denied: the reply's status and body. */
  statusCode: number;
  body: string;
  /** Set under envoy.filters.http.ext_authz (or .network.ext_authz). */
  dynamicMetadata: Record<string, unknown> | undefined;
  /** Why an error is one, for the debug log. */
  reason?: string;
}

export function emptyResponse(status: CheckStatus): AuthzResponse {
  return {
    status,
    headersToSet: [],
    headersToAdd: [],
    headersToAppend: [],
    headersToRemove: [],
    responseHeadersToAdd: [],
    responseHeadersToSet: [],
    queryToSet: [],
    queryToRemove: [],
    statusCode: 403,
    body: '',
    dynamicMetadata: undefined,
  };
}

export function errorResponse(reason: string): AuthzResponse {
  const r = emptyResponse('error');
  r.reason = reason;
  return r;
}
