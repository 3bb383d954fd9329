// `status`: every node's subnet, from etcd, and — from the local agent's /status — this node's readiness and whether
// each peer's route is programmed here.
import { get } from "node:http";
import { Option, type Command } from "commander";
import {
  collectLeaseRows,
  formatLeaseJson,
  formatLeaseTable,
  withLocalView,
  type LocalAgent,
  type LocalPeerView,
} from "../../status/subnet-listing.js";
import { withRegistry } from "../context.js";
import { detectPublicIp, subnetFromFile } from "../identity.js";
import {
  addEtcdOptions,
  addHealthzOptions,
  addNodeOptions,
  type EtcdFlags,
  type HealthzFlags,
  type NodeFlags,
} from "../options.js";

interface StatusFlags extends EtcdFlags, NodeFlags, HealthzFlags {
  output: "table" | "json";
}

/** The local agent answers within this, or is reported unreachable. */
const LOCAL_AGENT_TIMEOUT_MS = 1000;

interface StatusBody {
  readiness?: { ready?: unknown; reasons?: unknown; warnings?: unknown };
  peers?: unknown;
  services?: { services?: unknown; endpoints?: unknown } | null;
}

/**
 * GET and parse JSON with node:http. Not fetch(): its HTTP parser is WebAssembly, which the agent's V8 lite mode
 * leaves out (docs/decisions/0007).
 */
function getJson(url: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = get(url, { timeout: timeoutMs }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        text += chunk;
      });
      response.on("end", () => {
        try {
          resolve(JSON.parse(text));
        } catch {
          reject(new Error(`answered HTTP ${response.statusCode ?? "?"} without JSON`));
        }
      });
    });
    request.on("timeout", () => {
      request.destroy(new Error(`no answer within ${timeoutMs} ms`));
    });
    request.on("error", (error: NodeJS.ErrnoException) => {
      reject(new Error(error.code ?? error.message));
    });
  });
}

/** Asks the local agent's /status; never throws (an unreachable agent is part of the answer). */
async function askLocalAgent(
  flags: HealthzFlags,
): Promise<{ local: LocalAgent; peers: LocalPeerView[] | undefined } | undefined> {
  if (flags.healthzPort === "0") return undefined;
  const host = flags.healthzIp === "0.0.0.0" ? "127.0.0.1" : flags.healthzIp;
  const url = `http://${host}:${flags.healthzPort}`;
  try {
    const body = (await getJson(`${url}/status`, LOCAL_AGENT_TIMEOUT_MS)) as StatusBody;
    const reasons = Array.isArray(body.readiness?.reasons) ? body.readiness.reasons.map(String) : [];
    const warnings = Array.isArray(body.readiness?.warnings) ? body.readiness.warnings.map(String) : [];
    const peers = Array.isArray(body.peers) ? (body.peers as LocalPeerView[]) : undefined;
    const services =
      typeof body.services?.services === "number" && typeof body.services.endpoints === "number"
        ? { services: body.services.services, endpoints: body.services.endpoints }
        : null;
    return {
      local: { url, reachable: true, ready: body.readiness?.ready === true, reasons, warnings, services },
      peers,
    };
  } catch (error) {
    return {
      local: { url, reachable: false, error: error instanceof Error ? error.message : String(error) },
      peers: undefined,
    };
  }
}

export function registerStatus(program: Command): void {
  addHealthzOptions(
    addNodeOptions(
      addEtcdOptions(
        program
          .command("status")
          .description("list every node's subnet lease (* marks this node) and this node's view of them"),
      ),
    ),
  )
    .addOption(new Option("-o, --output <format>", "output format").choices(["table", "json"]).default("table"))
    .addHelpText(
      "after",
      "\nExamples:\n  trellis-agent status\n  trellis-agent status -o json | jq '.leases[] | select(.self)'\n  TRELLIS_ETCD_ENDPOINTS=https://10.0.0.1:2379 trellis-agent status --etcd-cafile ca.pem",
    )
    .action(async (flags: StatusFlags) => {
      // Identity is best effort: status also runs on machines that are not nodes.
      const publicIp = await detectPublicIp(flags).catch(() => undefined);
      const subnet = await subnetFromFile(flags.subnetFile);
      const [rows, agent] = await Promise.all([
        withRegistry(flags, ({ registry }) => collectLeaseRows(registry, { publicIp, subnet }, Date.now())),
        askLocalAgent(flags),
      ]);
      const merged = withLocalView(rows, agent?.peers);
      process.stdout.write(
        flags.output === "json" ? formatLeaseJson(merged, agent?.local) : formatLeaseTable(merged, agent?.local),
      );
    });
}
