// How long an upstream answer may be cached (pure). Positive answers: the smallest answer TTL. Denials (NXDOMAIN,
// and NOERROR without answers = NODATA): min(SOA TTL, SOA minimum) of the authority's SOA (RFC 2308 §5); a denial
// without an SOA is not cached, nor is a truncated answer, a SERVFAIL/REFUSED or a referral. Both are capped, so
// an upstream's week-long TTL cannot pin an answer across cluster changes.

import { FLAG_TC, RCODE, readHeader, TYPE_OPT, TYPE_SOA, type RecordSpan } from "./wire.js";

export interface CacheLimits {
  readonly maxTtlSeconds: number;
  readonly maxNegativeTtlSeconds: number;
}

export interface CacheDecision {
  readonly ttlSeconds: number;
  readonly negative: boolean;
}

export function cacheDecision(
  buf: Buffer,
  spans: readonly RecordSpan[],
  limits: CacheLimits,
): CacheDecision | undefined {
  const header = readHeader(buf);
  if (header === undefined || (header.flags & FLAG_TC) !== 0) return undefined;
  const rcode = header.flags & 0xf;
  const answers = spans.filter((s) => s.section === "answer");
  if (rcode === RCODE.NOERROR && answers.length > 0) {
    const ttl = Math.min(...answers.map((s) => buf.readUInt32BE(s.ttlOffset)), limits.maxTtlSeconds);
    return ttl > 0 ? { ttlSeconds: ttl, negative: false } : undefined;
  }
  if (rcode !== RCODE.NXDOMAIN && rcode !== RCODE.NOERROR) return undefined;
  const soa = spans.find((s) => s.section === "authority" && s.type === TYPE_SOA);
  if (soa === undefined || soa.end - soa.rdataStart < 22) return undefined;
  const minimum = buf.readUInt32BE(soa.end - 4);
  const ttl = Math.min(buf.readUInt32BE(soa.ttlOffset), minimum, limits.maxNegativeTtlSeconds);
  return ttl > 0 ? { ttlSeconds: ttl, negative: true } : undefined;
}

/** Offsets of the TTLs to age on a cache hit (every record but OPT, whose "TTL" holds EDNS flags). */
export function ttlOffsets(spans: readonly RecordSpan[]): number[] {
  return spans.filter((s) => s.type !== TYPE_OPT).map((s) => s.ttlOffset);
}
