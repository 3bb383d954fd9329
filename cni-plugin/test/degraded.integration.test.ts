// The real executable when things are missing or wrong: DEL in every degraded situation, CHECK naming each missing
// piece, GC, STATUS, and bad input that must fail cleanly (error JSON on stdout, exit != 0, no stack, no state).
import assert from "node:assert/strict";
import { rm, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { deleteNamespace, ipIn } from "../../lab/src/netns.js";
import { SUBNET_ENV, usePluginFixture, type Outcome } from "./support/plugin-fixture.js";

function assertCniError(out: Outcome, code: number, pattern?: RegExp): void {
  assert.notEqual(out.code, 0, `exit code: ${out.stdout}`);
  assert.equal(out.json?.code, code, `CNI code in ${out.stdout} ${out.stderr}`);
  assert.equal(typeof out.json.msg, "string");
  if (pattern !== undefined) assert.match(String(out.json.msg), pattern);
  assert.doesNotMatch(out.stdout + out.stderr, /\n\s+at /, "no stack trace");
}

describe("cni plugin: degraded situations and bad input (real executable)", function () {
  this.timeout(60_000);
  const f = usePluginFixture();

  describe("DEL succeeds and frees everything", () => {
    it("when repeated, without CNI_NETNS, without prevResult", async () => {
      const pod = await f.pod();
      await f.add(pod);
      for (let i = 0; i < 2; i += 1)
        assert.equal((await f.invoke("DEL", { containerId: pod, ifname: "eth0" })).code, 0);
      assert.deepEqual(await f.reservations(), []);
      assert.deepEqual(await f.hostVeths(), []);
    });

    it("when the pod's netns is already gone", async () => {
      const pod = await f.pod();
      await f.add(pod);
      await deleteNamespace(pod);
      const out = await f.invoke("DEL", { containerId: pod, netns: pod, ifname: "eth0" });
      assert.equal(out.code, 0, out.stdout);
      assert.deepEqual(await f.reservations(), []);
      assert.deepEqual(await f.hostVeths(), []);
    });

    it("without subnet.env (the agent is gone) and for a container never added", async () => {
      const pod = await f.pod();
      await f.add(pod);
      await unlink(f.subnetFile);
      try {
        assert.equal((await f.invoke("DEL", { containerId: pod, netns: pod, ifname: "eth0" })).code, 0);
        assert.equal((await f.invoke("DEL", { containerId: "never-added", ifname: "eth0" })).code, 0);
      } finally {
        await writeFile(f.subnetFile, SUBNET_ENV);
      }
      assert.deepEqual(await f.reservations(), []);
      assert.deepEqual(await f.hostVeths(), []);
    });
  });

  describe("CHECK names what is missing", () => {
    const breakages: {
      what: string;
      pattern: RegExp;
      breakIt: (pod: string, hostVeth: string, ip: string) => Promise<unknown>;
    }[] = [
      {
        what: "the default route",
        pattern: /route 0\.0\.0\.0\/0 via 172\.30\.5\.1 dev eth0 is missing/,
        breakIt: (pod) => ipIn(pod, "route", "del", "default"),
      },
      {
        what: "the pod address",
        pattern: /eth0 lacks the address 172\.30\.5\.\d+\/24/,
        breakIt: (pod, _h, ip) => ipIn(pod, "addr", "del", `${ip}/24`, "dev", "eth0"),
      },
      {
        what: "the pod interface being up",
        pattern: /interface eth0 is down/,
        breakIt: (pod) => ipIn(pod, "link", "set", "eth0", "down"),
      },
      {
        what: "the pod interface",
        pattern: /interface eth0 is missing/,
        breakIt: (pod) => ipIn(pod, "link", "del", "eth0"),
      },
      {
        what: "the bridge port",
        pattern: /is not attached to cni0/,
        breakIt: (_p, host) => ipIn(f.nodeNs, "link", "set", host, "nomaster"),
      },
      {
        what: "the gateway address",
        pattern: /cni0 lacks the gateway address 172\.30\.5\.1\/24/,
        breakIt: () => ipIn(f.nodeNs, "addr", "flush", "dev", "cni0"),
      },
      { what: "the reservation", pattern: /is not reserved for/, breakIt: (_p, _h, ip) => unlink(join(f.dataDir, ip)) },
    ];
    for (const { what, pattern, breakIt } of breakages) {
      it(`detects ${what}`, async () => {
        const pod = await f.pod();
        const result = await f.add(pod);
        const hostVeth = String((result.interfaces as { name: string }[])[1]?.name);
        const ip = String((result.ips as { address: string }[])[0]?.address).split("/")[0] ?? "";
        const env = { containerId: pod, netns: pod, ifname: "eth0", config: { ...f.config(), prevResult: result } };
        assert.equal((await f.invoke("CHECK", env)).code, 0);
        await breakIt(pod, hostVeth, ip);
        assertCniError(await f.invoke("CHECK", env), 103, pattern);
        assert.equal((await f.invoke("DEL", { containerId: pod, ifname: "eth0" })).code, 0);
      });
    }

    it("refuses CHECK without prevResult (code 7)", async () => {
      const pod = await f.pod();
      assertCniError(await f.invoke("CHECK", { containerId: pod, netns: pod, ifname: "eth0" }), 7, /prevResult/);
    });
  });

  it("GC frees every reservation and host veth (ours by its mark) not in cni.dev/valid-attachments (or cni.dev/attachments)", async () => {
    const pods = [await f.pod(), await f.pod(), await f.pod()];
    const hostEnds: string[] = [];
    for (const pod of pods) hostEnds.push(String(((await f.add(pod)).interfaces as { name: string }[])[1]?.name));
    // The reference bridge plugin names its host veths like ours, on the same cni0 (flannel's CNI delegates to
    // it): without our mark, GC must leave it alone.
    await ipIn(f.nodeNs, "link", "add", "vethdeadbeef", "type", "veth", "peer", "name", "orphanpeer");
    await ipIn(f.nodeNs, "link", "set", "vethdeadbeef", "master", "cni0");
    // Marked by another trellis network: that network's GC decides, not this one's.
    await ipIn(f.nodeNs, "link", "add", "vethcafe0001", "type", "veth", "peer", "name", "otherpeer");
    await ipIn(f.nodeNs, "link", "set", "vethcafe0001", "alias", "trellis:other-net:c9/eth0");
    assert.equal((await f.hostVeths()).length, 5);
    const keep = pods[0] ?? "";
    const out = await f.invoke("GC", {
      config: { ...f.config("1.1.0"), "cni.dev/attachments": [{ containerID: keep, ifname: "eth0" }] },
    });
    assert.equal(out.code, 0, out.stdout);
    assert.equal((await f.reservations()).length, 1);
    assert.deepEqual((await f.hostVeths()).sort(), ["vethcafe0001", "vethdeadbeef", hostEnds[0] ?? ""].sort());
    const all = await f.invoke("GC", { config: { ...f.config("1.1.0"), "cni.dev/valid-attachments": [] } });
    assert.equal(all.code, 0, all.stdout);
    assert.deepEqual(await f.reservations(), []);
    assert.deepEqual((await f.hostVeths()).sort(), ["vethcafe0001", "vethdeadbeef"]);
    for (const name of ["vethcafe0001", "vethdeadbeef"]) await ipIn(f.nodeNs, "link", "del", name);
  });

  it("GC reads a null or missing cni.dev/valid-attachments as none (libcni after a reboot, cnitool gc)", async () => {
    for (const config of [{ ...f.config("1.1.0"), "cni.dev/valid-attachments": null }, f.config("1.1.0")]) {
      const pod = await f.pod();
      await f.add(pod);
      assert.equal((await f.reservations()).length, 1);
      const out = await f.invoke("GC", { config });
      assert.deepEqual([out.code, out.stdout], [0, ""]);
      assert.deepEqual(await f.reservations(), []);
      assert.deepEqual(await f.hostVeths(), []);
    }
    assertCniError(
      await f.invoke("GC", { config: { ...f.config("1.1.0"), "cni.dev/valid-attachments": "all" } }),
      7,
      /valid-attachments/,
    );
  });

  it("STATUS: 50 before the agent wrote subnet.env or when it is corrupt, 0 when ready", async () => {
    assert.equal((await f.invoke("STATUS", { config: f.config("1.1.0") })).code, 0);
    assertCniError(
      await f.invoke("STATUS", { config: f.config("1.1.0", { subnetFile: join(f.dir, "absent.env") }) }),
      50,
      /does not exist/,
    );
    await writeFile(join(f.dir, "corrupt.env"), "FLANNEL_NETWORK=banana\n");
    assertCniError(
      await f.invoke("STATUS", { config: f.config("1.1.0", { subnetFile: join(f.dir, "corrupt.env") }) }),
      50,
      /FLANNEL_NETWORK/,
    );
  });

  describe("bad input fails cleanly and leaves no state", () => {
    const cases: { name: string; code: number; pattern: RegExp; run: (pod: string) => Promise<Outcome> }[] = [
      {
        name: "a netns path that does not exist",
        code: 3,
        pattern: /CNI_NETNS/,
        run: () => f.invoke("ADD", { containerId: "c1", netns: "/run/netns/trellis-no-such-ns", ifname: "eth0" }),
      },
      {
        name: "a netns path that is not a netns",
        code: 4,
        pattern: /not a network namespace/,
        run: () => f.invoke("ADD", { containerId: "c1", netns: f.subnetFile, ifname: "eth0" }),
      },
      {
        name: "a missing subnet.env (ADD: try again later)",
        code: 11,
        pattern: /does not exist yet/,
        run: (pod) =>
          f.invoke("ADD", {
            containerId: "c1",
            netns: pod,
            ifname: "eth0",
            config: f.config("1.0.0", { subnetFile: join(f.dir, "none.env") }),
          }),
      },
      {
        name: "an unreadable subnet.env (a directory)",
        code: 5,
        pattern: /EISDIR/,
        run: (pod) =>
          f.invoke("ADD", {
            containerId: "c1",
            netns: pod,
            ifname: "eth0",
            config: f.config("1.0.0", { subnetFile: f.dir }),
          }),
      },
      {
        name: "a corrupt subnet.env",
        code: 101,
        pattern: /FLANNEL_MTU/,
        run: async (pod) => {
          await writeFile(
            join(f.dir, "bad.env"),
            "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.5.1/24\nFLANNEL_MTU=big\n",
          );
          return await f.invoke("ADD", {
            containerId: "c1",
            netns: pod,
            ifname: "eth0",
            config: f.config("1.0.0", { subnetFile: join(f.dir, "bad.env") }),
          });
        },
      },
      {
        name: "CNI_CONTAINERID with a path",
        code: 4,
        pattern: /CNI_CONTAINERID/,
        run: (pod) => f.invoke("ADD", { containerId: "../../etc", netns: pod, ifname: "eth0" }),
      },
      {
        name: "CNI_IFNAME with a slash",
        code: 4,
        pattern: /CNI_IFNAME/,
        run: (pod) => f.invoke("ADD", { containerId: "c1", netns: pod, ifname: "a/b" }),
      },
      {
        name: "CNI_IFNAME too long",
        code: 4,
        pattern: /CNI_IFNAME/,
        run: (pod) => f.invoke("ADD", { containerId: "c1", netns: pod, ifname: "a".repeat(16) }),
      },
      {
        name: "missing env vars",
        code: 4,
        pattern: /CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME/,
        run: () => f.invoke("ADD", {}),
      },
      {
        name: "an unknown cniVersion",
        code: 1,
        pattern: /cniVersion "9\.9\.9"/,
        run: (pod) => f.invoke("ADD", { containerId: "c1", netns: pod, ifname: "eth0", config: f.config("9.9.9") }),
      },
      {
        name: "malformed stdin",
        code: 6,
        pattern: /not JSON/,
        run: (pod) => f.invoke("ADD", { containerId: "c1", netns: pod, ifname: "eth0", config: "{nope" }),
      },
      {
        name: "huge stdin",
        code: 6,
        pattern: /larger than/,
        run: (pod) =>
          f.invoke("ADD", {
            containerId: "c1",
            netns: pod,
            ifname: "eth0",
            config: `{"x":"${"a".repeat(5 * 1024 * 1024)}"}`,
          }),
      },
      {
        name: "a wrong-typed field",
        code: 7,
        pattern: /hairpinMode "yes"/,
        run: (pod) =>
          f.invoke("ADD", {
            containerId: "c1",
            netns: pod,
            ifname: "eth0",
            config: f.config("1.0.0", { hairpinMode: "yes" }),
          }),
      },
      {
        name: "a dataDir escaping with ..",
        code: 7,
        pattern: /dataDir/,
        run: (pod) =>
          f.invoke("ADD", {
            containerId: "c1",
            netns: pod,
            ifname: "eth0",
            config: f.config("1.0.0", { dataDir: "/tmp/../etc" }),
          }),
      },
    ];
    for (const { name, code, pattern, run } of cases) {
      it(`${name} → code ${code}`, async () => {
        const pod = await f.pod();
        assertCniError(await run(pod), code, pattern);
        assert.deepEqual(await f.reservations(), []);
        assert.deepEqual(await f.hostVeths(), []);
      });
    }

    it("a full subnet → code 100, and the failed ADD leaves nothing", async () => {
      const small = join(f.dir, "small.env");
      await writeFile(small, "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.7.1/30\nFLANNEL_MTU=1450\n");
      const dataDir = join(f.dir, "small-ipam");
      const config = f.config("1.0.0", { subnetFile: small, dataDir, bridge: "trsmall0" });
      const [a, b] = [await f.pod(), await f.pod()];
      const first = await f.invoke("ADD", { containerId: a, netns: a, ifname: "eth0", config });
      assert.equal(first.code, 0, first.stdout);
      assert.equal((first.json?.ips as { address: string }[])[0]?.address, "172.30.7.2/30");
      assertCniError(
        await f.invoke("ADD", { containerId: b, netns: b, ifname: "eth0", config }),
        100,
        /no free address left in 172\.30\.7\.0\/30/,
      );
      assert.equal((await f.hostVeths()).length, 1);
      assert.equal((await f.invoke("DEL", { containerId: a, ifname: "eth0", config })).code, 0);
      assert.deepEqual(await f.hostVeths(), []);
      await ipIn(f.nodeNs, "link", "del", "trsmall0");
      await rm(dataDir, { recursive: true, force: true });
    });
  });
});
