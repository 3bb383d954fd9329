// The layering docs/architecture.md states, as lint rules (eslint.config.js applies them; agent/test/lint-layering.test.ts
// shows that a wrong import fails). Three kinds of module:
// - ENTRY POINTS read argv and the environment, log, exit, and compose the real adapters.
// - ADAPTERS do I/O for a port: a socket, a file, a tool, a syscall. Their names say so (etcd-*, nft-*, *-kernel…).
// - THE CORE is everything else: pure logic over ports. It imports no I/O module and no adapter (a type-only import
//   of a port declared beside its adapter is fine), and never talks to the console or the process.
// Across packages: lib imports neither program; the CNI plugin never imports the agent; the agent uses the plugin
// only through cni-plugin/src/index.ts (and the CommonJS thread-pool sizing its launcher loads first).

export const ENTRY_POINTS = [
  "agent/src/cli/**",
  "agent/src/launcher.cts",
  "cni-plugin/src/main.ts",
  "cni-plugin/src/index.ts", // the plugin's public entry for its hosts: re-exports the service and real adapters
  "cni-plugin/src/launcher.cts",
  "cni-plugin/src/service/thread-pool.cts",
  // Composes the Services adapters (nft table, conntrack) itself; an entry point until they are injected from
  // cli/daemon-main.ts as the dataplane's are.
  "agent/src/daemon/cluster-services.ts",
];

/** Tests, the lab, the scripts: entry points too, outside the layering. */
export const OUTSIDE = ["scripts/**", "lab/**", "test/**", "**/test/**", "eslint/**", "eslint.config.js"];

export const ADAPTERS = [
  "lib/src/netlink/*.ts", // the netlink adapter and its internals (not kernel.ts, the port, nor errors.ts: see below)
  "lib/src/syscall.ts",
  "lib/src/bundle-loader.cts",
  "lib/src/files.ts", // the FileStore port and its adapter, nodeFileStore
  "lib/src/command.ts", // the CommandRunner port and its adapter, processRunner
  "agent/src/etcd/**",
  "agent/src/**/etcd-*.ts",
  "agent/src/**/*-kernel.ts",
  "agent/src/node/kernel-host-network.ts",
  "agent/src/**/nft-*.ts",
  "agent/src/**/iptables-*.ts",
  "agent/src/dataplane/choose-firewall.ts",
  "agent/src/observability/http-server.ts",
  "agent/src/services/pod-record-dir.ts",
  "agent/src/dns/*-listener.ts", // UDP and TCP sockets
  "agent/src/dns/upstream.ts", // queries to the upstream resolvers
  "agent/src/dns/server.ts", // the DNS server's shell: listeners, upstreams, real clock and timers
  "cni-plugin/src/real-deps.ts",
  "cni-plugin/src/ipam/file-store.ts",
  "cni-plugin/src/ipam/flock.ts",
  "cni-plugin/src/pod-records.ts",
  "cni-plugin/src/service/server.ts",
];
/** In lib/src/netlink, the port and the error taxonomy are core: everything may use them. */
const CORE_IN_ADAPTER_DIRS = ["lib/src/netlink/kernel.ts", "lib/src/netlink/errors.ts"];

/** Modules that do I/O or own the process: adapters and entry points only. */
const IO_MODULES = [
  "node:fs",
  "node:fs/promises",
  "node:child_process",
  "node:net",
  "node:http",
  "node:https",
  "node:dgram",
  "node:dns",
  "etcd3",
  "netlink",
  "usocket",
  "syscall-napi",
  "winston",
  "commander",
];

/** An import specifier naming an adapter module (specifiers are relative paths, so they are matched by regex). */
const ADAPTER_MODULE =
  "(^|/)(netlink/(?!kernel\\.js$|errors\\.js$)[^/]+|syscall|bundle-loader|etcd/[^/]+|etcd-[^/]+|[^/]+-kernel|kernel-host-network|nft-[^/]+|iptables-[^/]+|choose-firewall|http-server|pod-record-dir|real-deps|file-store|flock|pod-records|service/server|[^/]+-listener|upstream|dns/server)\\.c?js$";

const coreImports = [
  {
    regex: ADAPTER_MODULE,
    allowTypeImports: true,
    message: "The core never imports an adapter: take the port as a parameter (eslint/layering.js).",
  },
  {
    regex: "(^|/)(files|command|clock)\\.js$",
    importNames: ["nodeFileStore", "writeFileAtomic", "readTextFile", "processRunner", "systemClock"],
    message: "The core never uses a real adapter: take the port as a parameter (eslint/layering.js).",
  },
];
/** What an I/O module also offers that does no I/O: node:net's address checks. */
const PURE_NAMES = { "node:net": ["isIP", "isIPv4", "isIPv6"] };
const ioPaths = IO_MODULES.map((name) => ({
  name,
  allowTypeImports: true,
  ...(name in PURE_NAMES ? { allowImportNames: PURE_NAMES[name] } : {}),
  message: "I/O belongs in an adapter behind a port (eslint/layering.js).",
}));
const agentImports = [
  {
    regex: "(^|/)cni-plugin/src/(?!index\\.js$|service/thread-pool\\.cjs$)",
    message: "The agent uses the CNI plugin through cni-plugin/src/index.ts only.",
  },
];
const pluginImports = [{ regex: "(^|/)agent/", message: "The CNI plugin never imports the agent." }];
const libImports = [
  { regex: "(^|/)(agent|cni-plugin)/", message: "lib/ is shared by both programs and imports neither." },
];

const restrict = (patterns, paths = []) => ["error", { paths, patterns }];

/** The layering rules, as flat-config objects; the files they apply to are relative to the repository root. */
export const layering = [
  // Only entry points talk to the console, read argv or the environment, or exit.
  {
    files: ["agent/src/**", "cni-plugin/src/**", "lib/src/**"],
    ignores: ENTRY_POINTS,
    rules: {
      "no-console": "error",
      "no-restricted-properties": [
        "error",
        ...["exit", "argv", "env", "stdout", "stderr", "stdin"].map((property) => ({
          object: "process",
          property,
          message: "Only entry points exit, read argv or the environment, or write to the console.",
        })),
      ],
    },
  },
  {
    files: ["agent/src/**"],
    ignores: [...ENTRY_POINTS, ...ADAPTERS],
    rules: { "@typescript-eslint/no-restricted-imports": restrict([...coreImports, ...agentImports], ioPaths) },
  },
  {
    files: [...ENTRY_POINTS.filter((p) => p.startsWith("agent/")), ...ADAPTERS.filter((p) => p.startsWith("agent/"))],
    rules: { "@typescript-eslint/no-restricted-imports": restrict(agentImports) },
  },
  {
    files: ["cni-plugin/src/**"],
    ignores: [...ENTRY_POINTS, ...ADAPTERS],
    rules: { "@typescript-eslint/no-restricted-imports": restrict([...coreImports, ...pluginImports], ioPaths) },
  },
  {
    files: [
      ...ENTRY_POINTS.filter((p) => p.startsWith("cni-plugin/")),
      ...ADAPTERS.filter((p) => p.startsWith("cni-plugin/")),
    ],
    rules: { "@typescript-eslint/no-restricted-imports": restrict(pluginImports) },
  },
  {
    files: ["lib/src/**"],
    ignores: ADAPTERS,
    rules: { "@typescript-eslint/no-restricted-imports": restrict([...coreImports, ...libImports], ioPaths) },
  },
  {
    files: CORE_IN_ADAPTER_DIRS,
    rules: { "@typescript-eslint/no-restricted-imports": restrict([...coreImports, ...libImports], ioPaths) },
  },
  {
    files: ADAPTERS.filter((p) => p.startsWith("lib/")),
    ignores: CORE_IN_ADAPTER_DIRS,
    rules: { "@typescript-eslint/no-restricted-imports": restrict(libImports) },
  },
];
