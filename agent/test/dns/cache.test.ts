// The answer cache's bounds and expiry, and the TTL policy over real upstream-shaped answers (pure, no sockets).
import assert from "node:assert/strict";
import dnsPacket from "dns-packet";
import { AnswerCache, type CachedAnswer } from "../../src/dns/cache.js";
import { cacheDecision, ttlOffsets } from "../../src/dns/cache-policy.js";
import { scanRecords, withoutOpt } from "../../src/dns/wire.js";

const clock = {
  time: 1_000_000,
  now(): number {
    return this.time;
  },
};

function entry(bytes: number, expiresIn = 60_000): CachedAnswer {
  return {
    bytes: Buffer.alloc(bytes),
    ttlOffsets: [],
    storedAt: clock.time,
    expiresAt: clock.time + expiresIn,
    negative: false,
  };
}

const LIMITS = { maxTtlSeconds: 3600, maxNegativeTtlSeconds: 300 };
const soa = (ttl: number, minimum: number): dnsPacket.Answer => ({
  name: "example",
  type: "SOA",
  ttl,
  data: { mname: "ns.example", rname: "h.example", serial: 1, refresh: 1, retry: 1, expire: 1, minimum },
});
const q: dnsPacket.Question[] = [{ name: "www.example", type: "A", class: "IN" }];

function decide(packet: dnsPacket.Packet): ReturnType<typeof cacheDecision> {
  const bytes = dnsPacket.encode({ type: "response", id: 1, questions: q, ...packet });
  const spans = scanRecords(bytes);
  assert.ok(spans !== undefined);
  return cacheDecision(bytes, spans, LIMITS);
}

describe("answer cache", () => {
  it("evicts the least recently used entry beyond maxEntries; a get refreshes recency", () => {
    const cache = new AnswerCache({ maxEntries: 2, maxBytes: 1 << 20, clock });
    cache.set("a", entry(10));
    cache.set("b", entry(10));
    assert.ok(cache.get("a") !== undefined); // a is now the most recent
    cache.set("c", entry(10));
    assert.equal(cache.get("b"), undefined);
    assert.ok(cache.get("a") !== undefined && cache.get("c") !== undefined);
    assert.equal(cache.counters.evictions, 1);
  });

  it("is bounded in bytes: big entries push old ones out, one larger than the bound is not stored", () => {
    const cache = new AnswerCache({ maxEntries: 1000, maxBytes: 2000, clock });
    for (let i = 0; i < 10; i++) cache.set(`k${i}`, entry(400));
    assert.ok(cache.bytes <= 2000, `${cache.bytes} bytes`);
    assert.equal(cache.size, 3); // 3 × (400 + overhead) fit, 4 do not
    assert.ok(cache.get("k9") !== undefined && cache.get("k0") === undefined);
    cache.set("huge", entry(5000));
    assert.equal(cache.get("huge"), undefined);
    cache.set("k9", entry(10)); // replacing an entry releases its bytes
    assert.ok(cache.bytes < 2000 - 390);
  });

  it("an expired entry is a miss and is removed", () => {
    const cache = new AnswerCache({ maxEntries: 10, maxBytes: 1 << 20, clock });
    cache.set("a", entry(10, 5000));
    clock.time += 4999;
    assert.ok(cache.get("a") !== undefined);
    clock.time += 1;
    assert.equal(cache.get("a"), undefined);
    assert.equal(cache.size, 0);
    assert.equal(cache.bytes, 0);
    assert.deepEqual(cache.counters, { hits: 1, misses: 1, evictions: 0, expired: 1 });
  });
});

describe("cache policy", () => {
  it("positive answers: the smallest answer TTL, capped; a zero TTL is not cached", () => {
    assert.deepEqual(
      decide({
        answers: [
          { name: "www.example", type: "A", ttl: 90, data: "192.0.2.1" },
          { name: "www.example", type: "A", ttl: 30, data: "192.0.2.2" },
        ],
      }),
      { ttlSeconds: 30, negative: false },
    );
    assert.deepEqual(decide({ answers: [{ name: "www.example", type: "A", ttl: 86400 * 7, data: "192.0.2.1" }] }), {
      ttlSeconds: 3600,
      negative: false,
    });
    assert.equal(decide({ answers: [{ name: "www.example", type: "A", ttl: 0, data: "192.0.2.1" }] }), undefined);
  });

  it("denials: min(SOA TTL, SOA minimum), capped; without an SOA, truncated or SERVFAIL not cached", () => {
    assert.deepEqual(decide({ flags: 3, authorities: [soa(900, 60)] }), { ttlSeconds: 60, negative: true });
    assert.deepEqual(decide({ authorities: [soa(20, 60)] }), { ttlSeconds: 20, negative: true }); // NODATA
    assert.deepEqual(decide({ flags: 3, authorities: [soa(9000, 9000)] }), { ttlSeconds: 300, negative: true });
    assert.equal(decide({ flags: 3 }), undefined);
    assert.equal(decide({ flags: 2, authorities: [soa(60, 60)] }), undefined);
    assert.equal(
      decide({
        flags: dnsPacket.TRUNCATED_RESPONSE,
        answers: [{ name: "www.example", type: "A", ttl: 60, data: "192.0.2.1" }],
      }),
      undefined,
    );
  });

  it("strips the upstream's OPT and finds every TTL but the OPT's", () => {
    const bytes = dnsPacket.encode({
      type: "response",
      id: 1,
      questions: q,
      answers: [{ name: "www.example", type: "A", ttl: 60, data: "192.0.2.1" }],
      authorities: [soa(60, 60)],
      additionals: [
        {
          name: ".",
          type: "OPT",
          udpPayloadSize: 1232,
          extendedRcode: 0,
          ednsVersion: 0,
          flags: 0,
          flag_do: false,
          options: [],
        },
      ],
    });
    const spans = scanRecords(bytes)!;
    assert.equal(spans.length, 3);
    const stripped = withoutOpt(bytes, spans)!;
    assert.equal(stripped.bytes.length, bytes.length - 11);
    const decoded = dnsPacket.decode(stripped.bytes);
    assert.deepEqual([decoded.answers?.length, decoded.authorities?.length, decoded.additionals?.length], [1, 1, 0]);
    assert.deepEqual(
      ttlOffsets(stripped.spans).map((o) => stripped.bytes.readUInt32BE(o)),
      [60, 60],
    );
    assert.equal(scanRecords(bytes.subarray(0, bytes.length - 1)), undefined, "a cut-off message is malformed");
  });
});
