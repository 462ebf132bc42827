// Counters every worker thread sees, in one SharedArrayBuffer: a fixed-size open-addressing table from a
// key (a host as `<cluster>::<address>:<port>`) to a slot of FIELDS int32 counters, updated with Atomics.
// Any thread finds or claims a key's slot without coordination: the 64-bit hash of the key is the slot's
// tag, claimed with compareExchange. Slots are never freed (keys are bounded by the configuration); when
// the table is full, slot() answers -1, callers keep a local count instead, and `full` tells the main
// thread so (it logs it).
import { xxHash64 } from '../upstream/xxhash64.ts';

const FIELDS = 4;
const DEFAULT_CAPACITY = 1 << 16;
/** Bytes per slot: the 64-bit tag and the fields. */
const SLOT_BYTES = 8 + 4 * FIELDS;
/** After the slots: the "full" flag (padded to 8 bytes). */
const TRAILER_BYTES = 8;

export class SharedCounters {
  readonly buffer: SharedArrayBuffer;
  private readonly tags: BigInt64Array;
  private readonly values: Int32Array;
  private readonly fullFlag: Int32Array;
  private readonly mask: number;

  /** A new table (capacity: a power of two), or a view of another thread's table. */
  constructor(from: SharedArrayBuffer | number = DEFAULT_CAPACITY) {
    const capacity = typeof from === 'number' ? from : (from.byteLength - TRAILER_BYTES) / SLOT_BYTES;
    if (!Number.isInteger(Math.log2(capacity))) throw new Error(`shared counter capacity must be a power of two, got ${capacity}`);
    this.buffer = typeof from === 'number' ? new SharedArrayBuffer(capacity * SLOT_BYTES + TRAILER_BYTES) : from;
    this.tags = new BigInt64Array(this.buffer, 0, capacity);
    this.values = new Int32Array(this.buffer, capacity * 8, capacity * FIELDS);
    this.fullFlag = new Int32Array(this.buffer, capacity * SLOT_BYTES, 1);
    this.mask = capacity - 1;
  }

  /** The key's slot, claimed if new; -1 when the table is full. */
  slot(key: string): number {
    // Tag 0 marks a free slot, so a key hashing to 0 uses 1.
    const tag = BigInt.asIntN(64, xxHash64(key)) || 1n;
    let i = Number(BigInt.asUintN(32, tag)) & this.mask;
    for (let probes = 0; probes <= this.mask; probes++, i = (i + 1) & this.mask) {
      const t = Atomics.load(this.tags, i);
      if (t === tag) return i;
      if (t !== 0n) continue;
      const prev = Atomics.compareExchange(this.tags, i, 0n, tag);
      if (prev === 0n || prev === tag) return i;
    }
    Atomics.store(this.fullFlag, 0, 1);
    return -1;
  }

  /** A key found no free slot (in any thread). */
  get full(): boolean {
    return Atomics.load(this.fullFlag, 0) === 1;
  }

  /** Adds n to a field and returns the new value. */
  add(slot: number, field: number, n: number): number {
    return Atomics.add(this.values, slot * FIELDS + field, n) + n;
  }

  load(slot: number, field: number): number {
    return Atomics.load(this.values, slot * FIELDS + field);
  }

  store(slot: number, field: number, v: number): void {
    Atomics.store(this.values, slot * FIELDS + field, v);
  }
}
