// scripts/install and scripts/uninstall into a temp root: the installed launcher runs this checkout's build.
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { run, runStatus } from "../../lab/src/exec.js";
import { REPO_ROOT } from "../../lab/src/paths.js";

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length))
    .sort();
}

describe("cni plugin: install / uninstall", function () {
  this.timeout(30_000);
  let root = "";

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "trellis-install-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("installs /opt/cni/bin/trellis and the conflist, idempotently; the installed plugin answers VERSION; uninstall removes both", async () => {
    await run(resolve(REPO_ROOT, "scripts/install"), ["--root", root]);
    const first = await readFile(join(root, "opt/cni/bin/trellis"), "utf8");
    await run(resolve(REPO_ROOT, "scripts/install"), ["--root", root]);
    assert.equal(
      await readFile(join(root, "opt/cni/bin/trellis"), "utf8"),
      first,
      "a second install writes the same launcher",
    );
    // The CNI section's files (the agent section adds its own: test/install.integration.test.ts).
    assert.deepEqual(
      (await filesUnder(root)).filter((f) => f.includes("/cni/")),
      ["/etc/cni/net.d/10-trellis.conflist", "/opt/cni/bin/trellis"],
    );
    assert.equal((await stat(join(root, "opt/cni/bin/trellis"))).mode & 0o777, 0o755);
    const conflist = JSON.parse(await readFile(join(root, "etc/cni/net.d/10-trellis.conflist"), "utf8")) as {
      plugins: { type: string }[];
    };
    assert.deepEqual(
      conflist.plugins.map((p) => p.type),
      ["trellis", "portmap"],
    );

    // As a runtime would start it: an environment of its own, from another directory.
    const out = await runStatus(join(root, "opt/cni/bin/trellis"), [], {
      env: { CNI_COMMAND: "VERSION", PATH: "/usr/bin:/bin" },
      input: "",
    });
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout), {
      cniVersion: "1.1.0",
      supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    });

    await run(resolve(REPO_ROOT, "scripts/uninstall"), ["--root", root, "--purge"]);
    assert.deepEqual(await filesUnder(root), []);
    await run(resolve(REPO_ROOT, "scripts/uninstall"), ["--root", root]); // idempotent
  });

  it("rejects unknown arguments", async () => {
    const out = await runStatus(resolve(REPO_ROOT, "scripts/install"), ["--bogus"]);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /usage/);
  });
});
