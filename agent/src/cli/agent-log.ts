// Turns the daemon's typed events into log lines: one per peer added/removed/changed, per lease transition, per
// etcd trouble. Messages carry subnet and public IP as fields; secrets are never part of an event.
import type winston from "winston";
import { errorMessage } from "#lib/errors.js";
import { formatCidr, formatIpv4 } from "#lib/ipv4.js";
import { formatCidr6, type Cidr6 } from "#lib/ipv6.js";
import type { AgentEvent } from "../daemon/agent.js";
import type { ServicesEvent } from "../daemon/cluster-services.js";
import type { MasqueradeEvent } from "../dataplane/masquerade.js";
import { describeEntry, type DataplaneEvent, type EntryRef } from "../dataplane/reconciler.js";
import type { KeeperEvent } from "../lease/keeper.js";
import type { WatcherEvent } from "../lease/watcher.js";

/** The IPv6 half of a lease as a log field, when it has one. */
function subnet6Field(subnet6: Cidr6 | undefined): Record<string, string> {
  return subnet6 === undefined ? {} : { subnet6: formatCidr6(subnet6) };
}

function keeperLine(log: winston.Logger, event: KeeperEvent): void {
  switch (event.type) {
    case "state":
      log.debug("lease state", { from: event.from, to: event.to });
      return;
    case "acquired":
      log.info("lease acquired", {
        subnet: formatCidr(event.lease.subnet),
        ...subnet6Field(event.lease.subnet6),
        publicIp: event.lease.attrs.publicIp,
        source: event.source,
        reserved: event.lease.leaseId === undefined,
        racesLost: event.racesLost,
      });
      return;
    case "race-lost":
      log.info("lost a race for a subnet, trying another", { subnet: formatCidr(event.subnet) });
      return;
    case "renewed":
      log.debug("lease renewed", {
        subnet: formatCidr(event.lease.subnet),
        expiresAt: new Date(event.lease.expiresAt ?? 0).toISOString(),
      });
      return;
    case "lost":
      log.warn("lease lost, re-acquiring", { subnet: formatCidr(event.subnet), reason: event.reason });
      return;
    case "repaired":
      log.warn("our lease key held something else; wrote it back", {
        subnet: formatCidr(event.subnet),
        found: event.found,
      });
      return;
    case "stale-released":
      log.info("deleted another key of this node (one key per node)", { subnet: formatCidr(event.subnet) });
      return;
    case "retrying":
      log.warn(`lease ${event.phase} failed, retrying`, {
        error: errorMessage(event.error),
        retryInMs: event.retryInMs,
      });
      return;
  }
}

function watcherLine(log: winston.Logger, event: WatcherEvent): void {
  switch (event.type) {
    case "added":
    case "removed":
      log.info(`peer ${event.type}`, {
        subnet: formatCidr(event.peer.subnet),
        ...subnet6Field(event.peer.subnet6),
        publicIp: event.peer.attrs.publicIp,
        backend: event.peer.attrs.backendType ?? null,
      });
      return;
    case "changed":
      log.info("peer changed", {
        subnet: formatCidr(event.peer.subnet),
        publicIp: event.peer.attrs.publicIp,
        previousPublicIp: event.previous.attrs.publicIp,
        vtepMac: event.peer.attrs.vtepMac ?? null,
      });
      return;
    case "invalid":
      log.warn("skipping a lease that cannot be used", {
        subnet: formatCidr(event.subnet),
        ...subnet6Field(event.subnet6),
        reason: event.reason,
        kind: event.kind,
        publicIp: event.publicIp ?? null,
      });
      return;
    case "own-removed":
      log.warn("our lease key disappeared from etcd", { subnet: formatCidr(event.subnet) });
      return;
    case "own-changed":
      log.debug("our lease key was written", {
        subnet: formatCidr(event.lease.subnet),
        modRevision: event.lease.modRevision,
      });
      return;
    case "store-reset":
      log.warn("etcd store reset: keeping peers' routes while nodes register again", {
        reason: event.reason,
        graceMs: event.graceMs,
        peers: event.kept,
      });
      return;
    case "store-reset-over":
      log.info("etcd store reset grace period over", { removed: event.removed });
      return;
    case "synced":
      log.info(event.initial ? "peers listed" : "peers re-listed", { peers: event.peers, revision: event.revision });
      return;
    case "live":
      log.debug("watching peers", { fromRevision: event.revision });
      return;
    case "broken":
      log.warn("peer watch broken, re-listing", {
        reason: event.reason,
        error: errorMessage(event.error),
        retryInMs: event.retryInMs,
      });
      return;
  }
}

function dataplaneLine(log: winston.Logger, event: DataplaneEvent): void {
  switch (event.type) {
    case "programmed":
    case "removed":
      log.debug(`${event.kind} ${event.type}`, entryFields(event));
      return;
    case "repaired":
      log.warn(`repaired ${event.kind} that was removed from the kernel`, entryFields(event));
      return;
    case "stale-removed":
      log.info(`removed stale ${event.kind}`, entryFields(event));
      return;
    case "device":
      log[event.repair ? "warn" : "info"](`vxlan device ${event.action}`, { device: event.name, reason: event.reason });
      return;
    case "peer-skipped":
      log.warn(event.peer.family === 6 ? "peer not programmed for IPv6" : "peer not programmed", {
        subnet: event.peer.subnet,
        publicIp: event.peer.publicIp,
        reason: event.peer.reason,
      });
      return;
    case "sysctl":
      log.info("kernel setting changed for the IPv6 network", {
        sysctl: event.name,
        value: event.value,
        previous: event.previous,
      });
      return;
    case "pass":
      log.debug("dataplane pass", {
        trigger: event.trigger,
        changes: event.changes,
        durationMs: Math.round(event.durationMs * 10) / 10,
        converged: event.converged,
      });
      return;
    case "error":
      log.error(
        event.entry === undefined ? "dataplane pass failed" : `programming ${describeEntry(event.entry)} failed`,
        { error: errorMessage(event.error) },
      );
      return;
  }
}

function entryFields(entry: EntryRef): Record<string, string> {
  return {
    key: entry.key,
    ...(entry.subnet === undefined ? {} : { subnet: entry.subnet }),
    ...(entry.publicIp === undefined ? {} : { publicIp: entry.publicIp }),
    ...(entry.family === 6 ? { family: "ipv6" } : {}),
  };
}

function masqueradeLine(log: winston.Logger, event: MasqueradeEvent): void {
  switch (event.type) {
    case "applied":
      if (event.reason === "resync")
        log.warn("masquerade rules were changed or removed; re-installed", { backend: event.backend });
      else log.info("masquerade rules installed", { backend: event.backend, reason: event.reason });
      return;
    case "unchanged":
      log.info("masquerade rules already in place", { backend: event.backend });
      return;
    case "error":
      log.error("installing masquerade rules failed", { error: errorMessage(event.error) });
      return;
  }
}

function servicesLine(log: winston.Logger, event: ServicesEvent): void {
  switch (event.type) {
    case "registry": {
      const e = event.event;
      if (e.type === "synced")
        log.info(e.initial ? "service registry listed" : "service registry re-listed", {
          entries: e.entries,
          revision: e.revision,
        });
      else if (e.type === "broken")
        log.warn("service registry watch broken, re-listing", {
          reason: e.reason,
          error: errorMessage(e.error),
          retryInMs: e.retryInMs,
        });
      return;
    }
    case "proxy": {
      const e = event.event;
      if (e.type === "synced")
        log[e.full ? "info" : "debug"](e.full ? "service rules programmed (full sync)" : "service rules updated", {
          services: e.services,
          changed: e.changed,
          durationMs: Math.round(e.durationMs * 10) / 10,
          ...(e.latencyMs === undefined ? {} : { latencyMs: e.latencyMs }),
        });
      else if (e.type === "error")
        log.error("programming the service rules failed; a full sync follows", {
          error: errorMessage(e.error),
          retryInMs: e.retryInMs,
        });
      else log.warn("deleting stale UDP conntrack entries failed", { error: errorMessage(e.error) });
      return;
    }
    case "pods": {
      const e = event.event;
      if (e.type === "published")
        log.info("pods published as endpoints", { added: e.added, removed: e.removed, pods: e.pods });
      else if (e.type === "skipped") log.warn("pod record not published", { what: e.what, reason: e.reason });
      else log.warn("publishing pods failed, retrying", { error: errorMessage(e.error) });
      return;
    }
    case "invalid":
      log.warn("skipping a registry value that cannot be used", { key: event.key, reason: event.reason });
      return;
  }
}

export function logAgentEvent(log: winston.Logger, event: AgentEvent): void {
  switch (event.type) {
    case "services":
      servicesLine(log, event.event);
      return;
    case "config-waiting":
      log.warn("waiting for the network config", { error: errorMessage(event.error), retryInMs: event.retryInMs });
      return;
    case "config":
      log.info("network config", {
        network: formatCidr(event.config.network),
        subnetLen: event.config.subnetLen,
        subnetMin: formatIpv4(event.config.subnetMin),
        subnetMax: formatIpv4(event.config.subnetMax),
        ...(event.config.ipv6 === undefined
          ? {}
          : { ipv6Network: formatCidr6(event.config.ipv6.network), ipv6SubnetLen: event.config.ipv6.subnetLen }),
        ...(event.config.enableIPv4 ? {} : { enableIPv4: false }),
        backend: event.config.backend.type,
      });
      return;
    case "underlay":
      log.info("underlay", {
        iface: event.underlay.iface.name,
        localIp: event.underlay.localIp,
        publicIp: event.underlay.publicIp,
        mtu: event.underlay.iface.mtu,
      });
      return;
    case "underlay6":
      if (event.underlay6 === undefined)
        log.warn("no global IPv6 address on the underlay: IPv6 pods are tunnelled over IPv4", {
          iface: event.iface,
        });
      else
        log.info("IPv6 underlay", {
          iface: event.iface,
          localIp6: event.underlay6.localIp6,
          publicIpv6: event.underlay6.publicIpv6,
        });
      return;
    case "subnet-file":
      if (event.event.type === "written") {
        log[event.event.why === "lease" ? "info" : "warn"](
          event.event.why === "lease" ? "subnet file written" : `subnet file was ${event.event.why}; rewritten`,
          {
            path: event.event.path,
            subnet: event.lease === undefined ? null : formatCidr(event.lease.subnet),
          },
        );
      } else {
        log.error("subnet file cannot be kept equal to the lease", {
          path: event.event.path,
          error: event.event.reason,
        });
      }
      return;
    case "config-drift":
      log[event.drift.kind === "changed" ? "error" : "warn"](event.description, { kind: event.drift.kind });
      return;
    case "config-in-sync":
      log.info("network config in etcd agrees with the running one again", { key: event.key });
      return;
    case "error":
      log.error(`${event.context} failed`, { error: errorMessage(event.error) });
      return;
    case "ready":
      log.info("ready", {
        subnet: formatCidr(event.lease.subnet),
        ...subnet6Field(event.lease.subnet6),
        publicIp: event.lease.attrs.publicIp,
        peers: event.peers,
        startupMs: event.startupMs,
      });
      return;
    case "dataplane":
      dataplaneLine(log, event.event);
      return;
    case "masquerade":
      masqueradeLine(log, event.event);
      return;
    case "keeper":
      keeperLine(log, event.event);
      return;
    case "watcher":
      watcherLine(log, event.event);
      return;
  }
}
