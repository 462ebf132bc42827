// The access log entry of a connection (a tcp_proxy's, or one no filter chain matched): Envoy's StreamInfo of a
// network connection has no request, protocol or response code, so those print `-` (null in JSON) and 0.
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { plainIp } from '../http/request-headers.ts';
import type { AccessLogEntry } from './formatter.ts';

/** `ip:port` as Envoy prints an address (IPv6 in brackets). */
function address(ip: string | undefined, port: number | undefined): string {
  if (!ip) return '';
  const a = plainIp(ip);
  return a.includes(':') ? `[${a}]:${port ?? 0}` : `${a}:${port ?? 0}`;
}

export interface ConnectionLog {
  startTime: number;
  startHr: number;
  responseFlags: number;
  requestedServerName: string;
  downstreamLocalAddress: string;
  downstreamRemoteAddress: string;
  upstreamHost: string;
  upstreamCluster: string;
  upstreamLocalAddress: string;
  upstreamTransportFailureReason: string;
  bytesReceived: number;
  bytesSent: number;
}

/** A connection's log state, started now; the addresses are read now (a closed socket no longer has them). */
export function connectionLog(down: Duplex, sni: string | undefined): ConnectionLog {
  const s = down as Partial<Socket>;
  return {
    downstreamLocalAddress: address(s.localAddress, s.localPort),
    downstreamRemoteAddress: address(s.remoteAddress, s.remotePort),
    startTime: Date.now(),
    startHr: performance.now(),
    responseFlags: 0,
    requestedServerName: sni ?? '',
    upstreamHost: '',
    upstreamCluster: '',
    upstreamLocalAddress: '',
    upstreamTransportFailureReason: '',
    bytesReceived: 0,
    bytesSent: 0,
  };
}

export function connectionEntry(c: ConnectionLog): AccessLogEntry {
  return {
    startTime: c.startTime,
    method: '',
    path: '',
    originalPath: '',
    authority: '',
    protocol: '',
    responseCode: 0,
    responseFlags: c.responseFlags,
    responseCodeDetails: '',
    connectionTerminationDetails: '',
    upstreamTransportFailureReason: c.upstreamTransportFailureReason,
    bytesReceived: c.bytesReceived,
    bytesSent: c.bytesSent,
    durationMs: Math.floor(performance.now() - c.startHr),
    upstreamServiceTime: '',
    xForwardedFor: '',
    userAgent: '',
    requestId: '',
    upstreamHost: c.upstreamHost,
    upstreamCluster: c.upstreamCluster,
    upstreamLocalAddress: c.upstreamLocalAddress,
    downstreamLocalAddress: c.downstreamLocalAddress,
    downstreamRemoteAddress: c.downstreamRemoteAddress,
    requestedServerName: c.requestedServerName,
    routeName: '',
  };
}
