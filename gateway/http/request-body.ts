// A downstream request body that can be replayed for retries: chunks are kept while the total stays within
// the buffer limit (Envoy buffers for retries up to the connection buffer limit; beyond it retries are
// abandoned, `retry_or_shadow_abandoned`). Each upstream attempt reads it through its own async iterator,
// which undici consumes with backpressure; the downstream stream is paused while the current attempt
// has not caught up.
import type { Readable } from 'node:stream';

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
  private readonly src: Readable;
  private readonly limit: number;
  private paused = false;
  /** Called when the last byte arrived (the router starts its timeout then, as Envoy does). */
  onEnd: (() => void) | undefined;

  constructor(src: Readable, limit: number) {
    this.src = src;
    this.limit = limit;
    src.on('data', (c: Buffer) => this.push(c));
    src.on('end', () => {
      this.ended = true;
      this.wake();
      this.onEnd?.();
    });
    src.on('error', (e: Error) => {
      this.failed = e;
      this.wake();
    });
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

  private push(c: Buffer): void {
    this.received += c.length;
    this.chunks.push(c);
    this.trim();
    this.wake();
    if (this.reader && this.bufferedAhead() > HIGH_WATER && !this.paused) {
      this.paused = true;
      this.src.pause();
    }
  }

  /** Over the limit, consumed chunks are released and replay is no longer possible. */
  private trim(): void {
    if (this.received - this.dropped <= this.limit) return;
    const consumed = this.reader ? this.reader.offset - this.dropped : 0;
    let n = 0;
    let bytes = 0;
    while (n < this.chunks.length && bytes + (this.chunks[n] as Buffer).length <= consumed) bytes += (this.chunks[n++] as Buffer).length;
    if (n > 0) {
      this.chunks.splice(0, n);
      this.dropped += bytes;
    }
  }

  private bufferedAhead(): number {
    return this.received - (this.reader?.offset ?? 0);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** A fresh iterator for one upstream attempt (restarting from the first byte). */
  newReader(): BodyReader {
    this.reader = new BodyReader(this);
    return this.reader;
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
            if (this.paused && this.bufferedAhead() - out.length <= HIGH_WATER) {
              this.paused = false;
              this.src.resume();
            }
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

export class BodyReader implements AsyncIterable<Buffer> {
  offset = 0;
  private readonly body: RequestBody;

  constructor(body: RequestBody) {
    this.body = body;
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
