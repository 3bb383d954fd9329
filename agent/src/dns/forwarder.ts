// Forwarding of every name that is not the cluster's to the node's upstream resolvers, behind the answer cache.
//   - A question already in flight is joined, not sent again (the A/AAAA pairs and retries of many pods).
//   - At most `maxInFlight` distinct questions wait on upstreams, and at most 4 × that many client queries wait on
//     them (joined ones included); beyond either SERVFAIL at once, so a flood — of random names or of one name — is
//     bounded in memory (with the cache's own byte bound).
//   - Attempts rotate over the upstreams, starting with the one that answered last, each bounded by
//     `attemptTimeoutMs`, the whole by `totalTimeoutMs`: all upstreams down → SERVFAIL within that bound.
//   - A truncated UDP answer is fetched again over TCP from the same upstream.

import dnsPacket from "dns-packet";
import type { Clock } from "#lib/clock.js";
import { Emitter } from "#lib/emitter.js";
import type { AnswerCache, CachedAnswer } from "./cache.js";
import { cacheDecision, ttlOffsets, type CacheLimits } from "./cache-policy.js";
import type { Upstream } from "./resolv-conf.js";
import { formatUpstream, UpstreamError, type UpstreamExchange, type UpstreamFailure } from "./upstream-exchange.js";
import {
  FLAG_CD,
  FLAG_RD,
  FLAG_TC,
  optRecord,
  RCODE,
  readHeader,
  scanRecords,
  TYPE_OPT,
  withoutOpt,
  type RecordSpan,
  questionKey,
} from "./wire.js";

export interface ForwarderOptions {
  readonly upstreams: readonly Upstream[];
  readonly exchange: UpstreamExchange;
  readonly cache: AnswerCache;
  readonly cacheLimits: CacheLimits;
  readonly clock: Pick<Clock, "now">;
  readonly attemptTimeoutMs: number;
  readonly totalTimeoutMs: number;
  readonly maxInFlight: number;
  /** The EDNS UDP payload size we advertise upstream. */
  readonly udpPayloadSize: number;
}

export interface ForwardRequest {
  /** The question's wire bytes (name, type, class) in the client's spelling. */
  readonly question: Buffer;
  readonly dnssecOk: boolean;
  readonly checkingDisabled: boolean;
}

export type ForwardFailure = "no-upstreams" | "overloaded" | "unreachable";

export type ForwardResult =
  | { readonly kind: "answer"; readonly answer: CachedAnswer; readonly fromCache: boolean }
  | { readonly kind: "failed"; readonly reason: ForwardFailure };

export type ForwarderEvent =
  | {
      readonly type: "upstream-down";
      readonly upstream: string;
      readonly reason: UpstreamFailure | "malformed";
      readonly detail: string;
    }
  | { readonly type: "upstream-up"; readonly upstream: string };

export interface ForwarderCounters {
  upstreamQueries: number;
  tcpRetries: number;
  coalesced: number;
  overloaded: number;
  failures: Record<UpstreamFailure | "malformed", number>;
}

export class Forwarder {
  readonly events = new Emitter<ForwarderEvent>();
  readonly counters: ForwarderCounters = {
    upstreamQueries: 0,
    tcpRetries: 0,
    coalesced: 0,
    overloaded: 0,
    failures: { timeout: 0, refused: 0, closed: 0, error: 0, malformed: 0 },
  };
  private readonly inFlight = new Map<string, Promise<ForwardResult>>();
  private waiting = 0;
  private readonly down: boolean[];
  private preferred = 0;

  constructor(private readonly options: ForwarderOptions) {
    this.down = options.upstreams.map(() => false);
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Synchronous on a cache hit (the hot path), a promise otherwise. */
  forward(request: ForwardRequest): ForwardResult | Promise<ForwardResult> {
    const key = `${questionKey(request.question, 0, request.question.length)}${request.dnssecOk ? "D" : "-"}${request.checkingDisabled ? "C" : "-"}`;
    const cached = this.options.cache.get(key);
    if (cached !== undefined) return { kind: "answer", answer: cached, fromCache: true };
    if (this.options.upstreams.length === 0) return { kind: "failed", reason: "no-upstreams" };
    const joined = this.inFlight.get(key);
    if (
      (joined === undefined && this.inFlight.size >= this.options.maxInFlight) ||
      this.waiting >= 4 * this.options.maxInFlight
    ) {
      this.counters.overloaded += 1;
      return { kind: "failed", reason: "overloaded" };
    }
    let running = joined;
    if (running === undefined) {
      running = this.fetch(key, request).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, running);
    } else {
      this.counters.coalesced += 1;
    }
    this.waiting += 1;
    return running.finally(() => {
      this.waiting -= 1;
    });
  }

  private async fetch(key: string, request: ForwardRequest): Promise<ForwardResult> {
    const { upstreams, exchange, clock } = this.options;
    const query = this.buildQuery(request);
    const deadline = clock.now() + this.options.totalTimeoutMs;
    const n = upstreams.length;
    let fallback: CachedAnswer | undefined;
    // Each upstream at most twice for lost packets; an upstream SERVFAIL/REFUSED moves on to the next one once.
    for (let attempt = 0; attempt < 2 * n; attempt++) {
      const index = (this.preferred + attempt) % n;
      const upstream = upstreams[index];
      const remaining = deadline - clock.now();
      if (upstream === undefined || remaining <= 0) break;
      try {
        this.counters.upstreamQueries += 1;
        let answer = await exchange.exchange(
          upstream,
          query,
          "udp",
          Math.min(this.options.attemptTimeoutMs, remaining),
        );
        if (((readHeader(answer)?.flags ?? 0) & FLAG_TC) !== 0) {
          this.counters.tcpRetries += 1;
          answer = await exchange.exchange(
            upstream,
            query,
            "tcp",
            Math.max(1, Math.min(this.options.attemptTimeoutMs, deadline - clock.now())),
          );
        }
        const prepared = prepare(answer);
        if (prepared === undefined) {
          this.failed(index, "malformed", "an answer that cannot be parsed or carries an EDNS error");
          continue;
        }
        const entry = this.entryFor(prepared.bytes, prepared.spans);
        const rcode = (readHeader(prepared.bytes)?.flags ?? 0) & 0xf;
        if ((rcode === RCODE.SERVFAIL || rcode === RCODE.REFUSED) && attempt < n - 1) {
          fallback = entry;
          continue;
        }
        this.healthy(index);
        const decision = cacheDecision(prepared.bytes, prepared.spans, this.options.cacheLimits);
        if (decision !== undefined) {
          const cached: CachedAnswer = {
            ...entry,
            expiresAt: entry.storedAt + decision.ttlSeconds * 1000,
            negative: decision.negative,
          };
          this.options.cache.set(key, cached);
          return { kind: "answer", answer: cached, fromCache: false };
        }
        return { kind: "answer", answer: entry, fromCache: false };
      } catch (error) {
        if (!(error instanceof UpstreamError)) throw error;
        this.failed(index, error.reason, error.message);
      }
    }
    return fallback === undefined
      ? { kind: "failed", reason: "unreachable" }
      : { kind: "answer", answer: fallback, fromCache: false };
  }

  /** Our own query: ID set by the exchange, RD, the client's CD, its question as is, our EDNS size and its DO. */
  private buildQuery(request: ForwardRequest): Buffer {
    const header = Buffer.alloc(12);
    header.writeUInt16BE(FLAG_RD | (request.checkingDisabled ? FLAG_CD : 0), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(1, 10);
    return Buffer.concat([header, request.question, optRecord(this.options.udpPayloadSize, request.dnssecOk)]);
  }

  private entryFor(bytes: Buffer, spans: readonly RecordSpan[]): CachedAnswer {
    const now = this.options.clock.now();
    return { bytes, ttlOffsets: ttlOffsets(spans), storedAt: now, expiresAt: now, negative: false };
  }

  private failed(index: number, reason: UpstreamFailure | "malformed", detail: string): void {
    this.counters.failures[reason] += 1;
    const upstream = this.options.upstreams[index];
    if (upstream === undefined || this.down[index] === true) return;
    this.down[index] = true;
    this.events.emit({ type: "upstream-down", upstream: formatUpstream(upstream), reason, detail });
  }

  private healthy(index: number): void {
    this.preferred = index;
    const upstream = this.options.upstreams[index];
    if (upstream === undefined || this.down[index] !== true) return;
    this.down[index] = false;
    this.events.emit({ type: "upstream-up", upstream: formatUpstream(upstream) });
  }
}

/** The upstream's answer without its OPT record, or undefined when it is malformed or an EDNS error. */
function prepare(answer: Buffer): { bytes: Buffer; spans: RecordSpan[] } | undefined {
  const spans = scanRecords(answer);
  if (spans === undefined) return undefined;
  const opt = spans.find((s) => s.type === TYPE_OPT);
  if (opt !== undefined && answer[opt.ttlOffset] !== 0) return undefined; // extended rcode (BADVERS, BADCOOKIE, …)
  return withoutOpt(answer, spans) ?? reencodeWithoutOpt(answer);
}

/** The rare OPT-not-last case: decode and encode again without it (compression is lost, nothing else). */
function reencodeWithoutOpt(answer: Buffer): { bytes: Buffer; spans: RecordSpan[] } | undefined {
  try {
    const packet = dnsPacket.decode(answer);
    packet.additionals = (packet.additionals ?? []).filter((a) => a.type !== "OPT");
    const bytes = dnsPacket.encode(packet);
    const spans = scanRecords(bytes);
    return spans === undefined ? undefined : { bytes, spans };
  } catch {
    return undefined;
  }
}
