// `npm run test:unit`: the unit tier (no root, no etcd, no namespaces) — and the proof that it needs none of them.
// Run by an unprivileged user, it runs mocha here. Run by root (CI, `npm run check`), it runs the tier as nobody
// (uid/gid 65534): in place when nobody can read this tree, else from a copy in a world-readable temp dir (a clone
// under /root is 0700). The copy hard-links node_modules when it can, so it costs about a second.
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../../..");
const NOBODY = 65534;
/** The unit tier: every *.test.js of the packages (and the lab) that is not an integration test. */
const MOCHA_ARGS = ["dist/{lib,agent,cni-plugin,lab}/test/**/*.test.js", "--ignore", "dist/**/*.integration.test.js"];
/** What a copy needs: the build, the dependencies, the configs the tests read (lint layering, mocha, deploy/). */
const SKIP_IN_COPY = new Set([".git", "node_modules", ".lab", "bench-results"]);

function mocha(cwd: string, asNobody: boolean): number {
  const command = [
    process.execPath,
    join(cwd, "node_modules/mocha/bin/mocha.js"),
    ...MOCHA_ARGS,
    ...process.argv.slice(2),
  ];
  const argv = asNobody
    ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--", ...command]
    : command;
  const [file = "", ...args] = argv;
  const env = asNobody ? { ...process.env, HOME: tmpdir(), USER: "nobody", LOGNAME: "nobody" } : process.env;
  const result = spawnSync(file, args, { cwd, stdio: "inherit", env });
  if (result.error !== undefined) throw result.error;
  return result.status ?? 1;
}

/** True when nobody can read the build and mocha where they are (every directory up the path traversable). */
function readableByNobody(dir: string): boolean {
  const probe = spawnSync("setpriv", [
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    "--clear-groups",
    "--",
    "test",
    "-r",
    join(dir, "node_modules/mocha/bin/mocha.js"),
    "-a",
    "-r",
    join(dir, "dist/lib/src/ipv4.js"),
  ]);
  return probe.status === 0;
}

/** node_modules by hard links (same file system: GNU cp -al), else by copying. */
function copyModules(from: string, to: string): void {
  if (spawnSync("cp", ["-al", from, to]).status === 0) return;
  rmSync(to, { recursive: true, force: true });
  cpSync(from, to, { recursive: true, verbatimSymlinks: true });
}

function copyTree(): string {
  const dir = mkdtempSync(join(tmpdir(), "trellis-unit-"));
  for (const entry of readdirSync(ROOT)) {
    if (SKIP_IN_COPY.has(entry)) continue;
    cpSync(join(ROOT, entry), join(dir, entry), { recursive: true, verbatimSymlinks: true });
  }
  // World-readable, like a checkout (not node_modules: hard links share their modes with the originals, as npm
  // made them, readable).
  spawnSync("chmod", ["-R", "a+rX", ...readdirSync(dir).map((entry) => join(dir, entry))]);
  chmodSync(dir, 0o755);
  copyModules(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return dir;
}

function main(): number {
  if (process.getuid?.() !== 0) return mocha(ROOT, false);
  if (readableByNobody(ROOT)) return mocha(ROOT, true);
  const copy = copyTree();
  try {
    return mocha(copy, true);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

process.exitCode = main();
