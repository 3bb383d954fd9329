// The forwarder's answer cache: LRU (a Map in recency order), bounded both in entries and in bytes so a flood of
// distinct names costs at most `maxBytes`; entries expire by their own TTL on the injected clock. Stores upstream
// answers as wire bytes (ID 0, no OPT) with the offsets of their TTLs, which a hit ages (wire.ts keeps the bytes).

import type { Clock } from "#lib/clock.js";

export interface CachedAnswer {
  readonly bytes: Buffer;
  readonly ttlOffsets: readonly number[];
  /** Clock time of the upstream answer, ms. */
  readonly storedAt: number;
  readonly expiresAt: number;
  readonly negative: boolean;
}

export interface CacheOptions {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly clock: Pick<Clock, "now">;
}

export interface CacheCounters {
  hits: number;
  misses: number;
  evictions: number;
  expired: number;
}

// Map entry, key string and bookkeeping of one entry beyond its bytes: an estimate, enough to bound memory.
const OVERHEAD_BYTES = 160;

export class AnswerCache {
  private readonly entries = new Map<string, CachedAnswer>();
  private usedBytes = 0;
  readonly counters: CacheCounters = { hits: 0, misses: 0, evictions: 0, expired: 0 };

  constructor(private readonly options: CacheOptions) {}

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.usedBytes;
  }

  get(key: string): CachedAnswer | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) {
      this.counters.misses += 1;
      return undefined;
    }
    this.entries.delete(key);
    if (entry.expiresAt <= this.options.clock.now()) {
      this.usedBytes -= cost(key, entry);
      this.counters.expired += 1;
      this.counters.misses += 1;
      return undefined;
    }
    this.entries.set(key, entry); // most recently used goes last
    this.counters.hits += 1;
    return entry;
  }

  set(key: string, entry: CachedAnswer): void {
    const previous = this.entries.get(key);
    if (previous !== undefined) {
      this.entries.delete(key);
      this.usedBytes -= cost(key, previous);
    }
    const size = cost(key, entry);
    if (size > this.options.maxBytes || this.options.maxEntries === 0) return;
    this.entries.set(key, entry);
    this.usedBytes += size;
    // Evict the least recently used (the Map's first keys) until both bounds hold.
    while (this.entries.size > this.options.maxEntries || this.usedBytes > this.options.maxBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      const victim = this.entries.get(oldest.value);
      this.entries.delete(oldest.value);
      if (victim !== undefined) this.usedBytes -= cost(oldest.value, victim);
      this.counters.evictions += 1;
    }
  }

  clear(): void {
    this.entries.clear();
    this.usedBytes = 0;
  }
}

function cost(key: string, entry: CachedAnswer): number {
  return entry.bytes.length + key.length + entry.ttlOffsets.length * 8 + OVERHEAD_BYTES;
}
