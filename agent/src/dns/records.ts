// One question + the zone index → the answer sections and rcode (pure), or "forward" for a name that is not ours.
//   - NXDOMAIN only for a name of the zone that does not exist; an existing name without the asked type (AAAA on an
//     IPv4 Service, any type on an empty non-terminal) is NOERROR with no answers; both carry the zone's SOA in the
//     authority section, whose minimum is the negative TTL clients cache by (RFC 2308).
//   - Answers echo the question's spelling (case-insensitive match, RFC 4343).
//   - PTR: answered for cluster IPs and headless endpoints with a hostname; every other reverse name is forwarded,
//     so the node's resolvers keep answering for node and external addresses.

import type { Answer } from "dns-packet";
import { isInZone, lookupKey, REVERSE_V4_SUFFIX } from "./names.js";
import type { ZoneIndex, ZoneRecord } from "./zone-index.js";

export type ZoneRcode = "NOERROR" | "NXDOMAIN" | "SERVFAIL" | "NOTIMP" | "REFUSED";

export interface ZoneAnswer {
  readonly kind: "answer";
  readonly rcode: ZoneRcode;
  readonly answers: Answer[];
  readonly authorities: Answer[];
  readonly additionals: Answer[];
}

export type Resolution = ZoneAnswer | { readonly kind: "forward" };

export interface RecordsQuestion {
  /** As asked (dns-packet's form: no trailing dot). */
  readonly name: string;
  /** dns-packet's type name: "A", "SRV", "ANY", "UNKNOWN_65", … */
  readonly type: string;
  /** dns-packet's class name: "IN", "CH", "ANY", … */
  readonly class: string;
}

export interface RecordsOptions {
  /** TTL of positive answers, seconds. */
  readonly ttl: number;
}

const FORWARD: Resolution = { kind: "forward" };
const ZONE_TRANSFER = new Set(["AXFR", "IXFR"]);

/**
 * `index` undefined = no view yet: names of `zone` get SERVFAIL (retried by clients, never cached as a denial),
 * everything else is forwarded.
 */
export function resolve(
  index: ZoneIndex | undefined,
  zone: string,
  question: RecordsQuestion,
  options: RecordsOptions,
): Resolution {
  const key = lookupKey(question.name);
  const zoneKey = index?.zone ?? zone;
  if (key === undefined) {
    // Not printable ASCII: never one of our names; an outside name is the upstream's business.
    return isInZone(asciiLower(question.name), zoneKey) ? negative(index, "NXDOMAIN") : FORWARD;
  }
  if (isInZone(key, zoneKey)) {
    if (index === undefined) return empty("SERVFAIL");
    if (question.class !== "IN" && question.class !== "ANY") return empty("REFUSED");
    if (ZONE_TRANSFER.has(question.type)) return empty("NOTIMP");
    return answerZoneName(index, key, question, options);
  }
  if (index !== undefined && key.endsWith(REVERSE_V4_SUFFIX) && (question.type === "PTR" || question.type === "ANY")) {
    const targets = index.reverse.get(key);
    if (targets !== undefined) {
      const answers: Answer[] = targets.map((target) => ({
        name: question.name,
        type: "PTR",
        ttl: options.ttl,
        data: target,
      }));
      return { kind: "answer", rcode: "NOERROR", answers, authorities: [], additionals: [] };
    }
  }
  return FORWARD;
}

function answerZoneName(index: ZoneIndex, key: string, question: RecordsQuestion, options: RecordsOptions): ZoneAnswer {
  const node = index.names.get(key);
  if (node === undefined) return negative(index, "NXDOMAIN");
  const matching = question.type === "ANY" ? node : node.filter((record) => record.type === question.type);
  if (matching.length === 0) return negative(index, "NOERROR");
  const answers = matching.map((record) => toAnswer(question.name, record, options.ttl, index));
  return {
    kind: "answer",
    rcode: "NOERROR",
    answers,
    authorities: [],
    additionals: additionalsFor(index, matching, options.ttl),
  };
}

/** The A records of SRV targets and of the NS name, so a client needs no second query. */
function additionalsFor(index: ZoneIndex, records: readonly ZoneRecord[], ttl: number): Answer[] {
  const out: Answer[] = [];
  const done = new Set<string>();
  for (const record of records) {
    const target = record.type === "SRV" ? record.data.target : record.type === "NS" ? record.data : undefined;
    if (target === undefined || done.has(target)) continue;
    done.add(target);
    for (const a of index.names.get(target) ?? [])
      if (a.type === "A") out.push({ name: target, type: "A", ttl, data: a.data });
  }
  return out;
}

function toAnswer(name: string, record: ZoneRecord, ttl: number, index: ZoneIndex): Answer {
  switch (record.type) {
    case "A":
      return { name, type: "A", ttl, data: record.data };
    case "NS":
      return { name, type: "NS", ttl, data: record.data };
    case "TXT":
      return { name, type: "TXT", ttl, data: record.data };
    case "SRV":
      return { name, type: "SRV", ttl, data: { ...record.data } };
    // The SOA's own TTL is the negative TTL too: resolvers cache denials for min(SOA TTL, minimum).
    case "SOA":
      return { name, type: "SOA", ttl: index.soa.minimum, data: { ...record.data } };
  }
}

function negative(index: ZoneIndex | undefined, rcode: "NXDOMAIN" | "NOERROR"): ZoneAnswer {
  if (index === undefined) return empty("SERVFAIL");
  const soa: Answer = { name: index.zone, type: "SOA", ttl: index.soa.minimum, data: { ...index.soa } };
  return { kind: "answer", rcode, answers: [], authorities: [soa], additionals: [] };
}

function empty(rcode: ZoneRcode): ZoneAnswer {
  return { kind: "answer", rcode, answers: [], authorities: [], additionals: [] };
}

function asciiLower(name: string): string {
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase()).replace(/\.$/, "");
}
