// A stand-in for a node's upstream resolver, for the DNS tests, the benchmark and the lab: UDP + TCP on one port,
// answers every name with an A record (192.0.2.1, TEST-NET-1) and every other type with NODATA + SOA, unless told
// otherwise, and records every query so a test can count upstream round trips. Never forwards anything anywhere.
//   node fake-dns-upstream.js ADDRESS PORT [TTL]   runs one standalone (prints "listening PORT"; TTL of answers and
//                                                  denials)
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import dnsPacket from "dns-packet";

export interface UpstreamQuery {
  readonly id: number;
  readonly name: string;
  readonly type: string;
  readonly transport: "udp" | "tcp";
  readonly edns: boolean;
}

export type UpstreamMode = "answer" | "drop" | "servfail" | "refused";

export class FakeDnsUpstream {
  readonly queries: UpstreamQuery[] = [];
  /** Every query seen, also when `recordQueries` is off. */
  total = 0;
  /** Off for long runs (the benchmark sends hundreds of thousands). */
  recordQueries = true;
  mode: UpstreamMode = "answer";
  /** TTL of positive answers. */
  ttl = 300;
  /** Names (lower case) answered NXDOMAIN with an SOA whose minimum is `negativeTtl`. */
  readonly nxdomain = new Set<string>();
  negativeTtl = 60;
  /** Names (lower case) answered with this many A records: over UDP that exceeds 512 bytes → TC. */
  readonly big = new Map<string, number>();
  /** Delay before answering, ms. */
  delayMs = 0;
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  private readonly connections = new Set<Socket>();

  constructor(private readonly address = "127.0.0.1") {}

  /** Binds UDP and TCP on one port (0 = ephemeral); resolves with it. */
  async start(port = 0): Promise<number> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const udp = createSocket("udp4");
      const udpPort = await new Promise<number>((resolve, reject) => {
        udp.once("error", reject);
        udp.bind(port, this.address, () => {
          resolve(udp.address().port);
        });
      });
      const tcp = createServer((socket) => {
        this.serveTcp(socket);
      });
      const ok = await new Promise<boolean>((resolve) => {
        tcp.once("error", () => {
          resolve(false);
        });
        tcp.listen(udpPort, this.address, () => {
          resolve(true);
        });
      });
      if (!ok) {
        udp.close();
        if (port !== 0) throw new Error(`tcp port ${port} is taken`);
        continue;
      }
      udp.on("message", (msg, rinfo) => {
        this.answer(msg, "udp", (out) => {
          try {
            udp.send(out, rinfo.port, rinfo.address);
          } catch {
            // closed while a delayed answer was pending
          }
        });
      });
      this.udp = udp;
      this.tcp = tcp;
      return udpPort;
    }
    throw new Error("no free port for UDP and TCP");
  }

  count(name?: string, type?: string): number {
    return this.queries.filter(
      (q) => (name === undefined || q.name === name.toLowerCase()) && (type === undefined || q.type === type),
    ).length;
  }

  async close(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    const tcp = this.tcp;
    const udp = this.udp;
    this.tcp = undefined;
    this.udp = undefined;
    if (udp !== undefined)
      await new Promise<void>((resolve) => {
        udp.close(() => {
          resolve();
        });
      });
    if (tcp !== undefined)
      await new Promise<void>((resolve) => {
        tcp.close(() => {
          resolve();
        });
      });
  }

  private serveTcp(socket: Socket): void {
    this.connections.add(socket);
    socket.on("close", () => this.connections.delete(socket));
    socket.on("error", () => undefined);
    let buffered = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const message = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + message.length);
        this.answer(Buffer.from(message), "tcp", (out) => {
          const frame = Buffer.alloc(out.length + 2);
          frame.writeUInt16BE(out.length, 0);
          out.copy(frame, 2);
          if (!socket.destroyed) socket.write(frame);
        });
      }
    });
  }

  private answer(msg: Buffer, transport: "udp" | "tcp", send: (out: Buffer) => void): void {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const question = query.questions?.[0];
    if (question === undefined) return;
    const name = question.name.toLowerCase();
    const edns = (query.additionals ?? []).some((a) => a.type === "OPT");
    this.total += 1;
    if (this.recordQueries) this.queries.push({ id: query.id ?? 0, name, type: question.type, transport, edns });
    if (this.mode === "drop") return;
    const response = this.response(query, question, name, transport);
    const out = dnsPacket.encode(response);
    if (this.delayMs > 0)
      setTimeout(() => {
        send(out);
      }, this.delayMs);
    else send(out);
  }

  private response(
    query: dnsPacket.DecodedPacket,
    question: dnsPacket.Question,
    name: string,
    transport: "udp" | "tcp",
  ): dnsPacket.Packet {
    const base: dnsPacket.Packet = {
      type: "response",
      id: query.id ?? 0,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
      questions: [question],
    };
    const opt: dnsPacket.Answer[] = (query.additionals ?? []).some((a) => a.type === "OPT")
      ? [
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
        ]
      : [];
    if (this.mode === "servfail") return { ...base, flags: (base.flags ?? 0) | 2, additionals: opt };
    if (this.mode === "refused") return { ...base, flags: (base.flags ?? 0) | 5, additionals: opt };
    const soa: dnsPacket.Answer = {
      name: "example.",
      type: "SOA",
      ttl: this.negativeTtl,
      data: {
        mname: "ns.example",
        rname: "hostmaster.example",
        serial: 1,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: this.negativeTtl,
      },
    };
    if (this.nxdomain.has(name)) return { ...base, flags: (base.flags ?? 0) | 3, authorities: [soa], additionals: opt };
    if (question.type !== "A") return { ...base, authorities: [soa], additionals: opt }; // NODATA, as real resolvers answer
    const count = this.big.get(name) ?? 1;
    const answers: dnsPacket.Answer[] = Array.from({ length: count }, (_, i) => ({
      name: question.name,
      type: "A",
      ttl: this.ttl,
      data: `192.0.2.${(i % 250) + 1}`,
    }));
    const limit = transport === "tcp" ? 65535 : edns(query);
    const full: dnsPacket.Packet = { ...base, answers, additionals: opt };
    if (dnsPacket.encodingLength(full) <= limit) return full;
    return { ...base, flags: (base.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, additionals: opt };
  }
}

function edns(query: dnsPacket.DecodedPacket): number {
  const opt = (query.additionals ?? []).find((a) => a.type === "OPT");
  return opt?.type === "OPT" ? Math.max(512, opt.udpPayloadSize) : 512;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [address = "127.0.0.1", port = "0", ttl] = process.argv.slice(2);
  const upstream = new FakeDnsUpstream(address);
  upstream.recordQueries = false;
  if (ttl !== undefined) {
    upstream.ttl = Number(ttl);
    upstream.negativeTtl = Number(ttl);
  }
  const bound = await upstream.start(Number(port));
  process.stdout.write(`listening ${bound}\n`);
  process.on("SIGTERM", () => {
    process.stdout.write(`queries ${upstream.total}\n`);
    void upstream.close();
  });
}
