// Forwarding to a fake upstream on 127.0.0.1: caching (positive by TTL, negative by SOA minimum), the ndots:5
// search walk costing one upstream query per type, ID rewriting, TCP after an upstream TC, coalescing, the in-flight
// cap, failover, and SERVFAIL within the bound when every upstream is down while cluster names still answer.
import assert from "node:assert/strict";
import type { Clock } from "#lib/clock.js";
import { parseResolvConf, searchCandidates } from "../../src/dns/resolv-conf.js";
import { FakeDnsUpstream } from "../../../lab/src/fake-dns-upstream.js";
import { buildQuery, decode, optOf, rawTcp, rawUdp, tcp, udp, type Answer } from "./support/dns-client.js";
import { closedPort, startServer, VIEW, type Fixture } from "./support/fixture.js";

class ManualClock implements Pick<Clock, "now"> {
  time = 1_700_000_000_000;
  now(): number {
    return this.time;
  }
}

const NGINX = "nginx-service.default.svc.cluster.local";

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await run();
  return { value, ms: performance.now() - started };
}

describe("dns forwarding (fake upstream on 127.0.0.1)", () => {
  let f: Fixture;
  let clock: ManualClock;
  beforeEach(async () => {
    clock = new ManualClock();
    f = await startServer({ view: VIEW, upstream: true, server: { clock } });
  });
  afterEach(async () => {
    await f.close();
  });

  it("forwards other names (RA set, not authoritative) and caches the answer: one upstream query for two lookups", async () => {
    const first = await udp(f.port, "example.com");
    assert.deepEqual(first.answers, ["example.com A 300 192.0.2.1"]);
    assert.equal(first.aa, false);
    assert.equal(first.packet.flag_ra, true);
    const second = await udp(f.port, "example.com");
    assert.deepEqual(second.answers, ["example.com A 300 192.0.2.1"]);
    assert.equal(f.upstream!.count("example.com"), 1);
    const stats = f.server.stats();
    assert.equal(stats.sources.upstream, 1);
    assert.equal(stats.sources.cache, 1);
    assert.equal(stats.cache.hits, 1);
    assert.equal(stats.cache.entries, 1);
  });

  it("a cached answer's TTL counts down with the clock; it is fetched again when it expires", async () => {
    await udp(f.port, "example.com");
    clock.time += 100_000;
    assert.deepEqual((await udp(f.port, "example.com")).answers, ["example.com A 200 192.0.2.1"]);
    clock.time += 200_000;
    assert.deepEqual((await udp(f.port, "example.com")).answers, ["example.com A 300 192.0.2.1"]);
    assert.equal(f.upstream!.count("example.com"), 2);
    assert.equal(f.server.stats().cache.expired, 1);
  });

  it("NXDOMAIN is cached by the SOA minimum (capped by maxNegativeTtlSeconds)", async () => {
    f.upstream!.nxdomain.add("nx.example");
    f.upstream!.negativeTtl = 60;
    assert.equal((await udp(f.port, "nx.example")).rcode, "NXDOMAIN");
    clock.time += 59_000;
    assert.equal((await udp(f.port, "nx.example")).rcode, "NXDOMAIN");
    assert.equal(f.upstream!.count("nx.example"), 1);
    clock.time += 2_000;
    assert.equal((await udp(f.port, "nx.example")).rcode, "NXDOMAIN");
    assert.equal(f.upstream!.count("nx.example"), 2);

    const capped = await startServer({
      view: VIEW,
      upstream: true,
      server: { clock, cache: { maxNegativeTtlSeconds: 10 } },
    });
    try {
      capped.upstream!.nxdomain.add("nx.example");
      await udp(capped.port, "nx.example");
      clock.time += 11_000;
      await udp(capped.port, "nx.example");
      assert.equal(capped.upstream!.count("nx.example"), 2);
    } finally {
      await capped.close();
    }
  });

  it("rewrites the query ID upstream and restores it, echoes the client's spelling on a cache hit", async () => {
    const names = ["a.example", "b.example", "c.example"];
    for (const name of names) assert.equal((await udp(f.port, name, { id: 4242 })).packet.id, 4242);
    assert.ok(
      f.upstream!.queries.some((q) => q.id !== 4242),
      "the client's ID is not sent upstream",
    );
    const query = buildQuery("A.ExAmple", { id: 7 });
    const raw = await rawUdp(f.port, query);
    assert.ok(raw !== undefined);
    assert.equal(decode(raw).packet.id, 7);
    assert.deepEqual(raw.subarray(12, query.length), query.subarray(12));
    assert.equal(f.upstream!.count("a.example"), 1);
  });

  it("EDNS is per client: our OPT only for a client that sent one, also from the same cache entry", async () => {
    assert.equal(optOf(await udp(f.port, "example.net")), undefined);
    const withEdns = await udp(f.port, "example.net", { edns: 1232 });
    assert.equal(optOf(withEdns)?.udpPayloadSize, 1232);
    assert.deepEqual(withEdns.answers, ["example.net A 300 192.0.2.1"]);
    assert.equal(f.upstream!.count("example.net"), 1);
    assert.ok(
      f.upstream!.queries.every((q) => q.edns),
      "we always ask upstream with EDNS",
    );
  });

  it("ndots:5 search walk: the expansions are NXDOMAIN from the index; one upstream query per type per external name", async () => {
    const conf = parseResolvConf(
      "nameserver 10.254.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
    );
    assert.deepEqual(searchCandidates("example.com", conf), [
      "example.com.default.svc.cluster.local",
      "example.com.svc.cluster.local",
      "example.com.cluster.local",
      "example.com",
    ]);
    // What glibc does per type: each candidate until one is not NXDOMAIN.
    const lookup = async (name: string, type: "A" | "AAAA"): Promise<{ tried: number; answer: Answer }> => {
      const candidates = searchCandidates(name, conf);
      for (const [i, candidate] of candidates.entries()) {
        const answer = await udp(f.port, candidate, { type });
        if (answer.rcode !== "NXDOMAIN" || i === candidates.length - 1) return { tried: i + 1, answer };
      }
      throw new Error("no candidates");
    };
    for (let round = 0; round < 3; round++) {
      const a = await lookup("example.com", "A");
      const aaaa = await lookup("example.com", "AAAA");
      assert.equal(a.tried, 4);
      assert.deepEqual(a.answer.answers, ["example.com A 300 192.0.2.1"]);
      assert.equal(aaaa.answer.rcode, "NOERROR");
    }
    assert.deepEqual(
      f.upstream!.queries.map((q) => `${q.name} ${q.type}`),
      ["example.com A", "example.com AAAA"],
    );
    // A cluster name through the same search list: the first candidate answers, nothing goes upstream.
    const cluster = await lookup("nginx-service", "A");
    assert.equal(cluster.tried, 1);
    assert.deepEqual(cluster.answer.answers, [`${NGINX} A 5 10.254.0.20`]);
    assert.equal(f.upstream!.queries.length, 2);
  });

  it("a PTR for an address that is not a cluster IP goes upstream", async () => {
    assert.equal((await udp(f.port, "1.0.0.10.in-addr.arpa", { type: "PTR" })).rcode, "NOERROR");
    assert.equal(f.upstream!.count("1.0.0.10.in-addr.arpa", "PTR"), 1);
    assert.equal((await udp(f.port, "20.0.254.10.in-addr.arpa", { type: "PTR" })).answers.length, 1);
    assert.equal(f.upstream!.count("20.0.254.10.in-addr.arpa"), 0);
  });

  it("an upstream TC is fetched again over TCP; the client gets TC and its own TCP retry is a cache hit", async () => {
    f.upstream!.big.set("big.example", 60);
    const first = await udp(f.port, "big.example", { edns: 1232 });
    assert.equal(first.tc, true);
    const full = await tcp(f.port, "big.example");
    assert.equal(full.answers.length, 60);
    assert.deepEqual(
      f.upstream!.queries.map((q) => q.transport),
      ["udp", "tcp"],
    );
    assert.equal(f.server.stats().upstream.tcpRetries, 1);
  });

  it("identical questions in flight are sent upstream once", async () => {
    f.upstream!.delayMs = 100;
    const answers = await Promise.all(Array.from({ length: 5 }, () => udp(f.port, "same.example")));
    assert.ok(answers.every((a) => a.answers.length === 1));
    assert.equal(f.upstream!.count("same.example"), 1);
    assert.equal(f.server.stats().upstream.coalesced, 4);
  });
});

describe("dns forwarding: bounds and failures", () => {
  it("at most maxInFlight distinct questions wait on upstreams; the rest get SERVFAIL at once", async () => {
    const f = await startServer({ view: VIEW, upstream: true, server: { forward: { maxInFlight: 2 } } });
    try {
      f.upstream!.delayMs = 300;
      const { value, ms } = await timed(() =>
        Promise.all(Array.from({ length: 5 }, (_, i) => timed(() => udp(f.port, `n${i}.example`)))),
      );
      const servfails = value.filter((r) => r.value.rcode === "SERVFAIL");
      assert.equal(servfails.length, 3);
      assert.ok(
        servfails.every((r) => r.ms < 200),
        `immediate SERVFAILs: ${servfails.map((r) => r.ms.toFixed(0)).join(", ")} ms`,
      );
      assert.equal(value.filter((r) => r.value.rcode === "NOERROR").length, 2);
      assert.ok(ms < 1000);
      assert.equal(f.server.stats().upstream.overloaded, 3);
      assert.equal(f.server.stats().upstream.inFlight, 0);
    } finally {
      await f.close();
    }
  });

  it("at most 4 × maxInFlight client queries wait, also when they all ask the same name", async () => {
    const f = await startServer({ view: VIEW, upstream: true, server: { forward: { maxInFlight: 1 } } });
    try {
      f.upstream!.delayMs = 300;
      const answers = await Promise.all(Array.from({ length: 6 }, () => udp(f.port, "same.example")));
      assert.deepEqual(answers.map((a) => a.rcode).sort(), [
        "NOERROR",
        "NOERROR",
        "NOERROR",
        "NOERROR",
        "SERVFAIL",
        "SERVFAIL",
      ]);
      assert.equal(f.upstream!.count("same.example"), 1);
      assert.equal(f.server.stats().upstream.overloaded, 2);
    } finally {
      await f.close();
    }
  });

  it("the cache holds at most maxEntries answers (LRU)", async () => {
    const f = await startServer({ view: VIEW, upstream: true, server: { cache: { maxEntries: 3 } } });
    try {
      for (const name of ["a", "b", "c", "d", "e"]) await udp(f.port, `${name}.example`);
      await udp(f.port, "e.example");
      await udp(f.port, "a.example"); // evicted: fetched again
      assert.equal(f.upstream!.count("e.example"), 1);
      assert.equal(f.upstream!.count("a.example"), 2);
      const cache = f.server.stats().cache;
      assert.equal(cache.entries, 3);
      assert.equal(cache.evictions, 3);
    } finally {
      await f.close();
    }
  });

  it("an upstream that drops everything: SERVFAIL within ~2 s (the default bound), cluster names answer meanwhile", async () => {
    const f = await startServer({ view: VIEW, upstream: true });
    try {
      f.upstream!.mode = "drop";
      const external = timed(() => udp(f.port, "down.example"));
      const cluster = await timed(() => udp(f.port, NGINX));
      assert.equal(cluster.value.rcode, "NOERROR");
      assert.ok(cluster.ms < 100, `cluster name answered in ${cluster.ms.toFixed(0)} ms`);
      const { value, ms } = await external;
      assert.equal(value.rcode, "SERVFAIL");
      assert.ok(ms >= 1300 && ms <= 2300, `SERVFAIL after ${ms.toFixed(0)} ms`);
      assert.equal(f.upstream!.count("down.example"), 2); // the attempt and one retry
      assert.equal(f.server.stats().upstream.failures.timeout, 2);
      assert.ok(f.events.some((e) => e.type === "upstream-down" && e.reason === "timeout"));
      f.upstream!.mode = "answer";
      assert.equal((await udp(f.port, "down.example")).rcode, "NOERROR"); // a SERVFAIL is not cached
      assert.ok(f.events.some((e) => e.type === "upstream-up"));
    } finally {
      await f.close();
    }
  });

  it("an upstream whose port is closed fails over at once (ECONNREFUSED on the connected socket)", async () => {
    const port = await closedPort();
    const f = await startServer({ view: VIEW, server: { upstreams: [{ address: "127.0.0.1", port }] } });
    try {
      const { value, ms } = await timed(() => udp(f.port, "refused.example"));
      assert.equal(value.rcode, "SERVFAIL");
      assert.ok(ms < 500, `SERVFAIL after ${ms.toFixed(0)} ms`);
      assert.ok(f.server.stats().upstream.failures.refused >= 1);
    } finally {
      await f.close();
    }
  });

  it("fails over to the next upstream, then keeps using the one that answered", async () => {
    const dead = new FakeDnsUpstream();
    const deadPort = await dead.start();
    dead.mode = "drop";
    const live = new FakeDnsUpstream();
    const livePort = await live.start();
    const f = await startServer({
      view: VIEW,
      server: {
        upstreams: [
          { address: "127.0.0.1", port: deadPort },
          { address: "127.0.0.1", port: livePort },
        ],
        forward: { attemptTimeoutMs: 300 },
      },
    });
    try {
      const first = await timed(() => udp(f.port, "one.example"));
      assert.equal(first.value.rcode, "NOERROR");
      assert.ok(first.ms >= 250 && first.ms < 1000, `first answer after ${first.ms.toFixed(0)} ms`);
      const second = await timed(() => udp(f.port, "two.example"));
      assert.ok(second.ms < 100, `second answer after ${second.ms.toFixed(0)} ms`);
      assert.equal(dead.count("two.example"), 0);
      assert.equal(live.count(), 2);
    } finally {
      await f.close();
      await dead.close();
      await live.close();
    }
  });

  it("closing the server while upstream queries are pending neither throws nor leaves a rejection behind", async () => {
    const f = await startServer({ view: VIEW, upstream: true });
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown): void => {
      rejections.push(reason);
    };
    process.on("unhandledRejection", onRejection);
    try {
      f.upstream!.delayMs = 200;
      const pending = Promise.all([
        rawUdp(f.port, buildQuery("late.example"), 400),
        rawTcp(f.port, [buildQuery("late2.example")], 1, 400).catch(() => []),
      ]);
      await new Promise((r) => setTimeout(r, 50));
      await f.close();
      await pending;
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(rejections, []);
    } finally {
      process.off("unhandledRejection", onRejection);
    }
  });

  it("an upstream SERVFAIL moves on to the next upstream", async () => {
    const broken = new FakeDnsUpstream();
    const brokenPort = await broken.start();
    broken.mode = "servfail";
    const live = new FakeDnsUpstream();
    const livePort = await live.start();
    const f = await startServer({
      view: VIEW,
      server: {
        upstreams: [
          { address: "127.0.0.1", port: brokenPort },
          { address: "127.0.0.1", port: livePort },
        ],
      },
    });
    try {
      assert.deepEqual((await udp(f.port, "x.example")).answers, ["x.example A 300 192.0.2.1"]);
      assert.equal(broken.count("x.example"), 1);
    } finally {
      await f.close();
      await broken.close();
      await live.close();
    }
  });
});
