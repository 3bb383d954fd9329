// Dual-stack and IPv6-only through the real executable, run as a runtime runs it on a node whose agent wrote a
// subnet.env with an IPv6 pair: every spec version's result, the kernel state (`ip -j`), ping from the pod to the
// bridge's IPv6 gateway, CHECK, DEL and GC of both families, requested IPs per family — and the start-up budget:
// an IPv4-only ADD never loads ip-num.
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { inNetns, ipIn } from "../../lab/src/netns.js";
import { ipJson, usePluginFixture, type Outcome } from "./support/plugin-fixture.js";

const VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
const DUAL_ENV =
  "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.5.1/24\nFLANNEL_IPV6_NETWORK=fd30::/56\nFLANNEL_IPV6_SUBNET=fd30:0:0:5::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
const V6_ENV =
  "FLANNEL_IPV6_NETWORK=fd30::/56\nFLANNEL_IPV6_SUBNET=fd30:0:0:5::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";

interface IpAddr {
  addr_info: { family: string; local: string; prefixlen: number; scope: string; tentative?: boolean }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

/** "addr/len" of one family's global addresses on a link. */
async function addresses(ns: string, link: string, family: "inet" | "inet6"): Promise<string[]> {
  const [info] = await ipJson<IpAddr[]>(ns, "addr", "show", link);
  return (info?.addr_info ?? [])
    .filter((a) => a.family === family && a.scope === "global")
    .map((a) => `${a.local}/${a.prefixlen}${a.tentative === true ? " tentative" : ""}`);
}

const sysctl = async (ns: string, path: string): Promise<string> =>
  (await inNetns(ns, "cat", [`/proc/sys/net/${path}`])).stdout.trim();

function cniError(out: Outcome, code: number, pattern: RegExp): void {
  assert.notEqual(out.code, 0, `exit code: ${out.stdout}`);
  assert.equal(out.json?.code, code, `CNI code in ${out.stdout} ${out.stderr}`);
  assert.match(String(out.json.msg), pattern);
}

describe("cni plugin: dual-stack (real executable)", function () {
  this.timeout(60_000);
  const f = usePluginFixture(DUAL_ENV);

  for (const version of VERSIONS) {
    it(`${version}: ADD answers an IPv4 and an IPv6 address and both default routes; CHECK and DEL cover both`, async () => {
      const pod = await f.pod();
      const config = f.config(version);
      const result = await f.add(pod, pod, { version });
      const legacy = version < "1.0.0";
      const ips = result.ips as { address: string }[];
      const [v4 = "", v6 = ""] = ips.map((ip) => ip.address);
      assert.match(v4, /^172\.30\.5\.\d+\/24$/);
      assert.match(v6, /^fd30:0:0:5::[0-9a-f]+\/64$/);
      assert.deepEqual(result.ips, [
        { ...(legacy ? { version: "4" } : {}), address: v4, gateway: "172.30.5.1", interface: 2 },
        { ...(legacy ? { version: "6" } : {}), address: v6, gateway: "fd30:0:0:5::1", interface: 2 },
      ]);
      assert.deepEqual(result.routes, [
        { dst: "0.0.0.0/0", gw: "172.30.5.1" },
        { dst: "::/0", gw: "fd30:0:0:5::1" },
      ]);
      assert.deepEqual(result.dns, {});
      assert.deepEqual(await f.reservations(), [v4.split("/")[0], v6.split("/")[0]]);
      const env = { containerId: pod, netns: pod, ifname: "eth0" };
      if (version >= "0.4.0") {
        const checked = await f.invoke("CHECK", { ...env, config: { ...config, prevResult: result } });
        assert.equal(checked.code, 0, checked.stdout);
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

  it("programs both gateways on cni0, both addresses (usable at once) and default routes in the pod; the pod pings both gateways", async () => {
    const pod = await f.pod();
    const [v4, v6] = ((await f.add(pod)).ips as { address: string }[]).map((ip) => ip.address);
    assert.deepEqual(await addresses(f.nodeNs, "cni0", "inet"), ["172.30.5.1/24"]);
    assert.deepEqual(await addresses(f.nodeNs, "cni0", "inet6"), ["fd30:0:0:5::1/64"]);
    assert.deepEqual(await addresses(pod, "eth0", "inet"), [v4]);
    assert.deepEqual(await addresses(pod, "eth0", "inet6"), [v6], "not tentative");
    const routes6 = await ipJson<IpRoute[]>(pod, "-6", "route", "show");
    assert.ok(
      routes6.some((r) => r.dst === "default" && r.gateway === "fd30:0:0:5::1" && r.dev === "eth0"),
      JSON.stringify(routes6),
    );
    const routes4 = await ipJson<IpRoute[]>(pod, "route", "show");
    assert.ok(
      routes4.some((r) => r.dst === "default" && r.gateway === "172.30.5.1"),
      JSON.stringify(routes4),
    );
    assert.deepEqual(
      [
        await sysctl(pod, "ipv6/conf/all/disable_ipv6"),
        await sysctl(pod, "ipv6/conf/eth0/disable_ipv6"),
        await sysctl(pod, "ipv6/conf/eth0/accept_dad"),
        await sysctl(f.nodeNs, "ipv6/conf/all/forwarding"),
        await sysctl(f.nodeNs, "ipv4/ip_forward"),
      ],
      ["0", "0", "0", "1", "1"],
    );
    await inNetns(pod, "ping", ["-6", "-c", "1", "-W", "5", "fd30:0:0:5::1"]);
    await inNetns(pod, "ping", ["-c", "1", "-W", "5", "172.30.5.1"]);
    const second = await f.pod();
    await f.add(second);
    await inNetns(second, "ping", ["-6", "-c", "1", "-W", "5", v6?.split("/")[0] ?? ""]);
    for (const p of [pod, second]) assert.equal((await f.invoke("DEL", { containerId: p, ifname: "eth0" })).code, 0);
    assert.deepEqual(await f.reservations(), []);
  });

  it("CHECK names a missing IPv6 address and default route; a repeated ADD repairs them", async () => {
    const pod = await f.pod();
    const result = await f.add(pod);
    const v6 = (result.ips as { address: string }[])[1]?.address ?? "";
    const check = (): Promise<Outcome> =>
      f.invoke("CHECK", {
        containerId: pod,
        netns: pod,
        ifname: "eth0",
        config: { ...f.config(), prevResult: result },
      });
    await ipIn(pod, "-6", "route", "del", "default");
    cniError(await check(), 103, /route ::\/0 via fd30:0:0:5::1 dev eth0 is missing/);
    await ipIn(pod, "addr", "del", v6, "dev", "eth0");
    cniError(await check(), 103, new RegExp(`interface eth0 lacks the address ${v6}`));
    const again = await f.add(pod);
    assert.deepEqual(again.ips, result.ips);
    assert.equal((await check()).code, 0);
    assert.equal((await f.invoke("DEL", { containerId: pod, ifname: "eth0" })).code, 0);
  });

  it("requested IPs per family (CNI_ARGS IP=v4,v6 as podman sends them; runtimeConfig.ips); one outside its subnet is refused naming it and the lease", async () => {
    const pod = await f.pod();
    const out = await f.invoke("ADD", {
      containerId: pod,
      netns: pod,
      ifname: "eth0",
      env: { CNI_ARGS: "IgnoreUnknown=1;IP=172.30.5.50,fd30:0:0:5::50" },
    });
    assert.equal(out.code, 0, out.stdout);
    assert.deepEqual(
      (out.json?.ips as { address: string }[]).map((i) => i.address),
      ["172.30.5.50/24", "fd30:0:0:5::50/64"],
    );
    assert.deepEqual(await addresses(pod, "eth0", "inet6"), ["fd30:0:0:5::50/64"]);
    assert.equal((await f.invoke("DEL", { containerId: pod, ifname: "eth0" })).code, 0);

    const other = await f.pod();
    const refused = await f.invoke("ADD", {
      containerId: other,
      netns: other,
      ifname: "eth0",
      config: { ...f.config(), runtimeConfig: { ips: ["172.30.5.51/24", "fd30:0:0:40::50/64"] } },
    });
    cniError(
      refused,
      105,
      /requested IP fd30:0:0:40::50 \(runtimeConfig\.ips\[1\]\) is outside this node's lease \(this node's lease is 172\.30\.5\.0\/24, gateway 172\.30\.5\.1; fd30:0:0:5::\/64, gateway fd30:0:0:5::1\)/,
    );
    assert.deepEqual(await f.reservations(), [], "neither family reserved");
    const statics = await f.invoke("ADD", {
      containerId: other,
      netns: other,
      ifname: "eth0",
      config: { ...f.config(), runtimeConfig: { ips: ["fd30:0:0:5::51/64"] } },
    });
    assert.equal(statics.code, 0, statics.stdout);
    const v4 = (statics.json?.ips as { address: string }[])[0]?.address.split("/")[0];
    assert.deepEqual(await f.reservations(), [v4, "fd30:0:0:5::51"]);
    assert.equal((await f.invoke("DEL", { containerId: other, ifname: "eth0" })).code, 0);
  });

  it("GC frees both families of every attachment the runtime no longer knows, and their veths", async () => {
    const kept = await f.pod();
    const gone = await f.pod();
    await f.add(kept);
    await f.add(gone);
    assert.equal((await f.reservations()).length, 4);
    const gc = await f.invoke("GC", {
      config: { ...f.config("1.1.0"), "cni.dev/valid-attachments": [{ containerID: kept, ifname: "eth0" }] },
    });
    assert.equal(gc.code, 0, gc.stdout);
    const left = await f.reservations();
    assert.equal(left.length, 2);
    assert.deepEqual(
      await Promise.all(left.map(async (ip) => (await readFile(`${f.dataDir}/${ip}`, "utf8")).split("\r\n")[0])),
      [kept, kept],
    );
    assert.equal((await f.hostVeths()).length, 1);
    assert.equal((await f.invoke("DEL", { containerId: kept, ifname: "eth0" })).code, 0);
    assert.deepEqual(await f.reservations(), []);
  });

  it("start-up budget: an IPv4-only ADD never loads ip-num; a dual-stack one does", async () => {
    // NODE_DEBUG=module makes Node's CommonJS loader log each module it loads to stderr.
    const original = await readFile(f.subnetFile, "utf8");
    const loadsIpNum = async (subnetEnv: string): Promise<boolean> => {
      await writeFile(f.subnetFile, subnetEnv);
      const pod = await f.pod();
      const out = await f.invoke("ADD", {
        containerId: pod,
        netns: pod,
        ifname: "eth0",
        env: { NODE_DEBUG: "module" },
      });
      assert.equal(out.code, 0, out.stdout);
      assert.match(out.stderr, /MODULE/, "the loader's log is there to look at");
      assert.equal((await f.invoke("DEL", { containerId: pod, ifname: "eth0" })).code, 0);
      return out.stderr.includes("ip-num");
    };
    try {
      assert.equal(await loadsIpNum(original.replace(/FLANNEL_IPV6_\w+=.*\n/g, "")), false);
      assert.equal(await loadsIpNum(original), true);
    } finally {
      await writeFile(f.subnetFile, original);
    }
  });
});

describe("cni plugin: IPv6-only (real executable)", function () {
  this.timeout(60_000);
  const f = usePluginFixture(V6_ENV);

  it("a pod gets only an IPv6 address and route; it pings the gateway; CHECK, STATUS, DEL", async () => {
    const pod = await f.pod();
    const result = await f.add(pod, pod, { version: "1.1.0" });
    assert.deepEqual(result.ips, [{ address: "fd30:0:0:5::2/64", gateway: "fd30:0:0:5::1", interface: 2 }]);
    assert.deepEqual(result.routes, [{ dst: "::/0", gw: "fd30:0:0:5::1" }]);
    assert.deepEqual(await addresses(pod, "eth0", "inet"), []);
    assert.deepEqual(await addresses(pod, "eth0", "inet6"), ["fd30:0:0:5::2/64"]);
    assert.deepEqual(await addresses(f.nodeNs, "cni0", "inet"), []);
    assert.deepEqual(await addresses(f.nodeNs, "cni0", "inet6"), ["fd30:0:0:5::1/64"]);
    assert.deepEqual(await ipJson<IpRoute[]>(pod, "route", "show"), [], "no IPv4 route");
    await inNetns(pod, "ping", ["-6", "-c", "1", "-W", "5", "fd30:0:0:5::1"]);
    const config = f.config("1.1.0");
    const check = await f.invoke("CHECK", {
      containerId: pod,
      netns: pod,
      ifname: "eth0",
      config: { ...config, prevResult: result },
    });
    assert.equal(check.code, 0, check.stdout);
    assert.equal((await f.invoke("STATUS", { config })).code, 0);
    assert.equal((await f.invoke("DEL", { containerId: pod, ifname: "eth0", config })).code, 0);
    assert.deepEqual(await f.reservations(), []);
    assert.deepEqual(await f.hostVeths(), []);
  });
});
