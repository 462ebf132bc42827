// Access log files: the proxy's --access-log (Istio's default TEXT format, pilot/pkg/model/telemetry_logging.go
// EnvoyTextLogFormat) and the files of the access loggers xDS configures (access-log-config.ts), written through
// SonicBoom destinations (pino.destination) as preformatted lines, off the request's critical path. Worker threads
// hand their lines to the main thread, the one writer of every file.
import { appendFileSync, writeSync } from 'node:fs';
import { pino } from 'pino';
import { ISTIO_TEXT_LOG_FORMAT } from '../../xds/istio-access-log.ts';
import { compileTextFormat, type AccessLogEntry } from './formatter.ts';

/** Istio's TEXT format, which --access-log writes. */
const formatTextLine = compileTextFormat(ISTIO_TEXT_LOG_FORMAT);

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

/** The files of xDS-configured access loggers, by path: opened on first use, one writer per path. */
export interface AccessLogSinks {
  write(path: string, text: string): void;
  close(): void;
}

/**
 * The main thread's files. `cli` is the --access-log logger: an xDS logger writing to the same path shares it,
 * so one file (or stdout) has one writer and its lines never interleave.
 */
export function fileAccessLogSinks(cli?: { path: string; logger: AccessLogger }): AccessLogSinks {
  const files = new Map<string, AccessLogger>();
  if (cli) files.set(cli.path, cli.logger);
  let closed = false;
  return {
    write(path, text) {
      let f = files.get(path);
      if (!f) {
        if (closed) return appendAfterClose(path === '/dev/stdout' ? 1 : path, text);
        files.set(path, (f = fileAccessLogger(path)));
      }
      f.writeLines(text);
    },
    close() {
      closed = true;
      for (const [path, f] of files) if (path !== cli?.path) f.close();
    },
  };
}

/** A worker thread's: lines batched per path and handed to the main thread (forwardingAccessLogger). */
export function forwardingAccessLogSinks(send: (path: string, text: string) => void): AccessLogSinks {
  const files = new Map<string, AccessLogger>();
  return {
    write(path, text) {
      let f = files.get(path);
      if (!f) files.set(path, (f = forwardingAccessLogger((t) => send(path, t))));
      f.writeLines(text);
    },
    close() {
      for (const f of files.values()) f.close();
    },
  };
}
