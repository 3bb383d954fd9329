// Build step (after tsc): bundles the compiled plugin into one CommonJS file, dist/cni-plugin/trellis.cjs, so a
// pod operation resolves and reads one file instead of ~40 ES modules plus the netlink package
// (docs/decisions/0005). Native addons stay outside the bundle and are loaded from node_modules at run time.
// Run as `node dist/cni-plugin/src/build/bundle.js`.
import { build, type Plugin } from "esbuild";
import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const localRequire = createRequire(import.meta.url);
const nodeGypBuild = localRequire("node-gyp-build") as { path(dir: string): string };
const DIST = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const BUNDLE = join(DIST, "cni-plugin/trellis.cjs");

/** Source rewrites that make CommonJS-through-createRequire and __dirname lookups work from one bundled file. */
const rewrites: Plugin = {
  name: "trellis-cni-rewrites",
  setup(b) {
    // lib's adapter loads `netlink` with a createRequire()d require (fast from ESM); in the bundle the plain
    // require lets esbuild include the package.
    b.onLoad({ filter: /lib\/src\/netlink\/package\.js$/ }, async (args) => {
      const text = await readFile(args.path, "utf8");
      const out = text.replace(/^const require = createRequire\(import\.meta\.url\);$/m, "").replace(/^import \{ createRequire \} from "node:module";$/m, "");
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
      const to = `require(require('path').join(__dirname, ${JSON.stringify(relative(dirname(BUNDLE), addon))}))`;
      return { contents: text.replace(from, to), loader: "js" };
    });
    // syscall-napi's addon is required by name, which makes Node read package.json files up the tree (~3 ms);
    // in the bundle it is a path relative to the bundle, resolved here once.
    b.onLoad({ filter: /(lib\/src\/netlink\/netns|cni-plugin\/src\/ipam\/flock)\.js$/ }, async (args) => {
      const text = await readFile(args.path, "utf8");
      const specifier = "syscall-napi/build/Release/syscall.node";
      if (!text.includes(`"${specifier}"`)) throw new Error(`${args.path}: the addon require to rewrite was not found`);
      const addon = relative(dirname(BUNDLE), localRequire.resolve(specifier));
      return { contents: text.replaceAll(`"${specifier}"`, JSON.stringify(`./${addon}`)), loader: "js" };
    });
  },
};

export async function bundle(): Promise<void> {
  await build({
    entryPoints: [join(DIST, "cni-plugin/src/main.js")],
    outfile: BUNDLE,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    external: ["syscall-napi"],
    define: { "import.meta.url": "__bundle_url" },
    banner: { js: '"use strict";\nvar __bundle_url = require("node:url").pathToFileURL(__filename).href;' },
    plugins: [rewrites],
    logLevel: "warning",
    sourcemap: false,
    // Smaller source to read and hash on every start; errors carry messages and codes, never names or stacks.
    minify: true,
    charset: "ascii",
    legalComments: "none",
  });
}

/** Runs the bundle once through the launcher in cache-writing mode (see launcher.cts and main.ts warmUp). */
export function writeCodeCache(): void {
  const launcher = join(DIST, "cni-plugin/src/launcher.cjs");
  const result = spawnSync(process.execPath, [launcher], {
    env: { PATH: process.env.PATH, CNI_COMMAND: "VERSION", TRELLIS_CNI_WRITE_CODE_CACHE: "1" },
    input: "",
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`writing the code cache failed: ${result.stderr || result.stdout}`);
}

await bundle();
writeCodeCache();
