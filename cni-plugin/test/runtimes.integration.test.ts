// What real runtimes send, and hosts that are not ours alone, against the real executable run as a runtime runs it
// on a node: a namespace that is the caller's own, requested IPs and MACs (podman --ip/--mac-address, the "ips" and
// "mac" capabilities, args.cni.ips), the same attachment ADDed into a second namespace, and links with our naming
// pattern that another plugin made (the reference bridge plugin names host veths like ours).
import assert from "node:assert/strict";
import { ipIn } from "../../lab/src/netns.js";
import { hostVethName } from "../src/wiring/host-veth-name.js";
import { ipJson, usePluginFixture, type Outcome } from "./support/plugin-fixture.js";

interface IpLink {
  ifname: string;
  address?: string;
  ifalias?: string;
}
interface IpAddr {
  addr_info: { family: string; local: string; prefixlen: number }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

function cniError(out: Outcome, code: number, pattern: RegExp): void {
  assert.notEqual(out.code, 0, `exit code: ${out.stdout}`);
  assert.equal(out.json?.code, code, `CNI code in ${out.stdout} ${out.stderr}`);
  assert.match(String(out.json.msg), pattern);
}

describe("cni plugin: what runtimes send, on hosts that are not ours alone (real executable)", function () {
  this.timeout(60_000);
  const f = usePluginFixture();
  const podAddress = async (pod: string): Promise<string> => {
    const [link] = await ipJson<IpAddr[]>(pod, "addr", "show", "eth0");
    return (link?.addr_info ?? [])
      .filter((a) => a.family === "inet")
      .map((a) => `${a.local}/${a.prefixlen}`)
      .join(",");
  };

  describe("a namespace that is the caller's own is refused, and nothing changes", () => {
    for (const [label, netns] of [
      ["the node's namespace by its /run/netns path", () => f.nodeNs],
      ["the caller's /proc/self/ns/net", () => "/proc/self/ns/net"],
    ] as const) {
      it(label, async () => {
        const before = await ipJson<IpRoute[]>(f.nodeNs, "route", "show");
        const linksBefore = (await ipJson<IpLink[]>(f.nodeNs, "link", "show")).map((l) => l.ifname);
        const out = await f.invoke("ADD", { containerId: "own-ns", netns: netns(), ifname: "eth7" });
        cniError(out, 4, /is the caller's own network namespace \(net:\[\d+\]\), not a pod's: refusing to wire it/);
        assert.deepEqual(
          (await ipJson<IpLink[]>(f.nodeNs, "link", "show")).map((l) => l.ifname),
          linksBefore,
          "no eth7 (or anything else) on the node",
        );
        assert.deepEqual(await ipJson<IpRoute[]>(f.nodeNs, "route", "show"), before, "the node's routes are untouched");
        assert.deepEqual(await f.reservations(), []);
      });
    }
  });

  describe("requested IP and MAC (CNI conventions)", () => {
    it("CNI_ARGS IP= and MAC= as podman sends them for --ip/--mac-address: that address and that MAC, again after DEL+ADD (network reload)", async () => {
      const pod = await f.pod();
      const env = { CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAME=web;MAC=02:00:00:00:00:42;IP=172.30.5.50" };
      for (let round = 0; round < 2; round += 1) {
        const out = await f.invoke("ADD", { containerId: pod, netns: pod, ifname: "eth0", env });
        assert.equal(out.code, 0, out.stdout);
        assert.deepEqual(
          (out.json?.ips as { address: string }[]).map((i) => i.address),
          ["172.30.5.50/24"],
        );
        assert.equal((out.json?.interfaces as { name: string; mac?: string }[])[2]?.mac, "02:00:00:00:00:42");
        assert.equal(await podAddress(pod), "172.30.5.50/24");
        const [link] = await ipJson<IpLink[]>(pod, "link", "show", "eth0");
        assert.equal(link?.address, "02:00:00:00:00:42");
        assert.deepEqual(await f.reservations(), ["172.30.5.50"]);
        assert.equal((await f.invoke("DEL", { containerId: pod, netns: pod, ifname: "eth0", env })).code, 0);
      }
      assert.deepEqual(await f.reservations(), []);
    });

    it("the ips and mac capabilities (runtimeConfig) and args.cni.ips; runtimeConfig.mac wins over args.cni.mac and CNI_ARGS MAC", async () => {
      const pod = await f.pod();
      const config = {
        ...f.config(),
        args: { cni: { ips: ["172.30.5.61"], mac: "02:00:00:00:00:01" } },
        runtimeConfig: { ips: ["172.30.5.61/24"], mac: "02:00:00:00:00:61" },
      };
      const out = await f.invoke("ADD", {
        containerId: pod,
        netns: pod,
        ifname: "eth0",
        config,
        env: { CNI_ARGS: "IgnoreUnknown=1;MAC=02:00:00:00:00:02" },
      });
      assert.equal(out.code, 0, out.stdout);
      assert.equal(await podAddress(pod), "172.30.5.61/24");
      const [link] = await ipJson<IpLink[]>(pod, "link", "show", "eth0");
      assert.equal(link?.address, "02:00:00:00:00:61");
      const check = await f.invoke("CHECK", {
        containerId: pod,
        netns: pod,
        ifname: "eth0",
        config: { ...config, prevResult: out.json },
      });
      assert.equal(check.code, 0, check.stdout);
      // A repeated ADD asking for another address moves the pod there, and frees the old one only once it worked.
      const moved = await f.invoke("ADD", {
        containerId: pod,
        netns: pod,
        ifname: "eth0",
        config: { ...f.config(), runtimeConfig: { ips: ["172.30.5.62"] } },
      });
      assert.equal(moved.code, 0, moved.stdout);
      assert.equal(await podAddress(pod), "172.30.5.62/24");
      assert.deepEqual(await f.reservations(), ["172.30.5.62"]);
      assert.equal((await f.invoke("DEL", { containerId: pod, ifname: "eth0" })).code, 0);
    });

    it("an address outside the node's lease, or taken, or disagreeing requests: an error naming it (and the lease), never another address", async () => {
      const holder = await f.pod();
      const taken = await f.invoke("ADD", {
        containerId: holder,
        netns: holder,
        ifname: "eth0",
        env: { CNI_ARGS: "IP=172.30.5.70" },
      });
      assert.equal(taken.code, 0, taken.stdout);
      const pod = await f.pod();
      const add = (env: Record<string, string>, config = f.config()): Promise<Outcome> =>
        f.invoke("ADD", { containerId: pod, netns: pod, ifname: "eth0", env, config });
      cniError(
        await add({ CNI_ARGS: "IgnoreUnknown=1;IP=172.30.40.50" }),
        105,
        /requested IP 172\.30\.40\.50 \(CNI_ARGS IP\) is outside this node's lease \(this node's lease is 172\.30\.5\.0\/24, gateway 172\.30\.5\.1\)/,
      );
      cniError(
        await add({ CNI_ARGS: "IP=172.30.5.70" }),
        105,
        new RegExp(
          `requested IP 172\\.30\\.5\\.70 \\(CNI_ARGS IP\\) is already reserved for ${holder}/eth0 \\(this node's lease is 172\\.30\\.5\\.0/24`,
        ),
      );
      cniError(
        await add({ CNI_ARGS: "IP=172.30.5.1" }),
        105,
        /is the network, gateway or broadcast address of this node's lease/,
      );
      cniError(
        await add({}, { ...f.config(), runtimeConfig: { ips: ["fd00::5"] } }),
        105,
        /requested IP fd00::5 \(runtimeConfig\.ips\[0\]\) is outside this node's lease/,
      );
      cniError(
        await add({ CNI_ARGS: "IP=172.30.5.80" }, { ...f.config(), args: { cni: { ips: ["172.30.5.81"] } } }),
        7,
        /requested IPs disagree: 172\.30\.5\.80 \(CNI_ARGS IP\), 172\.30\.5\.81 \(args\.cni\.ips\[0\]\)/,
      );
      cniError(await add({ CNI_ARGS: "IP=banana" }), 4, /CNI_ARGS IP "banana" is invalid/);
      cniError(
        await add({ CNI_ARGS: "MAC=01:00:5e:00:00:01" }),
        4,
        /CNI_ARGS MAC "01:00:5e:00:00:01" is invalid: a unicast MAC address/,
      );
      cniError(
        await add({}, { ...f.config(), runtimeConfig: { mac: 42 } }),
        7,
        /config field runtimeConfig\.mac 42 is invalid/,
      );
      assert.deepEqual(await f.reservations(), ["172.30.5.70"], "nothing reserved for the refused ADDs");
      assert.deepEqual(
        (await ipJson<IpLink[]>(pod, "link", "show")).map((l) => l.ifname),
        ["lo"],
        "nothing wired",
      );
      assert.equal((await f.invoke("DEL", { containerId: holder, ifname: "eth0" })).code, 0);
    });
  });

  describe("never deletes or steals what is not this attachment's", () => {
    it("a second ADD of a wired attachment into another namespace is refused, and the first pod keeps its interface", async () => {
      const first = await f.pod();
      const second = await f.pod();
      await f.add(first, "shared");
      const address = await podAddress(first);
      const out = await f.invoke("ADD", { containerId: "shared", netns: second, ifname: "eth0" });
      cniError(
        out,
        104,
        /the attachment is already wired into another network namespace \(host end veth[0-9a-f]{8}\), not \/run\/netns\//,
      );
      assert.equal(await podAddress(first), address, "the first pod's eth0 keeps its address");
      assert.deepEqual(
        (await ipJson<IpLink[]>(second, "link", "show")).map((l) => l.ifname),
        ["lo"],
      );
      assert.equal((await f.reservations()).length, 1);
      assert.equal((await f.invoke("DEL", { containerId: "shared", ifname: "eth0" })).code, 0);
    });

    it("a link with our host veth name that another plugin made is never deleted: ADD takes the next name, DEL and GC leave it", async () => {
      const pod = await f.pod();
      const foreign = hostVethName({ containerId: pod, ifname: "eth0" });
      // As the reference bridge plugin would have made it for one of its own pods (flannel's CNI delegates to it).
      await ipIn(f.nodeNs, "link", "add", foreign, "type", "veth", "peer", "name", `${foreign.slice(0, 10)}p`);
      assert.equal(
        (await f.invoke("DEL", { containerId: pod, netns: pod, ifname: "eth0" })).code,
        0,
        "DEL of a container never added",
      );
      await ipIn(f.nodeNs, "link", "show", foreign);
      const added = await f.add(pod);
      const ours = (added.interfaces as { name: string }[])[1]?.name ?? "";
      assert.notEqual(ours, foreign);
      assert.equal(ours, hostVethName({ containerId: pod, ifname: "eth0" }, 1));
      const [link] = await ipJson<IpLink[]>(f.nodeNs, "link", "show", ours);
      assert.equal(link?.ifalias, `trellis:trellis-test:${pod}/eth0`);
      const check = await f.invoke("CHECK", {
        containerId: pod,
        netns: pod,
        ifname: "eth0",
        config: { ...f.config(), prevResult: added },
      });
      assert.equal(check.code, 0, check.stdout);
      assert.equal((await f.invoke("DEL", { containerId: pod, ifname: "eth0" })).code, 0);
      assert.ok(!(await f.hostVeths()).includes(ours), "ours is gone");
      assert.equal(
        (await f.invoke("GC", { config: { ...f.config("1.1.0"), "cni.dev/valid-attachments": [] } })).code,
        0,
      );
      await ipIn(f.nodeNs, "link", "show", foreign);
      await ipIn(f.nodeNs, "link", "del", foreign);
    });

    it("a pod wired before host veths were marked is still found, proven by its peer, and marked on the next ADD", async () => {
      const pod = await f.pod();
      const added = await f.add(pod);
      const hostEnd = (added.interfaces as { name: string }[])[1]?.name ?? "";
      await ipIn(f.nodeNs, "link", "set", hostEnd, "alias", "");
      const again = await f.add(pod);
      assert.deepEqual(again.ips, added.ips);
      const [link] = await ipJson<IpLink[]>(f.nodeNs, "link", "show", hostEnd);
      assert.equal(link?.ifalias, `trellis:trellis-test:${pod}/eth0`);
      // And DEL with the pod's namespace deletes an unmarked one by the same proof.
      await ipIn(f.nodeNs, "link", "set", hostEnd, "alias", "");
      assert.equal((await f.invoke("DEL", { containerId: pod, netns: pod, ifname: "eth0" })).code, 0);
      assert.ok(!(await f.hostVeths()).includes(hostEnd));
    });
  });
});
