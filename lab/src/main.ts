// scripts/lab: the multi-node lab on one machine. `up` builds it and shows it working; `down` removes it.
import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Lab } from "./lab.js";
import { addPods, fetchFromPod, podEndpoints, startPodServer } from "./lab-pods.js";
import { LabLayout, MAX_NODES } from "./layout.js";
import { formatMatrix, pingMatrix } from "./ping.js";

const USAGE = `Usage: scripts/lab <command> [options]

Commands:
  up [--nodes N] [--backend vxlan|host-gw] [--direct-routing] [--etcd-members 1|3] [--pods N]
                     build the lab (removing a previous one first) and show it working:
                     agent status, pods and their IPs, HTTP from a pod on another node, ping matrix
  status             the lab's nodes and pods, and every node's subnet lease
  ping               ping matrix between every pair of pods (node subnets when there are no pods)
  exec <node|pod> -- CMD...
                     run a command in a node (n1) or pod (n1-p1) namespace
  logs <node>        the agent log of a node (n1)
  kill-agent <node>  SIGKILL the agent of a node (the datapath stays)
  start-agent <node> start the agent of a node again
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
      `  ${pod.name.padEnd(16)} node n${pod.node}  ${pod.ip}${pod.httpPid === undefined ? "" : "  http :80"}\n`,
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

async function printPingMatrix(lab: Lab): Promise<boolean> {
  const pods = podEndpoints(lab);
  const endpoints = pods.length > 0 ? pods : await lab.ensureGateways();
  const results = await pingMatrix(endpoints);
  process.stdout.write(
    `${pods.length > 0 ? "Pod to pod" : "Node subnet to node subnet (gateway addresses)"}, ping:\n${formatMatrix(endpoints, results)}\n`,
  );
  return results.every((r) => r.ok);
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
      try {
        await lab.up({
          nodes,
          backend: values.backend,
          directRouting: values["direct-routing"],
          etcdMembers: members,
          podsPerNode: pods,
        });
        process.stdout.write(
          `\nThe lab is up: ${nodes} nodes, ${values.backend}${values["direct-routing"] ? " + DirectRouting" : ""}, ${members} etcd member(s), ${pods} pods per node, in ${((Date.now() - started) / 1000).toFixed(1)} s.\n\n`,
        );
        process.stdout.write(`trellis-agent status (on ${layout.node(1).name}):\n${await lab.status(1)}\n`);
        showPods(lab);
        if (lab.current.pods.length > 0) {
          process.stdout.write("HTTP between pods on different nodes, by pod IP:\n");
          if (!(await httpDemo(lab))) process.exitCode = 1;
        }
        if (!(await printPingMatrix(lab))) process.exitCode = 1;
      } catch (error) {
        process.stderr.write(
          `lab: up failed: ${error instanceof Error ? error.message : String(error)}\nlab: removing the half-built lab\n`,
        );
        await lab.down();
        process.exit(1);
      }
      process.stdout.write(
        "Next: scripts/lab status | ping | exec n1-p1 -- ip addr | logs n1 | kill-agent n2 | add-node | down\n",
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
      process.stdout.write(await readFile(join(layout.node(index).dir, "agent.log"), "utf8"));
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
