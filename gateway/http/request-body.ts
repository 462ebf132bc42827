// A downstream request body that can be replayed for retries: chunks are kept while the total stays within
// the buffer limit (Envoy buffers for retries up to the connection buffer limit; beyond it retries are
// abandoned, `retry_or_shadow_abandoned`).
//
// An upstream attempt reads it in one of two ways:
// - pushed (the HTTP/1.1 pool): the attempt attaches a BodySink; the chunks buffered so far are handed to it
//   at once, later ones as they arrive from the downstream, in the same call stack (no promise per chunk).
//   When the sink reports backpressure (its socket write returned false) the downstream source is paused
//   until the sink calls resumeFlow() on its socket's 'drain'.
// - pulled (HTTP/2, shadows): an async iterator, with the downstream paused while the attempt has not caught up.
import type { Readable } from 'node:stream';
import type { BodySink, PushBody } from '../upstream/h1-pool.ts';

const HIGH_WATER = 64 * 1024;

export class RequestBody {
  private chunks: Buffer[] = [];
  /** Bytes received so far. */
  received = 0;
  /** Total bytes dropped from the front (once over the limit, replay is impossible). */
  private dropped = 0;
  ended = false;
  failed: Error | undefined;
  private waiter: (() => void) | undefined;
  private reader: BodyReader | undefined;
  /** The attempt the body is pushed to, and how many bytes it has been given. */
  private sink: BodySink | undefined;
  private sinkOffset = 0;
  private readonly src: Readable;
  private readonly limit: number;
  private paused = false;
  /** Nobody will read the rest (the response is complete): chunks are dropped as they arrive. */
  private discarding = false;
  /** A filter is buffering the body up to this many bytes (bufferUpTo): the source pauses there until the router reads. */
  private holdAt = 0;
  /** Called when the last byte arrived (the router starts its timeout then, as Envoy does). */
  onEnd: (() => void) | undefined;
  /** Sees each chunk once as it arrives (filters that observe the body, such as grpc_stats); set by tap(). */
  private tapFn: ((c: Buffer) => void) | undefined;

  constructor(src: Readable, limit: number) {
    this.src = src;
    this.limit = limit;
    src.on('data', (c: Buffer) => this.push(c));
    src.on('end', () => {
      this.ended = true;
      const s = this.sink;
      if (s) s.onBodyEnd();
      else this.wake();
      this.onEnd?.();
    });
    src.on('error', (e: Error) => {
      this.failed = e;
      const s = this.sink;
      if (s) {
        this.sink = undefined;
        s.onBodyError(e);
      } else this.wake();
    });
  }

  /** Shows the body to `fn`: what arrived so far at once (when still buffered from its start), the rest as it arrives. */
  tap(fn: (c: Buffer) => void): void {
    if (this.dropped === 0) for (const c of this.chunks) fn(c);
    this.tapFn = fn;
  }

  /** A retry can resend the whole body. */
  get replayable(): boolean {
    return this.dropped === 0;
  }

  /** The whole body once it has ended and is still buffered (request mirroring), else undefined. */
  completeBody(): Buffer | undefined {
    if (!this.ended || this.failed || this.dropped !== 0) return undefined;
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
  }

  /**
   * The request is over before its body ended (the response is complete): the rest is read and dropped, so
   * the downstream is neither held paused nor buffered.
   */
  discard(): void {
    if (this.ended || this.discarding) return;
    this.discarding = true;
    this.sink = undefined;
    this.reader = undefined;
    this.chunks = [];
    this.dropped = this.received;
    this.wake();
    if (this.paused) {
      this.paused = false;
      this.src.resume();
    }
  }

  private push(c: Buffer): void {
    if (this.discarding) return;
    this.received += c.length;
    this.tapFn?.(c);
    // Past the limit with the front already dropped, the chunk is of no use once the attempt has it.
    const s = this.sink;
    if (s !== undefined && this.dropped > 0) {
      this.sinkOffset += c.length;
      this.dropped += c.length;
      if (!s.onBodyData(c)) this.pauseSource();
      return;
    }
    this.chunks.push(c);
    if (s !== undefined) this.sinkOffset += c.length;
    if (this.received - this.dropped > this.limit) this.trim();
    if (s !== undefined) {
      if (!s.onBodyData(c)) this.pauseSource();
      return;
    }
    this.wake();
    if (this.reader && this.received - this.reader.offset > HIGH_WATER) this.pauseSource();
    else if (!this.reader && this.holdAt > 0 && this.received >= this.holdAt) this.pauseSource();
  }

  private pauseSource(): void {
    if (this.paused) return;
    this.paused = true;
    this.src.pause();
  }

  private resumeSource(): void {
    if (!this.paused) return;
    this.paused = false;
    this.src.resume();
  }

  /** Over the limit, consumed chunks are released and replay is no longer possible. */
  private trim(): void {
    const consumed = (this.sink ? this.sinkOffset : this.reader ? this.reader.offset : 0) - this.dropped;
    let n = 0;
    let bytes = 0;
    while (n < this.chunks.length && bytes + (this.chunks[n] as Buffer).length <= consumed) bytes += (this.chunks[n++] as Buffer).length;
    if (n > 0) {
      this.chunks.splice(0, n);
      this.dropped += bytes;
    }
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /**
   * Waits until `max` bytes arrived or the body ended, for a filter that reads the body before the router (ext_authz
   * with_request_body): resolves with at most `max` bytes and whether that is the whole body. The client is paused
   * at `max` so the buffer cannot grow past it; the router later reads every byte from the start.
   */
  async bufferUpTo(max: number): Promise<{ body: Buffer; complete: boolean }> {
    this.holdAt = Math.max(this.holdAt, max, 1);
    while (!this.ended && !this.discarding && this.received < max) {
      if (this.failed) throw this.failed;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
    if (this.failed) throw this.failed;
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    return { body: all.length > max ? all.subarray(0, max) : all, complete: this.ended && !this.discarding && this.received <= max };
  }

  /** A fresh iterator for one upstream attempt (restarting from the first byte). */
  newReader(): BodyReader {
    this.sink = undefined;
    this.reader = new BodyReader(this);
    return this.reader;
  }

  /**
   * Pushes the body to `s` from the first byte: what is buffered now at once, the rest as it arrives. A body
   * no longer buffered from its start (over the limit) fails the sink, as a pulled read would.
   */
  attachSink(s: BodySink): void {
    this.reader = undefined;
    this.sink = s;
    this.sinkOffset = 0;
    if (this.dropped > 0 || this.discarding) {
      this.sink = undefined;
      s.onBodyError(new Error('request body is no longer buffered'));
      return;
    }
    let ok = true;
    for (const c of this.chunks) {
      this.sinkOffset += c.length;
      ok = s.onBodyData(c);
      if (this.sink !== s) return;
    }
    if (this.failed) {
      this.sink = undefined;
      s.onBodyError(this.failed);
      return;
    }
    if (this.ended) s.onBodyEnd();
    else if (ok) this.resumeSource();
    else this.pauseSource();
  }

  /** The attempt stopped reading (reset, cancelled, response complete). The source stays as it is. */
  detachSink(s: BodySink): void {
    if (this.sink === s) this.sink = undefined;
  }

  /** The sink drained: more body may flow. */
  resumeFlow(s: BodySink): void {
    if (this.sink === s) this.resumeSource();
  }

  /** Next chunk at absolute offset `at`, or null at the end. */
  async next(at: number): Promise<Buffer | null> {
    for (;;) {
      if (this.failed) throw this.failed;
      if (at < this.received) {
        if (at < this.dropped) throw new Error('request body is no longer buffered');
        let pos = this.dropped;
        for (const c of this.chunks) {
          if (at < pos + c.length) {
            const out = at === pos ? c : c.subarray(at - pos);
            if (this.paused && this.received - (at + out.length) <= HIGH_WATER) this.resumeSource();
            return out;
          }
          pos += c.length;
        }
      }
      if (this.ended) return null;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}

export class BodyReader implements AsyncIterable<Buffer>, PushBody {
  offset = 0;
  private readonly body: RequestBody;

  constructor(body: RequestBody) {
    this.body = body;
  }

  attachSink(s: BodySink): void {
    this.body.attachSink(s);
  }

  detachSink(s: BodySink): void {
    this.body.detachSink(s);
  }

  resumeFlow(s: BodySink): void {
    this.body.resumeFlow(s);
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return {
      next: async (): Promise<IteratorResult<Buffer>> => {
        const c = await this.body.next(this.offset);
        if (c === null) return { done: true, value: undefined };
        this.offset += c.length;
        return { done: false, value: c };
      },
      return: (): Promise<IteratorResult<Buffer>> => Promise.resolve({ done: true, value: undefined }),
    };
  }
}
