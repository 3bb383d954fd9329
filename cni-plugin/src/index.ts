// The CNI plugin's public entry for the programs that host or build it (the agent, the build, the benchmarks): the
// CNI service and the plugin's real adapters it runs with. Everything else under cni-plugin/src is the plugin's
// own; a lint rule keeps the agent to this file (and to service/thread-pool.cts, which its CommonJS launcher loads
// before anything else).
export { realDeps } from "./real-deps.js";
export { startCniService, type CniService, type CniServiceEvent } from "./service/server.js";
export { SHIM_READY_TIMEOUT_MS } from "./service/protocol.js";
export { LATEST_VERSION } from "./versions.js";
