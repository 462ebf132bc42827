// The authorization service's answer, as Envoy's ext_authz clients reduce it (filters/common/ext_authz/ext_authz.h
// Response): OK with request header mutations, Denied with the reply to send, or Error.
export type CheckStatus = 'ok' | 'denied' | 'error';

/**
 * How a header of the answer changes a header map (Envoy's HeaderMutationAction): `set` overwrites (or adds),
 * `add` adds beside existing values, `append` joins onto an existing value with ',' (a missing header stays missing), `addIfAbsent`
 * adds only when the header is missing, `overwriteIfExists` overwrites only when it is there.
 */
export type MutationAction = 'set' | 'add' | 'append' | 'addIfAbsent' | 'overwriteIfExists';

export interface HeaderMutation {
  key: string;
  value: string;
  action: MutationAction;
}

export interface AuthzResponse {
  status: CheckStatus;
  /** OK: the request's header mutations, in order. Denied: the reply's headers. */
  requestHeaders: HeaderMutation[];
  headersToRemove: string[];
  /** OK: mutations of the upstream's response on its way to the client. */
  responseHeaders: HeaderMutation[];
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
    requestHeaders: [],
    headersToRemove: [],
    responseHeaders: [],
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

/** Applies mutations to a flat [name, value, ...] header list (lowercase names), in order. */
export function applyMutations(h: string[], mutations: readonly HeaderMutation[]): void {
  for (const { key, value, action } of mutations) {
    let at = -1;
    for (let i = 0; i < h.length; i += 2) {
      if (h[i] === key) {
        at = i;
        break;
      }
    }
    switch (action) {
      case 'add':
        h.push(key, value);
        break;
      case 'append':
        // Envoy appends to an existing header only (a missing one stays missing).
        if (at >= 0) h[at + 1] = `${h[at + 1] as string},${value}`;
        break;
      case 'addIfAbsent':
        if (at < 0) h.push(key, value);
        break;
      case 'overwriteIfExists':
      case 'set':
        if (at < 0 && action === 'overwriteIfExists') break;
        for (let i = h.length - 2; i >= 0; i -= 2) if (h[i] === key) h.splice(i, 2);
        h.push(key, value);
        break;
    }
  }
}
