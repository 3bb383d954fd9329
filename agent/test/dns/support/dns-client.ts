// A minimal DNS client for the tests: dns-packet over node:dgram and node:net, to 127.0.0.1 only.
import { createSocket } from "node:dgram";
import { connect } from "node:net";
import dnsPacket from "dns-packet";

export interface QueryOptions {
  readonly type?: dnsPacket.RecordType | "ANY";
  readonly id?: number;
  /** Adds an OPT record advertising this UDP size. */
  readonly edns?: number;
  readonly dnssecOk?: boolean;
  readonly rd?: boolean;
}

export function buildQuery(name: string, options: QueryOptions = {}): Buffer {
  const additionals: dnsPacket.Answer[] =
    options.edns === undefined
      ? []
      : [
          {
            name: ".",
            type: "OPT",
            udpPayloadSize: options.edns,
            extendedRcode: 0,
            ednsVersion: 0,
            flags: options.dnssecOk === true ? dnsPacket.DNSSEC_OK : 0,
            flag_do: options.dnssecOk === true,
            options: [],
          },
        ];
  return dnsPacket.encode({
    type: "query",
    id: options.id ?? Math.floor(Math.random() * 65536),
    flags: options.rd === false ? 0 : dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: (options.type ?? "A") as dnsPacket.RecordType, class: "IN" }],
    additionals,
  });
}

/** Sends raw bytes over UDP; resolves with the answer's bytes, or undefined when none came within timeoutMs. */
export function rawUdp(port: number, message: Buffer, timeoutMs = 1000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    const timer = setTimeout(() => {
      socket.close();
      resolve(undefined);
    }, timeoutMs);
    socket.on("message", (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve(msg);
    });
    socket.send(message, port, "127.0.0.1");
  });
}

export async function udp(port: number, name: string, options: QueryOptions = {}): Promise<Answer> {
  const raw = await rawUdp(port, buildQuery(name, options), 3000);
  if (raw === undefined) throw new Error(`no UDP answer for ${name}`);
  return decode(raw);
}

/** Sends framed messages over one TCP connection; resolves with the answers (in arrival order) once all came. */
export function rawTcp(
  port: number,
  messages: readonly Buffer[],
  expect = messages.length,
  timeoutMs = 3000,
): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    const answers: Buffer[] = [];
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`TCP: ${answers.length}/${expect} answers within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on("connect", () => {
      for (const m of messages) {
        const frame = Buffer.alloc(m.length + 2);
        frame.writeUInt16BE(m.length, 0);
        m.copy(frame, 2);
        socket.write(frame);
      }
      if (expect === 0) {
        clearTimeout(timer);
        socket.end();
        resolve([]);
      }
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        answers.push(Buffer.from(buffered.subarray(2, 2 + buffered.readUInt16BE(0))));
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
      }
      if (answers.length >= expect) {
        clearTimeout(timer);
        socket.destroy();
        resolve(answers);
      }
    });
  });
}

export async function tcp(port: number, name: string, options: QueryOptions = {}): Promise<Answer> {
  const [raw] = await rawTcp(port, [buildQuery(name, options)]);
  if (raw === undefined) throw new Error(`no TCP answer for ${name}`);
  return decode(raw);
}

/** What the tests assert on: rcode, flags, and each section as "name type ttl data" strings. */
export interface Answer {
  readonly raw: Buffer;
  readonly packet: dnsPacket.DecodedPacket;
  readonly rcode: string;
  readonly aa: boolean;
  readonly tc: boolean;
  readonly answers: string[];
  readonly authorities: string[];
  readonly additionals: string[];
}

export function decode(raw: Buffer): Answer {
  const packet = dnsPacket.decode(raw);
  const show = (list: dnsPacket.Answer[] | undefined): string[] => (list ?? []).map(format);
  return {
    raw,
    packet,
    rcode: (packet as unknown as { rcode: string }).rcode,
    aa: packet.flag_aa,
    tc: packet.flag_tc,
    answers: show(packet.answers),
    authorities: show(packet.authorities),
    additionals: show((packet.additionals ?? []).filter((a) => a.type !== "OPT")),
  };
}

function format(a: dnsPacket.Answer): string {
  if (a.type === "OPT") return `OPT ${a.udpPayloadSize}`;
  const ttl = a.ttl ?? 0;
  switch (a.type) {
    case "SRV":
      return `${a.name} SRV ${ttl} ${a.data.priority ?? 0} ${a.data.weight ?? 0} ${a.data.port} ${a.data.target}`;
    case "SOA":
      return `${a.name} SOA ${ttl} ${a.data.mname} ${a.data.rname} ${a.data.minimum ?? 0}`;
    case "TXT":
      return `${a.name} TXT ${ttl} ${[a.data]
        .flat()
        .map((d) => d.toString())
        .join(" ")}`;
    default:
      return `${a.name} ${a.type} ${ttl} ${typeof a.data === "string" ? a.data : "?"}`;
  }
}

export function optOf(answer: Answer): dnsPacket.OptAnswer | undefined {
  const opt = (answer.packet.additionals ?? []).find((a) => a.type === "OPT");
  return opt?.type === "OPT" ? opt : undefined;
}
