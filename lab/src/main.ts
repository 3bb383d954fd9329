// scripts/lab: the multi-node lab on one machine. `up` builds it and shows it working; `down` removes it.
import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runStatus } from "./exec.js";
import { Lab } from "./lab.js";
import { applyManifest, formatPods, parseLabManifest } from "./lab-apply.js";
import { startDns, stopDns, waitDnsReady } from "./lab-dns.js";
import { addPods, fetchFromPod, fetchUrlFromPod, podEndpoints, startPodServer } from "./lab-pods.js";
import { REPO_ROOT } from "./paths.js";
import { LabLayout, MAX_NODES } from "./layout.js";
import { formatMatrix, pingMatrix } from "./ping.js";

const USAGE = `Usage: scripts/lab <command> [options]

Commands:
  up [--nodes N] [--backend vxlan|host-gw] [--direct-routing] [--etcd-members 1|3] [--pods N] [--ipv6|--ipv6-only]
                     build the lab (removing a previous one first) and show it working:
                     agent status, pods and their IPs, HTTP from a pod on another node, a Service, the
                     ping matrix, then the chapter's walkthrough (lab/examples/nginx.yaml, by name).
                     --ipv6: dual-stack pod networks (172.30.0.0/16 and fd30::/56), a ping matrix per family;
                     --ipv6-only: fd30::/56 only (Services and DNS stay IPv4: no walkthrough)
  apply FILE         a manifest's Deployments as pods (spread over the nodes) and its Services (trellis-agent apply)
  get pods|services  the lab's pods (kubectl get pods -o wide) or the Services (trellis-agent service list)
  status             the lab's nodes and pods, and every node's subnet lease
  ping               ping matrix between every pair of pods (node subnets when there are no pods)
  exec <node|pod> -- CMD...
                     run a command in a node (n1) or pod (n1-p1) namespace
  logs <node> [--dns] the agent log of a node (n1), or its DNS server's
  kill-agent <node>  SIGKILL the agent of a node (the datapath stays)
  start-agent <node> start the agent of a node again
  stop-dns <node>    stop a node's DNS server (SIGTERM: it leaves the DNS Service first)
  start-dns <node>   start it again
  add-node           add a node (with its pods) to the running lab
  down               remove everything the lab created (also after a crash or a half-finished up)

Environment: TRELLIS_LAB_PREFIX (namespace prefix, default "trl"), TRELLIS_LAB_DIR (state, default /run/trellis-lab/<prefix>).`;

function fail(message: string): never {
  process.stderr.write(`lab: ${message}\n`);
  process.exit(2);
}

function nodeIndex(lab: Lab, name: string | undefined): number {
  const match = /^n(\d+)$/.exec(name ?? "");
  const index = Number(match?.[1]);
  if (match === null || !lab.current.nodes.some((n) => n.index === index)) {
    fail(
      `${JSON.stringify(name ?? "")} is not a node of this lab (${lab.current.nodes.map((n) => `n${n.index}`).join(", ")})`,
    );
  }
  return index;
}

function showPods(lab: Lab): void {
  const pods = lab.current.pods;
  if (pods.length === 0) return;
  process.stdout.write("Pods (namespaces ADDed through the node's CNI chain):\n");
  for (const pod of pods)
    process.stdout.write(
      `  ${pod.name.padEnd(16)} node n${pod.node}  ${pod.ip}${pod.ip6 === undefined ? "" : `  ${pod.ip6}`}${pod.httpPid === undefined ? "" : "  http :80"}\n`,
    );
  process.stdout.write("\n");
}

/** Two pods on two nodes serve HTTP; a pod on another node fetches from both by pod IP. */
async function httpDemo(lab: Lab): Promise<boolean> {
  const byNode = (index: number): typeof lab.current.pods => lab.current.pods.filter((p) => p.node === index);
  const nodes = lab.current.nodes.map((n) => n.index);
  const servers = [byNode(nodes[0] ?? 1)[0], byNode(nodes[1] ?? nodes[0] ?? 1)[0]].filter((p) => p !== undefined);
  const client = byNode(nodes[nodes.length - 1] ?? 1).find((p) => !servers.includes(p));
  if (servers.length === 0 || client === undefined) return true;
  for (const server of servers) if (server.httpPid === undefined) await startPodServer(lab, server);
  let ok = true;
  for (const server of servers) {
    const answer = await fetchFromPod(client, server);
    ok &&= answer.ok;
    process.stdout.write(
      `  ${client.name} (n${client.node}) → http://${server.ip}/ (${server.name} on n${server.node}): ${answer.ok ? answer.body : `FAILED: ${answer.body}`}\n`,
    );
  }
  process.stdout.write("\n");
  return ok;
}

/**
 * A Service over the two app=web pods (on different nodes): its cluster IP from a pod on a third node, as the
 * chapter's `curl 10.254.126.60:8000`. The agents' proxies program it from the registry within moments.
 */
async function servicesDemo(lab: Lab): Promise<boolean> {
  const web = lab.current.pods.filter((p) => p.httpPid !== undefined);
  const client = lab.current.pods.find(
    (p) => p.node === Math.max(...lab.current.nodes.map((n) => n.index)) && p.httpPid === undefined,
  );
  if (web.length === 0 || client === undefined) return true;
  const created = await lab.agentCli(["service", "create", "web", "--port", "8000:80", "--selector", "app=web"]);
  if (created.code !== 0) {
    process.stdout.write(`  service create failed: ${created.stderr.trim()}\n`);
    return false;
  }
  process.stdout.write(`  ${created.stdout.trim()}\n`);
  const clusterIp = /cluster IP ([\d.]+)/.exec(created.stdout)?.[1] ?? "";
  const seen = new Set<string>();
  let answer = { ok: false, body: "" };
  for (let attempt = 0; attempt < 40 && seen.size < web.length; attempt++) {
    answer = await fetchUrlFromPod(client, `http://${clusterIp}:8000/`);
    if (answer.ok) seen.add(answer.body.split(" (")[0] ?? answer.body);
    else await new Promise((resolve) => setTimeout(resolve, 100));
  }
  process.stdout.write(
    `  ${client.name} (n${client.node}) → http://${clusterIp}:8000/ → ${answer.ok ? `answered by ${[...seen].join(" and ")}` : `FAILED: ${answer.body}`}\n`,
  );
  const list = await lab.agentCli(["service", "list"]);
  process.stdout.write(`\n${list.stdout.replace(/^/gm, "  ")}\n`);
  return answer.ok;
}

const NGINX_MANIFEST = join(REPO_ROOT, "lab/examples/nginx.yaml");

/** `curl -s URL` inside a pod, printed as the chapter prints it; true when it answered. */
async function curlIn(pod: string, shown: string, url: string): Promise<boolean> {
  const result = await runStatus("ip", ["netns", "exec", pod, "curl", "-sS", "--max-time", "5", url]);
  process.stdout.write(
    `  $ curl ${shown}\n  ${(result.code === 0 ? result.stdout : `FAILED (curl exit ${result.code}): ${result.stderr}`).trim()}\n`,
  );
  return result.code === 0;
}

/**
 * The networking chapter's walkthrough: its manifest applied, then from a pod on a node without nginx: both pods by
 * IP, the cluster IP, the Service's short name and its full name; then every agent stopped and the name asked again
 * (the rules stay in the kernel, the DNS servers keep answering); the agents are started again after.
 */
async function walkthrough(lab: Lab): Promise<boolean> {
  process.stdout.write(
    "The chapter's walkthrough (lab/examples/nginx.yaml):\n  $ scripts/lab apply lab/examples/nginx.yaml\n",
  );
  const lines = await applyManifest(
    lab,
    parseLabManifest(await readFile(NGINX_MANIFEST, "utf8"), "lab/examples/nginx.yaml"),
  );
  for (const line of lines) process.stdout.write(`  ${line}\n`);
  const nginx = lab.current.pods.filter((p) => p.owner === "default/nginx-deployment");
  const nginxNodes = new Set(nginx.map((p) => p.node));
  const client =
    lab.current.pods.find((p) => p.owner === undefined && !nginxNodes.has(p.node)) ??
    lab.current.pods.find((p) => p.owner === undefined);
  if (client === undefined) return true;
  const list = await lab.agentCli(["service", "show", "nginx-service", "-o", "json"]);
  const clusterIp = /"clusterIP":\s*"([\d.]+)"/.exec(list.stdout)?.[1] ?? "";
  process.stdout.write(
    `  pods: ${nginx.map((p) => `${p.kube?.name ?? p.name} ${p.ip} (n${p.node})`).join(", ")}; nginx-service: ${clusterIp}:8000\n`,
  );
  process.stdout.write(`  from ${client.name} on n${client.node}:\n`);
  let ok = true;
  // The Service's endpoints reach the proxies within moments; the first request waits for them.
  for (
    let i = 0;
    i < 50 &&
    (
      await runStatus("ip", [
        "netns",
        "exec",
        client.name,
        "curl",
        "-s",
        "--max-time",
        "1",
        `http://${clusterIp}:8000/`,
      ])
    ).code !== 0;
    i++
  ) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (const pod of nginx) ok = (await curlIn(client.name, `${pod.ip}:80`, `http://${pod.ip}:80/`)) && ok;
  ok = (await curlIn(client.name, `${clusterIp}:8000`, `http://${clusterIp}:8000/`)) && ok;
  ok = (await curlIn(client.name, "nginx-service:8000", "http://nginx-service:8000/")) && ok;
  ok =
    (await curlIn(
      client.name,
      "nginx-service.default.svc.cluster.local:8000",
      "http://nginx-service.default.svc.cluster.local:8000/",
    )) && ok;
  process.stdout.write(
    "  every agent stopped (the proxy's rules stay in the kernel; the DNS servers keep answering):\n",
  );
  for (const { index } of lab.current.nodes) await lab.killAgent(index, "SIGTERM");
  ok = (await curlIn(client.name, "nginx-service:8000", "http://nginx-service:8000/")) && ok;
  for (const { index } of lab.current.nodes) await lab.startAgent(index);
  await Promise.all(lab.current.nodes.map((n) => lab.waitReady(n.index)));
  process.stdout.write("  agents started again\n\n");
  return ok;
}

async function printPingMatrix(lab: Lab): Promise<boolean> {
  // One matrix per family: the primary one (IPv4, or IPv6 on an IPv6-only lab), then IPv6 on a dual-stack lab.
  const families: ("primary" | 6)[] = lab.hasIpv4 && lab.hasIpv6 ? ["primary", 6] : ["primary"];
  let ok = true;
  for (const family of families) {
    const pods = podEndpoints(lab, family);
    const endpoints = pods.length > 0 ? pods : await lab.ensureGateways(family === 6 || !lab.hasIpv4 ? 6 : 4);
    const results = await pingMatrix(endpoints);
    const what = pods.length > 0 ? "Pod to pod" : "Node subnet to node subnet (gateway addresses)";
    const ipv = family === 6 || !lab.hasIpv4 ? "IPv6" : "IPv4";
    process.stdout.write(`${what}, ${ipv} ping:\n${formatMatrix(endpoints, results)}\n`);
    ok = ok && results.every((r) => r.ok);
  }
  return ok;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const dash = rest.indexOf("--");
  const { values, positionals } = parseArgs({
    args: dash < 0 ? rest : rest.slice(0, dash),
    options: {
      nodes: { type: "string", default: "3" },
      backend: { type: "string", default: "vxlan" },
      "direct-routing": { type: "boolean", default: false },
      "etcd-members": { type: "string", default: "1" },
      pods: { type: "string", default: "2" },
      dns: { type: "boolean", default: false },
      ipv6: { type: "boolean", default: false },
      "ipv6-only": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help || command === undefined || command === "help") {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const prefix = process.env.TRELLIS_LAB_PREFIX ?? "trl";
  const layout = new LabLayout(prefix, process.env.TRELLIS_LAB_DIR ?? `/run/trellis-lab/${prefix}`);
  const started = Date.now();
  const lab = new Lab(layout, (line) => {
    process.stdout.write(`[lab +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);
  });
  const needLab = async (): Promise<void> => {
    if ((await lab.load()) === undefined) fail("no lab is up; run `scripts/lab up`");
  };

  switch (command) {
    case "up": {
      const nodes = Number(values.nodes);
      const members = Number(values["etcd-members"]);
      const pods = Number(values.pods);
      if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES)
        fail(`--nodes ${values.nodes} must be an integer from 1 to ${MAX_NODES}`);
      if (values.backend !== "vxlan" && values.backend !== "host-gw")
        fail(`--backend ${values.backend} must be vxlan or host-gw`);
      if (members !== 1 && members !== 3) fail(`--etcd-members ${values["etcd-members"]} must be 1 or 3`);
      if (!Number.isInteger(pods) || pods < 0 || pods > 50)
        fail(`--pods ${values.pods} must be an integer from 0 to 50`);
      if (values.ipv6 && values["ipv6-only"]) fail("--ipv6 (dual-stack) and --ipv6-only exclude each other");
      const ipFamily = values["ipv6-only"] ? "ipv6" : values.ipv6 ? "dual" : "ipv4";
      try {
        await lab.up({
          nodes,
          backend: values.backend,
          directRouting: values["direct-routing"],
          etcdMembers: members,
          podsPerNode: pods,
          ipFamily,
          // Services and DNS are IPv4: an IPv6-only lab has no DNS servers (pods get no resolv.conf from them).
          dns: ipFamily !== "ipv6",
        });
        const families = { ipv4: "IPv4", dual: "dual-stack", ipv6: "IPv6 only" }[ipFamily];
        process.stdout.write(
          `\nThe lab is up: ${nodes} nodes, ${values.backend}${values["direct-routing"] ? " + DirectRouting" : ""}, ${families}, ${members} etcd member(s), ${pods} pods per node, in ${((Date.now() - started) / 1000).toFixed(1)} s.\n\n`,
        );
        process.stdout.write(`trellis-agent status (on ${layout.node(1).name}):\n${await lab.status(1)}\n`);
        showPods(lab);
        if (lab.current.pods.length > 0 && lab.hasIpv4) {
          process.stdout.write("HTTP between pods on different nodes, by pod IP:\n");
          if (!(await httpDemo(lab))) process.exitCode = 1;
          process.stdout.write("A Service (cluster IP) over the two HTTP pods, from a pod on another node:\n");
          if (!(await servicesDemo(lab))) process.exitCode = 1;
        }
        if (!(await printPingMatrix(lab))) process.exitCode = 1;
        if (lab.current.pods.length > 0 && lab.hasIpv4 && !(await walkthrough(lab))) process.exitCode = 1;
      } catch (error) {
        process.stderr.write(
          `lab: up failed: ${error instanceof Error ? error.message : String(error)}\nlab: removing the half-built lab\n`,
        );
        await lab.down();
        process.exit(1);
      }
      process.stdout.write(
        "Next: scripts/lab get pods | exec n1-p1 -- curl nginx-service:8000 | status | logs n1 | kill-agent n2 | add-node | down\n",
      );
      return;
    }
    case "status": {
      await needLab();
      const state = lab.current;
      process.stdout.write(
        `lab ${state.prefix}: backend ${state.backend}, etcd ${state.etcdEndpoints.join(",")}, since ${state.createdAt}\n`,
      );
      for (const node of state.nodes) {
        const n = layout.node(node.index);
        process.stdout.write(`  ${n.name}  namespace ${n.ns}  ${n.ip}  agent pid ${node.agentPid ?? "- (stopped)"}\n`);
      }
      process.stdout.write("\n");
      showPods(lab);
      process.stdout.write(await lab.status(state.nodes[0]?.index ?? 1));
      return;
    }
    case "ping":
      await needLab();
      if (!(await printPingMatrix(lab))) process.exitCode = 1;
      return;
    case "exec": {
      await needLab();
      const target = positionals[0] ?? "";
      const ns = /^n\d+$/.test(target)
        ? layout.node(nodeIndex(lab, target)).ns
        : lab.current.pods.find((p) => p.name === `${prefix}-${target}` || p.name === target)?.name;
      if (ns === undefined) fail(`${JSON.stringify(target)} is not a node (n1) or pod (n1-p1) of this lab`);
      const cmd = dash < 0 ? [] : rest.slice(dash + 1);
      if (cmd.length === 0) fail("give the command after --, e.g. scripts/lab exec n1-p1 -- ip addr");
      const result = spawnSync("ip", ["netns", "exec", ns, ...cmd], { stdio: "inherit" });
      process.exitCode = result.status ?? 1;
      return;
    }
    case "logs": {
      await needLab();
      const index = nodeIndex(lab, positionals[0]);
      process.stdout.write(await readFile(join(layout.node(index).dir, values.dns ? "dns.log" : "agent.log"), "utf8"));
      return;
    }
    case "apply": {
      await needLab();
      const file = positionals[0];
      if (file === undefined) fail("give the manifest: scripts/lab apply lab/examples/nginx.yaml");
      const manifest = parseLabManifest(await readFile(file, "utf8"), file);
      for (const line of await applyManifest(lab, manifest)) process.stdout.write(`${line}\n`);
      return;
    }
    case "get": {
      await needLab();
      if (positionals[0] === "pods" || positionals[0] === "pod") process.stdout.write(formatPods(lab));
      else if (positionals[0] === "services" || positionals[0] === "service" || positionals[0] === "svc") {
        const list = await lab.agentCli(["service", "list"]);
        if (list.code !== 0) fail(list.stderr.trim());
        process.stdout.write(list.stdout);
      } else fail(`get ${JSON.stringify(positionals[0] ?? "")}: say pods or services`);
      return;
    }
    case "stop-dns": {
      await needLab();
      const index = nodeIndex(lab, positionals[0]);
      process.stdout.write(`${(await stopDns(lab, index)) ? "stopped" : "no running"} DNS server on n${index}\n`);
      return;
    }
    case "start-dns": {
      await needLab();
      const index = nodeIndex(lab, positionals[0]);
      await startDns(lab, index);
      await waitDnsReady(lab, index);
      process.stdout.write(`DNS server on n${index} is serving\n`);
      return;
    }
    case "kill-agent": {
      await needLab();
      const index = nodeIndex(lab, positionals[0]);
      process.stdout.write(
        `${(await lab.killAgent(index)) ? "killed" : "no running"} agent on n${index} (its datapath stays; scripts/lab start-agent n${index} to restart)\n`,
      );
      return;
    }
    case "start-agent": {
      await needLab();
      const index = nodeIndex(lab, positionals[0]);
      await lab.startAgent(index);
      await lab.waitReady(index);
      process.stdout.write(`agent on n${index} is ready\n`);
      return;
    }
    case "add-node": {
      await needLab();
      const node = await lab.addNode();
      await lab.waitReady(node.index);
      await startDns(lab, node.index);
      await waitDnsReady(lab, node.index);
      const perNode = lab.current.pods.filter((p) => p.node === lab.current.nodes[0]?.index).length;
      if (perNode > 0) await addPods(lab, node.index, perNode);
      process.stdout.write(`added ${node.name} (${node.ip})\n`);
      showPods(lab);
      return;
    }
    case "down":
      await lab.down();
      process.stdout.write(`lab ${prefix} removed\n`);
      return;
    default:
      fail(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
  }
}

// `scripts/lab status | head` closes our stdout early: not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
});

await main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`lab: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
