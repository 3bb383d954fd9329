// Many processes at once and processes killed halfway: the IPAM lock must keep addresses unique, and GC must
// clean up after a kill at any point of ADD.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readdir } from "node:fs/promises";
import { ipIn } from "../../lab/src/netns.js";
import { CNI_BIN } from "../../lab/src/paths.js";
import { usePluginFixture } from "./support/plugin-fixture.js";

const PODS = 50;

describe("cni plugin: concurrency and crashes (real executable)", function () {
  this.timeout(180_000);
  const f = usePluginFixture();

  it(`${PODS} concurrent ADDs get ${PODS} distinct addresses; ${PODS} concurrent DELs leave an empty store and no veth`, async () => {
    const pods: string[] = [];
    for (let i = 0; i < PODS; i += 1) pods.push(await f.pod());
    const results = await Promise.all(
      pods.map((pod) => f.invoke("ADD", { containerId: pod, netns: pod, ifname: "eth0" })),
    );
    for (const out of results) assert.equal(out.code, 0, out.stdout + out.stderr);
    const addresses = results.map((out) => String((out.json?.ips as { address: string }[])[0]?.address));
    assert.equal(new Set(addresses).size, PODS, `distinct: ${addresses.join(" ")}`);
    assert.equal((await f.reservations()).length, PODS);
    assert.equal((await f.hostVeths()).length, PODS);
    for (const [i, pod] of pods.entries()) {
      const { stdout } = await ipIn(pod, "-4", "-o", "addr", "show", "dev", "eth0");
      assert.ok(stdout.includes(`inet ${addresses[i] ?? "?"}`), `${pod} has ${addresses[i] ?? "?"}: ${stdout}`);
    }
    const dels = await Promise.all(
      pods.map((pod) => f.invoke("DEL", { containerId: pod, netns: pod, ifname: "eth0" })),
    );
    for (const out of dels) assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.deepEqual(await f.reservations(), []);
    assert.deepEqual(await f.hostVeths(), []);
    assert.deepEqual(
      (await readdir(f.dataDir)).filter((n) => n.endsWith(".tmp")),
      [],
      "no temp files",
    );
  });

  it("an ADD killed at any point is cleaned up by GC (reservation, host veth, pod end), and the lock is free again", async () => {
    const config = JSON.stringify(f.config("1.1.0"));
    const partial: { reservations: number; veths: number }[] = [];
    const delays = [0, 2, 4, 7, 10, 14, 18, 24, 30, 40, 55];
    let unmarked = 0;
    for (const [round, delay] of delays.entries()) {
      const pod = await f.pod();
      const env = {
        PATH: process.env.PATH ?? "",
        CNI_COMMAND: "ADD",
        CNI_CONTAINERID: pod,
        CNI_NETNS: `/run/netns/${pod}`,
        CNI_IFNAME: "eth0",
      };
      // `ip netns exec` and the sh launcher both exec: the child's PID ends up being node's.
      const child = spawn("ip", ["netns", "exec", f.nodeNs, CNI_BIN], { env, stdio: ["pipe", "ignore", "ignore"] });
      child.stdin.end(config);
      const state = { exited: false };
      const exit = once(child, "exit").then(() => (state.exited = true));
      // Kill right after the address is reserved, plus a delay: inside the wiring, at a different step each round.
      while (!state.exited && (await f.reservations()).length === 0)
        await new Promise((resolve) => setTimeout(resolve, 1));
      await new Promise((resolve) => setTimeout(resolve, delay));
      const killedMidway = !state.exited;
      child.kill("SIGKILL");
      await exit;
      if (killedMidway)
        partial.push({ reservations: (await f.reservations()).length, veths: (await f.hostVeths()).length });
      const gc = await f.invoke("GC", { config: { ...f.config("1.1.0"), "cni.dev/valid-attachments": [] } });
      assert.equal(gc.code, 0, gc.stdout);
      assert.deepEqual(await f.reservations(), [], `round ${round}`);
      // Killed between creating the pair and marking it (IFLA_IFALIAS takes a second request): GC cannot prove that
      // host end ours, but its peer in the pod's namespace does, for the DEL the runtime sends after a failed ADD.
      if ((await f.hostVeths()).length > 0) {
        unmarked += 1;
        assert.equal((await f.invoke("DEL", { containerId: pod, netns: pod, ifname: "eth0" })).code, 0);
      }
      assert.deepEqual(await f.hostVeths(), [], `round ${round}`);
      const { stdout } = await ipIn(pod, "-o", "link", "show");
      assert.doesNotMatch(stdout, /eth0/, `round ${round}: the pod end went with the host end`);
    }
    assert.ok(partial.length >= 4, `most rounds killed an ADD midway: ${JSON.stringify(partial)}`);
    assert.ok(
      partial.some((p) => p.reservations > 0),
      `some kills left a reservation for GC to free: ${JSON.stringify(partial)}`,
    );
    assert.ok(
      partial.some((p) => p.veths > 0),
      `some kills left a host veth for GC to delete: ${JSON.stringify(partial)}`,
    );
    assert.ok(
      unmarked < partial.length,
      `GC deleted marked host veths itself (${unmarked} of ${partial.length} needed a DEL)`,
    );
    // Nothing is stuck: a normal ADD/DEL still works.
    const pod = await f.pod();
    await f.add(pod);
    assert.equal((await f.invoke("DEL", { containerId: pod, ifname: "eth0" })).code, 0);
    assert.deepEqual(
      (await readdir(f.dataDir)).filter((n) => n.endsWith(".tmp")),
      [],
    );
  });
});
