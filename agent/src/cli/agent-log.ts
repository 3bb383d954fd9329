// Turns the daemon's typed events into log lines: one per peer added/removed/changed, per lease transition, per
// etcd trouble. Messages carry subnet and public IP as fields; secrets are never part of an event.
import type winston from "winston";
import { errorMessage } from "../../../lib/src/errors.js";
import { formatCidr, formatIpv4 } from "../../../lib/src/ipv4.js";
import type { AgentEvent } from "../daemon/agent.js";
import type { MasqueradeEvent } from "../dataplane/masquerade.js";
import { describeEntry, type DataplaneEvent, type EntryRef } from "../dataplane/reconciler.js";
import type { KeeperEvent } from "../lease/keeper.js";
import type { WatcherEvent } from "../lease/watcher.js";

function keeperLine(log: winston.Logger, event: KeeperEvent): void {
  switch (event.type) {
    case "state":
      log.debug("lease state", { from: event.from, to: event.to });
      return;
    case "acquired":
      log.info("lease acquired", {
        subnet: formatCidr(event.lease.subnet),
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
    case "retrying":
      log.warn(`lease ${event.phase} failed, retrying`, {
        error: errorMessage(event.error),
        retryInMs: event.retryInMs,
      });
      return;
    case "released":
      log.info(event.kept ? "reservation kept" : "lease released", { subnet: formatCidr(event.subnet) });
      return;
  }
}

function watcherLine(log: winston.Logger, event: WatcherEvent): void {
  switch (event.type) {
    case "added":
    case "removed":
      log.info(`peer ${event.type}`, {
        subnet: formatCidr(event.peer.subnet),
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
      log.warn("skipping a lease that cannot be used", { subnet: formatCidr(event.subnet), reason: event.reason });
      return;
    case "own-removed":
      log.warn("our lease key disappeared from etcd", { subnet: formatCidr(event.subnet) });
      return;
    case "own-taken":
      log.warn("our lease key was overwritten by another node", {
        subnet: formatCidr(event.subnet),
        publicIp: event.publicIp,
      });
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
      log.warn("peer not programmed", {
        subnet: formatCidr(event.peer.subnet),
        publicIp: event.peer.publicIp,
        reason: event.peer.reason,
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

export function logAgentEvent(log: winston.Logger, event: AgentEvent): void {
  switch (event.type) {
    case "config-waiting":
      log.warn("waiting for the network config", { error: errorMessage(event.error), retryInMs: event.retryInMs });
      return;
    case "config":
      log.info("network config", {
        network: formatCidr(event.config.network),
        subnetLen: event.config.subnetLen,
        subnetMin: formatIpv4(event.config.subnetMin),
        subnetMax: formatIpv4(event.config.subnetMax),
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
    case "subnet-env":
      log.info("subnet file written", { path: event.path, subnet: formatCidr(event.lease.subnet) });
      return;
    case "error":
      log.error(`${event.context} failed`, { error: errorMessage(event.error) });
      return;
    case "ready":
      log.info("ready", {
        subnet: formatCidr(event.lease.subnet),
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
