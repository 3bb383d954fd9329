// The server's counters as plain data, for the entry point to export as metrics (prom-client collect callbacks read
// DnsServer.stats()). Counters only grow; gauges (entries, bytes, in flight, open connections) are current values.

import type { CacheCounters } from "./cache.js";
import type { ForwarderCounters } from "./forwarder.js";

export const RESPONSE_RCODES = [
  "NOERROR",
  "FORMERR",
  "SERVFAIL",
  "NXDOMAIN",
  "NOTIMP",
  "REFUSED",
  "BADVERS",
  "OTHER",
] as const;
export type ResponseRcode = (typeof RESPONSE_RCODES)[number];

/** Where an answer came from: the cluster zone (incl. cluster PTRs), the cache, an upstream, or none (SERVFAIL). */
export type AnswerSource = "zone" | "cache" | "upstream" | "failed" | "error";

export interface QueryCounters {
  queries: { udp: number; tcp: number };
  responses: Record<ResponseRcode, number>;
  sources: Record<AnswerSource, number>;
  /** Datagrams or messages dropped without an answer (no readable header, a response sent to us, a full queue). */
  dropped: number;
  /** Answers sent with TC because they exceeded the client's UDP size. */
  truncated: number;
}

export interface TcpCounters {
  accepted: number;
  /** Refused because `maxConnections` were open. */
  rejected: number;
  idleClosed: number;
  open: number;
}

export interface DnsStats {
  readonly queries: QueryCounters["queries"];
  readonly responses: QueryCounters["responses"];
  readonly sources: QueryCounters["sources"];
  readonly dropped: number;
  readonly truncated: number;
  readonly cache: CacheCounters & { readonly entries: number; readonly bytes: number };
  readonly upstream: ForwarderCounters & { readonly inFlight: number };
  readonly tcp: TcpCounters;
  readonly view: {
    readonly loaded: boolean;
    readonly serial: number;
    readonly names: number;
    readonly services: number;
    readonly pods: number;
  };
}

export function newQueryCounters(): QueryCounters {
  return {
    queries: { udp: 0, tcp: 0 },
    responses: { NOERROR: 0, FORMERR: 0, SERVFAIL: 0, NXDOMAIN: 0, NOTIMP: 0, REFUSED: 0, BADVERS: 0, OTHER: 0 },
    sources: { zone: 0, cache: 0, upstream: 0, failed: 0, error: 0 },
    dropped: 0,
    truncated: 0,
  };
}

const BY_NUMBER: readonly ResponseRcode[] = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];

/** The header's 4-bit rcode by name (BADVERS lives in the OPT record and is counted by the caller). */
export function rcodeName(rcode: number): ResponseRcode {
  return BY_NUMBER[rcode] ?? "OTHER";
}
