// Istio's default TEXT access log format (pilot/pkg/model/telemetry_logging.go EnvoyTextLogFormat), written
// through a SonicBoom destination (pino.destination) as preformatted lines, off the request's critical path.
import { appendFileSync, writeSync } from 'node:fs';
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
function formatTextLine(e: AccessLogEntry): string {
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

/**
 * A file (or /dev/stdout) access log, flushed every second like Envoy's --file-flush-interval-msec 1000.
 * Lines are buffered up to 4 KiB and written synchronously (`sync: true`): no write is ever in flight, so
 * close() leaves every line written and the file ends on a whole line whenever the process exits.
 *
 * Streams can still end after close() during shutdown (an upstream response arriving after the drain):
 * their lines are appended directly, after everything written before, instead of reaching a destination
 * that is gone (SonicBoom throws `SonicBoom destroyed` from write(), which ended the process with 1).
 */
export function fileAccessLogger(path: string): AccessLogger {
  const fd = path === '/dev/stdout' ? 1 : undefined;
  const dest = pino.destination({ dest: fd ?? path, sync: true, minLength: 4096, mkdir: true });
  let closed = false;
  const timer = setInterval(() => dest.flushSync(), 1000);
  timer.unref();
  const write = (text: string): void => {
    if (!closed) dest.write(text);
    else appendAfterClose(fd ?? path, text);
  };
  return {
    log: (e) => write(formatTextLine(e)),
    writeLines: write,
    close: () => {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      dest.flushSync();
      dest.end();
    },
  };
}

/** Appends whole text to the log after its destination was closed; a failure drops only these lines. */
function appendAfterClose(target: number | string, text: string): void {
  try {
    if (typeof target === 'string') appendFileSync(target, text);
    else {
      const buf = Buffer.from(text);
      for (let off = 0; off < buf.length;) off += writeSync(target, buf, off);
    }
  } catch {
    // The file went away or stdout is closed at exit: nothing left to write to.
  }
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
  let closed = false;
  // After close (a stream ending during shutdown), lines go at once: no timer is left to flush them.
  const write = (text: string): void => (closed ? send(text) : add(text));
  return {
    log: (e) => write(formatTextLine(e)),
    writeLines: write,
    close: () => {
      closed = true;
      clearInterval(timer);
      flush();
    },
  };
}
