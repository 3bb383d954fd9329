// The cluster DNS in the lab: a DNS server per node (`trellis-agent dns`, started as trellis-dns.service would: the
// executable, `dns`, the rendered agent.env then dns.env as environment), and a stand-in for the nodes' upstream
// resolver in the underlay namespace (fake-dns-upstream.ts), which the rendered dns.env names — the lab never sends
// a query off the machine.
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { commandLine, startDetached, stopPid } from "./exec.js";
import { UNDERLAY_GATEWAY } from "./layout.js";
import { readEnvFile } from "./node-config.js";
import type { PodLab } from "./lab-pods.js";
import { waitFor } from "./ports.js";

export const DNS_CMD = /agent\/bin\/agent dns/;
export const UPSTREAM_CMD = /fake-dns-upstream\.js/;
/** Where the nodes' DNS servers forward names outside the cluster: the underlay namespace's gateway address. */
export const UPSTREAM_IP = UNDERLAY_GATEWAY;

/** The resolv.conf every node's DNS server reads its upstream from (render-node-config --resolv-conf). */
export function upstreamResolvConf(lab: Pick<PodLab, "layout">): string {
  return join(lab.layout.stateDir, "upstream-resolv.conf");
}

/** Writes the upstream's resolv.conf and starts the stand-in resolver (answers every name with 192.0.2.1). */
export async function startUpstream(lab: PodLab): Promise<void> {
  await writeFile(
    upstreamResolvConf(lab),
    `# the lab's stand-in upstream resolver (lab/src/fake-dns-upstream.ts)\nnameserver ${UPSTREAM_IP}\n`,
  );
  const script = fileURLToPath(new URL("./fake-dns-upstream.js", import.meta.url));
  const log = join(lab.layout.stateDir, "upstream-dns.log");
  lab.current.upstreamPid = startDetached(
    "ip",
    ["netns", "exec", lab.layout.underlayNs, process.execPath, script, UPSTREAM_IP, "53"],
    log,
  );
  await lab.save();
  await waitFor(
    "the lab's upstream resolver to listen",
    async () => (await readFile(log, "utf8").catch(() => "")).includes("listening"),
    10_000,
    50,
  );
}

/** Starts node `index`'s DNS server; waitDnsReady() tells when it answers. */
export async function startDns(lab: PodLab, index: number): Promise<number> {
  const node = lab.layout.node(index);
  const entry = lab.current.nodes.find((n) => n.index === index);
  if (entry === undefined) throw new Error(`no node ${node.name}`);
  const log = join(node.dir, "dns.log");
  entry.dnsLogOffset = await stat(log).then(
    (s) => s.size,
    () => 0,
  );
  const env = {
    ...process.env,
    ...(await readEnvFile(join(node.dir, "agent.env"))),
    ...(await readEnvFile(join(node.dir, "dns.env"))),
  };
  entry.dnsPid = startDetached("ip", ["netns", "exec", node.ns, lab.layout.agentBin, "dns"], log, env);
  await lab.save();
  return entry.dnsPid;
}

/** Stops node `index`'s DNS server by its PID (SIGTERM withdraws it from the DNS Service; SIGKILL is a crash). */
export async function stopDns(lab: PodLab, index: number, signal: NodeJS.Signals = "SIGTERM"): Promise<boolean> {
  const entry = lab.current.nodes.find((n) => n.index === index);
  if (entry?.dnsPid === undefined) return false;
  const stopped = await stopPid(entry.dnsPid, DNS_CMD, 5000, signal);
  entry.dnsPid = undefined;
  await lab.save();
  return stopped;
}

/** Waits until node `index`'s DNS server has published itself as an endpoint of the DNS Service (so it answers). */
export async function waitDnsReady(lab: PodLab, index: number, timeoutMs = 30_000): Promise<void> {
  const node = lab.layout.node(index);
  const entry = lab.current.nodes.find((n) => n.index === index);
  const log = join(node.dir, "dns.log");
  await waitFor(
    `the DNS server on ${node.name} to publish itself`,
    async () => {
      if (entry?.dnsPid !== undefined && !DNS_CMD.test(commandLine(entry.dnsPid)))
        throw new Error(
          `the DNS server on ${node.name} exited; see ${log}:\n${(await readFile(log, "utf8")).slice(-2000)}`,
        );
      const text = (await readFile(log)).subarray(entry?.dnsLogOffset ?? 0).toString("utf8");
      return /published as an endpoint of the DNS Service/.test(text);
    },
    timeoutMs,
    50,
  );
}
