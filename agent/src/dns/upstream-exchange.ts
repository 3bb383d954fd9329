// The port the forwarder sends upstream queries through, and its failures. The real adapter is upstream.ts (sockets);
// tests may put a fake behind it.
import { isIPv6 } from "node:net";
import { TrellisError } from "#lib/errors.js";
import type { Upstream } from "./resolv-conf.js";

export type UpstreamFailure = "timeout" | "refused" | "closed" | "error";

export class UpstreamError extends TrellisError {
  constructor(
    readonly upstream: Upstream,
    readonly reason: UpstreamFailure,
    detail: string,
  ) {
    super("UPSTREAM_FAILED", `upstream ${formatUpstream(upstream)}: ${detail}`);
  }
}

export function formatUpstream(upstream: Upstream): string {
  return isIPv6(upstream.address) ? `[${upstream.address}]:${upstream.port}` : `${upstream.address}:${upstream.port}`;
}

export interface UpstreamExchange {
  /** Sends `query` (its ID is replaced) and resolves with the matching answer, or rejects with an UpstreamError. */
  exchange(upstream: Upstream, query: Buffer, transport: "udp" | "tcp", timeoutMs: number): Promise<Buffer>;
  close(): void;
}
