// What the RBAC engine reads of a request, and the values derived from it that several matchers share (parsed
// addresses, the path without its query). Those are computed on first use and kept until the next request
// brings different text, so an engine evaluation allocates nothing for them: a connection's requests carry
// the same address strings, and the proxy runs one request at a time per worker thread.
import { newIpAddr, parseIp, type IpAddr } from './ip.ts';

export interface RbacRequest {
  method: string;
  authority: string;
  /** :path as the filter chain sees it (after the connection manager's normalization), with its query. '' when absent (CONNECT). */
  path: string;
  scheme: string;
  /** Flat [name, value, name, value...] with lower-case names (router/matchers.ts MatchRequest). */
  headers: readonly string[];
  /** The downstream peer address (the socket's remoteAddress, IPv4 or IPv6 text). */
  directRemoteIp: string;
  /** The "remote" address after x-forwarded-for / trusted hops; equal to directRemoteIp when none. */
  remoteIp: string;
  /** The local address and port the connection arrived on. */
  destinationIp: string;
  destinationPort: number;
  /** The TLS requested server name; undefined without TLS or SNI. */
  sni: string | undefined;
  /** The validated client certificate (mutual TLS). `subject` is in RFC 2253 form, as Envoy prints it. */
  peerCertificate: { uriSans: string[]; dnsSans: string[]; subject: string } | undefined;
  /**
   * Whether the downstream connection is TLS (Envoy: connection.ssl() is set). Principal.authenticated
   * matches any TLS connection when it has no principal_name, client certificate or not; when omitted, taken
   * to be `peerCertificate !== undefined`.
   */
  tls?: boolean;
  /**
   * Dynamic metadata lookup: the value at `path` in filter `filter`'s metadata (a string, number, boolean,
   * null, array or object), undefined when absent or when a step of the path is not an object
   * (Envoy Config::Metadata::metadataValue; `metadataValue` in metadata.ts does exactly that walk).
   */
  metadata(filter: string, path: readonly string[]): unknown;
}

/** A compiled permission or principal. */
export type RbacMatcher = (req: RbacRequest) => boolean;

class AddressSlot {
  private text: string | undefined;
  private mapped = false;
  private readonly addr = newIpAddr();
  get(text: string, mappedAsV4: boolean): IpAddr {
    if (text !== this.text || mappedAsV4 !== this.mapped) {
      parseIp(text, this.addr, mappedAsV4);
      this.text = text;
      this.mapped = mappedAsV4;
    }
    return this.addr;
  }
}

const directSlot = new AddressSlot();
const remoteSlot = new AddressSlot();
const destinationSlot = new AddressSlot();

/**
 * The downstream peer (Envoy's directRemoteAddress, and the connection's remoteAddress source_ip reads: the
 * proxy has no PROXY protocol, so they are the same). A socket address: IPv4-mapped text is IPv4.
 */
export function directRemoteAddress(req: RbacRequest): IpAddr {
  return directSlot.get(req.directRemoteIp, true);
}

/**
 * The remote address after x-forwarded-for. When it is the peer's own text it is the socket address (IPv4-mapped
 * text is IPv4); an address taken from x-forwarded-for is parsed as Envoy's parseInternetAddress does, where
 * ::ffff:a.b.c.d stays IPv6.
 */
export function remoteAddress(req: RbacRequest): IpAddr {
  return remoteSlot.get(req.remoteIp, req.remoteIp === req.directRemoteIp);
}

/** The local address the connection arrived on (a socket address). */
export function destinationAddress(req: RbacRequest): IpAddr {
  return destinationSlot.get(req.destinationIp, true);
}

let pathText: string | undefined;
let pathStripped = '';

/** The path up to its first '?' or '#' (Envoy Http::PathUtil::removeQueryAndFragment). */
export function pathWithoutQuery(path: string): string {
  if (path !== pathText) {
    let end = path.length;
    for (let i = 0; i < path.length; i++) {
      const c = path.charCodeAt(i);
      if (c === 63 || c === 35) {
        end = i;
        break;
      }
    }
    pathStripped = end === path.length ? path : path.slice(0, end);
    pathText = path;
  }
  return pathStripped;
}

/** Envoy connection.ssl() != nullptr. */
export function isTls(req: RbacRequest): boolean {
  return req.tls ?? req.peerCertificate !== undefined;
}
