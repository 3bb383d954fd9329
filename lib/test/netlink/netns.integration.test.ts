// Entering namespaces, per-namespace sysctls, permissions and process exit, against the real kernel.
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runStatus } from "../../../lab/src/exec.js";
import { inNetns, NamespaceSet } from "../../../lab/src/netns.js";
import { isTrellisError } from "#lib/errors.js";
import type { Kernel } from "#lib/netlink/kernel.js";
import { withNetns } from "#lib/netlink/netns.js";
import { openKernel } from "#lib/netlink/rtnetlink-kernel.js";

const ADAPTER = fileURLToPath(new URL("../../src/netlink/rtnetlink-kernel.js", import.meta.url));
const ownNetns = (): number => statSync("/proc/thread-self/ns/net").ino;

/** Runs a small ES module with node inside `ns`, optionally under a wrapper (setpriv). */
function nodeIn(ns: string, script: string, wrapper: string[] = []): ReturnType<typeof runStatus> {
  const command = [...wrapper, process.execPath, "--input-type=module", "-e", script];
  return runStatus("ip", ["netns", "exec", ns, ...command], { timeoutMs: 10_000 });
}

describe("netlink adapter: namespaces and sysctl", () => {
  const namespaces = new NamespaceSet();
  const kernels: Kernel[] = [];
  let a = "";
  let b = "";

  before(async () => {
    a = await namespaces.add();
    b = await namespaces.add();
  });

  after(async () => {
    for (const kernel of kernels) kernel.close();
    await namespaces.dispose();
  });

  it("runs a callback inside the namespace and always switches back", () => {
    const home = ownNetns();
    const target = statSync(`/run/netns/${a}`).ino;
    assert.notEqual(home, target);
    assert.equal(withNetns(a, ownNetns), target);
    assert.equal(withNetns(`/run/netns/${a}`, ownNetns), target);
    assert.equal(ownNetns(), home);
    assert.throws(() => withNetns(a, () => assert.fail("inside")), /inside/);
    assert.equal(ownNetns(), home, "back after a throw");
    assert.throws(() => withNetns(a, () => Promise.resolve(1)), TypeError);
    assert.equal(ownNetns(), home, "back after refusing an async callback");
  });

  it("reports a missing namespace as NOT_FOUND and a non-network namespace as INVALID_ARGUMENT", () => {
    assert.throws(
      () => withNetns("/run/netns/absent-ns", () => 1),
      (e) => isTrellisError(e, "NOT_FOUND"),
    );
    assert.throws(
      () => withNetns("/proc/thread-self/ns/uts", () => 1),
      (e) => isTrellisError(e, "INVALID_ARGUMENT"),
    );
    assert.throws(
      () => openKernel({ netns: "/run/netns/absent-ns" }),
      (e) => isTrellisError(e, "NOT_FOUND"),
    );
  });

  it("reads and writes sysctls of its own namespace only (root namespace untouched)", async () => {
    const rootBefore = readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim();
    const ka = openKernel({ netns: a });
    const kb = openKernel({ netns: b });
    kernels.push(ka, kb);
    const bBefore = await kb.getSysctl("net.ipv4.ip_forward");
    await ka.setSysctl("net.ipv4.ip_forward", "1");
    assert.equal(await ka.getSysctl("net.ipv4.ip_forward"), "1");
    assert.equal((await inNetns(a, "cat", ["/proc/sys/net/ipv4/ip_forward"])).stdout.trim(), "1");
    await ka.setSysctl("net.ipv4.ip_forward", "0");
    assert.equal((await inNetns(a, "cat", ["/proc/sys/net/ipv4/ip_forward"])).stdout.trim(), "0");
    await ka.setSysctl("net.ipv4.ip_forward", "1");
    assert.equal(await kb.getSysctl("net.ipv4.ip_forward"), bBefore, "the other namespace is unchanged");
    assert.equal(
      readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim(),
      rootBefore,
      "the root namespace is unchanged",
    );
  });

  it("addresses per-interface sysctls of dotted interface names with sysctl(8)'s '/'", async () => {
    const kernel = openKernel({ netns: a });
    kernels.push(kernel);
    await kernel.createBridge({ name: "br.0" });
    await kernel.setSysctl("net.ipv4.conf.br/0.forwarding", "1");
    assert.equal((await inNetns(a, "cat", ["/proc/sys/net/ipv4/conf/br.0/forwarding"])).stdout.trim(), "1");
    await assert.rejects(kernel.getSysctl("net.ipv4.no_such_knob"), (e) => isTrellisError(e, "NOT_FOUND"));
    await assert.rejects(kernel.setSysctl("net.ipv4.ip_forward", "abc"), (e) => isTrellisError(e, "INVALID_ARGUMENT"));
  });

  it("says PERMISSION_DENIED in plain words without CAP_NET_ADMIN", async () => {
    const script = `
      import { openKernel } from ${JSON.stringify(ADAPTER)};
      const kernel = openKernel();
      try { await kernel.createBridge({ name: "br-denied" }); console.log("created"); }
      catch (e) { console.log(JSON.stringify({ code: e.code, errno: e.errno, message: e.message })); }
      finally { kernel.close(); }`;
    const result = await nodeIn(a, script, ["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin"]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), {
      code: "PERMISSION_DENIED",
      errno: "EPERM",
      message: "create bridge br-denied: needs root or CAP_NET_ADMIN",
    });
  });

  it("lets the process exit once subscriptions are closed (no lingering handles)", async () => {
    const script = `
      import { openKernel } from ${JSON.stringify(ADAPTER)};
      const kernel = openKernel({ netns: ${JSON.stringify(b)} });
      const subscription = kernel.watch(() => undefined);
      console.log((await kernel.listLinks()).map((l) => l.name).join(","));
      subscription.close();
      kernel.close();
      // An idle request socket does not hold the event loop either, even if never closed.
      await openKernel({ netns: ${JSON.stringify(b)} }).listLinks();`;
    const started = Date.now();
    const result = await nodeIn(a, script);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), "lo");
    assert.ok(Date.now() - started < 5000, "exited promptly");
  });
});
