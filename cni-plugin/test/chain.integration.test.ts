// The plugin first in the shipped conflist with the reference portmap after it, driven through the libcni-like
// harness (lab/src/cni-runtime.ts) as containerd would drive it: a hostPort reaches the pod from outside the node.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { CniPluginError, CniRuntime, type ConfList } from "../../lab/src/cni-runtime.js";
import { run, start } from "../../lab/src/exec.js";
import { inNetns, ipIn, uniqueName } from "../../lab/src/netns.js";
import { createPod, deletePod, listPods, nodeConflist, readConflist, type PodNode } from "../../lab/src/pods.js";
import { REPO_ROOT } from "../../lab/src/paths.js";
import { usePluginFixture } from "./support/plugin-fixture.js";

const HOST_PORT = 18080;
const NODE_IP = "10.77.0.1";

describe("cni plugin: chained with portmap through a libcni-like runtime", function () {
  this.timeout(60_000);
  const f = usePluginFixture();
  let client = "";
  let cacheDir = "";
  let list: ConfList;
  let runtime: CniRuntime;

  before(async () => {
    client = await f.namespaces.add();
    await f.namespaces.link(
      { ns: f.nodeNs, ifname: "ext0", cidr: `${NODE_IP}/24` },
      { ns: client, ifname: "ext0", cidr: "10.77.0.2/24" },
    );
    cacheDir = await mkdtemp(join(tmpdir(), "trellis-cni-cache-"));
    list = nodeConflist(await readConflist(resolve(REPO_ROOT, "deploy/cni/10-trellis.conflist")), {
      subnetFile: f.subnetFile,
      dataDir: f.dataDir,
    });
    runtime = new CniRuntime({
      binDirs: [resolve(REPO_ROOT, "cni-plugin/bin"), "/usr/lib/cni"],
      cacheDir,
      nodeNetns: f.nodeNs,
    });
  });

  after(async () => {
    await rm(cacheDir, { recursive: true, force: true });
  });

  it("ADD → portmap gets our result as prevResult and passes it on; a hostPort reaches the pod; CHECK; DEL cleans both", async () => {
    const pod = await f.pod();
    const rt = {
      containerId: pod,
      netns: `/run/netns/${pod}`,
      ifname: "eth0",
      capabilityArgs: { portMappings: [{ hostPort: HOST_PORT, containerPort: 8080, protocol: "tcp" }] },
    };
    const server = start("pod-server", "ip", [
      "netns",
      "exec",
      pod,
      process.execPath,
      "-e",
      "require('net').createServer((s) => s.end('hello from the pod')).listen(8080, () => console.log('ready'))",
    ]);
    try {
      const result = await runtime.add(list, rt);
      assert.equal(result.cniVersion, "1.0.0");
      assert.match(String((result.ips as { address: string }[])[0]?.address), /^172\.30\.5\.\d+\/24$/);
      assert.deepEqual(
        (result.interfaces as { name: string }[]).map((i) => i.name).filter((n) => n === "cni0" || n === "eth0"),
        ["cni0", "eth0"],
      );
      const cached = JSON.parse(await readFile(join(cacheDir, "results", `${list.name}-${pod}-eth0`), "utf8")) as {
        result: unknown;
      };
      assert.deepEqual(cached.result, result, "the runtime cached the chain's final result");
      const nat = await inNetns(f.nodeNs, "iptables", ["-t", "nat", "-S"]);
      assert.match(nat.stdout, new RegExp(`--dport ${HOST_PORT}`), "portmap installed its DNAT");

      while (!server.recentOutput.includes("ready")) await new Promise((r) => setTimeout(r, 20));
      const script = `const s = require('net').connect(${HOST_PORT}, '${NODE_IP}'); let d = ''; s.on('data', (c) => d += c); s.on('end', () => { console.log(d); }); s.on('error', (e) => { console.error(e.message); process.exit(1); });`;
      const { stdout } = await inNetns(client, process.execPath, ["-e", script]);
      assert.equal(stdout.trim(), "hello from the pod");

      // Debian's portmap 1.1.1 fails its own CHECK ("could not check ipv6 dnat") on IPv4-only pods, so CHECK
      // goes through the chain up to our plugin; the full chain's DEL below still gets the cached prevResult.
      await runtime.check({ ...list, plugins: list.plugins.slice(0, 1) }, rt);
      await runtime.del(list, rt);
      assert.deepEqual(await f.reservations(), []);
      assert.deepEqual(await f.hostVeths(), []);
      assert.equal(await runtime.cachedResult(list, rt), undefined, "the cache entry is gone");
      const after = await inNetns(f.nodeNs, "iptables", ["-t", "nat", "-S"]);
      assert.doesNotMatch(after.stdout, new RegExp(`--dport ${HOST_PORT}`), "portmap removed its DNAT");
      await runtime.del(list, rt); // a second DEL (no cache, no prevResult) succeeds too
    } finally {
      await server.stop(1000, "SIGKILL");
      await runtime.del(list, rt).catch(() => undefined);
    }
  });

  it("an ADD that fails in a later plugin, after ours succeeded, is followed by DEL through the chain and leaves nothing", async () => {
    // A stand-in third plugin that refuses every ADD and accepts DEL, as a broken chained plugin would.
    const binDir = join(cacheDir, "bin");
    await mkdir(binDir, { recursive: true });
    const failing =
      '#!/bin/sh\ncat >/dev/null\nif [ "$CNI_COMMAND" = ADD ]; then echo \'{"cniVersion":"1.0.0","code":999,"msg":"refused"}\'; exit 1; fi\n';
    await writeFile(join(binDir, "refuse-add"), failing, { mode: 0o755 });
    const failingRuntime = new CniRuntime({ ...runtime.options, binDirs: [...runtime.options.binDirs, binDir] });
    const failingList: ConfList = { ...list, plugins: [...list.plugins, { type: "refuse-add" }] };
    const pod = await f.pod();
    const rt = { containerId: pod, netns: `/run/netns/${pod}`, ifname: "eth0" };
    await assert.rejects(
      failingRuntime.add(failingList, rt),
      (error: unknown) => error instanceof CniPluginError && error.plugin === "refuse-add" && error.msg === "refused",
    );
    assert.deepEqual(await f.reservations(), [], "our plugin's DEL ran");
    assert.deepEqual(await f.hostVeths(), []);
    assert.equal(await failingRuntime.cachedResult(failingList, rt), undefined);
    const missing = { containerId: "failing", netns: "/run/netns/trellis-missing-ns", ifname: "eth0" };
    await assert.rejects(
      runtime.add(list, missing),
      (error: unknown) => error instanceof CniPluginError && error.plugin === "trellis" && error.code === 3,
    );
    assert.deepEqual(await f.reservations(), []);
  });

  it("the shipped conflist declares the ips and mac capabilities: a runtime's static IP and MAC reach our plugin", async () => {
    const pod = await f.pod();
    const rt = {
      containerId: pod,
      netns: `/run/netns/${pod}`,
      ifname: "eth0",
      capabilityArgs: { ips: ["172.30.5.99/24"], mac: "02:00:00:00:00:99", portMappings: [] },
    };
    try {
      const result = await runtime.add(list, rt);
      assert.deepEqual(
        (result.ips as { address: string }[]).map((i) => i.address),
        ["172.30.5.99/24"],
      );
      const pod0 = (result.interfaces as { name: string; mac?: string; sandbox?: string }[]).find(
        (i) => i.sandbox !== undefined,
      );
      assert.equal(pod0?.mac, "02:00:00:00:00:99");
      const { stdout } = await ipIn(pod, "-o", "link", "show", "eth0");
      assert.match(stdout, /link\/ether 02:00:00:00:00:99/);
    } finally {
      await runtime.del(list, rt);
    }
    assert.deepEqual(await f.reservations(), []);
  });

  it("GC and STATUS (1.1.0) reach the plugin; GC drops unknown cache entries", async () => {
    // Debian's portmap speaks up to 1.0.0, so the 1.1.0 list holds our plugin only.
    const list11: ConfList = { ...list, cniVersion: "1.1.0", plugins: list.plugins.slice(0, 1) };
    const pods = [await f.pod(), await f.pod()];
    for (const pod of pods) await runtime.add(list11, { containerId: pod, netns: `/run/netns/${pod}`, ifname: "eth0" });
    await runtime.status(list11);
    await runtime.gc(list11, [{ containerId: pods[0] ?? "", ifname: "eth0" }]);
    assert.equal((await f.reservations()).length, 1);
    assert.deepEqual(
      (await runtime.cachedAttachments(list11)).map((a) => a.containerId),
      [pods[0]],
    );
    await runtime.gc(list11, []);
    assert.deepEqual(await runtime.cachedAttachments(list11), []);
    assert.deepEqual(await f.reservations(), []);
    assert.deepEqual(await f.hostVeths(), []);
  });

  it("lab pods: createPod / listPods / deletePod on a node, pods reach each other through the bridge", async () => {
    const node: PodNode = {
      netns: f.nodeNs,
      subnetFile: f.subnetFile,
      dataDir: f.dataDir,
      cacheDir,
      binDirs: [resolve(REPO_ROOT, "cni-plugin/bin"), "/usr/lib/cni"],
      conflist: list,
    };
    const names = [uniqueName("p"), uniqueName("p")];
    try {
      const a = await createPod(node, names[0] ?? "");
      const b = await createPod(node, names[1] ?? "");
      assert.deepEqual((await listPods(node)).map((p) => p.ip).sort(), [a.ip, b.ip].sort());
      await run("ip", ["netns", "exec", a.name, "ping", "-c", "1", "-W", "2", b.ip]);
      await deletePod(node, a);
      await deletePod(node, b);
      assert.deepEqual(await listPods(node), []);
      assert.deepEqual(await f.reservations(), []);
    } finally {
      for (const name of names)
        await ipIn(name, "link").then(
          () => run("ip", ["netns", "del", name]),
          () => undefined,
        );
    }
  });
});
