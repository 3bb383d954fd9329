// What keeps start-up lean (docs/decisions/0005): the shipped code cache is accepted, and the commands that need no
// kernel never load the netlink package.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runStatus } from "../../lab/src/exec.js";
import { CNI_BIN, REPO_ROOT } from "../../lab/src/paths.js";

describe("cni plugin: start-up", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "trellis-cni-startup-"));
    await writeFile(
      join(dir, "subnet.env"),
      "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.5.1/24\nFLANNEL_MTU=1450\n",
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("bin/trellis runs the bundle with the build's V8 code cache, and V8 accepts it", async () => {
    const out = await runStatus(CNI_BIN, [], {
      env: { PATH: process.env.PATH ?? "", CNI_COMMAND: "VERSION", TRELLIS_CNI_REPORT_CODE_CACHE: "1" },
      input: "",
    });
    assert.equal(out.code, 0);
    assert.equal(out.stderr.trim(), "code cache: accepted");
  });

  it("VERSION, STATUS and early errors never load the netlink package", async () => {
    const plugin = resolve(REPO_ROOT, "dist/cni-plugin/src/plugin.js");
    const deps = resolve(REPO_ROOT, "dist/cni-plugin/src/real-deps.js");
    const config = JSON.stringify({
      cniVersion: "1.1.0",
      name: "n",
      type: "trellis",
      subnetFile: join(dir, "subnet.env"),
      dataDir: join(dir, "ipam"),
    });
    // The adapter loads netlink with require(), so anything loaded shows in require.cache.
    const script = `
      import { createRequire } from "node:module";
      const { runPlugin } = await import(${JSON.stringify(plugin)});
      const { realDeps } = await import(${JSON.stringify(deps)});
      const outcomes = [];
      for (const [env, stdin] of [[{ CNI_COMMAND: "VERSION" }, ""], [{ CNI_COMMAND: "STATUS" }, ${JSON.stringify(config)}], [{ CNI_COMMAND: "ADD" }, ${JSON.stringify(config)}], [{ CNI_COMMAND: "ADD", CNI_CONTAINERID: "c", CNI_IFNAME: "eth0", CNI_NETNS: "/run/netns/x" }, "{"]]) {
        outcomes.push((await runPlugin({ env, stdin, deps: realDeps })).exitCode);
      }
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((path) => path.includes("node_modules"));
      console.log(JSON.stringify({ outcomes, loaded }));`;
    const out = await runStatus(process.execPath, ["--input-type=module", "-e", script], {});
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout), { outcomes: [0, 0, 1, 1], loaded: [] });
  });
});
