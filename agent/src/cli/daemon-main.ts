// Wiring the daemon for `trellis-agent run`: real adapters (etcd, netlink, firewall, files, clock), logs, metrics
// and the HTTP endpoint. SIGTERM/SIGINT stop it without touching the datapath.
import { readFileSync, readlinkSync } from "node:fs";
import { AGENT_SOCKET_ALLOWED, isAgentSocketPath } from "../../../cni-plugin/src/config.js";
import { realDeps as cniDeps } from "../../../cni-plugin/src/real-deps.js";
import { startCniService, type CniService } from "../../../cni-plugin/src/service/server.js";
import { systemClock } from "../../../lib/src/clock.js";
import { processRunner } from "../../../lib/src/command.js";
import { errorMessage, InvalidArgumentError } from "../../../lib/src/errors.js";
import { parseDuration } from "../../../lib/src/duration.js";
import { nodeFileStore } from "../../../lib/src/files.js";
import { isIpv4 } from "../../../lib/src/ipv4.js";
import { openKernel } from "../../../lib/src/netlink/rtnetlink-kernel.js";
import { parseLeaseTtlSeconds } from "../config/agent-options.js";
import { Agent } from "../daemon/agent.js";
import { chooseFirewall } from "../dataplane/firewall.js";
import { KernelHostNetwork } from "../node/kernel-host-network.js";
import { startHttpServer, type RunningServer } from "../observability/http-server.js";
import { instrumentKernel, instrumentRegistry } from "../observability/instrument.js";
import { AgentMetrics } from "../observability/metrics.js";
import { readiness } from "../observability/readiness.js";
import { logAgentEvent } from "./agent-log.js";
import { openRegistry } from "./context.js";
import { createLogger } from "./logger.js";
import type { RunFlags } from "./options.js";
import { VERSION } from "./version.js";

function parsePort(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65535)
    throw new InvalidArgumentError("--healthz-port", text, "must be a port number from 0 (off) to 65535");
  return Number(text);
}

/** The socket the plugin's shim finds through the conflist's agentSocket: the same rules; "" is off. */
function checkSocketPath(path: string): void {
  if (path !== "" && !isAgentSocketPath(path))
    throw new InvalidArgumentError("--cni-socket", path, `must be ${AGENT_SOCKET_ALLOWED}`);
}

/** Entering a pod's namespace (setns) needs CAP_SYS_ADMIN; a unit that withholds it gets the plugin standalone. */
function canEnterNamespaces(): boolean {
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
  const CAP_SYS_ADMIN = 21n;
  return capEff !== undefined && ((BigInt(`0x${capEff}`) >> CAP_SYS_ADMIN) & 1n) === 1n;
}

/** The plugin's work for its shim, in this process; a failure to listen leaves the plugin standalone, not the node down. */
async function startCni(
  path: string,
  log: ReturnType<typeof createLogger>,
  metrics: AgentMetrics,
): Promise<CniService | undefined> {
  if (path === "") return undefined;
  if (!canEnterNamespaces()) {
    log.warn(
      "not serving the CNI plugin's shim: entering pod namespaces needs CAP_SYS_ADMIN; the plugin runs standalone",
      { socket: path },
    );
    return undefined;
  }
  try {
    const service = await startCniService({
      socketPath: path,
      deps: cniDeps,
      netns: readlinkSync("/proc/self/ns/net"),
    });
    service.events.on((event) => {
      metrics.observeCni(event);
      if (event.type === "served")
        log.debug("cni request served", { command: event.command, exitCode: event.exitCode, ms: Math.round(event.ms) });
      else log.warn("cni request sent back to the standalone plugin", { reason: event.reason });
    });
    log.info("serving the CNI plugin's shim", { socket: path });
    return service;
  } catch (error) {
    log.warn("not serving the CNI plugin's shim; the plugin runs standalone", {
      socket: path,
      error: errorMessage(error),
    });
    return undefined;
  }
}

export async function runDaemon(flags: RunFlags): Promise<void> {
  // Everything that can be wrong with the flags is reported before anything starts.
  const leaseTtlSeconds = parseLeaseTtlSeconds(flags.subnetLeaseTtl);
  const masqResyncMs = parseDuration("--iptables-resync", flags.iptablesResync, 1000);
  const resyncIntervalMs = parseDuration("--resync-interval", flags.resyncInterval, 1000);
  const healthzPort = parsePort(flags.healthzPort);
  if (!isIpv4(flags.healthzIp))
    throw new InvalidArgumentError(
      "--healthz-ip",
      flags.healthzIp,
      "must be an IPv4 address such as 127.0.0.1 or 0.0.0.0",
    );
  if (flags.vxlanDevice !== undefined && !/^[A-Za-z0-9._-]{1,15}$/.test(flags.vxlanDevice)) {
    throw new InvalidArgumentError(
      "--vxlan-device",
      flags.vxlanDevice,
      "must be an interface name of 1-15 letters, digits, '.', '_' or '-'",
    );
  }
  checkSocketPath(flags.cniSocket);

  const log = createLogger(flags.logLevel, flags.logFormat);
  const metrics = new AgentMetrics(VERSION);
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals): void => {
    log.info("stopping; the datapath stays in place", { signal });
    controller.abort(new Error(`received ${signal}`));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);

  const { registry: etcd, prefix } = await openRegistry(flags, "daemon");
  const rawKernel = openKernel();
  let server: RunningServer | undefined;
  let cni: CniService | undefined;
  try {
    const kernel = instrumentKernel(rawKernel, (op, s, e) => {
      metrics.observeNetlink(op, s, e);
    });
    const registry = instrumentRegistry(etcd, (op, s, e) => {
      metrics.observeEtcd(op, s, e);
    });
    const firewall = flags.ipMasq ? await chooseFirewall(processRunner, flags.firewallBackend) : undefined;
    const agent = new Agent(
      {
        etcdPrefix: prefix,
        subnetFile: flags.subnetFile,
        leaseTtlSeconds,
        ipMasq: flags.ipMasq,
        iface: flags.iface,
        publicIp: flags.publicIp,
        vxlanDevice: flags.vxlanDevice,
        resyncIntervalMs,
        masqResyncMs,
      },
      { registry, clock: systemClock, files: nodeFileStore, host: new KernelHostNetwork(kernel), kernel, firewall },
    );
    agent.events.on((event) => {
      logAgentEvent(log, event);
      metrics.record(event);
    });
    const ready = (): ReturnType<typeof readiness> => readiness(agent.readinessInput());
    metrics.attach({
      leaseState: () => agent.leaseInfo().state,
      leaseSecondsToExpiry: () => agent.leaseInfo().secondsToExpiry,
      peersKnown: () => agent.nodeView().peers.length,
      peersProgrammed: () => agent.nodeView().peers.filter((p) => p.programmed).length,
      ready: () => ready().ready,
    });
    if (healthzPort !== 0) {
      // Up before the lease: /readyz says why the node is not ready yet.
      server = await startHttpServer(flags.healthzIp, healthzPort, {
        readiness: ready,
        metrics: async () => ({ body: await metrics.metrics(), contentType: metrics.contentType }),
        status: () => ({ readiness: ready(), ...agent.nodeView() }),
      });
      log.info("serving /healthz, /readyz, /metrics, /status", { url: server.url });
    }
    // Before the lease, like the HTTP endpoint: until subnet.env exists the plugin answers "try again later".
    cni = await startCni(flags.cniSocket, log, metrics);
    const started = await agent.start(controller.signal);
    await started.done;
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  } finally {
    await server?.close();
    await cni?.close();
    etcd.close();
    rawKernel.close();
    await new Promise<void>((resolve) => {
      log.on("finish", resolve);
      log.end();
    });
  }
}
