// The cluster DNS server as a library: UDP + TCP listeners on the given addresses, the cluster zone answered from
// the current view's index, every other name forwarded (cached) to the upstreams. The entry point owns the process:
// it reads resolv.conf, feeds views from the registry, turns events into logs and stats() into metrics.
//
// Before the first setView() the server already listens: names of the zone get SERVFAIL (clients retry; a
// SERVFAIL is never cached as a denial), other names are forwarded. Callers that prefer silence can start() after
// the first view instead.

import { systemClock } from "#lib/clock.js";
import { Emitter } from "#lib/emitter.js";
import { errorMessage, TrellisError } from "#lib/errors.js";
import { AnswerCache } from "./cache.js";
import { Forwarder, type ForwarderEvent } from "./forwarder.js";
import { QueryHandler } from "./handler.js";
import { resolveOptions, type DnsServerOptions, type ListenAddress, type ResolvedOptions } from "./options.js";
import type { DnsStats, TcpCounters } from "./stats.js";
import { TcpListener } from "./tcp-listener.js";
import { systemTimers } from "./timers.js";
import { UdpListener, type ListenerHooks } from "./udp-listener.js";
import { NetUpstreamExchange } from "./upstream.js";
import type { UpstreamExchange } from "./upstream-exchange.js";
import type { DnsView } from "./view.js";
import { buildZoneIndex, type SkippedEntry } from "./zone-index.js";

export type DnsServerEvent =
  | { readonly type: "listening"; readonly addresses: readonly ListenAddress[] }
  | {
      readonly type: "view";
      readonly serial: number;
      readonly names: number;
      readonly services: number;
      readonly pods: number;
      readonly skipped: readonly SkippedEntry[];
      readonly buildMs: number;
    }
  | { readonly type: "error"; readonly where: string; readonly message: string }
  | ForwarderEvent;

const BIND_ATTEMPTS = 20;

export class DnsServer {
  readonly events = new Emitter<DnsServerEvent>();
  private readonly options: ResolvedOptions;
  private readonly clock: NonNullable<DnsServerOptions["clock"]>;
  private readonly cache: AnswerCache;
  private readonly forwarder: Forwarder | undefined;
  private readonly exchange: UpstreamExchange;
  private readonly handler: QueryHandler;
  private readonly tcpCounters: TcpCounters = { accepted: 0, rejected: 0, idleClosed: 0, open: 0 };
  private readonly listeners: (UdpListener | TcpListener)[] = [];
  private bound: ListenAddress[] = [];
  private serial: number;

  constructor(options: DnsServerOptions) {
    this.options = resolveOptions(options);
    this.clock = options.clock ?? systemClock;
    this.serial = Math.floor(this.clock.now() / 1000);
    const { cache, forward, upstreams, maxUdpPayload } = this.options;
    this.cache = new AnswerCache({ maxEntries: cache.maxEntries, maxBytes: cache.maxBytes, clock: this.clock });
    this.exchange =
      options.exchange ??
      new NetUpstreamExchange({
        timers: options.timers ?? systemTimers,
        socketsPerUpstream: forward.socketsPerUpstream,
      });
    if (upstreams.length > 0) {
      this.forwarder = new Forwarder({
        upstreams,
        exchange: this.exchange,
        cache: this.cache,
        cacheLimits: cache,
        clock: this.clock,
        attemptTimeoutMs: forward.attemptTimeoutMs,
        totalTimeoutMs: forward.totalTimeoutMs,
        maxInFlight: forward.maxInFlight,
        udpPayloadSize: maxUdpPayload,
      });
      this.forwarder.events.on((event) => {
        this.events.emit(event);
      });
    }
    this.handler = new QueryHandler({
      zone: this.options.zone,
      ttl: this.options.ttlSeconds,
      maxUdpPayload,
      maxQueryBytes: this.options.maxQueryBytes,
      forwarder: this.forwarder,
      clock: this.clock,
    });
  }

  /** Binds every listener (UDP and TCP on the same port); resolves with the bound addresses. */
  async start(): Promise<readonly ListenAddress[]> {
    const hooks: ListenerHooks = {
      onError: (where, error) => {
        this.events.emit({ type: "error", where, message: errorMessage(error) });
      },
    };
    try {
      for (const at of this.options.listen) this.bound.push(await this.bindPair(at, hooks));
    } catch (error) {
      await this.close();
      throw error;
    }
    this.events.emit({ type: "listening", addresses: this.bound });
    return this.bound;
  }

  get addresses(): readonly ListenAddress[] {
    return this.bound;
  }

  /** Swaps the snapshot: the next query is answered from it. Throws InvalidArgumentError for a bad zone. */
  setView(view: DnsView): void {
    const started = performance.now();
    this.serial = (this.serial + 1) >>> 0;
    const index = buildZoneIndex(view, {
      negativeTtl: this.options.negativeTtlSeconds,
      serial: this.serial,
      nameserverAddresses: this.options.nameserverAddresses,
    });
    this.handler.setIndex(index);
    this.events.emit({
      type: "view",
      serial: index.soa.serial,
      names: index.names.size,
      services: index.services,
      pods: index.pods,
      skipped: index.skipped,
      buildMs: performance.now() - started,
    });
  }

  stats(): DnsStats {
    const c = this.handler.counters;
    const index = this.handler.currentIndex;
    const upstream = this.forwarder?.counters ?? {
      upstreamQueries: 0,
      tcpRetries: 0,
      coalesced: 0,
      overloaded: 0,
      failures: { timeout: 0, refused: 0, closed: 0, error: 0, malformed: 0 },
    };
    return structuredClone({
      queries: c.queries,
      responses: c.responses,
      sources: c.sources,
      dropped: c.dropped,
      truncated: c.truncated,
      cache: { ...this.cache.counters, entries: this.cache.size, bytes: this.cache.bytes },
      upstream: { ...upstream, inFlight: this.forwarder?.inFlightCount ?? 0 },
      tcp: this.tcpCounters,
      view: {
        loaded: index !== undefined,
        serial: index?.soa.serial ?? 0,
        names: index?.names.size ?? 0,
        services: index?.services ?? 0,
        pods: index?.pods ?? 0,
      },
    });
  }

  async close(): Promise<void> {
    const listeners = this.listeners.splice(0);
    await Promise.all(listeners.map((l) => l.close()));
    this.exchange.close();
    this.cache.clear();
  }

  /** UDP first; port 0 → TCP on the port UDP got, retried with another one when TCP finds it taken. */
  private async bindPair(at: ListenAddress, hooks: ListenerHooks): Promise<ListenAddress> {
    for (let attempt = 1; ; attempt++) {
      let udp: UdpListener;
      try {
        udp = await UdpListener.bind(at, this.handler, hooks, this.options.udpReceiveBufferBytes);
      } catch (error) {
        throw listenError("udp", at, error);
      }
      try {
        const tcp = await TcpListener.bind(udp.address, this.handler, hooks, this.options, this.tcpCounters);
        this.listeners.push(udp, tcp);
        return udp.address;
      } catch (error) {
        await udp.close();
        const inUse = (error as NodeJS.ErrnoException).code === "EADDRINUSE";
        if (at.port !== 0 || !inUse || attempt >= BIND_ATTEMPTS) throw listenError("tcp", udp.address, error);
      }
    }
  }
}

function listenError(transport: string, at: ListenAddress, error: unknown): TrellisError {
  const code = (error as NodeJS.ErrnoException).code ?? errorMessage(error);
  return new TrellisError("IO", `cannot listen on ${transport} ${at.address}:${at.port}: ${code}`, { cause: error });
}
