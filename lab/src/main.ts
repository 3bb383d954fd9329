// scripts/lab: the multi-node lab on one machine. `up` builds it and shows it working; `down` removes it.
import { parseArgs } from "node:util";
import { Lab } from "./lab.js";
import { LabLayout, MAX_NODES } from "./layout.js";
import { formatMatrix, pingMatrix } from "./ping.js";

const USAGE = `Usage: scripts/lab <command> [options]

Commands:
  up [--nodes N] [--backend vxlan|host-gw] [--direct-routing]
                 build the lab (removing a previous one first) and show it working
  status         the lab's nodes and every node's subnet lease
  ping           ping matrix between every pair of node subnets (each node's gateway address)
  down           remove everything the lab created (also after a crash)

Environment: TRELLIS_LAB_PREFIX (namespace prefix, default "trl"), TRELLIS_LAB_DIR (state, default /run/trellis-lab).`;

function fail(message: string): never {
  process.stderr.write(`lab: ${message}\n`);
  process.exit(2);
}

async function printPingMatrix(lab: Lab): Promise<boolean> {
  const endpoints = await lab.ensureGateways();
  const results = await pingMatrix(endpoints);
  process.stdout.write(`Node subnet to node subnet (ping between the gateway addresses on cni0):\n${formatMatrix(endpoints, results)}\n`);
  return results.every((r) => r.ok);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      nodes: { type: "string", default: "3" },
      backend: { type: "string", default: "vxlan" },
      "direct-routing": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help || command === undefined || command === "help") {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const prefix = process.env.TRELLIS_LAB_PREFIX ?? "trl";
  const layout = new LabLayout(prefix, process.env.TRELLIS_LAB_DIR ?? `/run/trellis-lab/${prefix}`);
  const started = Date.now();
  const lab = new Lab(layout, (line) => { process.stdout.write(`[lab +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`); });

  switch (command) {
    case "up": {
      const nodes = Number(values.nodes);
      if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) fail(`--nodes ${values.nodes} must be an integer from 1 to ${MAX_NODES}`);
      if (values.backend !== "vxlan" && values.backend !== "host-gw") fail(`--backend ${values.backend} must be vxlan or host-gw`);
      try {
        await lab.up({ nodes, backend: values.backend, directRouting: values["direct-routing"] });
      } catch (error) {
        process.stderr.write(`lab: up failed: ${error instanceof Error ? error.message : String(error)}\nlab: removing the half-built lab\n`);
        await lab.down();
        process.exit(1);
      }
      process.stdout.write(`\nThe lab is up (${nodes} nodes, ${values.backend}) in ${((Date.now() - started) / 1000).toFixed(1)} s.\n\n`);
      process.stdout.write(`trellis-agent status (from ${layout.node(1).name}):\n${await lab.status(1)}\n`);
      await printPingMatrix(lab);
      process.stdout.write("Next: scripts/lab status, scripts/lab ping, scripts/lab down\n");
      return;
    }
    case "status": {
      const state = await lab.load();
      if (state === undefined) fail("no lab is up; run `scripts/lab up`");
      process.stdout.write(`lab ${state.prefix}: backend ${state.backend}, etcd ${state.etcdEndpoints.join(",")}, since ${state.createdAt}\n`);
      for (const node of state.nodes) {
        const n = layout.node(node.index);
        process.stdout.write(`  ${n.name}  namespace ${n.ns}  ${n.ip}  agent pid ${node.agentPid ?? "-"}\n`);
      }
      process.stdout.write(`\n${await lab.status(state.nodes[0]?.index ?? 1)}`);
      return;
    }
    case "ping": {
      if ((await lab.load()) === undefined) fail("no lab is up; run `scripts/lab up`");
      if (!(await printPingMatrix(lab))) process.exitCode = 1;
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
