// The DNS server's options: defaults and validation (pure). Bad values are named with field, value and what is
// allowed; the entry point maps its flags onto these fields.

import { isIP } from "node:net";
import { InvalidArgumentError } from "#lib/errors.js";
import type { Clock } from "#lib/clock.js";
import type { Upstream } from "./resolv-conf.js";
import type { Timers } from "./timers.js";
import type { UpstreamExchange } from "./upstream-exchange.js";
import { validateZone } from "./zone-index.js";

export interface ListenAddress {
  readonly address: string;
  /** 0 = an ephemeral port, the same one for UDP and TCP (tests). */
  readonly port: number;
}

export interface DnsServerOptions {
  /** Each address gets a UDP and a TCP listener on the same port. */
  readonly listen: readonly ListenAddress[];
  /** Where other names go (the caller reads them from /etc/resolv.conf: resolv-conf.ts); [] = REFUSED. */
  readonly upstreams: readonly Upstream[];
  /** Served (SERVFAIL) before the first view arrives; afterwards the view's zone. Default "cluster.local". */
  readonly zone?: string;
  /** TTL of cluster answers, s. Default 5. */
  readonly ttlSeconds?: number;
  /** SOA minimum and SOA TTL = how long clients cache a cluster denial, s. Default 5. */
  readonly negativeTtlSeconds?: number;
  /** A records of `ns.dns.<zone>` (the apex NS target), e.g. the DNS Service's cluster IP. Default none. */
  readonly nameserverAddresses?: readonly string[];
  /** Our EDNS UDP payload size, and the cap on a client's. Default 1232 (no IP fragmentation, DNS flag day 2020). */
  readonly maxUdpPayload?: number;
  /** Longer queries get FORMERR. Default 4096. */
  readonly maxQueryBytes?: number;
  /** SO_RCVBUF of the UDP listeners (bursts queue there, not in our heap). Default: the kernel's. */
  readonly udpReceiveBufferBytes?: number;
  readonly tcp?: {
    /** Default 256; more are closed on accept. */
    readonly maxConnections?: number;
    /** A connection without a complete query for this long is closed. Default 10 000 ms. */
    readonly idleTimeoutMs?: number;
    /** Queries of one connection answered concurrently before reading pauses. Default 32. */
    readonly maxPendingPerConnection?: number;
  };
  readonly forward?: {
    /** Default 700 ms. */
    readonly attemptTimeoutMs?: number;
    /** SERVFAIL after this long without an answer from any upstream. Default 2000 ms. */
    readonly totalTimeoutMs?: number;
    /** Distinct questions waiting on upstreams (and 4 × as many client queries); beyond, SERVFAIL at once.
     * Default 1024. */
    readonly maxInFlight?: number;
    /** Default 4. */
    readonly socketsPerUpstream?: number;
  };
  readonly cache?: {
    /** Default 10 000. */
    readonly maxEntries?: number;
    /** Default 16 MiB. */
    readonly maxBytes?: number;
    /** Caps upstream TTLs, s. Default 3600. */
    readonly maxTtlSeconds?: number;
    /** Caps upstream denials' SOA minimum, s. Default 300. */
    readonly maxNegativeTtlSeconds?: number;
  };
  /** Injected in tests (cache ageing, deadlines). */
  readonly clock?: Pick<Clock, "now">;
  readonly timers?: Timers;
  readonly exchange?: UpstreamExchange;
}

export interface ResolvedOptions {
  readonly listen: readonly ListenAddress[];
  readonly upstreams: readonly Upstream[];
  readonly zone: string;
  readonly ttlSeconds: number;
  readonly negativeTtlSeconds: number;
  readonly nameserverAddresses: readonly string[];
  readonly maxUdpPayload: number;
  readonly maxQueryBytes: number;
  readonly udpReceiveBufferBytes: number | undefined;
  readonly tcp: {
    readonly maxConnections: number;
    readonly idleTimeoutMs: number;
    readonly maxPendingPerConnection: number;
  };
  readonly forward: {
    readonly attemptTimeoutMs: number;
    readonly totalTimeoutMs: number;
    readonly maxInFlight: number;
    readonly socketsPerUpstream: number;
  };
  readonly cache: {
    readonly maxEntries: number;
    readonly maxBytes: number;
    readonly maxTtlSeconds: number;
    readonly maxNegativeTtlSeconds: number;
  };
}

function integer(field: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > max)
    throw new InvalidArgumentError(field, value, `an integer from ${min} to ${max}`);
  return v;
}

function endpoint(field: string, value: ListenAddress | Upstream, allowZeroPort: boolean): void {
  if (isIP(value.address.split("%")[0] ?? "") === 0)
    throw new InvalidArgumentError(`${field}.address`, value.address, "an IPv4 or IPv6 address");
  integer(`${field}.port`, value.port, 0, allowZeroPort ? 0 : 1, 65535);
}

export function resolveOptions(options: DnsServerOptions): ResolvedOptions {
  if (options.listen.length === 0)
    throw new InvalidArgumentError("listen", options.listen, "at least one address and port");
  options.listen.forEach((l, i) => {
    endpoint(`listen[${i}]`, l, true);
  });
  options.upstreams.forEach((u, i) => {
    endpoint(`upstreams[${i}]`, u, false);
  });
  for (const [i, ip] of (options.nameserverAddresses ?? []).entries()) {
    if (isIP(ip) !== 4) throw new InvalidArgumentError(`nameserverAddresses[${i}]`, ip, "an IPv4 address");
  }
  const forward = options.forward ?? {};
  const attemptTimeoutMs = integer("forward.attemptTimeoutMs", forward.attemptTimeoutMs, 700, 1, 60_000);
  return {
    listen: options.listen,
    upstreams: options.upstreams,
    zone: validateZone(options.zone ?? "cluster.local"),
    ttlSeconds: integer("ttlSeconds", options.ttlSeconds, 5, 0, 86_400),
    negativeTtlSeconds: integer("negativeTtlSeconds", options.negativeTtlSeconds, 5, 0, 86_400),
    nameserverAddresses: options.nameserverAddresses ?? [],
    maxUdpPayload: integer("maxUdpPayload", options.maxUdpPayload, 1232, 512, 65_535),
    maxQueryBytes: integer("maxQueryBytes", options.maxQueryBytes, 4096, 512, 65_535),
    udpReceiveBufferBytes:
      options.udpReceiveBufferBytes === undefined
        ? undefined
        : integer("udpReceiveBufferBytes", options.udpReceiveBufferBytes, 0, 4096, 1 << 30),
    tcp: {
      maxConnections: integer("tcp.maxConnections", options.tcp?.maxConnections, 256, 1, 65_535),
      idleTimeoutMs: integer("tcp.idleTimeoutMs", options.tcp?.idleTimeoutMs, 10_000, 1, 3_600_000),
      maxPendingPerConnection: integer(
        "tcp.maxPendingPerConnection",
        options.tcp?.maxPendingPerConnection,
        32,
        1,
        65_535,
      ),
    },
    forward: {
      attemptTimeoutMs,
      totalTimeoutMs: integer("forward.totalTimeoutMs", forward.totalTimeoutMs, 2000, attemptTimeoutMs, 60_000),
      maxInFlight: integer("forward.maxInFlight", forward.maxInFlight, 1024, 1, 65_535),
      socketsPerUpstream: integer("forward.socketsPerUpstream", forward.socketsPerUpstream, 4, 1, 64),
    },
    cache: {
      maxEntries: integer("cache.maxEntries", options.cache?.maxEntries, 10_000, 0, 10_000_000),
      maxBytes: integer("cache.maxBytes", options.cache?.maxBytes, 16 * 1024 * 1024, 0, 2 ** 31),
      maxTtlSeconds: integer("cache.maxTtlSeconds", options.cache?.maxTtlSeconds, 3600, 0, 604_800),
      maxNegativeTtlSeconds: integer(
        "cache.maxNegativeTtlSeconds",
        options.cache?.maxNegativeTtlSeconds,
        300,
        0,
        86_400,
      ),
    },
  };
}
