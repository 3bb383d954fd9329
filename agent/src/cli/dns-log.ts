// Log lines of `trellis-agent dns`: the daemon's typed events (daemon/cluster-dns.ts) as winston lines.
import type winston from "winston";
import { errorMessage } from "#lib/errors.js";
import type { ClusterDnsEvent } from "../daemon/cluster-dns.js";
import type { MirrorEvent } from "../kv/prefix-mirror.js";

function mirrorLine(log: winston.Logger, what: string, e: MirrorEvent): void {
  if (e.type === "synced")
    log.info(e.initial ? `${what} listed` : `${what} re-listed`, { entries: e.entries, revision: e.revision });
  else if (e.type === "broken")
    log.warn(`${what} watch broken, re-listing; answering from the last snapshot meanwhile`, {
      reason: e.reason,
      error: errorMessage(e.error),
      retryInMs: e.retryInMs,
    });
}

export function logDnsEvent(log: winston.Logger, event: ClusterDnsEvent): void {
  switch (event.type) {
    case "registry":
      mirrorLine(log, "service registry", event.event);
      return;
    case "leases":
      mirrorLine(log, "node leases", event.event);
      return;
    case "view":
      log[event.first ? "info" : "debug"](event.first ? "first view of the cluster loaded" : "view updated", {
        services: event.services,
        pods: event.pods,
        ms: Math.round(event.ms * 10) / 10,
      });
      return;
    case "lameduck":
      log.info("answering on while the proxies drop this endpoint, then closing", { ms: event.ms });
      return;
    case "invalid":
      log.warn("skipping a registry value that cannot be used", { key: event.key, reason: event.reason });
      return;
    case "endpoint": {
      const e = event.event;
      if (e.type === "service-created") log.info("created the DNS Service", { clusterIP: e.clusterIP });
      else if (e.type === "service-differs")
        log.warn("the DNS Service exists but cannot take this server", { reason: e.reason });
      else if (e.type === "published")
        log.info("published as an endpoint of the DNS Service", { key: e.key, lease: e.leaseId });
      else if (e.type === "withdrawn") log.info("withdrawn as an endpoint of the DNS Service", { key: e.key });
      else
        log.warn("publishing this server as an endpoint failed; retrying", {
          error: errorMessage(e.error),
          retryInMs: e.retryInMs,
        });
      return;
    }
    case "server": {
      const e = event.event;
      if (e.type === "listening")
        log.info("listening", { addresses: e.addresses.map((a) => `${a.address}:${a.port}`).join(",") });
      else if (e.type === "upstream-down")
        log.warn("upstream resolver not answering", { upstream: e.upstream, reason: e.reason, detail: e.detail });
      else if (e.type === "upstream-up") log.info("upstream resolver answering again", { upstream: e.upstream });
      else if (e.type === "error") log.error("DNS listener error", { where: e.where, error: e.message });
      else if (e.skipped.length > 0)
        log.warn("names left out of the view", {
          count: e.skipped.length,
          first: `${e.skipped[0]?.what ?? ""}: ${e.skipped[0]?.reason ?? ""}`,
        });
      return;
    }
  }
}
