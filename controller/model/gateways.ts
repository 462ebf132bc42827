// Which Gateways apply to this gateway proxy and how their servers merge into listeners
// (pilot/pkg/model/push_context.go mergeGateways + pilot/pkg/model/gateway.go mergeGateways/resolvePorts).
import type { Config } from './config.ts';
import { GATEWAY_SERVICE_ANNOTATION } from './gateway-api.ts';
import type { GatewaySpec, Server } from './istio-types.ts';
import { isSubset, type Labels } from './labels.ts';
import { isHTTP, parseProtocol, type Protocol } from './protocol.ts';

export interface ServiceTarget {
  /** Service creation time then hostname order (SetServiceTargets). */
  serviceName: string;
  namespace: string;
  creationTimestamp: string;
  hostname: string;
  port: number;
  targetPort: number;
  /** `experimental.istio.io/disable-gateway-port-translation` on the Service. */
  disableTranslation: boolean;
}

export interface GatewayServer {
  /** The server with hosts sanitized (`./h` -> `<gwNs>/h`, `*\/h` -> `h`, `*\/*` -> `*`). */
  server: Server;
  protocol: Protocol;
  /** `<gateway namespace>/<gateway name>`: what VirtualService `gateways` entries name. */
  gatewayName: string;
  gateway: Config<GatewaySpec>;
  /** Index of the server in the Gateway's spec.servers (for error field paths). */
  index: number;
  /** The port the listener binds (after port translation). */
  resolvedPort: number;
}

interface ServerPort {
  number: number;
  protocol: Protocol;
  bind: string;
}

export interface MergedServers {
  serverPort: ServerPort;
  servers: GatewayServer[];
  routeName: string;
}

interface RejectedServer {
  gateway: Config<GatewaySpec>;
  index: number;
  reason: string;
}

export interface MergedGateway {
  /** One per listener, in creation order of the servers that created them. */
  serverPorts: ServerPort[];
  merged: Map<string, MergedServers>;
  serversByRouteName: Map<string, GatewayServer[]>;
  rejected: RejectedServer[];
}

const serverPortKey = (sp: ServerPort): string => `${sp.number}/${sp.protocol}/${sp.bind}`;

/**
 * The Service targets of a Gateway bound to Services (one converted from the Gateway API: the
 * `internal.istio.io/gateway-service` annotation), by Gateway; a Gateway absent from it selects pods by labels.
 */
export type BoundTargets = ReadonlyMap<Config<GatewaySpec>, readonly ServiceTarget[]>;

/**
 * PushContext.mergeGateways' selection: a Gateway bound to Services applies when one of the proxy's Service targets is
 * of those hostnames and in the Gateway's namespace (and then only those targets translate its ports); any other
 * Gateway when its selector is a subset of the proxy labels (empty selector: every gateway proxy).
 */
export function selectGateways(
  gateways: readonly Config<GatewaySpec>[],
  labels: Labels,
  targets: readonly ServiceTarget[],
): { selected: Config<GatewaySpec>[]; bound: BoundTargets } {
  const selected: Config<GatewaySpec>[] = [];
  const bound = new Map<Config<GatewaySpec>, readonly ServiceTarget[]>();
  for (const g of gateways) {
    const services = g.annotations[GATEWAY_SERVICE_ANNOTATION];
    if (services === undefined) {
      if (isSubset(g.spec.selector, labels)) selected.push(g);
      continue;
    }
    const known = new Set(services.split(','));
    const mine = targets.filter((t) => known.has(t.hostname) && t.namespace === g.namespace);
    if (mine.length === 0) continue;
    selected.push(g);
    bound.set(g, mine);
  }
  return { selected, bound };
}

function sanitizeServerHosts(hosts: readonly string[], namespace: string): string[] {
  const out: string[] = [];
  for (const h of hosts) {
    const i = h.indexOf('/');
    if (i < 0) {
      out.push(h);
      continue;
    }
    const ns = h.slice(0, i);
    const name = h.slice(i + 1);
    if (ns === '.') out.push(`${namespace}/${name}`);
    else if (ns === '*') {
      if (name === '*') return ['*'];
      out.push(name);
    } else out.push(h);
  }
  return out;
}

/**
 * resolvePorts. In legacy selector mode the first Service target (creation order) whose service port equals the
 * server port gives its targetPort; with no match the Gateway port is used as-is. A Gateway bound to Services takes
 * every target port of that service port, and none when the Service lacks it (the server is then a no-op).
 */
function resolvePorts(number: number, targets: readonly ServiceTarget[], legacy: boolean): number[] {
  if (!legacy) return [...new Set(targets.filter((t) => t.port === number).map((t) => t.targetPort))];
  for (const t of targets) {
    if (t.disableTranslation) continue;
    if (t.port === number) return [t.targetPort];
  }
  return [number];
}

function isPassthrough(s: Server): boolean {
  return s.tls?.mode === undefined ? s.tls !== undefined : s.tls.mode === 'PASSTHROUGH' || s.tls.mode === 'AUTO_PASSTHROUGH';
}

/** gateway.IsTLSServer: TLS settings on a non-HTTP protocol (HTTPS, TLS). */
function isTLSServer(s: Server): boolean {
  return s.tls !== undefined && s.tls !== null && !isHTTP(parseProtocol(s.port.protocol));
}

/** gateway.IsHTTPServer: HTTP-like, or HTTPS terminated at the gateway. */
export function isHTTPServer(s: Server): boolean {
  const p = parseProtocol(s.port.protocol);
  if (isHTTP(p)) return true;
  return p === 'HTTPS' && !isPassthrough(s);
}

/** gatewayRDSRouteName: `http.<resolvedPort>[.<bind>]`, `https.<port>.<portName>.<gw>.<ns>[.<bind>]`, or ''. */
function gatewayRDSRouteName(s: Server, resolvedPort: number, gw: Config<GatewaySpec>): string {
  const p = parseProtocol(s.port.protocol);
  const bind = s.bind ? `.${s.bind}` : '';
  if (isHTTP(p)) return `http.${resolvedPort}${bind}`;
  if (p === 'HTTPS' && !isPassthrough(s)) return `https.${s.port.number}.${s.port.name}.${gw.name}.${gw.namespace}${bind}`;
  return '';
}

/** canMergeProtocols: the newcomer must be HTTP-like and the current one HTTP-like or the same. */
function canMergeProtocols(current: Protocol, p: Protocol): boolean {
  return (isHTTP(current) || current === p) && isHTTP(p);
}

/**
 * mergeGateways for the HTTP/HTTPS/TCP/TLS rules. Gateways must come sorted by creation time, name,
 * namespace: the first server on a port wins conflicts.
 */
export function mergeGateways(gateways: readonly Config<GatewaySpec>[], targets: readonly ServiceTarget[], bound: BoundTargets = new Map()): MergedGateway {
  const gatewayPorts = new Set<number>();
  const nonPlainTextBinds = new Map<number, Set<string>>();
  const merged = new Map<string, MergedServers>();
  const serverPorts: ServerPort[] = [];
  const plainTextServers = new Map<number, ServerPort>();
  const serversByRouteName = new Map<string, GatewayServer[]>();
  const tlsHostsByPort = new Map<number, Map<string, string>>();
  const rejected: RejectedServer[] = [];

  const addPlainText = (gs: GatewayServer, sp: ServerPort, routeName: string): void => {
    if (!isTLSServer(gs.server)) plainTextServers.set(sp.number, sp);
    if (isHTTPServer(gs.server)) serversByRouteName.set(routeName, [gs]);
    merged.set(serverPortKey(sp), { serverPort: sp, servers: [gs], routeName });
    serverPorts.push(sp);
  };

  for (const gw of gateways) {
    const gatewayName = `${gw.namespace}/${gw.name}`;
    const addServer = (server: Server, protocol: Protocol, resolvedPort: number, index: number): void => {
      const gs: GatewayServer = { server, protocol, gatewayName, gateway: gw, index, resolvedPort };
      const reject = (reason: string): void => {
        rejected.push({ gateway: gw, index, reason });
      };
      const routeName = gatewayRDSRouteName(server, resolvedPort, gw);
      const bind = server.bind ?? '';
      if (server.tls) {
        // Envoy rejects duplicate filter-chain matches, so a host may be claimed once per port and bind
        // by servers with TLS settings (this includes HTTP servers with only httpsRedirect).
        let known = tlsHostsByPort.get(resolvedPort);
        if (!known) tlsHostsByPort.set(resolvedPort, (known = new Map<string, string>()));
        const dups = server.hosts.filter((h) => known.get(h) === bind);
        if (dups.length > 0) {
          reject(`skipping server: duplicate host names ${dups.join(', ')} already served with TLS settings on port ${resolvedPort}`);
          return;
        }
        for (const h of server.hosts) known.set(h, bind);
      }
      const sp: ServerPort = { number: resolvedPort, protocol, bind };
      if (!gatewayPorts.has(resolvedPort)) {
        gatewayPorts.add(resolvedPort);
        addPlainText(gs, sp, routeName);
        return;
      }
      const current = plainTextServers.get(resolvedPort);
      if (current) {
        if (!canMergeProtocols(protocol, current.protocol) && current.bind === bind) {
          reject(`skipping server on port ${resolvedPort} (${server.port.protocol}): conflict with existing server ${current.number}.${current.protocol}`);
          return;
        }
        if (routeName === '' && current.bind === bind) {
          reject(`skipping server on port ${resolvedPort} (${server.port.protocol}): could not build RDS name from server`);
          return;
        }
        if (current.bind !== bind) {
          const existing = merged.get(serverPortKey(sp));
          if (!existing) addPlainText(gs, sp, routeName);
          else {
            existing.routeName = routeName;
            existing.servers.push(gs);
            serversByRouteName.set(routeName, [...(serversByRouteName.get(routeName) ?? []), gs]);
          }
        } else {
          merged.get(serverPortKey(current))?.servers.push(gs);
          serversByRouteName.set(routeName, [...(serversByRouteName.get(routeName) ?? []), gs]);
        }
        return;
      }
      if (!isTLSServer(server)) {
        plainTextServers.set(resolvedPort, sp);
        if (isHTTPServer(server)) serversByRouteName.set(routeName, [gs]);
        merged.set(serverPortKey(sp), { serverPort: sp, servers: [gs], routeName });
        serverPorts.push(sp);
        return;
      }
      if (isHTTPServer(server)) {
        if (routeName === '') {
          reject(`skipping server on port ${resolvedPort}: could not build RDS name from server`);
          return;
        }
        if (serversByRouteName.has(routeName)) {
          reject(`skipping server on port ${resolvedPort}: non unique port name for HTTPS port (${routeName})`);
          return;
        }
        serversByRouteName.set(routeName, [gs]);
      }
      let binds = nonPlainTextBinds.get(resolvedPort);
      let newBind = false;
      if (!binds) nonPlainTextBinds.set(resolvedPort, (binds = new Set()));
      if (!binds.has(bind)) {
        binds.add(bind);
        newBind = true;
      }
      if (!server.tls && !newBind) {
        reject(`skipping server on port ${resolvedPort}: TLS server without TLS options`);
        return;
      }
      const existing = merged.get(serverPortKey(sp));
      if (!existing) {
        merged.set(serverPortKey(sp), { serverPort: sp, servers: [gs], routeName: '' });
        serverPorts.push(sp);
      } else existing.servers.push(gs);
    };
    const boundTargets = bound.get(gw);
    (gw.spec.servers ?? []).forEach((raw, index) => {
      const server: Server = { ...raw, hosts: sanitizeServerHosts(raw.hosts, gw.namespace) };
      const protocol = parseProtocol(server.port.protocol);
      for (const resolvedPort of resolvePorts(server.port.number, boundTargets ?? targets, boundTargets === undefined))
        addServer(server, protocol, resolvedPort, index);
    });
  }
  return { serverPorts, merged, serversByRouteName, rejected };
}
