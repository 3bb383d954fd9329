// UDP/TCP behaviour of the real server: EDNS0, truncation and the TCP retry, framing, idle timeout, connection cap.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import dnsPacket from "dns-packet";
import type { DnsService, DnsView } from "../../src/dns/view.js";
import { buildQuery, decode, optOf, rawTcp, rawUdp, tcp, udp } from "./support/dns-client.js";
import { startServer, VIEW, type Fixture } from "./support/fixture.js";

function headless(name: string, count: number): DnsService {
  return {
    namespace: "default",
    name,
    clusterIP: "None",
    ports: [{ name: "x", port: 80, protocol: "TCP" }],
    endpoints: Array.from({ length: count }, (_, i) => ({ ip: `172.30.5.${i + 1}` })),
  };
}

const BIG_VIEW: DnsView = {
  ...VIEW,
  services: [...VIEW.services, headless("big", 60), headless("mid", 20), headless("four", 4)],
};
const BIG = "big.default.svc.cluster.local";
const MID = "mid.default.svc.cluster.local";

/** What a stub resolver does: UDP, and over TCP again when the answer came truncated. */
async function stub(port: number, name: string, edns?: number): Promise<{ viaTcp: boolean; answers: number }> {
  const first = await udp(port, name, edns === undefined ? {} : { edns });
  if (!first.tc) return { viaTcp: false, answers: first.answers.length };
  const again = await tcp(port, name, edns === undefined ? {} : { edns });
  return { viaTcp: true, answers: again.answers.length };
}

describe("dns transport (real server)", () => {
  let f: Fixture;
  before(async () => {
    f = await startServer({ view: BIG_VIEW });
  });
  after(async () => {
    await f.close();
  });

  it("without EDNS an answer over 512 bytes is truncated (TC, no records); the client retries over TCP and gets all", async () => {
    const truncated = await udp(f.port, MID);
    assert.equal(truncated.tc, true);
    assert.equal(truncated.rcode, "NOERROR");
    assert.deepEqual(truncated.answers, []);
    assert.ok(truncated.raw.length <= 512);
    assert.deepEqual(await stub(f.port, MID), { viaTcp: true, answers: 20 });
    assert.deepEqual(await stub(f.port, BIG), { viaTcp: true, answers: 60 });
    assert.ok(f.server.stats().truncated >= 2);
  });

  it("EDNS0: the client's advertised size is honoured up to ours (1232), and the answer carries our OPT", async () => {
    const mid = await udp(f.port, MID, { edns: 1232 });
    assert.equal(mid.tc, false);
    assert.equal(mid.answers.length, 20);
    assert.ok(mid.raw.length > 512 && mid.raw.length <= 1232);
    assert.equal(optOf(mid)?.udpPayloadSize, 1232);
    // 60 records (~2.7 kB) exceed our 1232 even when the client offers 4096.
    const big = await udp(f.port, BIG, { edns: 4096 });
    assert.equal(big.tc, true);
    assert.deepEqual(await stub(f.port, BIG, 4096), { viaTcp: true, answers: 60 });
    // A client advertising less than 512 still gets 512 (RFC 6891 §6.2.5).
    assert.equal((await udp(f.port, MID, { edns: 100 })).tc, true);
    // No OPT in the query → none in the answer; the DO bit is copied.
    assert.equal(optOf(await udp(f.port, MID)), undefined);
    assert.equal(
      optOf(await udp(f.port, "nginx-service.default.svc.cluster.local", { edns: 1232, dnssecOk: true }))?.flag_do,
      true,
    );
  });

  it("a larger maxUdpPayload lets a 2.7 kB answer go over UDP to a client that offers 4096", async () => {
    const wide = await startServer({ view: BIG_VIEW, server: { maxUdpPayload: 4096 } });
    try {
      const big = await udp(wide.port, BIG, { edns: 4096 });
      assert.equal(big.tc, false);
      assert.equal(big.answers.length, 60);
    } finally {
      await wide.close();
    }
  });

  it("the additional section is dropped before anything is truncated (no TC for that)", async () => {
    const name = "_x._tcp.four.default.svc.cluster.local";
    const small = await udp(f.port, name, { type: "SRV" });
    assert.equal(small.tc, false);
    assert.equal(small.answers.length, 4);
    assert.deepEqual(small.additionals, []);
    const full = await udp(f.port, name, { type: "SRV", edns: 1232 });
    assert.equal(full.additionals.length, 4);
  });

  it("an EDNS version other than 0 gets BADVERS (extended rcode 1 in the OPT)", async () => {
    const query = dnsPacket.encode({
      type: "query",
      id: 99,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ name: "nginx-service.default.svc.cluster.local", type: "A" }],
      additionals: [
        {
          name: ".",
          type: "OPT",
          udpPayloadSize: 1232,
          extendedRcode: 0,
          ednsVersion: 1,
          flags: 0,
          flag_do: false,
          options: [],
        },
      ],
    });
    const raw = await rawUdp(f.port, query);
    assert.ok(raw !== undefined);
    const answer = decode(raw);
    assert.equal(answer.packet.id, 99);
    assert.equal(optOf(answer)?.extendedRcode, 1);
    assert.deepEqual(answer.answers, []);
  });

  it("TCP: pipelined queries on one connection, and a query split into single bytes, are all answered", async () => {
    const queries = [
      buildQuery("nginx-service.default.svc.cluster.local", { id: 1 }),
      buildQuery("nope.cluster.local", { id: 2 }),
      buildQuery(BIG, { id: 3 }),
    ];
    const answers = (await rawTcp(f.port, queries)).map(decode);
    assert.deepEqual(answers.map((a) => [a.packet.id, a.rcode, a.answers.length]).sort(), [
      [1, "NOERROR", 1],
      [2, "NXDOMAIN", 0],
      [3, "NOERROR", 60],
    ]);

    const query = buildQuery("nginx-service.default.svc.cluster.local", { id: 77 });
    const frame = Buffer.concat([Buffer.from([query.length >> 8, query.length & 255]), query]);
    const socket = connect({ host: "127.0.0.1", port: f.port });
    const answer = await new Promise<Buffer>((resolve, reject) => {
      let got = Buffer.alloc(0);
      socket.on("error", reject);
      socket.on("data", (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) resolve(got.subarray(2));
      });
      socket.on("connect", () => {
        void (async () => {
          for (const byte of frame) {
            socket.write(Buffer.from([byte]));
            await new Promise((r) => setImmediate(r));
          }
        })();
      });
    });
    socket.destroy();
    assert.equal(decode(answer).packet.id, 77);
    assert.deepEqual(decode(answer).answers, ["nginx-service.default.svc.cluster.local A 5 10.254.0.20"]);
  });

  it("TCP: a frame longer than maxQueryBytes gets FORMERR and the connection closes; a frame shorter than a header just closes", async () => {
    const header = Buffer.from(buildQuery("x.cluster.local", { id: 4321 }));
    const oversized = Buffer.concat([header, Buffer.alloc(5000 - header.length)]);
    const [formerr] = await rawTcp(f.port, [oversized], 1);
    assert.ok(formerr !== undefined);
    assert.equal(decode(formerr).rcode, "FORMERR");
    assert.equal(decode(formerr).packet.id, 4321);
    const closed = await closedAfter(f.port, Buffer.from([0, 5, 1, 2, 3, 4, 5]));
    assert.equal(closed, true);
  });
});

describe("dns TCP limits", () => {
  it("closes a connection idle for longer than idleTimeoutMs", async () => {
    const f = await startServer({ view: VIEW, server: { tcp: { idleTimeoutMs: 100 } } });
    try {
      const started = Date.now();
      assert.equal(await closedAfter(f.port, Buffer.alloc(0)), true);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 90 && elapsed < 1000, `closed after ${elapsed} ms`);
      assert.equal(f.server.stats().tcp.idleClosed, 1);
    } finally {
      await f.close();
    }
  });

  it("accepts at most maxConnections at once; the next one is closed, and counted", async () => {
    const f = await startServer({ view: VIEW, server: { tcp: { maxConnections: 2 } } });
    const open: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const s = connect({ host: "127.0.0.1", port: f.port });
        await new Promise((r) => s.once("connect", r));
        open.push(s);
      }
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(await closedAfter(f.port, Buffer.alloc(0), 1000), true);
      assert.equal(f.server.stats().tcp.rejected, 1);
      assert.equal(f.server.stats().tcp.open, 2);
      // The open ones still work.
      const [answer] = await new Promise<Buffer[]>((resolve) => {
        const q = buildQuery("nginx-service.default.svc.cluster.local");
        open[0]!.once("data", (d: Buffer) => {
          resolve([d.subarray(2)]);
        });
        open[0]!.write(Buffer.concat([Buffer.from([q.length >> 8, q.length & 255]), q]));
      });
      assert.equal(decode(answer!).rcode, "NOERROR");
    } finally {
      for (const s of open) s.destroy();
      await f.close();
    }
  });
});

/** Connects, writes `bytes`, and resolves true when the server closes the connection within timeoutMs. */
function closedAfter(port: number, bytes: Buffer, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, timeoutMs);
    socket.on("connect", () => {
      if (bytes.length > 0) socket.write(bytes);
    });
    socket.on("data", () => undefined);
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
