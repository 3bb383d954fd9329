// Build step (after tsc): bundles each program into one CommonJS file with a V8 code cache beside it, so a start
// resolves, reads and compiles one file instead of hundreds of modules (docs/decisions/0005 for the CNI plugin,
// 0010 for the agent). Native addons stay outside the bundles and are loaded from node_modules at run time.
// Run as `node dist/scripts/build/bundle.js` (npm run build does).
import { build, type Plugin } from "esbuild";
import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { LATEST_VERSION, SHIM_READY_TIMEOUT_MS } from "../../cni-plugin/src/index.js";
import { DEFAULT_CNI_SOCKET, MAX_CNI_STDIN_BYTES } from "#lib/names.js";

const localRequire = createRequire(import.meta.url);
const nodeGypBuild = localRequire("node-gyp-build") as { path(dir: string): string };
const DIST = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

interface Program {
  /** The compiled entry point, relative to dist/. */
  readonly entry: string;
  /** The bundle, relative to dist/. */
  readonly outfile: string;
  /** The launcher that loads it with the code cache (writes the cache when TRELLIS_WRITE_CODE_CACHE is set). */
  readonly launcher: string;
  /** node flags the program runs with: the cache is only accepted under the same V8 flags. */
  readonly nodeFlags: readonly string[];
  /** Arguments and environment of the run that writes the cache (a harmless command). */
  readonly warmUp: { readonly args: readonly string[]; readonly env: Readonly<Record<string, string>> };
}

const PROGRAMS: readonly Program[] = [
  {
    entry: "cni-plugin/src/main.js",
    outfile: "cni-plugin/trellis.cjs",
    launcher: "cni-plugin/src/launcher.cjs",
    nodeFlags: [],
    warmUp: { args: [], env: { CNI_COMMAND: "VERSION", TRELLIS_CNI_WRITE_CODE_CACHE: "1" } },
  },
  {
    entry: "agent/src/cli/main.js",
    outfile: "agent/trellis-agent.cjs",
    launcher: "agent/src/launcher.cjs",
    // Keep in step with agent/bin/agent's shebang (docs/decisions/0007).
    nodeFlags: ["--lite-mode", "--no-expose-wasm", "--wasm-lazy-compilation", "--max-semi-space-size=1"],
    warmUp: { args: ["version"], env: { TRELLIS_WRITE_CODE_CACHE: "1" } },
  },
];

/** Source rewrites that make CommonJS-through-createRequire and __dirname lookups work from one bundled file. */
function rewrites(bundleFile: string): Plugin {
  return {
    name: "trellis-rewrites",
    setup(b) {
      // lib's adapter loads `netlink` with a createRequire()d require (fast from ESM); in the bundle the plain
      // require lets esbuild include the package.
      b.onLoad({ filter: /lib\/src\/netlink\/package\.js$/ }, async (args) => {
        const text = await readFile(args.path, "utf8");
        const out = text
          .replace(/^const require = createRequire\(import\.meta\.url\);$/m, "")
          .replace(/^import \{ createRequire \} from "node:module";$/m, "");
        if (out === text) throw new Error(`${args.path}: the createRequire line to rewrite was not found`);
        return { contents: out, loader: "js" };
      });
      // netlink looks for its prebuilt addon at run time (node-gyp-build: package.json, directory scans, ~2 ms);
      // the build resolves it once, on the machine that installed node_modules, relative to the bundle.
      b.onLoad({ filter: /node_modules\/netlink\/dist\/raw\.js$/ }, async (args) => {
        const text = await readFile(args.path, "utf8");
        const from = "require('node-gyp-build')(__dirname + '/..')";
        if (!text.includes(from)) throw new Error(`${args.path}: the addon lookup to rewrite was not found`);
        const addon = nodeGypBuild.path(resolve(dirname(args.path), ".."));
        const to = `require(require('path').join(__dirname, ${JSON.stringify(relative(dirname(bundleFile), addon))}))`;
        return { contents: text.replace(from, to), loader: "js" };
      });
      // syscall-napi's addon is required by name, which makes Node read package.json files up the tree (~3 ms);
      // in the bundle it is a path relative to the bundle, resolved here once.
      b.onLoad({ filter: /lib\/src\/syscall\.js$/ }, async (args) => {
        const text = await readFile(args.path, "utf8");
        const specifier = "syscall-napi/build/Release/syscall.node";
        if (!text.includes(`"${specifier}"`))
          throw new Error(`${args.path}: the addon require to rewrite was not found`);
        const addon = relative(dirname(bundleFile), localRequire.resolve(specifier));
        return { contents: text.replaceAll(`"${specifier}"`, JSON.stringify(`./${addon}`)), loader: "js" };
      });
      // etcd3 parses its .proto files from `${__dirname}/../proto` at load time: point that at the package itself.
      b.onLoad({ filter: /node_modules\/etcd3\/lib\/connection-pool\.js$/ }, async (args) => {
        const text = await readFile(args.path, "utf8");
        const from = "`${__dirname}/../proto/rpc.proto`";
        if (!text.includes(from)) throw new Error(`${args.path}: the proto path to rewrite was not found`);
        const proto = relative(dirname(bundleFile), resolve(dirname(args.path), "../proto/rpc.proto"));
        return {
          contents: text.replace(from, `require('path').join(__dirname, ${JSON.stringify(proto)})`),
          loader: "js",
        };
      });
    },
  };
}

async function bundle(program: Program): Promise<void> {
  const outfile = join(DIST, program.outfile);
  await build({
    entryPoints: [join(DIST, program.entry)],
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    // Native addons and what finds them at run time (usocket's `bindings` walks up from its own file).
    external: ["syscall-napi", "usocket"],
    define: { "import.meta.url": "__bundle_url" },
    banner: { js: '"use strict";\nvar __bundle_url = require("node:url").pathToFileURL(__filename).href;' },
    plugins: [rewrites(outfile)],
    logLevel: "warning",
    sourcemap: false,
    // Smaller source to read and hash on every start; errors carry messages and codes, never names or stacks.
    minify: true,
    charset: "ascii",
    legalComments: "none",
  });
}

/** Runs the bundle once through its launcher in cache-writing mode, under the program's own node flags. */
function writeCodeCache(program: Program): void {
  const result = spawnSync(
    process.execPath,
    [...program.nodeFlags, join(DIST, program.launcher), ...program.warmUp.args],
    {
      env: { PATH: process.env.PATH, ...program.warmUp.env },
      input: "",
      encoding: "utf8",
    },
  );
  if (result.status !== 0)
    throw new Error(`writing the code cache of ${program.outfile} failed: ${result.stderr || result.stdout}`);
}

/**
 * The CNI plugin's native shim (docs/decisions/0011): plain C, built with the compiler npm ci already needs for
 * syscall-napi's addon (scripts/setup installs it). Its limits and defaults are the plugin's own, defined once in
 * TypeScript and handed over here.
 */
function buildShim(): void {
  const source = resolve(DIST, "../cni-plugin/shim/trellis-shim.c");
  const output = join(DIST, "cni-plugin/trellis-shim");
  const defines = [
    `-DTRELLIS_DEFAULT_SOCKET=${JSON.stringify(DEFAULT_CNI_SOCKET)}`,
    `-DTRELLIS_MAX_STDIN_BYTES=${MAX_CNI_STDIN_BYTES}`,
    `-DTRELLIS_LATEST_CNI_VERSION=${JSON.stringify(LATEST_VERSION)}`,
    `-DTRELLIS_READY_TIMEOUT_MS=${SHIM_READY_TIMEOUT_MS}`,
  ];
  const result = spawnSync(
    process.env.CC ?? "cc",
    ["-O2", "-Wall", "-Wextra", "-Werror", ...defines, "-o", output, source],
    { encoding: "utf8" },
  );
  if (result.error !== undefined)
    throw new Error(`building the CNI shim needs a C compiler (cc): ${result.error.message}`);
  if (result.status !== 0) throw new Error(`building the CNI shim failed:\n${result.stderr}`);
}

for (const program of PROGRAMS) {
  await bundle(program);
  writeCodeCache(program);
}
buildShim();
