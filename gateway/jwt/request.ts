// What the JWT filter reads of a request, and changes in it.

export interface JwtRequest {
  method: string;
  /**
   * :path with its query, '' when absent (CONNECT). The filter rewrites it when it removes a token it found in
   * a query parameter (forward: false).
   */
  path: string;
  /**
   * Flat [name, value, name, value...] with lower-case names and binary (latin1) values. The filter edits it
   * in place: it removes the headers it writes before writing them, adds forward_payload_header and
   * claim_to_headers, and removes a token's header (forward: false).
   */
  headers: string[];
}
