// The hot path: a zone answer, once built for a question, is kept as bytes and replayed with the next query's ID and
// RD/CD bits — no decode, lookup or encode. Valid for one view only (the server clears it on setView), and only for
// plain queries: one question, no other records but at most one EDNS0 OPT; anything else takes the full path.
// The key is the question's exact bytes (so the answer echoes that spelling), the EDNS state and the size limit.
// Bounded: at the cap the memo starts over (a generation), which costs a rebuild per name, never memory.

import { FLAG_CD, FLAG_QR, FLAG_RD, HEADER_BYTES, OPCODE_MASK, questionEnd, TYPE_OPT } from "./wire.js";

export interface MemoEntry {
  readonly response: Buffer;
  readonly truncated: boolean;
}

const CLASSIC_UDP_LIMIT = 512;

/** The memo key of a plain query, or undefined when it must take the full path. */
export function memoKey(
  raw: Buffer,
  transport: "udp" | "tcp",
  maxUdpPayload: number,
  maxQueryBytes: number,
): string | undefined {
  if (raw.length < HEADER_BYTES || raw.length > maxQueryBytes) return undefined;
  const flags = raw.readUInt16BE(2);
  if (
    (flags & (FLAG_QR | OPCODE_MASK)) !== 0 ||
    raw.readUInt16BE(4) !== 1 ||
    raw.readUInt16BE(6) !== 0 ||
    raw.readUInt16BE(8) !== 0
  )
    return undefined;
  const arcount = raw.readUInt16BE(10);
  const end = questionEnd(raw);
  if (end < 0) return undefined;
  let limit = transport === "tcp" ? 65535 : CLASSIC_UDP_LIMIT;
  let edns = "-";
  if (arcount === 0) {
    if (end !== raw.length) return undefined;
  } else {
    // Exactly one OPT: root name, type 41, version 0, its options skipped whole, nothing after it.
    if (
      arcount !== 1 ||
      end + 11 > raw.length ||
      raw[end] !== 0 ||
      raw.readUInt16BE(end + 1) !== TYPE_OPT ||
      raw[end + 6] !== 0
    )
      return undefined;
    if (end + 11 + raw.readUInt16BE(end + 9) !== raw.length) return undefined;
    if (transport === "udp") limit = Math.max(CLASSIC_UDP_LIMIT, Math.min(raw.readUInt16BE(end + 3), maxUdpPayload));
    edns = (raw.readUInt16BE(end + 7) & 0x8000) !== 0 ? "D" : "E";
  }
  return `${limit}${edns}${raw.toString("latin1", HEADER_BYTES, end)}`;
}

export class AnswerMemo {
  private entries = new Map<string, MemoEntry>();

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: string): MemoEntry | undefined {
    return this.entries.get(key);
  }

  set(key: string, entry: MemoEntry): void {
    if (this.entries.size >= this.maxEntries) this.entries = new Map();
    this.entries.set(key, entry);
  }

  clear(): void {
    this.entries = new Map();
  }
}

/** The memoised answer for this query: its ID and RD/CD bits, the rest as built. */
export function replay(entry: MemoEntry, query: Buffer): Buffer {
  const out = Buffer.allocUnsafe(entry.response.length);
  entry.response.copy(out);
  out[0] = query[0] ?? 0;
  out[1] = query[1] ?? 0;
  const bits = FLAG_RD | FLAG_CD;
  out.writeUInt16BE((entry.response.readUInt16BE(2) & ~bits) | (query.readUInt16BE(2) & bits), 2);
  return out;
}
