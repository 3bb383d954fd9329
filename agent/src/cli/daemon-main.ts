// Wiring the daemon for `trellis-agent run`: real adapters (etcd, netlink, firewall, files, clock), logs, metrics
// and the HTTP endpoint. SIGTERM/SIGINT stop it without touching the datapath.
import { readFileSync, readlinkSync } from "node:fs";
import { realDeps as cniDeps, startCniService, type CniService } from "../../../cni-plugin/src/index.js";
import { systemClock } from "#lib/clock.js";
import { processRunner } from "#lib/command.js";
import { errorMessage } from "#lib/errors.js";
import { nodeFileStore } from "#lib/files.js";
import { onNamespaceEscape } from "#lib/netlink/netns.js";
import { openKernel } from "#lib/netlink/rtnetlink-kernel.js";
import { parseRunOptions } from "../config/run-options.js";
import { Agent } from "../daemon/agent.js";
import { chooseFirewall } from "../dataplane/choose-firewall.js";
import { DirectoryPodRecordSource } from "../services/pod-record-dir.js";
import { KernelHostNetwork } from "../node/kernel-host-network.js";
import { startHttpServer, type RunningServer } from "../observability/http-server.js";
import { instrumentKernel, instrumentRegistry } from "../observability/instrument.js";
import { AgentMetrics } from "../observability/metrics.js";
import { readiness } from "../observability/readiness.js";
import { logAgentEvent } from "./agent-log.js";
import { EXIT } from "./exit-codes.js";
import { connectServiceRegistry } from "./context.js";
import { createLogger } from "./logger.js";
import type { RunFlags } from "./options.js";
import { VERSION } from "./version.js";

/** Entering a pod's namespace (setns) needs CAP_SYS_ADMIN; a unit that withholds it gets the plugin standalone. */
function canEnterNamespaces(): boolean {
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
  const CAP_SYS_ADMIN = 21n;
  return capEff !== undefined && ((BigInt(`0x${capEff}`) >> CAP_SYS_ADMIN) & 1n) === 1n;
}

/** The plugin's work for its shim, in this process; a failure to listen leaves the plugin standalone, not the node down. */
async function startCni(
  path: string | undefined,
  log: ReturnType<typeof createLogger>,
  metrics: AgentMetrics,
): Promise<CniService | undefined> {
  if (path === undefined) return undefined;
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
      else if (event.type === "fallback")
        log.warn("cni request sent back to the standalone plugin", { reason: event.reason });
      else log.warn("cni request abandoned: its shim gave up and ran the standalone plugin", { reason: event.reason });
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
  const options = parseRunOptions(flags);
  const log = createLogger(options.log.level, options.log.format);
  // A thread stuck in a pod's namespace would open every later socket there: say so and stop; systemd restarts us.
  onNamespaceEscape((error) => {
    log.error("stopping: a thread could not return from a pod's network namespace", {
      error: error.message,
      exitCode: EXIT.fatal,
    });
    process.exit(EXIT.fatal);
  });
  const metrics = new AgentMetrics(VERSION);
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals): void => {
    log.info("stopping; the datapath stays in place", { signal });
    controller.abort(new Error(`received ${signal}`));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);

  const { registry: etcd, prefix, kv, layout } = await connectServiceRegistry(options.etcd, options.registryPrefix);
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
    const firewall = options.ipMasq ? await chooseFirewall(processRunner, options.firewallBackend) : undefined;
    const agent = new Agent(
      {
        etcdPrefix: prefix,
        subnetFile: options.subnetFile,
        leaseTtlSeconds: options.leaseTtlSeconds,
        ipMasq: options.ipMasq,
        iface: options.iface,
        publicIp: options.publicIp,
        publicIpv6: options.publicIpv6,
        vxlanDevice: options.vxlanDevice,
        resyncIntervalMs: options.resyncIntervalMs,
        masqResyncMs: options.masqResyncMs,
        storeResetGraceMs: options.storeResetGraceMs,
      },
      {
        registry,
        clock: systemClock,
        files: nodeFileStore,
        host: new KernelHostNetwork(kernel),
        kernel,
        firewall,
        services: options.services
          ? {
              kv,
              layout,
              clock: systemClock,
              podRecords: new DirectoryPodRecordSource(options.podRecordDir),
              commands: processRunner,
            }
          : undefined,
      },
    );
    agent.events.on((event) => {
      logAgentEvent(log, event);
      metrics.record(event);
    });
    const ready = (): ReturnType<typeof readiness> => readiness(agent.readinessInput());
    metrics.attach({
      leaseState: () => agent.leaseInfo().state,
      leaseSecondsToExpiry: () => agent.leaseInfo().secondsToExpiry,
      peersKnown: () => agent.peerCounts().known,
      peersProgrammed: () => agent.programmedCounts().peers,
      subnetsProgrammed: () => agent.programmedCounts().byFamily,
      peersRejected: () => agent.peerCounts().rejected,
      ready: () => ready().ready,
      configDrift: () => agent.configDriftKind(),
      services: () => agent.servicesView(),
    });
    if (options.healthz !== undefined) {
      // Up before the lease: /readyz says why the node is not ready yet.
      server = await startHttpServer(options.healthz.ip, options.healthz.port, {
        readiness: ready,
        metrics: async () => ({ body: await metrics.metrics(), contentType: metrics.contentType }),
        status: () => ({ readiness: ready(), ...agent.nodeView(), services: agent.servicesView() ?? null }),
      });
      log.info("serving /healthz, /readyz, /metrics, /status", { url: server.url });
    }
    // Before the lease, like the HTTP endpoint: until subnet.env exists the plugin answers "try again later".
    cni = await startCni(options.cniSocket, log, metrics);
    // A pod wired or removed here is published (or withdrawn) as an endpoint at once.
    cni?.events.on((event) => {
      if (event.type === "served") agent.podsChanged();
    });
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
