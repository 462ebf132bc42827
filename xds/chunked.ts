// The chunked transfer coding (RFC 9112 §7.1), decoded incrementally: one state machine for every chunked
// body the gateway reads, each reader's strictness given as data (ChunkedRules) beside its other framing
// rules: REQUEST_CHUNKED in gateway/fast/request-head.ts (request bodies on the fast path), RESPONSE_CHUNKED
// in gateway/upstream/response-head.ts (upstream responses, as Envoy's client codec reads them). Common to
// both: sizes are hex digits with optional `;extensions`, every line ends in CRLF (a bare LF or CR is an
// error), chunk data is followed by CRLF, and trailers are read and dropped (neither an HTTP/1.1 downstream
// response nor node:http forwards them).

export interface ChunkedRules {
  /** Most hex digits in a chunk size. */
  readonly maxSizeDigits: number;
  /** Leading zeros of a size count toward maxSizeDigits (otherwise only its significant digits do). */
  readonly countLeadingZeros: boolean;
  /** SP / HTAB allowed between a size and its `;` or CRLF (RFC 9112 BWS). */
  readonly whitespaceAfterSize: boolean;
  /** DEL allowed in a chunk extension (HTAB is the only other control byte allowed there). */
  readonly delInExtension: boolean;
  /** Longest chunk-size line: size, whitespace and extensions, without the CRLF. */
  readonly maxSizeLine: number;
  /** Longest trailer line (without its CRLF). */
  readonly maxTrailerLine: number;
  /** Longest trailer section: its lines and the CRLFs between them. */
  readonly maxTrailerSection: number;
  /** Checks the trailer lines once the section is complete (they are dropped either way); throws to reject. */
  readonly checkTrailers?: ((lines: string[]) => void) | undefined;
}

/** A framing error; `code` is llhttp's name for it (the upstream side maps HPE_* to Envoy's protocol error). */
export interface ChunkedError {
  message: string;
  code: string;
}

const CR = 13;
const LF = 10;
const SP = 32;
const HT = 9;
const SEMI = 59;
const DEL = 127;

const SIZE = 0;
/** Whitespace after the size digits. */
const SIZE_WS = 1;
const EXT = 2;
const SIZE_LF = 3;
const DATA = 4;
const DATA_CR = 5;
const DATA_LF = 6;
const TRAILER = 7;
const TRAILER_LF = 8;
const DONE = 9;

type Latin1 = { latin1Slice(start: number, end: number): string };
const latin1 = (b: Buffer, start: number, end: number): string => (b as unknown as Latin1).latin1Slice(start, end);

function hexValue(c: number): number {
  return c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
}

/**
 * Incremental decoder of one chunked body. `feed` hands each piece of chunk data to `onData` and returns the
 * number of bytes of `buf` consumed: all of them, or fewer when the body ended (`done`; what follows belongs
 * to the connection) or when `onData` called `stop()` (its reader went away: nothing past that piece is
 * read). -1: a framing error, described by `error`.
 */
export class ChunkedDecoder {
  private readonly rules: ChunkedRules;
  private state = SIZE;
  private size = 0;
  private digits = 0;
  private remaining = 0;
  /** Bytes of the current size or trailer line so far. */
  private lineLen = 0;
  private sectionLen = 0;
  /** Trailer lines kept for rules.checkTrailers, and the current line's text so far. */
  private trailers: string[] | undefined;
  private line = '';
  done = false;
  error: ChunkedError | undefined;
  private stopped = false;

  constructor(rules: ChunkedRules) {
    this.rules = rules;
    if (rules.checkTrailers) this.trailers = [];
  }

  /** Called from `onData`: the current `feed` returns after this piece. */
  stop(): void {
    this.stopped = true;
  }

  private fail(message: string, code: string): number {
    this.error = { message, code };
    return -1;
  }

  feed(buf: Buffer, start: number, end: number, onData: (b: Buffer) => void): number {
    const r = this.rules;
    let i = start;
    while (i < end) {
      const c = buf[i] as number;
      switch (this.state) {
        case SIZE: {
          const h = hexValue(c);
          if (h >= 0) {
            if ((this.size !== 0 || h !== 0 || r.countLeadingZeros) && ++this.digits > r.maxSizeDigits)
              return this.fail('chunk size overflow', 'HPE_INVALID_CHUNK_SIZE');
            this.size = this.size * 16 + h;
          } else if (this.lineLen === 0) return this.fail('chunk size line without a size', 'HPE_INVALID_CHUNK_SIZE');
          else if (c === CR) this.state = SIZE_LF;
          else if (c === SEMI) this.state = EXT;
          else if ((c === SP || c === HT) && r.whitespaceAfterSize) this.state = SIZE_WS;
          else return this.fail('invalid chunk size line', 'HPE_INVALID_CHUNK_SIZE');
          if (c !== CR && ++this.lineLen > r.maxSizeLine) return this.fail('chunk size line too long', 'HPE_INVALID_CHUNK_SIZE');
          i++;
          continue;
        }
        case SIZE_WS:
          if (c === CR) this.state = SIZE_LF;
          else if (c === SEMI) this.state = EXT;
          else if (c !== SP && c !== HT) return this.fail('invalid chunk size line', 'HPE_INVALID_CHUNK_SIZE');
          if (c !== CR && ++this.lineLen > r.maxSizeLine) return this.fail('chunk size line too long', 'HPE_INVALID_CHUNK_SIZE');
          i++;
          continue;
        case EXT:
          if (c === CR) this.state = SIZE_LF;
          else if ((c < SP && c !== HT) || (c === DEL && !r.delInExtension))
            return this.fail('invalid character in a chunk extension', 'HPE_INVALID_CHUNK_SIZE');
          else if (++this.lineLen > r.maxSizeLine) return this.fail('chunk size line too long', 'HPE_INVALID_CHUNK_SIZE');
          i++;
          continue;
        case SIZE_LF:
          if (c !== LF) return this.fail('chunk size line not ended by CRLF', 'HPE_INVALID_CHUNK_SIZE');
          i++;
          this.lineLen = 0;
          if (this.size === 0) this.state = TRAILER;
          else {
            this.remaining = this.size;
            this.state = DATA;
          }
          continue;
        case DATA: {
          const n = Math.min(this.remaining, end - i);
          const piece = buf.subarray(i, i + n);
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = DATA_CR;
          onData(piece);
          if (this.stopped) {
            this.stopped = false;
            return i - start;
          }
          continue;
        }
        case DATA_CR:
          if (c !== CR) return this.fail('missing CRLF after chunk data', 'HPE_STRICT');
          this.state = DATA_LF;
          i++;
          continue;
        case DATA_LF:
          if (c !== LF) return this.fail('missing CRLF after chunk data', 'HPE_STRICT');
          this.state = SIZE;
          this.size = 0;
          this.digits = 0;
          i++;
          continue;
        case TRAILER: {
          // The rest of the line at once: trailers are rare, but a long one should not cost a step per byte.
          let j = i;
          while (j < end && buf[j] !== CR && buf[j] !== LF) j++;
          const n = j - i;
          this.lineLen += n;
          this.sectionLen += n;
          if (this.lineLen > r.maxTrailerLine || this.sectionLen > r.maxTrailerSection) return this.fail('trailers size exceeds limit', 'HPE_HEADER_OVERFLOW');
          if (this.trailers && n > 0) this.line += latin1(buf, i, j);
          i = j;
          if (i === end) continue;
          if (buf[i] === LF) return this.fail('bare LF in the trailers', 'HPE_LF_EXPECTED');
          this.state = TRAILER_LF;
          i++;
          continue;
        }
        case TRAILER_LF:
          if (c !== LF) return this.fail('bare CR in the trailers', 'HPE_LF_EXPECTED');
          i++;
          if (this.lineLen === 0) {
            if (this.trailers && this.trailers.length > 0) r.checkTrailers?.(this.trailers);
            this.state = DONE;
            this.done = true;
            return i - start;
          }
          this.trailers?.push(this.line);
          this.line = '';
          this.lineLen = 0;
          this.sectionLen += 2;
          this.state = TRAILER;
          continue;
        default:
          return i - start;
      }
    }
    return i - start;
  }
}
