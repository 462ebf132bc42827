// envoy.filters.http.jwt_authn (RequestAuthentication): the chain waits for the signature check; a failure is the
// filter's 401/403 with `www-authenticate`, a success leaves the claims in the dynamic metadata RBAC and routes
// read and, with clear_route_cache, makes the route be chosen again.
import type { JwtAuthnFilter } from '../../jwt/filter.ts';
import type { FilterCallbacks, HttpFilterFactory, StreamFilter } from '../filter.ts';

const JWT_AUTHN_FILTER = 'envoy.filters.http.jwt_authn';

export function jwtAuthnFilterFactory(jwt: JwtAuthnFilter): HttpFilterFactory {
  const instance: StreamFilter = {
    decodeHeaders(cb: FilterCallbacks) {
      // The filter edits cb.path and cb.headers (a token taken out, claim and payload headers added).
      jwt.authenticate(cb, cb.scheme, cb.authority).then(
        (r) => {
          if (cb.finished) return;
          // Outside the connection's error boundary: a bug here costs this stream only.
          try {
            cb.setDynamicMetadata(JWT_AUTHN_FILTER, r.metadata);
            if (!r.allowed) {
              cb.sendLocalReply({
                status: r.status ?? 401,
                body: r.body ?? '',
                details: r.details ?? '',
                headers: r.wwwAuthenticate ? ['www-authenticate', r.wwwAuthenticate] : undefined,
              });
              return;
            }
            if (r.clearRouteCache) cb.clearRouteCache();
            cb.continueDecoding();
          } catch (e) {
            cb.internalError(e, 'after JWT verification');
          }
        },
        (e: unknown) => {
          if (cb.finished) return;
          // A bug in verification costs this request only: 500, never an unverified pass.
          cb.log.error(
            { err: e instanceof Error ? e.message : String(e), stack: e instanceof Error ? e.stack : undefined },
            'jwt_authn failed unexpectedly; the request is refused',
          );
          cb.sendLocalReply({ status: 500, body: '', details: 'jwt_authn_internal_error' });
        },
      );
      return 'stop';
    },
  };
  return { name: JWT_AUTHN_FILTER, createFilter: () => instance };
}
