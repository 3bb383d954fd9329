// The agent's CNI service on its own, for the CNI benchmark: the module `trellis-agent run` hosts
// (cni-plugin/src/service/server.ts) with the same real adapters, without etcd and the dataplane, which sit idle
// on a node in steady state anyway. Run inside the node namespace; prints "ready" once it listens, stops on SIGTERM.
//   node dist/scripts/benchmarks/cni-service.js <socket path>
import { readlinkSync } from "node:fs";
import { realDeps, startCniService } from "../../cni-plugin/src/index.js";

const socketPath = process.argv[2];
if (socketPath === undefined) throw new Error("usage: cni-service.js <socket path>");
const service = await startCniService({ socketPath, deps: realDeps, netns: readlinkSync("/proc/self/ns/net") });
process.stdout.write("ready\n");
process.once("SIGTERM", () => {
  void service.close();
});
