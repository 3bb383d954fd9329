// Raw DNS wire helpers (pure, RFC 1035 §4.1) for the paths where bytes must pass through untouched: forwarded
// queries and upstream answers keep their exact names and compression; only the ID, flags, the question's
// spelling, TTLs and the OPT record are patched. dns-packet does the full codec everywhere else.

export const HEADER_BYTES = 12;
export const FLAG_QR = 0x8000;
export const FLAG_AA = 0x0400;
export const FLAG_TC = 0x0200;
export const FLAG_RD = 0x0100;
export const FLAG_RA = 0x0080;
export const FLAG_CD = 0x0010;
export const OPCODE_MASK = 0x7800;
export const TYPE_SOA = 6;
export const TYPE_OPT = 41;
export const DNSSEC_OK = 0x8000;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export interface Header {
  readonly id: number;
  readonly flags: number;
  readonly qdcount: number;
  readonly ancount: number;
  readonly nscount: number;
  readonly arcount: number;
}

export function readHeader(buf: Buffer): Header | undefined {
  if (buf.length < HEADER_BYTES) return undefined;
  return {
    id: buf.readUInt16BE(0),
    flags: buf.readUInt16BE(2),
    qdcount: buf.readUInt16BE(4),
    ancount: buf.readUInt16BE(6),
    nscount: buf.readUInt16BE(8),
    arcount: buf.readUInt16BE(10),
  };
}

/** A header-only answer to a query whose header could be read: ID, opcode and RD echoed, no sections. */
export function headerOnlyResponse(query: Header, rcode: number): Buffer {
  const out = Buffer.alloc(HEADER_BYTES);
  out.writeUInt16BE(query.id, 0);
  out.writeUInt16BE(FLAG_QR | (query.flags & (OPCODE_MASK | FLAG_RD)) | (rcode & 0xf), 2);
  return out;
}

/** Offset just past the (possibly compressed) name at `offset`, or -1 when it runs off the buffer or is invalid. */
export function skipName(buf: Buffer, offset: number): number {
  let at = offset;
  for (let guard = 0; guard < 128; guard++) {
    if (at >= buf.length) return -1;
    const len = buf[at] ?? 0;
    if (len === 0) return at + 1;
    if ((len & 0xc0) === 0xc0) return at + 2 <= buf.length ? at + 2 : -1;
    if ((len & 0xc0) !== 0) return -1;
    at += 1 + len;
  }
  return -1;
}

/** End offset of the first question (name without compression, type, class), or -1. */
export function questionEnd(buf: Buffer): number {
  let at = HEADER_BYTES;
  for (let guard = 0; guard < 128; guard++) {
    if (at >= buf.length) return -1;
    const len = buf[at] ?? 0;
    if (len === 0) return at + 5 <= buf.length ? at + 5 : -1;
    if ((len & 0xc0) !== 0) return -1; // a pointer in the first question can only point into the header
    at += 1 + len;
  }
  return -1;
}

export interface RecordSpan {
  readonly section: "answer" | "authority" | "additional";
  readonly start: number;
  readonly type: number;
  /** The TTL field; for OPT it holds the extended rcode, the EDNS version and the flags. */
  readonly ttlOffset: number;
  readonly rdataStart: number;
  readonly end: number;
}

/** Every resource record of a message after its single question, or undefined when the message is malformed. */
export function scanRecords(buf: Buffer): RecordSpan[] | undefined {
  const header = readHeader(buf);
  if (header?.qdcount !== 1) return undefined;
  let at = questionEnd(buf);
  if (at < 0) return undefined;
  const spans: RecordSpan[] = [];
  const sections: [RecordSpan["section"], number][] = [
    ["answer", header.ancount],
    ["authority", header.nscount],
    ["additional", header.arcount],
  ];
  for (const [section, count] of sections) {
    for (let i = 0; i < count; i++) {
      const start = at;
      const nameEnd = skipName(buf, at);
      if (nameEnd < 0 || nameEnd + 10 > buf.length) return undefined;
      const rdlength = buf.readUInt16BE(nameEnd + 8);
      const end = nameEnd + 10 + rdlength;
      if (end > buf.length) return undefined;
      spans.push({
        section,
        start,
        type: buf.readUInt16BE(nameEnd),
        ttlOffset: nameEnd + 4,
        rdataStart: nameEnd + 10,
        end,
      });
      at = end;
    }
  }
  return at === buf.length ? spans : undefined;
}

/** The 11-byte OPT record of our answers (EDNS0, RFC 6891): our UDP payload size and the client's DO bit. */
export function optRecord(udpPayloadSize: number, dnssecOk: boolean): Buffer {
  const out = Buffer.alloc(11);
  out.writeUInt16BE(TYPE_OPT, 1);
  out.writeUInt16BE(udpPayloadSize, 3);
  out.writeUInt16BE(dnssecOk ? DNSSEC_OK : 0, 7);
  return out;
}

/**
 * The message without its OPT record (the upstream's EDNS state is not the client's), or undefined when the OPT
 * is not the last record: cutting one out of the middle could break compression pointers behind it.
 */
export function withoutOpt(
  buf: Buffer,
  spans: readonly RecordSpan[],
): { bytes: Buffer; spans: RecordSpan[] } | undefined {
  const index = spans.findIndex((s) => s.type === TYPE_OPT);
  if (index < 0) return { bytes: buf, spans: [...spans] };
  const opt = spans[index];
  if (opt === undefined || index !== spans.length - 1 || spans.some((s, i) => i !== index && s.type === TYPE_OPT))
    return undefined;
  const bytes = Buffer.from(buf.subarray(0, opt.start));
  bytes.writeUInt16BE(bytes.readUInt16BE(10) - 1, 10);
  return { bytes, spans: spans.slice(0, index) };
}

/** ASCII case-insensitive equality of two byte ranges (questions match regardless of 0x20 spelling). */
export function equalIgnoringCase(
  a: Buffer,
  aStart: number,
  aEnd: number,
  b: Buffer,
  bStart: number,
  bEnd: number,
): boolean {
  if (aEnd - aStart !== bEnd - bStart) return false;
  for (let i = 0; i < aEnd - aStart; i++) {
    const x = a[aStart + i] ?? 0;
    const y = b[bStart + i] ?? 0;
    if (x !== y && lowerAscii(x) !== lowerAscii(y)) return false;
  }
  return true;
}

function lowerAscii(byte: number): number {
  return byte >= 65 && byte <= 90 ? byte + 32 : byte;
}

/** The cache key of a question's wire bytes: the name lower-cased, type and class, as a latin1 string. */
export function questionKey(buf: Buffer, start: number, end: number): string {
  const copy = Buffer.from(buf.subarray(start, end));
  for (let i = 0; i < copy.length - 4; i++) copy[i] = lowerAscii(copy[i] ?? 0);
  return copy.toString("latin1");
}
