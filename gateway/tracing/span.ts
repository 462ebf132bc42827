// A span as Envoy's OpenTelemetry and Zipkin tracers keep one, and the trace context they read from the
// downstream request and write on the upstream one: W3C traceparent/tracestate (OpenTelemetry), B3 x-b3-* and the
// single b3 header on extraction (Zipkin).
import { randomFillSync } from 'node:crypto';

export const KIND_SERVER = 2;
export const KIND_CLIENT = 3;

// Random ids come from one pool of random bytes refilled when used up, read through a byte -> hex table: a span
// costs two small strings, not a system call (ids only need to be unique, as Envoy's non-cryptographic ones).
const pool = Buffer.allocUnsafe(4096);
let at = pool.length;
const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** 16 lowercase hex digits, never all zero. */
export function randomId64(): string {
  for (;;) {
    if (at + 8 > pool.length) {
      randomFillSync(pool);
      at = 0;
    }
    const p = pool;
    const i = at;
    at += 8;
    const s =
      (HEX_BYTE[p[i] as number] as string) +
      (HEX_BYTE[p[i + 1] as number] as string) +
      (HEX_BYTE[p[i + 2] as number] as string) +
      (HEX_BYTE[p[i + 3] as number] as string) +
      (HEX_BYTE[p[i + 4] as number] as string) +
      (HEX_BYTE[p[i + 5] as number] as string) +
      (HEX_BYTE[p[i + 6] as number] as string) +
      (HEX_BYTE[p[i + 7] as number] as string);
    if (s !== '0000000000000000') return s;
  }
}

export class Span {
  traceId: string;
  spanId: string;
  parentId: string;
  name: string;
  kind: number;
  /** performance.now() at the start; the epoch times below are set when a sampled span is reported. */
  startHr: number;
  /** Microseconds since the epoch. */
  startUs = 0;
  endUs = 0;
  sampled: boolean;
  tracestate: string;
  /** Flat [key, value, ...]; setTag replaces a key already set. */
  readonly tags: string[] = [];

  constructor(traceId: string, spanId: string, parentId: string, name: string, kind: number, startHr: number, sampled: boolean, tracestate: string) {
    this.traceId = traceId;
    this.spanId = spanId;
    this.parentId = parentId;
    this.name = name;
    this.kind = kind;
    this.startHr = startHr;
    this.sampled = sampled;
    this.tracestate = tracestate;
  }

  setTag(key: string, value: string): void {
    if (key === '') return;
    const t = this.tags;
    for (let i = 0; i < t.length; i += 2) {
      if (t[i] === key) {
        t[i + 1] = value;
        return;
      }
    }
    t.push(key, value);
  }

  tag(key: string): string | undefined {
    const t = this.tags;
    for (let i = 0; i < t.length; i += 2) if (t[i] === key) return t[i + 1];
    return undefined;
  }

  /** A child (Span::spawnChild): same trace, this span as parent, its sampling. */
  child(name: string, kind: number, startHr: number): Span {
    return new Span(this.traceId, randomId64(), this.spanId, name, kind, startHr, this.sampled, this.tracestate);
  }
}

/** What goes upstream: a span's ids, its parent, whether it is sampled, the tracestate. */
export type SpanContext = Pick<Span, 'traceId' | 'spanId' | 'parentId' | 'sampled' | 'tracestate'>;

/** A parent context read from the request. */
export interface ParentContext {
  traceId: string;
  spanId: string;
  /** undefined: the request did not say (B3 without a sampling header). */
  sampled: boolean | undefined;
  tracestate: string;
}

function header(flat: readonly string[], name: string): string | undefined {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) return flat[i + 1];
  return undefined;
}

const HEX = /^[0-9a-f]+$/;
const isHex = (s: string, len: number): boolean => s.length === len && HEX.test(s) && !/^0+$/.test(s);

/**
 * W3C trace context (Envoy's OpenTelemetry SpanContextExtractor): undefined when there is no traceparent, 'invalid'
 * when there is one Envoy would refuse (it then traces nothing for the request). Every tracestate is joined.
 */
export function extractW3c(headers: readonly string[]): ParentContext | 'invalid' | undefined {
  const tp = header(headers, 'traceparent');
  if (tp === undefined) return undefined;
  const parts = tp.split('-');
  if (tp.length !== 55 || parts.length !== 4) return 'invalid';
  const [version = '', traceId = '', spanId = '', flags = ''] = parts;
  if (version.length !== 2 || !HEX.test(version) || version === 'ff' || !isHex(traceId, 32) || !isHex(spanId, 16) || flags.length !== 2 || !HEX.test(flags))
    return 'invalid';
  const states: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'tracestate') states.push(headers[i + 1] as string);
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1, tracestate: states.join(',') };
}

function b3Sampled(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  // Envoy's zipkin extractor: "1", "d" (debug) and "true" sample.
  return v === '1' || v === 'd' || v === 'true';
}

/**
 * B3 (Envoy's Zipkin SpanContextExtractor): the single `b3` header first, else x-b3-traceid / x-b3-spanid /
 * x-b3-sampled (x-b3-flags 1 is debug: sampled). `sampled` alone (b3: 0) is a decision without a parent.
 */
export function extractB3(headers: readonly string[]): { parent?: ParentContext; sampled: boolean | undefined } | 'invalid' {
  const single = header(headers, 'b3');
  if (single !== undefined) {
    const p = single.split('-');
    if (p.length === 1) return { sampled: b3Sampled(p[0]) };
    const [traceId = '', spanId = '', s] = p;
    if (!(isHex(traceId, 16) || isHex(traceId, 32)) || !isHex(spanId, 16)) return 'invalid';
    const sampled = b3Sampled(s);
    return { parent: { traceId, spanId, sampled, tracestate: '' }, sampled };
  }
  const flags = header(headers, 'x-b3-flags');
  const sampled = flags === '1' ? true : b3Sampled(header(headers, 'x-b3-sampled'));
  const traceId = header(headers, 'x-b3-traceid');
  const spanId = header(headers, 'x-b3-spanid');
  if (traceId === undefined && spanId === undefined) return { sampled };
  if (traceId === undefined || spanId === undefined) return 'invalid';
  if (!(isHex(traceId, 16) || isHex(traceId, 32)) || !isHex(spanId, 16)) return 'invalid';
  return { parent: { traceId, spanId, sampled, tracestate: '' }, sampled };
}

/** Sets header `name` in a flat list, replacing its first value and dropping others. */
export function setHeader(flat: string[], name: string, value: string): void {
  let found = false;
  for (let i = 0; i < flat.length; i += 2) {
    if (flat[i] !== name) continue;
    if (!found) {
      flat[i + 1] = value;
      found = true;
    } else {
      flat.splice(i, 2);
      i -= 2;
    }
  }
  if (!found) flat.push(name, value);
}

function removeHeader(flat: string[], name: string): void {
  for (let i = 0; i < flat.length; i += 2) {
    if (flat[i] === name) {
      flat.splice(i, 2);
      i -= 2;
    }
  }
}

/** OpenTelemetry's Span::injectContext: traceparent version 00 with the sampled flag, and the tracestate. */
export function injectW3c(span: SpanContext, flat: string[]): void {
  setHeader(flat, 'traceparent', `00-${span.traceId}-${span.spanId}-${span.sampled ? '01' : '00'}`);
  if (span.tracestate !== '') setHeader(flat, 'tracestate', span.tracestate);
  else removeHeader(flat, 'tracestate');
}

/** Zipkin's Span::injectContext: the x-b3-* headers (the single b3 header a client sent is replaced by them). */
export function injectB3(span: SpanContext, flat: string[]): void {
  removeHeader(flat, 'b3');
  setHeader(flat, 'x-b3-traceid', span.traceId);
  setHeader(flat, 'x-b3-spanid', span.spanId);
  if (span.parentId !== '') setHeader(flat, 'x-b3-parentspanid', span.parentId);
  else removeHeader(flat, 'x-b3-parentspanid');
  setHeader(flat, 'x-b3-sampled', span.sampled ? '1' : '0');
}
