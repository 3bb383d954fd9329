// One query's bytes → the answer's bytes (or nothing), independent of the transport's sockets. A zone answer built
// once is replayed from the memo for the same question until the next view (answer-memo.ts).
//   - No readable header, or a response sent to us → dropped (answering could reflect or loop).
//   - Oversized, undecodable, not exactly one question, two OPTs → FORMERR; another opcode → NOTIMP; EDNS version
//     > 0 → BADVERS (RFC 6891).
//   - The question is echoed byte for byte (never re-encoded), so a client always matches its answer.
//   - UDP answers respect the client's size: 512 bytes without EDNS, else its advertised size capped by ours. Too
//     big → the additional section is dropped (RFC 2181 §9: no TC for that); still too big → an empty answer with
//     TC, and the client retries over TCP.

import dnsPacket from "dns-packet";
import type { Clock } from "#lib/clock.js";
import { AnswerMemo, memoKey, replay } from "./answer-memo.js";
import type { CachedAnswer } from "./cache.js";
import type { Forwarder, ForwardResult } from "./forwarder.js";
import { resolve, type ZoneAnswer } from "./records.js";
import { rcodeName, newQueryCounters, type AnswerSource, type QueryCounters, type ResponseRcode } from "./stats.js";
import {
  FLAG_AA,
  FLAG_CD,
  FLAG_QR,
  FLAG_RA,
  FLAG_RD,
  FLAG_TC,
  HEADER_BYTES,
  headerOnlyResponse,
  OPCODE_MASK,
  optRecord,
  questionEnd,
  RCODE,
  readHeader,
  type Header,
} from "./wire.js";
import type { ZoneIndex } from "./zone-index.js";

export type Transport = "udp" | "tcp";

export interface HandlerOptions {
  /** The zone served before the first view (the view's zone wins afterwards). */
  readonly zone: string;
  readonly ttl: number;
  /** Our EDNS UDP payload size: advertised, and the cap on the client's. */
  readonly maxUdpPayload: number;
  readonly maxQueryBytes: number;
  /** undefined = no upstreams configured: other names are REFUSED. */
  readonly forwarder: Forwarder | undefined;
  readonly clock: Pick<Clock, "now">;
}

interface Query {
  readonly header: Header;
  readonly raw: Buffer;
  readonly questionEnd: number;
  readonly name: string;
  readonly type: string;
  readonly class: string;
  readonly edns: { readonly dnssecOk: boolean } | undefined;
  /** The largest answer the client takes over this transport. */
  readonly limit: number;
}

/** A query answered before it reached a resolution: FORMERR, NOTIMP, BADVERS. */
interface Rejection {
  readonly reply: Buffer;
  readonly rcode: ResponseRcode;
}

const CLASSIC_UDP_LIMIT = 512;
/** Built zone answers kept per view (answer-memo.ts): ~300 bytes each, so ≤ ~10 MiB. */
const MEMO_ENTRIES = 32_768;
const TCP_LIMIT = 65535;

export class QueryHandler {
  readonly counters: QueryCounters = newQueryCounters();
  private index: ZoneIndex | undefined;
  private readonly memo = new AnswerMemo(MEMO_ENTRIES);

  constructor(private readonly options: HandlerOptions) {}

  setIndex(index: ZoneIndex): void {
    this.index = index;
    this.memo.clear();
  }

  get currentIndex(): ZoneIndex | undefined {
    return this.index;
  }

  /** Synchronous for zone answers and cache hits; a promise while an upstream is asked; undefined = drop. */
  handle(raw: Buffer, transport: Transport): Buffer | undefined | Promise<Buffer | undefined> {
    this.counters.queries[transport] += 1;
    const key =
      this.index === undefined
        ? undefined
        : memoKey(raw, transport, this.options.maxUdpPayload, this.options.maxQueryBytes);
    if (key !== undefined) {
      const hit = this.memo.get(key);
      if (hit !== undefined) {
        if (hit.truncated) this.counters.truncated += 1;
        return this.count(replay(hit, raw), "zone");
      }
    }
    const parsed = this.parse(raw, transport);
    if (parsed === undefined) {
      this.counters.dropped += 1;
      return undefined;
    }
    if ("reply" in parsed) return this.count(parsed.reply, "error", parsed.rcode);
    const resolution = resolve(this.index, this.options.zone, parsed, { ttl: this.options.ttl });
    if (resolution.kind === "answer") {
      const response = this.zoneResponse(parsed, resolution);
      if (key !== undefined) this.memo.set(key, { response, truncated: (response.readUInt16BE(2) & FLAG_TC) !== 0 });
      return this.count(response, "zone");
    }
    const forwarder = this.options.forwarder;
    if (forwarder === undefined) return this.count(this.emptyResponse(parsed, RCODE.REFUSED), "failed");
    const request = {
      question: raw.subarray(HEADER_BYTES, parsed.questionEnd),
      dnssecOk: parsed.edns?.dnssecOk === true,
      checkingDisabled: (parsed.header.flags & FLAG_CD) !== 0,
    };
    let result: ForwardResult | Promise<ForwardResult>;
    try {
      result = forwarder.forward(request);
    } catch {
      return this.count(this.emptyResponse(parsed, RCODE.SERVFAIL), "error");
    }
    if (!(result instanceof Promise)) return this.forwarded(parsed, result);
    return result.then(
      (r) => this.forwarded(parsed, r),
      () => this.count(this.emptyResponse(parsed, RCODE.SERVFAIL), "error"),
    );
  }

  private parse(raw: Buffer, transport: Transport): Query | Rejection | undefined {
    const header = readHeader(raw);
    if (header === undefined || (header.flags & FLAG_QR) !== 0) return undefined;
    const formerr: Rejection = { reply: headerOnlyResponse(header, RCODE.FORMERR), rcode: "FORMERR" };
    if (raw.length > this.options.maxQueryBytes) return formerr;
    if ((header.flags & OPCODE_MASK) !== 0) return { reply: headerOnlyResponse(header, RCODE.NOTIMP), rcode: "NOTIMP" };
    const end = questionEnd(raw);
    if (header.qdcount !== 1 || end < 0) return formerr;
    let packet: dnsPacket.DecodedPacket;
    try {
      packet = dnsPacket.decode(raw);
    } catch {
      return formerr;
    }
    const question = packet.questions?.[0];
    const opts = (packet.additionals ?? []).filter((a) => a.type === "OPT");
    const opt = opts[0];
    if (question === undefined || opts.length > 1 || (opt !== undefined && opt.name !== ".")) return formerr;
    const edns = opt === undefined ? undefined : { dnssecOk: opt.flag_do };
    if (opt !== undefined && opt.ednsVersion !== 0)
      return { reply: this.badVersion(header, raw, end, edns?.dnssecOk === true), rcode: "BADVERS" };
    const limit =
      transport === "tcp"
        ? TCP_LIMIT
        : opt === undefined
          ? CLASSIC_UDP_LIMIT
          : Math.max(CLASSIC_UDP_LIMIT, Math.min(opt.udpPayloadSize, this.options.maxUdpPayload));
    return {
      header,
      raw,
      questionEnd: end,
      name: question.name,
      type: question.type,
      class: question.class ?? "IN",
      edns,
      limit,
    };
  }

  private flags(query: Query, rcode: number, authoritative: boolean): number {
    return (
      FLAG_QR |
      (authoritative ? FLAG_AA : 0) |
      (query.header.flags & (FLAG_RD | FLAG_CD)) |
      (this.options.forwarder === undefined ? 0 : FLAG_RA) |
      rcode
    );
  }

  private zoneResponse(query: Query, answer: ZoneAnswer): Buffer {
    const rcode = RCODE[answer.rcode];
    const flags = this.flags(query, rcode, rcode === RCODE.NOERROR || rcode === RCODE.NXDOMAIN);
    let sections = encodeSections(answer, answer.additionals);
    if (responseLength(query, sections) > query.limit && answer.additionals.length > 0)
      sections = encodeSections(answer, []);
    if (responseLength(query, sections) > query.limit) return this.truncated(query, flags);
    return this.assemble(query, flags, sections);
  }

  private forwarded(query: Query, result: ForwardResult): Buffer {
    if (result.kind === "failed") {
      return this.count(
        this.emptyResponse(query, result.reason === "no-upstreams" ? RCODE.REFUSED : RCODE.SERVFAIL),
        "failed",
      );
    }
    return this.count(this.renderCached(query, result.answer), result.fromCache ? "cache" : "upstream");
  }

  /** A cached upstream answer for this client: its ID, RD/CD, question spelling, aged TTLs and EDNS state. */
  private renderCached(query: Query, answer: CachedAnswer): Buffer {
    const bytes = answer.bytes;
    const opt = query.edns === undefined ? undefined : optRecord(this.options.maxUdpPayload, query.edns.dnssecOk);
    const upstreamFlags = bytes.readUInt16BE(2);
    const flags =
      FLAG_QR |
      FLAG_RA |
      (upstreamFlags & 0x0f) |
      (upstreamFlags & 0x0020) |
      (query.header.flags & (FLAG_RD | FLAG_CD));
    const length = bytes.length + (opt?.length ?? 0);
    if (length > query.limit) return this.truncated(query, flags);
    const out = Buffer.allocUnsafe(length);
    bytes.copy(out);
    out.writeUInt16BE(query.header.id, 0);
    out.writeUInt16BE(flags, 2);
    query.raw.copy(out, HEADER_BYTES, HEADER_BYTES, query.questionEnd);
    const age = Math.max(0, Math.floor((this.options.clock.now() - answer.storedAt) / 1000));
    if (age > 0) for (const at of answer.ttlOffsets) out.writeUInt32BE(Math.max(0, bytes.readUInt32BE(at) - age), at);
    if (opt !== undefined) {
      opt.copy(out, bytes.length);
      out.writeUInt16BE(out.readUInt16BE(10) + 1, 10);
    }
    return out;
  }

  private assemble(query: Query, flags: number, sections: Buffer): Buffer {
    const questionLength = query.questionEnd - HEADER_BYTES;
    const opt = query.edns === undefined ? undefined : optRecord(this.options.maxUdpPayload, query.edns.dnssecOk);
    const out = Buffer.allocUnsafe(HEADER_BYTES + questionLength + sections.length - HEADER_BYTES + (opt?.length ?? 0));
    out.writeUInt16BE(query.header.id, 0);
    out.writeUInt16BE(flags, 2);
    out.writeUInt16BE(1, 4);
    sections.copy(out, 6, 6, 10); // answer and authority counts
    out.writeUInt16BE(sections.readUInt16BE(10) + (opt === undefined ? 0 : 1), 10);
    query.raw.copy(out, HEADER_BYTES, HEADER_BYTES, query.questionEnd);
    sections.copy(out, HEADER_BYTES + questionLength, HEADER_BYTES);
    opt?.copy(out, out.length - opt.length);
    return out;
  }

  private truncated(query: Query, flags: number): Buffer {
    this.counters.truncated += 1;
    return this.assemble(query, flags | FLAG_TC, EMPTY_SECTIONS);
  }

  private emptyResponse(query: Query, rcode: number): Buffer {
    return this.assemble(query, this.flags(query, rcode, false), EMPTY_SECTIONS);
  }

  private badVersion(header: Header, raw: Buffer, end: number, dnssecOk: boolean): Buffer {
    // BADVERS = 16: the upper 8 bits (1) go in the OPT's extended-rcode byte, the lower 4 (0) in the header.
    const opt = optRecord(this.options.maxUdpPayload, dnssecOk);
    opt[5] = 1;
    const out = Buffer.concat([headerOnlyResponse(header, 0), raw.subarray(HEADER_BYTES, end), opt]);
    out.writeUInt16BE(1, 4);
    out.writeUInt16BE(1, 10);
    return out;
  }

  private count(
    response: Buffer,
    source: AnswerSource,
    rcode: ResponseRcode = rcodeName(response.readUInt16BE(2) & 0xf),
  ): Buffer {
    this.counters.responses[rcode] += 1;
    this.counters.sources[source] += 1;
    return response;
  }
}

const EMPTY_SECTIONS = Buffer.alloc(HEADER_BYTES);

/** dns-packet encodes the records; its header (with no question) only carries the section counts. */
function encodeSections(answer: ZoneAnswer, additionals: ZoneAnswer["additionals"]): Buffer {
  return dnsPacket.encode({ type: "response", answers: answer.answers, authorities: answer.authorities, additionals });
}

function responseLength(query: Query, sections: Buffer): number {
  return query.questionEnd + sections.length - HEADER_BYTES + (query.edns === undefined ? 0 : 11);
}
