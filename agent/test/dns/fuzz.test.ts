// Malformed, truncated, oversized and random input never crashes the server: it answers FORMERR (or another
// well-formed answer) when the header can be read, and nothing otherwise.
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { connect } from "node:net";
import dnsPacket from "dns-packet";
import { QueryHandler } from "../../src/dns/handler.js";
import { buildZoneIndex } from "../../src/dns/zone-index.js";
import { buildQuery, decode, rawUdp, udp } from "./support/dns-client.js";
import { startServer, VIEW } from "./support/fixture.js";

/** mulberry32: a seeded PRNG, so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CORPUS: Buffer[] = [
  buildQuery("nginx-service.default.svc.cluster.local"),
  buildQuery("_http._tcp.nginx-service.default.svc.cluster.local", { type: "SRV", edns: 1232 }),
  buildQuery("pg.db.svc.cluster.local", { edns: 4096, dnssecOk: true }),
  buildQuery("20.0.254.10.in-addr.arpa", { type: "PTR" }),
  buildQuery("dns-version.cluster.local", { type: "TXT" }),
  buildQuery("example.com", { type: "AAAA" }),
];

function mutate(random: () => number, seed: Buffer): Buffer {
  const int = (n: number): number => Math.floor(random() * n);
  const out = Buffer.from(seed);
  switch (int(7)) {
    case 0: // flip bits
      for (let i = 0, n = 1 + int(8); i < n; i++) out[int(out.length)]! ^= 1 << int(8);
      return out;
    case 1: // truncate
      return out.subarray(0, int(out.length));
    case 2: // trailing garbage
      return Buffer.concat([out, Buffer.from(Array.from({ length: 1 + int(64) }, () => int(256)))]);
    case 3: // a header count set to anything
      out.writeUInt16BE(int(65536), 4 + 2 * int(4));
      return out;
    case 4: // a byte of the name set to anything (label lengths, pointers)
      out[12 + int(Math.max(1, out.length - 16))] = int(256);
      return out;
    case 5: // random opcode / flags
      out.writeUInt16BE(int(65536) & 0x7fff, 2);
      return out;
    default: // a compression pointer into the question
      out[12] = 0xc0;
      out[13] = int(256);
      return out;
  }
}

function randomPacket(random: () => number): Buffer {
  const r = random();
  if (r < 0.7) return mutate(random, CORPUS[Math.floor(random() * CORPUS.length)]!);
  const length = r < 0.95 ? Math.floor(random() * 600) : 4097 + Math.floor(random() * 5000); // some oversized
  return Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));
}

/** Checks one answer against its query: well-formed, a response, the query's ID, within the UDP limit. */
function checkAnswer(query: Buffer, answer: Buffer | undefined, transport: "udp" | "tcp"): void {
  if (query.length < 12 || (query.readUInt16BE(2) & 0x8000) !== 0) {
    assert.equal(answer, undefined, "no answer without a readable query header");
    return;
  }
  assert.ok(answer !== undefined, `a query with a readable header gets an answer: ${query.toString("hex")}`);
  assert.ok(answer.length >= 12);
  assert.equal(answer.readUInt16BE(0), query.readUInt16BE(0), "the query's ID");
  assert.ok((answer.readUInt16BE(2) & 0x8000) !== 0, "QR set");
  if (transport === "udp") assert.ok(answer.length <= 1232, `within the UDP limit: ${answer.length}`);
  dnsPacket.decode(answer); // throws when we produced something malformed
}

describe("dns fuzzing", () => {
  it("the query handler survives 5,000 random and mutated packets, answering each readable header", async () => {
    const handler = new QueryHandler({
      zone: "cluster.local",
      ttl: 5,
      maxUdpPayload: 1232,
      maxQueryBytes: 4096,
      forwarder: undefined,
      clock: { now: () => Date.now() },
    });
    handler.setIndex(buildZoneIndex(VIEW, { negativeTtl: 5, serial: 1, nameserverAddresses: [] }));
    const random = prng(1337);
    let formerr = 0;
    for (let i = 0; i < 5000; i++) {
      const query = randomPacket(random);
      const transport = i % 5 === 0 ? "tcp" : "udp";
      const answer = await handler.handle(query, transport);
      checkAnswer(query, answer, transport);
      if (answer !== undefined && (answer.readUInt16BE(2) & 0xf) === 1) formerr += 1;
    }
    const c = handler.counters;
    const answered = Object.values(c.responses).reduce((a, b) => a + b, 0);
    assert.equal(answered + c.dropped, 5000);
    assert.ok(formerr > 500, `many FORMERRs (${formerr})`);
    assert.ok(c.responses.NOERROR + c.responses.NXDOMAIN > 100, "mutations that stay valid are still answered");
  });

  it("the real server survives 2,000 random UDP datagrams and 200 TCP frames, and answers normally afterwards", async () => {
    const f = await startServer({ view: VIEW });
    const socket = createSocket("udp4");
    try {
      const random = prng(42);
      const answers = new Map<number, Buffer>();
      socket.on("message", (msg) => {
        if (msg.length >= 2) answers.set(msg.readUInt16BE(0), msg);
      });
      await new Promise<void>((r) => {
        socket.bind(0, "127.0.0.1", r);
      });
      let sent = 0;
      for (let batch = 0; batch < 40; batch++) {
        // Unique IDs within a batch, so each answer can be matched to its query.
        const queries = Array.from({ length: 50 }, (_, i) => {
          const q = randomPacket(random);
          if (q.length >= 2) q.writeUInt16BE(batch * 50 + i, 0);
          return q;
        });
        answers.clear();
        for (const q of queries) socket.send(q, f.port, "127.0.0.1");
        sent += queries.length;
        // Wait for every answer due (a readable query header), or 1 s; then a short grace for stray extra ones.
        const due = queries.filter((q) => q.length >= 12 && (q.readUInt16BE(2) & 0x8000) === 0).length;
        const deadline = Date.now() + 1000;
        while (answers.size < due && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
        await new Promise((r) => setTimeout(r, 2));
        for (const q of queries) if (q.length >= 12) checkAnswer(q, answers.get(q.readUInt16BE(0)), "udp");
      }
      for (let c = 0; c < 4; c++) {
        const tcp = connect({ host: "127.0.0.1", port: f.port });
        tcp.on("error", () => undefined);
        tcp.on("data", () => undefined);
        await new Promise((r) => tcp.once("connect", r));
        for (let i = 0; i < 50; i++) {
          const q = randomPacket(random);
          tcp.write(Buffer.concat([Buffer.from([(q.length >> 8) & 255, q.length & 255]), q]));
        }
        tcp.write(Buffer.from(Array.from({ length: 300 }, () => Math.floor(random() * 256)))); // unframed garbage
        await new Promise((r) => setTimeout(r, 20));
        tcp.destroy();
      }
      const stats = f.server.stats();
      assert.equal(stats.queries.udp, sent);
      const answered = Object.values(stats.responses).reduce((a, b) => a + b, 0);
      assert.equal(answered + stats.dropped, stats.queries.udp + stats.queries.tcp);
      const after = await udp(f.port, "nginx-service.default.svc.cluster.local");
      assert.deepEqual(after.answers, ["nginx-service.default.svc.cluster.local A 5 10.254.0.20"]);
    } finally {
      socket.close();
      await f.close();
    }
  });

  it("specific malformed queries: short, a response, two questions, an opcode, oversized, a pointer in the question", async () => {
    const f = await startServer({ view: VIEW });
    try {
      const base = buildQuery("nginx-service.default.svc.cluster.local", { id: 0x1234 });
      assert.equal(await rawUdp(f.port, base.subarray(0, 11), 200), undefined, "11 bytes: dropped");
      const response = Buffer.from(base);
      response.writeUInt16BE(0x8100, 2);
      assert.equal(await rawUdp(f.port, response, 200), undefined, "a response: dropped");
      const rcodeOf = async (q: Buffer): Promise<string> => {
        const raw = await rawUdp(f.port, q);
        assert.ok(raw !== undefined);
        assert.equal(raw.readUInt16BE(0), 0x1234);
        return decode(raw).rcode;
      };
      const two = Buffer.from(base);
      two.writeUInt16BE(2, 4);
      assert.equal(await rcodeOf(two), "FORMERR");
      const none = Buffer.from(base);
      none.writeUInt16BE(0, 4);
      assert.equal(await rcodeOf(none), "FORMERR");
      const status = Buffer.from(base);
      status.writeUInt16BE(0x1100, 2); // opcode 2 (STATUS)
      assert.equal(await rcodeOf(status), "NOTIMP");
      assert.equal(await rcodeOf(Buffer.concat([base, Buffer.alloc(5000)])), "FORMERR");
      assert.equal(await rcodeOf(base.subarray(0, base.length - 2)), "FORMERR"); // the class cut off
      const pointer = Buffer.concat([base.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
      assert.equal(await rcodeOf(pointer), "FORMERR");
      assert.equal(f.server.stats().dropped, 2);
    } finally {
      await f.close();
    }
  });
});
