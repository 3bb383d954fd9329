// The memo of built zone answers: which queries may use it, and that a replay is this query's answer.
import assert from "node:assert/strict";
import dnsPacket from "dns-packet";
import { AnswerMemo, memoKey, replay } from "../../src/dns/answer-memo.js";
import { buildQuery, udp } from "./support/dns-client.js";
import { startServer, VIEW } from "./support/fixture.js";

const NAME = "nginx-service.default.svc.cluster.local";
const key = (q: Buffer, transport: "udp" | "tcp" = "udp"): string | undefined => memoKey(q, transport, 1232, 4096);

describe("answer memo", () => {
  it("one key per question bytes, EDNS state and size limit; the ID and RD do not matter", () => {
    assert.equal(key(buildQuery(NAME, { id: 1 })), key(buildQuery(NAME, { id: 2, rd: false })));
    const keys = new Set([
      key(buildQuery(NAME)),
      key(buildQuery(NAME.toUpperCase())),
      key(buildQuery(NAME, { type: "AAAA" })),
      key(buildQuery(NAME, { edns: 1232 })),
      key(buildQuery(NAME, { edns: 4096 })), // capped to 1232: the same limit as above…
      key(buildQuery(NAME, { edns: 1232, dnssecOk: true })),
      key(buildQuery(NAME), "tcp"),
    ]);
    assert.equal(keys.size, 6); // …so 4096 and 1232 share a key
  });

  it("only plain queries qualify: not a response, two OPTs, an EDNS version > 0, trailing bytes, another opcode", () => {
    const opt = (ednsVersion: number): dnsPacket.Answer => ({
      name: ".",
      type: "OPT",
      udpPayloadSize: 1232,
      extendedRcode: 0,
      ednsVersion,
      flags: 0,
      flag_do: false,
      options: [],
    });
    const q = (packet: Partial<dnsPacket.Packet>): Buffer =>
      dnsPacket.encode({ type: "query", id: 1, questions: [{ name: NAME, type: "A" }], ...packet });
    assert.ok(key(q({ additionals: [opt(0)] })) !== undefined);
    assert.equal(key(q({ type: "response" })), undefined);
    assert.equal(key(q({ additionals: [opt(0), opt(0)] })), undefined);
    assert.equal(key(q({ additionals: [opt(1)] })), undefined);
    assert.equal(key(Buffer.concat([q({}), Buffer.from([0])])), undefined);
    assert.equal(key(q({ flags: 1 << 11 })), undefined);
    assert.equal(key(q({}).subarray(0, 20)), undefined);
  });

  it("a replay carries this query's ID and RD bit; the memo starts over at its cap", () => {
    const memo = new AnswerMemo(2);
    const built = Buffer.from(buildQuery(NAME, { id: 0x1111 }));
    built.writeUInt16BE(0x8580, 2); // QR AA RD RA
    memo.set("a", { response: built, truncated: false });
    const out = replay(memo.get("a")!, buildQuery(NAME, { id: 0x2222, rd: false }));
    assert.equal(out.readUInt16BE(0), 0x2222);
    assert.equal(out.readUInt16BE(2), 0x8480);
    assert.equal(built.readUInt16BE(0), 0x1111, "the memo's bytes are not changed");
    memo.set("b", { response: built, truncated: false });
    memo.set("c", { response: built, truncated: false });
    assert.equal(memo.size, 1);
    assert.equal(memo.get("a"), undefined);
  });

  it("on the real server: each spelling gets its own echo, and counters still count replays", async () => {
    const f = await startServer({ view: VIEW });
    try {
      for (const name of [NAME.toUpperCase(), NAME, NAME.toUpperCase(), NAME]) {
        assert.deepEqual((await udp(f.port, name)).answers, [`${name} A 5 10.254.0.20`]);
      }
      assert.equal(f.server.stats().responses.NOERROR, 4);
      assert.equal(f.server.stats().sources.zone, 4);
    } finally {
      await f.close();
    }
  });
});
