// The real executable, run as a runtime runs it: every command in every supported spec version, the kernel state
// ADD leaves behind (checked with `ip -j`), idempotent repeats and a lease change.
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { inNetns, ipIn } from "../../lab/src/netns.js";
import { ipJson, usePluginFixture } from "./support/plugin-fixture.js";

const VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;

interface IpLink {
  ifname: string;
  mtu: number;
  address: string;
  flags: string[];
  master?: string;
  operstate: string;
  linkinfo?: { info_kind?: string; info_slave_data?: { hairpin?: boolean } };
}
interface IpAddr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev: string;
}

describe("cni plugin: commands × spec versions (real executable)", function () {
  this.timeout(60_000);
  const f = usePluginFixture();

  it("VERSION answers every supported version, without stdin", async () => {
    const out = await f.invoke("VERSION", { config: "" });
    assert.equal(out.code, 0, out.stdout);
    assert.deepEqual(out.json, {
      cniVersion: "1.1.0",
      supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    });
  });

  for (const version of VERSIONS) {
    it(`${version}: ADD answers in ${version}'s shape; CHECK, DEL${version === "1.1.0" ? ", GC, STATUS" : ""} work, newer commands are refused`, async () => {
      const pod = await f.pod();
      const config = f.config(version);
      const result = await f.add(pod, pod, { version });
      assert.equal(result.cniVersion, version);
      const ips = result.ips as Record<string, unknown>[];
      const interfaces = result.interfaces as Record<string, unknown>[];
      assert.equal(ips.length, 1);
      const ip = ips[0];
      assert.ok(ip);
      assert.match(String(ip.address), /^172\.30\.5\.\d+\/24$/);
      assert.equal(ip.gateway, "172.30.5.1");
      assert.equal(ip.interface, 2);
      assert.equal(ip.version, version < "1.0.0" ? "4" : undefined, "ips[].version only before 1.0.0");
      assert.deepEqual(interfaces.map((i) => i.name).slice(0, 1), ["cni0"]);
      assert.match(String(interfaces[1]?.name), /^veth[0-9a-f]{8}$/);
      const podIface = interfaces[2];
      assert.ok(podIface);
      assert.equal(podIface.name, "eth0");
      assert.equal(podIface.sandbox, `/run/netns/${pod}`);
      for (const i of interfaces) assert.match(String(i.mac), /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      assert.equal(podIface.mtu, version === "1.1.0" ? 1450 : undefined, "interfaces[].mtu only in 1.1.0");
      assert.deepEqual(result.routes, [{ dst: "0.0.0.0/0", gw: "172.30.5.1" }]);
      assert.deepEqual(result.dns, {});

      const env = { containerId: pod, netns: pod, ifname: "eth0" };
      const checked = await f.invoke("CHECK", { ...env, config: { ...config, prevResult: result } });
      if (version < "0.4.0") {
        assert.equal(checked.code, 1);
        assert.equal(checked.json?.code, 1, checked.stdout);
      } else {
        assert.equal(checked.code, 0, checked.stdout);
        assert.equal(checked.stdout, "");
      }
      for (const command of ["GC", "STATUS"]) {
        const out = await f.invoke(command, {
          config: { ...config, "cni.dev/valid-attachments": [{ containerID: pod, ifname: "eth0" }] },
        });
        if (version === "1.1.0") assert.equal(out.code, 0, `${command}: ${out.stdout}`);
        else
          assert.deepEqual(
            [out.code, out.json?.code, out.json?.cniVersion],
            [1, 1, version],
            `${command} in ${version}`,
          );
      }
      const del = await f.invoke("DEL", {
        ...env,
        config: version >= "0.4.0" ? { ...config, prevResult: result } : config,
      });
      assert.equal(del.code, 0, del.stdout);
      assert.deepEqual(await f.reservations(), []);
      assert.deepEqual(await f.hostVeths(), []);
    });
  }

  it("ADD programs the bridge, the veth pair, the pod's address, MTU, default route, hairpin and ip_forward", async () => {
    const pod = await f.pod();
    const result = await f.add(pod);
    const hostVeth = String((result.interfaces as { name: string }[])[1]?.name);
    const [bridge] = await ipJson<IpLink[]>(f.nodeNs, "-d", "link", "show", "cni0");
    assert.equal(bridge?.linkinfo?.info_kind, "bridge");
    assert.equal(bridge.address, "0a:58:ac:1e:05:01", "a fixed MAC derived from the gateway");
    assert.ok(bridge.flags.includes("UP"));
    const [bridgeAddr] = await ipJson<IpAddr[]>(f.nodeNs, "addr", "show", "cni0");
    assert.deepEqual(
      bridgeAddr?.addr_info.filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`),
      ["172.30.5.1/24"],
    );
    const [host] = await ipJson<IpLink[]>(f.nodeNs, "-d", "link", "show", hostVeth);
    assert.equal(host?.master, "cni0");
    assert.equal(host.mtu, 1450);
    assert.equal(host.linkinfo?.info_slave_data?.hairpin, true);
    assert.ok(host.flags.includes("UP"));
    const [podLink] = await ipJson<IpLink[]>(pod, "link", "show", "eth0");
    assert.equal(podLink?.mtu, 1450);
    assert.ok(podLink.flags.includes("UP"));
    const [podAddr] = await ipJson<IpAddr[]>(pod, "addr", "show", "eth0");
    const address = (result.ips as { address: string }[])[0]?.address;
    assert.deepEqual(
      podAddr?.addr_info.filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`),
      [address],
    );
    const routes = await ipJson<IpRoute[]>(pod, "route", "show");
    assert.ok(
      routes.some((r) => r.dst === "default" && r.gateway === "172.30.5.1" && r.dev === "eth0"),
      JSON.stringify(routes),
    );
    const { stdout } = await inNetns(f.nodeNs, "cat", ["/proc/sys/net/ipv4/ip_forward"]);
    assert.equal(stdout.trim(), "1");
    await f.invoke("DEL", { containerId: pod, ifname: "eth0" });
  });

  it("honours mtu, hairpinMode false, isDefaultGateway false (network route only), another bridge name and dns", async () => {
    const pod = await f.pod();
    const dns = { nameservers: ["10.96.0.10"], search: ["svc.cluster.local"] };
    const config = f.config("1.0.0", { mtu: 1400, hairpinMode: false, isDefaultGateway: false, bridge: "trbr0", dns });
    const result = await f.add(pod, pod, { config });
    assert.deepEqual(result.routes, [{ dst: "172.30.0.0/16", gw: "172.30.5.1" }]);
    assert.deepEqual(result.dns, dns);
    const hostVeth = String((result.interfaces as { name: string }[])[1]?.name);
    const [host] = await ipJson<IpLink[]>(f.nodeNs, "-d", "link", "show", hostVeth);
    assert.equal(host?.master, "trbr0");
    assert.equal(host.mtu, 1400);
    assert.equal(host.linkinfo?.info_slave_data?.hairpin, false);
    const routes = await ipJson<IpRoute[]>(pod, "route", "show");
    assert.ok(!routes.some((r) => r.dst === "default"), JSON.stringify(routes));
    assert.ok(routes.some((r) => r.dst === "172.30.0.0/16" && r.gateway === "172.30.5.1"));
    const check = await f.invoke("CHECK", {
      containerId: pod,
      netns: pod,
      ifname: "eth0",
      config: { ...config, prevResult: result },
    });
    assert.equal(check.code, 0, check.stdout);
    assert.equal((await f.invoke("DEL", { containerId: pod, ifname: "eth0", config })).code, 0);
    await ipIn(f.nodeNs, "link", "del", "trbr0");
  });

  it("a repeated ADD of the same (container, ifname) returns the same address and keeps one reservation", async () => {
    const pod = await f.pod();
    const first = await f.add(pod);
    const second = await f.add(pod);
    assert.deepEqual(second.ips, first.ips);
    assert.deepEqual(second.interfaces, first.interfaces);
    assert.equal((await f.reservations()).length, 1);
    // A second interface of the same container is another attachment: another address, another host veth.
    const other = await f.add(pod, pod, { ifname: "net1" });
    assert.notDeepEqual(other.ips, first.ips);
    assert.equal((await f.reservations()).length, 2);
    for (const ifname of ["eth0", "net1"]) assert.equal((await f.invoke("DEL", { containerId: pod, ifname })).code, 0);
    assert.deepEqual(await f.reservations(), []);
    assert.deepEqual(await f.hostVeths(), []);
  });

  it("re-validates against a changed lease: a repeated ADD moves the pod and the bridge to the new subnet", async () => {
    const pod = await f.pod();
    const before = await f.add(pod);
    assert.match(String((before.ips as { address: string }[])[0]?.address), /^172\.30\.5\./);
    const original = await readFile(f.subnetFile, "utf8");
    try {
      await writeFile(f.subnetFile, original.replace("172.30.5.1/24", "172.30.9.1/24"));
      const status = await f.invoke("STATUS", { config: f.config("1.1.0") });
      assert.deepEqual([status.code, status.json?.code], [1, 51], status.stdout);
      const after = await f.add(pod);
      assert.match(String((after.ips as { address: string }[])[0]?.address), /^172\.30\.9\.\d+\/24$/);
      assert.deepEqual(await f.reservations(), [
        String((after.ips as { address: string }[])[0]?.address).split("/")[0],
      ]);
      const [bridgeAddr] = await ipJson<IpAddr[]>(f.nodeNs, "addr", "show", "cni0");
      assert.deepEqual(
        bridgeAddr?.addr_info.filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`),
        ["172.30.9.1/24"],
      );
      const [podAddr] = await ipJson<IpAddr[]>(pod, "addr", "show", "eth0");
      assert.equal(podAddr?.addr_info.filter((a) => a.family === "inet").length, 1, "the old address is gone");
      assert.equal((await f.invoke("STATUS", { config: f.config("1.1.0") })).code, 0);
    } finally {
      await writeFile(f.subnetFile, original);
      await f.invoke("DEL", { containerId: pod, ifname: "eth0" });
    }
  });
});
