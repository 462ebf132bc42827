// Istio's default TEXT access log format (pilot/pkg/model/telemetry_logging.go EnvoyTextLogFormat), written
// through a SonicBoom destination (pino.destination) as preformatted lines, off the request's critical path.
import { pino } from 'pino';
import { formatResponseFlags } from '../http/response-flags.ts';

export interface AccessLogEntry {
  startTime: number;
  method: string;
  /** x-envoy-original-path if set, else :path */
  path: string;
  protocol: string;
  responseCode: number;
  responseFlags: number;
  responseCodeDetails: string;
  connectionTerminationDetails: string;
  upstreamTransportFailureReason: string;
  bytesReceived: number;
  bytesSent: number;
  durationMs: number;
  upstreamServiceTime: string;
  xForwardedFor: string;
  userAgent: string;
  requestId: string;
  authority: string;
  upstreamHost: string;
  upstreamCluster: string;
  upstreamLocalAddress: string;
  downstreamLocalAddress: string;
  downstreamRemoteAddress: string;
  requestedServerName: string;
  routeName: string;
}

const dash = (s: string): string => (s === '' ? '-' : s);

/** One line in Istio's TEXT format (empty values print `-`). */
export function formatTextLine(e: AccessLogEntry): string {
  return (
    `[${new Date(e.startTime).toISOString()}] "${e.method} ${e.path} ${e.protocol}" ${e.responseCode} ` +
    `${formatResponseFlags(e.responseFlags)} ${dash(e.responseCodeDetails)} ${dash(e.connectionTerminationDetails)} ` +
    `"${dash(e.upstreamTransportFailureReason)}" ${e.bytesReceived} ${e.bytesSent} ${e.durationMs} ${dash(e.upstreamServiceTime)} ` +
    `"${dash(e.xForwardedFor)}" "${dash(e.userAgent)}" "${dash(e.requestId)}" "${dash(e.authority)}" "${dash(e.upstreamHost)}" ` +
    `${dash(e.upstreamCluster)} ${dash(e.upstreamLocalAddress)} ${dash(e.downstreamLocalAddress)} ${dash(e.downstreamRemoteAddress)} ` +
    `${dash(e.requestedServerName)} ${dash(e.routeName)}\n`
  );
}

export interface AccessLogger {
  log(e: AccessLogEntry): void;
  /** Lines formatted elsewhere (another worker's), written as they are. */
  writeLines(text: string): void;
  close(): void;
}

/** A file (or /dev/stdout) access log, flushed every second like Envoy's --file-flush-interval-msec 1000. */
export function fileAccessLogger(path: string): AccessLogger {
  const dest = pino.destination({ dest: path === '/dev/stdout' ? 1 : path, sync: false, minLength: 4096, mkdir: true });
  const timer = setInterval(() => dest.flush(), 1000);
  timer.unref();
  return {
    log: (e) => {
      dest.write(formatTextLine(e));
    },
    writeLines: (text) => {
      dest.write(text);
    },
    close: () => {
      clearInterval(timer);
      try {
        dest.flushSync();
      } catch {
        // destination not ready yet
      }
      dest.end();
    },
  };
}

/**
 * A worker thread's access log: lines are batched and handed to `send` (the main thread writes them), so
 * one writer owns the file and lines from different workers never interleave. Flushed at 16 KiB, every
 * second (Envoy's flush interval) and on close.
 */
export function forwardingAccessLogger(send: (text: string) => void): AccessLogger {
  let pending = '';
  const flush = (): void => {
    if (pending === '') return;
    send(pending);
    pending = '';
  };
  const timer = setInterval(flush, 1000);
  timer.unref();
  const add = (text: string): void => {
    pending += text;
    if (pending.length >= 16_384) flush();
  };
  return {
    log: (e) => add(formatTextLine(e)),
    writeLines: add,
    close: () => {
      clearInterval(timer);
      flush();
    },
  };
}
