// What a closed HTTP/2 stream (downstream or upstream) lets go of.
import type { Http2Stream } from 'node:http2';

/** An 'error' listener that captures nothing (a closure made inside a request's code would keep its context). */
export const ignoreError = (): void => undefined;

/**
 * node:http2 keeps a closed stream's object until a full (mark-compact) GC: it wraps a native handle, which
 * scavenges treat as a root. The stream's listeners are closures that share the request's context (its
 * ActiveStream, headers, buffers), so every request would be promoted to the old generation and wait for a
 * mark-compact, which then runs several times a second under load. A closed stream drops them; a listener that
 * captures nothing stays for a late 'error'.
 */
export function releaseClosedStream(stream: Http2Stream): void {
  stream.removeAllListeners();
  stream.on('error', ignoreError);
}
