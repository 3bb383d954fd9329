// Wiring `trellis-agent dns`: the registry over etcd, the node's addresses, the node-local address on lo, the DNS
// server with the upstreams of resolv.conf, logs, metrics and the HTTP endpoint. SIGTERM/SIGINT withdraw this
// server from the DNS Service and stop it.
import { readFile } from "node:fs/promises";
import { systemClock } from "#lib/clock.js";
import { errorMessage, InvalidArgumentError } from "#lib/errors.js";
import { parseIpv4 } from "#lib/ipv4.js";
import { openKernel } from "#lib/netlink/rtnetlink-kernel.js";
import { parseDnsOptions } from "../config/dns-options.js";
import { ClusterDns } from "../daemon/cluster-dns.js";
import type { ListenAddress } from "../dns/options.js";
import { parseResolvConf, upstreamsFrom, type Upstream } from "../dns/resolv-conf.js";
import { DnsServer } from "../dns/server.js";
import { KernelHostNetwork } from "../node/kernel-host-network.js";
import { chooseUnderlay } from "../node/public-ip.js";
import { DnsMetrics } from "../observability/dns-metrics.js";
import { startHttpServer, type RunningServer } from "../observability/http-server.js";
import { DNS_SERVICE } from "../services/dns-service.js";
import type { DnsFlags } from "./options.js";
import { connectServiceRegistry } from "./context.js";
import { logDnsEvent } from "./dns-log.js";
import { createLogger } from "./logger.js";
import { VERSION } from "./version.js";

/** The node's upstream resolvers; a missing file means none (other names are REFUSED), said once. */
async function upstreams(
  path: string,
  own: readonly ListenAddress[],
  warn: (message: string, fields: object) => void,
): Promise<Upstream[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    warn("cannot read the upstream resolvers; names outside the cluster are refused", {
      path,
      error: errorMessage(error),
    });
    return [];
  }
  const conf = parseResolvConf(text);
  for (const warning of conf.warnings) warn("ignored a line of resolv.conf", { path, warning });
  const chosen = upstreamsFrom(conf, own);
  if (chosen.length === 0)
    warn("resolv.conf names no upstream resolver besides this server; names outside the cluster are refused", { path });
  return chosen;
}

export async function runDns(flags: DnsFlags): Promise<void> {
  const options = parseDnsOptions(flags);
  const log = createLogger(options.log.level, options.log.format);
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals): void => {
    log.info("stopping: withdrawing this server from the DNS Service", { signal });
    controller.abort(new Error(`received ${signal}`));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);

  const kernel = openKernel();
  const { registry, prefix, kv, layout } = await connectServiceRegistry(options.etcd, options.registryPrefix);
  let http: RunningServer | undefined;
  try {
    const host = new KernelHostNetwork(kernel);
    const interfaces = await host.interfaces();
    // The node's address serves the DNS Service's endpoint: needed (and listened on) only when publishing one.
    const underlay = options.register
      ? chooseUnderlay(
          { iface: options.iface, publicIp: options.publicIp },
          interfaces,
          await host.defaultRouteInterface(),
        )
      : undefined;
    // The node-local address: ours to add when no interface has it (NodeLocal DNSCache's, if present, is used as is).
    const nodeLocal = options.nodeLocalIp;
    if (nodeLocal !== undefined && !interfaces.some((i) => i.addresses.includes(nodeLocal))) {
      const lo = interfaces.find((i) => i.name === "lo");
      if (lo === undefined) throw new Error("no loopback interface to put the node-local address on");
      await kernel.addAddress({ index: lo.index, address: nodeLocal, prefixLen: 32 });
      log.info("added the node-local DNS address to lo", { address: `${nodeLocal}/32` });
    }
    const addresses = [...new Set([nodeLocal, underlay?.localIp].filter((a): a is string => a !== undefined))];
    if (addresses.length === 0)
      throw new InvalidArgumentError(
        "--node-local-ip",
        "",
        "must name an address to listen on when --register is false",
      );
    const listen: ListenAddress[] = addresses.map((address) => ({ address, port: options.port }));
    const server = new DnsServer({
      listen,
      upstreams: await upstreams(options.resolvConf, listen, (message, fields) => {
        log.warn(message, fields);
      }),
      ttlSeconds: options.ttlSeconds,
      negativeTtlSeconds: options.ttlSeconds,
    });
    const dns = new ClusterDns({
      kv,
      layout,
      subnetsPrefix: `${prefix}/subnets/`,
      clock: systemClock,
      server,
      selfEndpoint:
        underlay !== undefined
          ? {
              leases: registry,
              service: DNS_SERVICE,
              clusterIP: (config) => config.dnsClusterIP,
              endpoint: { ip: parseIpv4(underlay.publicIp) ?? 0, ports: DNS_SERVICE.ports.map(() => options.port) },
              owner: underlay.publicIp,
              ttlSeconds: options.endpointTtlSeconds,
            }
          : undefined,
      lameduckMs: options.lameduckMs,
    });
    const metrics = new DnsMetrics(VERSION);
    dns.events.on((event) => {
      logDnsEvent(log, event);
      metrics.record(event);
    });
    const readiness = (): { ready: boolean; reasons: string[]; warnings: string[] } => {
      const reason = dns.notReadyReason();
      return {
        ready: reason === undefined,
        reasons: reason === undefined ? [] : [reason],
        warnings: reason === undefined ? dns.warnings() : [],
      };
    };
    metrics.attach(
      () => server.stats(),
      () => readiness().ready,
    );
    if (options.status !== undefined) {
      http = await startHttpServer(options.status.ip, options.status.port, {
        readiness,
        metrics: async () => ({ body: await metrics.metrics(), contentType: metrics.contentType }),
        status: () => ({ readiness: readiness(), listening: dns.addresses, stats: server.stats() }),
      });
      log.info("serving /healthz, /readyz, /metrics, /status", { url: http.url });
    }
    await dns.run(controller.signal);
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  } finally {
    await http?.close();
    registry.close(); // the etcd client the KV store shares
    kernel.close();
    await new Promise<void>((resolve) => {
      log.on("finish", resolve);
      log.end();
    });
  }
}
