// Dual-stack and IPv6-only, no root needed: IPv6 address choice, one address per family allocated together (both or
// neither) in the memory store and the real file store, requested IPs per family, results with two ips in every
// spec version, whole commands in-process with the fake kernel — and ip-num never loaded on an IPv4-only network.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCidr, parseIpv4 } from "#lib/ipv4.js";
import { formatIpv6, parseCidr6, parseIpv6 } from "#lib/ipv6.js";
import { NetlinkError } from "#lib/netlink/errors.js";
import type { AddressInfo } from "#lib/netlink/kernel.js";
import { CniCode, CniError } from "../src/cni-error.js";
import { parseConfig } from "../src/config.js";
import { parseInvocation } from "../src/env.js";
import { chooseAddress6, type Lease, type Lease6 } from "../src/ipam/choose.js";
import { FileReservationStore } from "../src/ipam/file-store.js";
import { allocate, release, releaseAllExcept } from "../src/ipam/ipam.js";
import { formatAddress } from "../src/ipam/store.js";
import { runPlugin } from "../src/plugin.js";
import { requestsOf } from "../src/requested.js";
import { formatResult, parsePrevResult, type CniResult } from "../src/result.js";
import { readLease } from "../src/subnet.js";
import { SUPPORTED_VERSIONS } from "../src/versions.js";
import { FakeDeps, MemoryStore } from "./support/fake-deps.js";

const v6 = (text: string): bigint => parseIpv6(text) ?? assert.fail(text);
const lease4 = (cidr: string, gateway: string): Lease => ({
  subnet: parseCidr(cidr) ?? assert.fail(cidr),
  gateway: parseIpv4(gateway) ?? assert.fail(gateway),
});
const lease6 = (cidr: string, gateway: string): Lease6 => ({
  subnet: parseCidr6(cidr) ?? assert.fail(cidr),
  gateway: v6(gateway),
});
const cniError =
  (code: number, pattern?: RegExp) =>
  (error: unknown): boolean =>
    error instanceof CniError && error.code === code && (pattern === undefined || pattern.test(error.message));

const DUAL_ENV =
  "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.5.1/24\nFLANNEL_IPV6_NETWORK=fd30::/56\nFLANNEL_IPV6_SUBNET=fd30:0:0:5::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
const V6_ENV =
  "FLANNEL_IPV6_NETWORK=fd30::/56\nFLANNEL_IPV6_SUBNET=fd30:0:0:5::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
const V4_ENV = "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";

const L4 = lease4("172.30.5.0/24", "172.30.5.1");
const L6 = lease6("fd30:0:0:5::/64", "fd30:0:0:5::1");
const C1 = { containerId: "c1", ifname: "eth0" };

describe("cni plugin: dual-stack and IPv6-only (pure, fake kernel)", () => {
  describe("IPv6 address choice", () => {
    it("starts after the gateway, goes round-robin after the last reserved, skips taken ones and the gateway", () => {
      assert.equal(formatIpv6(chooseAddress6(L6, new Set(), undefined) ?? 0n), "fd30:0:0:5::2");
      assert.equal(formatIpv6(chooseAddress6(L6, new Set(), v6("fd30:0:0:5::9")) ?? 0n), "fd30:0:0:5::a");
      assert.equal(
        formatIpv6(chooseAddress6(L6, new Set([v6("fd30:0:0:5::2"), v6("fd30:0:0:5::3")]), undefined) ?? 0n),
        "fd30:0:0:5::4",
      );
      // After the subnet's last address: wraps to the first after the subnet-router anycast address (the network).
      const last = v6("fd30:0:0:5:ffff:ffff:ffff:ffff");
      assert.equal(formatIpv6(chooseAddress6(L6, new Set([v6("fd30:0:0:5::2")]), last) ?? 0n), "fd30:0:0:5::3");
      const middle = lease6("fd30:0:0:7::/64", "fd30:0:0:7::10");
      assert.equal(formatIpv6(chooseAddress6(middle, new Set(), undefined) ?? 0n), "fd30:0:0:7::11");
      // A last address from another (older) subnet is ignored.
      assert.equal(formatIpv6(chooseAddress6(L6, new Set(), v6("fd30:0:0:9::9")) ?? 0n), "fd30:0:0:5::2");
    });
    it("never hands out the network (anycast) address or the gateway, reports a full subnet, and never scans a /64 whole", () => {
      const tiny = lease6("fd30:0:0:7::/126", "fd30:0:0:7::1");
      const seen = new Set<bigint>();
      for (let n = 0; n < 2; n += 1) seen.add(chooseAddress6(tiny, seen, undefined) ?? assert.fail("full too early"));
      assert.deepEqual([...seen].map(formatIpv6), ["fd30:0:0:7::2", "fd30:0:0:7::3"]);
      assert.equal(chooseAddress6(tiny, seen, undefined), undefined);
      // From the top of the subnet it wraps past ::0 (the subnet-router anycast) and ::1 (the gateway).
      const top = v6("fd30:0:0:5:ffff:ffff:ffff:fffe");
      assert.equal(
        formatIpv6(chooseAddress6(L6, new Set([v6("fd30:0:0:5:ffff:ffff:ffff:ffff")]), top) ?? 0n),
        "fd30:0:0:5::2",
      );
      const taken = new Set<bigint>();
      for (let n = 2n; n < 5000n; n += 1n) taken.add(L6.subnet.ip + n);
      const started = performance.now();
      assert.equal(chooseAddress6(L6, taken, undefined), L6.subnet.ip + 5000n);
      assert.ok(performance.now() - started < 200, "a search bounded by what is taken");
    });
  });

  describe("the lease", () => {
    const files = new Map([
      ["/dual", DUAL_ENV],
      ["/v6", V6_ENV],
      ["/outside", DUAL_ENV.replace("fd30:0:0:5::1/64", "fd31:0:0:5::1/64")],
      ["/anycast", DUAL_ENV.replace("fd30:0:0:5::1/64", "fd30:0:0:5::/64")],
      ["/tiny", DUAL_ENV.replace("fd30:0:0:5::1/64", "fd30:0:0:5::1/127")],
      ["/half", "FLANNEL_IPV6_NETWORK=fd30::/56\nFLANNEL_MTU=1450\n"],
    ]);
    const deps = { readFile: (p: string): string | undefined => files.get(p) };
    it("reads both families of a dual-stack lease, and only IPv6 of an IPv6-only one", () => {
      const dual = readLease(deps, "/dual");
      assert.deepEqual(
        [formatAddress(dual.ipv4?.gateway ?? 0), formatIpv6(dual.ipv6?.gateway ?? 0n)],
        ["172.30.5.1", "fd30:0:0:5::1"],
      );
      assert.deepEqual([formatIpv6(dual.ipv6?.subnet.ip ?? 0n), dual.ipv6?.subnet.prefixLen], ["fd30:0:0:5::", 64]);
      assert.deepEqual([formatIpv6(dual.ipv6?.network.ip ?? 0n), dual.ipv6?.network.prefixLen], ["fd30::", 56]);
      const only = readLease(deps, "/v6");
      assert.equal(only.ipv4, undefined);
      assert.equal(formatIpv6(only.ipv6?.gateway ?? 0n), "fd30:0:0:5::1");
    });
    it("refuses an IPv6 subnet outside its network, an anycast gateway, a subnet too small, half a pair (code 101)", () => {
      assert.throws(() => readLease(deps, "/outside"), cniError(101, /outside FLANNEL_IPV6_NETWORK fd30::\/56/));
      assert.throws(() => readLease(deps, "/anycast"), cniError(101, /must be the gateway fd30:0:0:5::1\/64-style/));
      assert.throws(() => readLease(deps, "/tiny"), cniError(101, /\/126 or larger/));
      assert.throws(() => readLease(deps, "/half"), cniError(101, /FLANNEL_IPV6_SUBNET is missing/));
    });
  });

  describe("IPAM: one address per family, together", () => {
    const dual = { ipv4: L4, ipv6: L6 };
    it("allocates both, the same again for the same attachment, and DEL/GC free both", async () => {
      const store = new MemoryStore();
      const first = await allocate(store, dual, C1);
      assert.deepEqual(
        [formatAddress(first.ipv4?.ip ?? 0), first.ipv6?.ip, first.ipv4?.fresh, first.ipv6?.fresh],
        ["172.30.5.2", "fd30:0:0:5::2", true, true],
      );
      const again = await allocate(store, dual, C1);
      assert.deepEqual(again, {
        ipv4: { ip: first.ipv4?.ip, fresh: false, superseded: [] },
        ipv6: { ip: first.ipv6?.ip, fresh: false, superseded: [] },
      });
      const other = await allocate(store, dual, { containerId: "c2", ifname: "eth0" });
      assert.deepEqual([formatAddress(other.ipv4?.ip ?? 0), other.ipv6?.ip], ["172.30.5.3", "fd30:0:0:5::3"]);
      assert.deepEqual((await release(store, C1)).map(formatAddress).sort(), ["172.30.5.2", "fd30:0:0:5::2"]);
      assert.deepEqual(await release(store, C1), []);
      const freed = await releaseAllExcept(store, []);
      assert.deepEqual(freed.map((r) => formatAddress(r.ip)).sort(), ["172.30.5.3", "fd30:0:0:5::3"]);
      assert.deepEqual(store.list(), []);
      // Round-robin per family: the next ones continue after the last handed out in each.
      const next = await allocate(store, dual, C1);
      assert.deepEqual([formatAddress(next.ipv4?.ip ?? 0), next.ipv6?.ip], ["172.30.5.4", "fd30:0:0:5::4"]);
    });

    it("a failure in the second family leaves nothing of the first allocated (both or neither)", async () => {
      const store = new MemoryStore();
      const tiny = { ipv4: L4, ipv6: lease6("fd30:0:0:7::/126", "fd30:0:0:7::1") };
      await allocate(store, tiny, { containerId: "a", ifname: "eth0" });
      await allocate(store, tiny, { containerId: "b", ifname: "eth0" });
      const before = store.list();
      await assert.rejects(
        allocate(store, tiny, { containerId: "c", ifname: "eth0" }),
        cniError(CniCode.SUBNET_FULL, /no free address left in fd30:0:0:7::\/126/),
      );
      assert.deepEqual(store.list(), before, "no IPv4 address left reserved for c");
    });

    it("IPv6-only: one IPv6 address; a reservation of a family the lease no longer has is stale and freed", async () => {
      const store = new MemoryStore();
      store.reserve({ ip: parseIpv4("172.30.5.9") ?? 0, ...C1 });
      const only = await allocate(store, { ipv6: L6 }, C1);
      assert.equal(only.ipv4, undefined);
      assert.deepEqual(
        store.list().map((r) => formatAddress(r.ip)),
        ["fd30:0:0:5::2"],
      );
      // And back to IPv4-only: the IPv6 one goes.
      const back = await allocate(store, { ipv4: L4 }, C1);
      assert.equal(back.ipv6, undefined);
      assert.deepEqual(
        store.list().map((r) => formatAddress(r.ip)),
        ["172.30.5.2"],
      );
    });

    it("requested IPs per family: each must be in its family's subnet, assignable and free (code 105 naming it and the lease)", async () => {
      const store = new MemoryStore();
      const request = (text: string, from = "runtimeConfig.ips[0]") => ({
        family: text.includes(":") ? (6 as const) : (4 as const),
        ip: text.includes(":") ? formatIpv6(v6(text)) : parseIpv4(text),
        text,
        from,
      });
      const got = await allocate(store, dual, C1, [request("172.30.5.50"), request("fd30:0:0:5::50", "CNI_ARGS IP")]);
      assert.deepEqual([formatAddress(got.ipv4?.ip ?? 0), got.ipv6?.ip], ["172.30.5.50", "fd30:0:0:5::50"]);
      const c2 = { containerId: "c2", ifname: "eth0" };
      const refusals: [string, RegExp][] = [
        [
          "fd30:0:0:40::50",
          /requested IP fd30:0:0:40::50 \(runtimeConfig\.ips\[0\]\) is outside this node's lease \(this node's lease is 172\.30\.5\.0\/24, gateway 172\.30\.5\.1; fd30:0:0:5::\/64, gateway fd30:0:0:5::1\)/,
        ],
        ["fd30:0:0:5::50", /requested IP fd30:0:0:5::50 \(runtimeConfig\.ips\[0\]\) is already reserved for c1\/eth0/],
        ["fd30:0:0:5::1", /is the network, gateway or broadcast address/],
        ["fd30:0:0:5::", /is the network, gateway or broadcast address/],
      ];
      for (const [text, pattern] of refusals)
        await assert.rejects(
          allocate(store, dual, c2, [request("172.30.5.60"), request(text)]),
          cniError(105, pattern),
        );
      await assert.rejects(
        allocate(store, { ipv4: L4 }, c2, [request("fd30:0:0:5::60")]),
        cniError(105, /requested IP fd30:0:0:5::60 .* is outside this node's lease, which has no IPv6 subnet/),
      );
      await assert.rejects(
        allocate(store, { ipv6: L6 }, c2, [request("172.30.5.60")]),
        cniError(105, /is outside this node's lease, which has no IPv4 subnet \(this node's lease is fd30:0:0:5::\/64/),
      );
      assert.equal(store.list().length, 2, "refused requests change nothing");
      // A repeated ADD asking for another IPv6 address: the old one is superseded (freed by commit), IPv4 kept.
      const moved = await allocate(store, dual, C1, [request("fd30:0:0:5::51")]);
      assert.deepEqual(moved.ipv4, { ip: got.ipv4?.ip, fresh: false, superseded: [] });
      assert.deepEqual(moved.ipv6, { ip: "fd30:0:0:5::51", fresh: true, superseded: ["fd30:0:0:5::50"] });
    });

    it("the real file store: IPv6 reservations named in RFC 5952 form beside unchanged IPv4 ones, last_reserved_ip.1", async () => {
      const dir = mkdtempSync(join(tmpdir(), "trellis-cni-dual-"));
      try {
        const store = new FileReservationStore(dir, {
          timeoutMs: 1000,
          sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
          now: () => Date.now(),
        });
        await allocate(store, dual, C1, [
          {
            family: 6,
            ip: formatIpv6(v6("FD30:0000:0:5:0::0042")),
            text: "FD30:0000:0:5:0::0042",
            from: "CNI_ARGS IP",
          },
        ]);
        await allocate(store, dual, { containerId: "c2", ifname: "eth0" });
        assert.deepEqual(readdirSync(dir).sort(), [
          "172.30.5.2",
          "172.30.5.3",
          "fd30:0:0:5::2",
          "fd30:0:0:5::42",
          "last_reserved_ip.0",
          "last_reserved_ip.1",
          "lock",
        ]);
        assert.equal(readFileSync(join(dir, "172.30.5.2"), "utf8"), "c1\r\neth0");
        assert.equal(readFileSync(join(dir, "fd30:0:0:5::42"), "utf8"), "c1\r\neth0");
        assert.equal(readFileSync(join(dir, "last_reserved_ip.0"), "utf8"), "172.30.5.3");
        assert.equal(readFileSync(join(dir, "last_reserved_ip.1"), "utf8"), "fd30:0:0:5::2");
        assert.deepEqual(
          store
            .list()
            .map((r) => `${formatAddress(r.ip)} ${r.containerId}`)
            .sort(),
          ["172.30.5.2 c1", "172.30.5.3 c2", "fd30:0:0:5::2 c2", "fd30:0:0:5::42 c1"],
        );
        assert.deepEqual((await release(store, C1)).map(formatAddress).sort(), ["172.30.5.2", "fd30:0:0:5::42"]);
        await releaseAllExcept(store, []);
        assert.deepEqual(readdirSync(dir).sort(), ["last_reserved_ip.0", "last_reserved_ip.1", "lock"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("requested IPs from the runtime", () => {
    const base = { cniVersion: "1.0.0", name: "n", type: "trellis" };
    const env = { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c", CNI_NETNS: "/run/netns/p", CNI_IFNAME: "eth0" };
    const requests = (cniArgs: string | undefined, config: Record<string, unknown> = {}) =>
      requestsOf(
        parseInvocation(cniArgs === undefined ? env : { ...env, CNI_ARGS: cniArgs }),
        parseConfig({ ...base, ...config }),
      ).ips.map((r) => `${r.family} ${r.ip === undefined ? "?" : formatAddress(r.ip)} ${r.from}`);
    it("CNI_ARGS IP= with one address per family (podman), runtimeConfig.ips and args.cni.ips of both families", () => {
      assert.deepEqual(requests("IP=172.30.5.50,fd30:0:0:5::50"), [
        "4 172.30.5.50 CNI_ARGS IP",
        "6 fd30:0:0:5::50 CNI_ARGS IP",
      ]);
      assert.deepEqual(requests(undefined, { runtimeConfig: { ips: ["fd30:0:0:5::50/64", "172.30.5.50/24"] } }), [
        "4 172.30.5.50 runtimeConfig.ips[1]",
        "6 fd30:0:0:5::50 runtimeConfig.ips[0]",
      ]);
      // The same address written differently agrees.
      assert.deepEqual(
        requests("IP=FD30:0:0:5:0:0:0:50", { args: { cni: { ips: ["fd30:0:0:5::50", "172.30.5.50"] } } }),
        ["4 172.30.5.50 args.cni.ips[1]", "6 fd30:0:0:5::50 args.cni.ips[0]"],
      );
    });
    it("two different addresses of one family disagree (code 7); malformed ones are refused where they came from", () => {
      assert.throws(
        () => requests("IP=fd30:0:0:5::50", { runtimeConfig: { ips: ["172.30.5.50", "fd30:0:0:5::51"] } }),
        cniError(
          7,
          /requested IPs disagree: fd30:0:0:5::50 \(CNI_ARGS IP\), fd30:0:0:5::51 \(runtimeConfig\.ips\[1\]\); a pod gets one IPv6 address/,
        ),
      );
      assert.throws(() => requests("IP=172.30.5.50,banana"), cniError(4, /CNI_ARGS IP "banana"/));
      assert.throws(() => requests("IP=172.30.5.50,"), cniError(4, /CNI_ARGS IP ""/));
    });
  });

  describe("results with both families in every spec version", () => {
    const result: CniResult = {
      interfaces: [
        { name: "cni0", mac: "0a:58:ac:1e:05:01", mtu: 1450 },
        { name: "veth01234567", mac: "02:00:00:00:00:01", mtu: 1450 },
        { name: "eth0", mac: "02:00:00:00:00:02", mtu: 1450, sandbox: "/run/netns/p" },
      ],
      ips: [
        { address: "172.30.5.2/24", gateway: "172.30.5.1", interface: 2 },
        { address: "fd30:0:0:5::2/64", gateway: "fd30:0:0:5::1", interface: 2 },
      ],
      routes: [
        { dst: "0.0.0.0/0", gw: "172.30.5.1" },
        { dst: "::/0", gw: "fd30:0:0:5::1" },
      ],
      dns: {},
    };
    it('0.3.x and 0.4.0 spell ips[].version "4" and "6"; 1.0.0 and 1.1.0 do not; a prevResult parses back', () => {
      for (const version of SUPPORTED_VERSIONS) {
        const out = formatResult(result, version);
        const legacy = version < "1.0.0";
        assert.deepEqual(out.ips, [
          { ...(legacy ? { version: "4" } : {}), address: "172.30.5.2/24", gateway: "172.30.5.1", interface: 2 },
          { ...(legacy ? { version: "6" } : {}), address: "fd30:0:0:5::2/64", gateway: "fd30:0:0:5::1", interface: 2 },
        ]);
        assert.deepEqual(out.routes, result.routes);
        const back = parsePrevResult(JSON.parse(JSON.stringify(out)));
        assert.deepEqual(formatResult(back, version), out, version);
      }
      assert.throws(() => parsePrevResult({ ips: [{ address: "fd30::zz/64" }] }), cniError(7, /ips\[0\]\.address/));
    });
  });

  describe("runPlugin in-process with the fake kernel", () => {
    const pod = "/run/netns/p1";
    const env = (command: string, id = "c1"): Record<string, string> => ({
      CNI_COMMAND: command,
      CNI_CONTAINERID: id,
      CNI_NETNS: pod,
      CNI_IFNAME: "eth0",
    });
    const config = (extra: Record<string, unknown> = {}): string =>
      JSON.stringify({ cniVersion: "1.0.0", name: "n", type: "trellis", subnetFile: "/s", dataDir: "/d", ...extra });
    const setup = (subnetEnv: string, deps = new FakeDeps()): FakeDeps => {
      deps.files.set("/s", subnetEnv);
      deps.world.addNamespace(pod);
      return deps;
    };
    const addressesOf = (deps: FakeDeps, ns: string, name: string): string[] => {
      const link = [...deps.world.ns(ns).links.values()].find((l) => l.name === name);
      return deps.world
        .ns(ns)
        .addresses.filter((a) => a.index === link?.index)
        .map((a) => `${a.address}/${a.prefixLen}`);
    };
    const routesOf = (deps: FakeDeps, ns: string): string[] =>
      deps.world.ns(ns).routes.map((r) => `${r.dst}/${r.prefixLen} via ${r.gateway ?? "-"}`);

    it("dual-stack ADD: both gateways on the bridge, both addresses and default routes in the pod, IPv6 on in the pod; CHECK; DEL frees both", async () => {
      const deps = setup(DUAL_ENV);
      const podNs = deps.world.ns(pod);
      podNs.sysctls.set("net.ipv6.conf.all.disable_ipv6", "1");
      podNs.sysctls.set("net.ipv6.conf.eth0.disable_ipv6", "1");
      podNs.sysctls.set("net.ipv6.conf.eth0.accept_dad", "1");
      deps.world.ns("host").sysctls.set("net.ipv6.conf.cni0.accept_dad", "1"); // the kernel's default for a new link
      const added = await runPlugin({ env: env("ADD"), stdin: config(), deps });
      assert.equal(added.exitCode, 0, added.stdout);
      const result = JSON.parse(added.stdout) as Record<string, unknown>;
      assert.deepEqual(result.ips, [
        { address: "172.30.5.2/24", gateway: "172.30.5.1", interface: 2 },
        { address: "fd30:0:0:5::2/64", gateway: "fd30:0:0:5::1", interface: 2 },
      ]);
      assert.deepEqual(result.routes, [
        { dst: "0.0.0.0/0", gw: "172.30.5.1" },
        { dst: "::/0", gw: "fd30:0:0:5::1" },
      ]);
      assert.deepEqual(addressesOf(deps, "host", "cni0"), ["172.30.5.1/24", "fd30:0:0:5::1/64"]);
      assert.deepEqual(addressesOf(deps, pod, "eth0"), ["172.30.5.2/24", "fd30:0:0:5::2/64"]);
      assert.deepEqual(routesOf(deps, pod), ["0.0.0.0/0 via 172.30.5.1", "::/0 via fd30:0:0:5::1"]);
      assert.deepEqual(
        ["net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.eth0.disable_ipv6", "net.ipv6.conf.eth0.accept_dad"].map(
          (name) => podNs.sysctls.get(name),
        ),
        ["0", "0", "0"],
      );
      const host = deps.world.ns("host").sysctls;
      assert.deepEqual([host.get("net.ipv4.ip_forward"), host.get("net.ipv6.conf.all.forwarding")], ["1", "1"]);
      assert.equal(
        host.get("net.ipv6.conf.cni0.accept_dad"),
        "0",
        "no DAD on the bridge: its first pod gets IPv6 at once",
      );
      assert.deepEqual(
        deps.allReservations().map((r) => formatAddress(r.ip)),
        ["172.30.5.2", "fd30:0:0:5::2"],
      );

      const checked = await runPlugin({ env: env("CHECK"), stdin: config({ prevResult: result }), deps });
      assert.equal(checked.exitCode, 0, checked.stdout);
      podNs.routes = podNs.routes.filter((r) => r.dst !== "::");
      podNs.addresses = podNs.addresses.filter((a) => a.address !== "fd30:0:0:5::2");
      const broken = await runPlugin({ env: env("CHECK"), stdin: config({ prevResult: result }), deps });
      assert.equal((JSON.parse(broken.stdout) as { code: number }).code, 103);
      assert.match(broken.stdout, /interface eth0 lacks the address fd30:0:0:5::2\/64/);
      assert.match(broken.stdout, /route ::\/0 via fd30:0:0:5::1 dev eth0 is missing/);
      assert.doesNotMatch(broken.stdout, /172\.30/);
      // A repeated ADD repairs it.
      assert.equal((await runPlugin({ env: env("ADD"), stdin: config(), deps })).exitCode, 0);
      assert.equal((await runPlugin({ env: env("CHECK"), stdin: config({ prevResult: result }), deps })).exitCode, 0);

      const v4Only = { ...result, ips: (result.ips as unknown[]).slice(0, 1) };
      const missing = await runPlugin({ env: env("CHECK"), stdin: config({ prevResult: v4Only }), deps });
      assert.match(missing.stdout, /prevResult has no IPv6 address for eth0/);

      const del = { CNI_COMMAND: "DEL", CNI_CONTAINERID: "c1", CNI_IFNAME: "eth0" };
      assert.deepEqual(await runPlugin({ env: del, stdin: config(), deps }), { stdout: "", exitCode: 0 });
      assert.deepEqual(await runPlugin({ env: del, stdin: config(), deps }), { stdout: "", exitCode: 0 });
      assert.deepEqual(deps.allReservations(), []);
      assert.deepEqual(deps.world.linkNames(pod), []);
    });

    for (const version of SUPPORTED_VERSIONS) {
      it(`${version}: a dual-stack ADD answers two ips in ${version}'s shape`, async () => {
        const deps = setup(DUAL_ENV);
        const out = await runPlugin({ env: env("ADD"), stdin: config({ cniVersion: version }), deps });
        assert.equal(out.exitCode, 0, out.stdout);
        const result = JSON.parse(out.stdout) as { cniVersion: string; ips: Record<string, unknown>[] };
        assert.equal(result.cniVersion, version);
        assert.deepEqual(
          result.ips.map((ip) => [ip.version, ip.address, ip.gateway, ip.interface]),
          [
            [version < "1.0.0" ? "4" : undefined, "172.30.5.2/24", "172.30.5.1", 2],
            [version < "1.0.0" ? "6" : undefined, "fd30:0:0:5::2/64", "fd30:0:0:5::1", 2],
          ],
        );
      });
    }

    it("IPv6-only: only an IPv6 address and route, a bridge MAC from the IPv6 gateway, and no pod record (the registry is IPv4)", async () => {
      const deps = setup(V6_ENV);
      const named = { ...env("ADD"), CNI_ARGS: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1" };
      const out = await runPlugin({ env: named, stdin: config(), deps });
      assert.equal(out.exitCode, 0, out.stdout);
      const result = JSON.parse(out.stdout) as Record<string, unknown>;
      assert.deepEqual(result.ips, [{ address: "fd30:0:0:5::2/64", gateway: "fd30:0:0:5::1", interface: 2 }]);
      assert.deepEqual(result.routes, [{ dst: "::/0", gw: "fd30:0:0:5::1" }]);
      assert.equal((result.interfaces as { mac: string }[])[0]?.mac, "0a:58:00:00:00:01");
      assert.deepEqual(addressesOf(deps, "host", "cni0"), ["fd30:0:0:5::1/64"]);
      assert.deepEqual(addressesOf(deps, pod, "eth0"), ["fd30:0:0:5::2/64"]);
      assert.deepEqual(routesOf(deps, pod), ["::/0 via fd30:0:0:5::1"]);
      assert.equal(deps.world.ns("host").sysctls.get("net.ipv4.ip_forward"), "0", "no IPv4 forwarding asked for");
      assert.deepEqual([...deps.podRecords("/run/trellis/pods", "n").records.keys()], []);
      const check = await runPlugin({ env: env("CHECK"), stdin: config({ prevResult: result }), deps });
      assert.equal(check.exitCode, 0, check.stdout);
      const status = await runPlugin({ env: { CNI_COMMAND: "STATUS" }, stdin: config({ cniVersion: "1.1.0" }), deps });
      assert.equal(status.exitCode, 0, status.stdout);
      const gc = await runPlugin({
        env: { CNI_COMMAND: "GC", CNI_PATH: "/x" },
        stdin: config({ cniVersion: "1.1.0", "cni.dev/valid-attachments": [] }),
        deps,
      });
      assert.equal(gc.exitCode, 0, gc.stdout);
      assert.deepEqual(deps.allReservations(), []);
      assert.deepEqual(deps.world.linkNames(pod), []);
    });

    it("a changed IPv6 lease: a repeated ADD moves the pod's and the bridge's IPv6 addresses, keeps link-local ones; STATUS warns meanwhile", async () => {
      const deps = setup(DUAL_ENV);
      assert.equal((await runPlugin({ env: env("ADD"), stdin: config(), deps })).exitCode, 0);
      const cni0 = [...deps.world.ns("host").links.values()].find((l) => l.name === "cni0");
      const eth0 = [...deps.world.ns(pod).links.values()].find((l) => l.name === "eth0");
      deps.world
        .ns("host")
        .addresses.push({ index: cni0?.index ?? 0, address: "fe80::858:acff:fe1e:501", prefixLen: 64 });
      deps.world.ns(pod).addresses.push({ index: eth0?.index ?? 0, address: "fe80::1", prefixLen: 64 });
      deps.files.set("/s", DUAL_ENV.replace("fd30:0:0:5::1/64", "fd30:0:0:9::1/64"));
      const status = await runPlugin({ env: { CNI_COMMAND: "STATUS" }, stdin: config({ cniVersion: "1.1.0" }), deps });
      assert.match(status.stdout, /"code":51.*now 172\.30\.5\.0\/24 and fd30:0:0:9::\/64; 1 pod address/);
      const moved = await runPlugin({ env: env("ADD"), stdin: config(), deps });
      assert.equal(moved.exitCode, 0, moved.stdout);
      assert.deepEqual(addressesOf(deps, "host", "cni0"), [
        "172.30.5.1/24",
        "fe80::858:acff:fe1e:501/64",
        "fd30:0:0:9::1/64",
      ]);
      assert.deepEqual(addressesOf(deps, pod, "eth0"), ["172.30.5.2/24", "fe80::1/64", "fd30:0:0:9::2/64"]);
      assert.deepEqual(
        deps.allReservations().map((r) => formatAddress(r.ip)),
        ["172.30.5.2", "fd30:0:0:9::2"],
      );
    });

    it("isDefaultGateway false: a route to each family's pod network instead of the default routes", async () => {
      const deps = setup(DUAL_ENV);
      const out = await runPlugin({ env: env("ADD"), stdin: config({ isDefaultGateway: false }), deps });
      assert.equal(out.exitCode, 0, out.stdout);
      assert.deepEqual((JSON.parse(out.stdout) as Record<string, unknown>).routes, [
        { dst: "172.30.0.0/16", gw: "172.30.5.1" },
        { dst: "fd30::/56", gw: "fd30:0:0:5::1" },
      ]);
      assert.deepEqual(routesOf(deps, pod), ["172.30.0.0/16 via 172.30.5.1", "fd30::/56 via fd30:0:0:5::1"]);
    });

    it("a failure wiring the second family undoes both reservations and the veth", async () => {
      class NoIpv6InThePod extends FakeDeps {
        override async podKernel(netns: string, openAt?: string): ReturnType<FakeDeps["podKernel"]> {
          const kernel = await super.podKernel(netns, openAt);
          const addAddress = kernel.addAddress.bind(kernel);
          kernel.addAddress = (address: AddressInfo) =>
            address.address.includes(":")
              ? Promise.reject(new NetlinkError("add address", address.address, "EADDRNOTAVAIL"))
              : addAddress(address);
          return kernel;
        }
      }
      const deps = setup(DUAL_ENV, new NoIpv6InThePod());
      const out = await runPlugin({ env: env("ADD"), stdin: config(), deps });
      assert.equal((JSON.parse(out.stdout) as { code: number }).code, CniCode.KERNEL_FAILURE, out.stdout);
      assert.deepEqual(deps.allReservations(), []);
      assert.deepEqual(deps.world.linkNames(pod), []);
      assert.deepEqual(
        deps.world.linkNames("host").filter((n) => n.startsWith("veth")),
        [],
      );
    });

    it("an MTU below IPv6's 1280 is refused before anything is wired (config 7, FLANNEL_MTU 101)", async () => {
      const deps = setup(DUAL_ENV);
      const out = await runPlugin({ env: env("ADD"), stdin: config({ mtu: 1200 }), deps });
      assert.equal((JSON.parse(out.stdout) as { code: number }).code, 7, out.stdout);
      deps.files.set("/s", DUAL_ENV.replace("FLANNEL_MTU=1450", "FLANNEL_MTU=1000"));
      const fromEnv = await runPlugin({ env: env("ADD"), stdin: config(), deps });
      assert.match(fromEnv.stdout, /FLANNEL_MTU 1000 is below 1280/);
      assert.deepEqual(deps.allReservations(), []);
      assert.deepEqual(deps.world.linkNames("host"), []);
    });
  });

  it("an IPv4-only network never loads ip-num — not even for IPv6 reservations left over, DEL or GC (the real file store, a process of its own); a dual-stack ADD does", function () {
    this.timeout(30_000);
    const dir = mkdtempSync(join(tmpdir(), "trellis-cni-ipnum-"));
    try {
      // Left by an earlier dual-stack lease: a's (stale once a is ADDed on IPv4 only), d's (DEL), g's (GC).
      const leftover: [string, string][] = [
        ["fd30:0:0:5::a", "a"],
        ["fd30:0:0:5::d", "d"],
        ["fd30:0:0:5::9", "g"],
      ];
      for (const [name, owner] of leftover) writeFileSync(join(dir, name), `${owner}\r\neth0`);
      const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));
      const script = `
        import { createRequire } from "node:module";
        import { readdirSync } from "node:fs";
        const { runPlugin } = await import(${JSON.stringify(here("../src/plugin.js"))});
        const { FileReservationStore } = await import(${JSON.stringify(here("../src/ipam/file-store.js"))});
        const { FakeDeps } = await import(${JSON.stringify(here("./support/fake-deps.js"))});
        const loaded = () => Object.keys(createRequire(import.meta.url).cache).filter((p) => p.includes("ip-num"));
        const deps = new FakeDeps();
        deps.store = (dataDir) => new FileReservationStore(dataDir, { timeoutMs: 1000, sleep: (ms) => new Promise((r) => setTimeout(r, ms)), now: Date.now });
        const run = async (command, id, subnetEnv, extra = {}) => {
          deps.files.set("/s", subnetEnv);
          deps.world.addNamespace("/run/netns/" + id);
          const env = { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: "/run/netns/" + id, CNI_IFNAME: "eth0", CNI_PATH: "/x" };
          const config = { cniVersion: "1.1.0", name: "n", type: "trellis", subnetFile: "/s", dataDir: ${JSON.stringify(dir)}, ...extra };
          return (await runPlugin({ env, stdin: JSON.stringify(config), deps })).exitCode;
        };
        const v4 = ${JSON.stringify(V4_ENV)};
        const codes = [await run("ADD", "a", v4), await run("ADD", "b", v4), await run("STATUS", "x", v4), await run("DEL", "d", v4)];
        codes.push(await run("GC", "x", v4, { "cni.dev/valid-attachments": [{ containerID: "a", ifname: "eth0" }, { containerID: "b", ifname: "eth0" }] }));
        const files = readdirSync(${JSON.stringify(dir)}).filter((n) => n !== "lock").sort();
        const afterV4 = loaded();
        const dual = await run("ADD", "c", ${JSON.stringify(DUAL_ENV)});
        console.log(JSON.stringify({ codes, files, afterV4, dual, afterDual: loaded().length > 0 }));`;
      const out = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
      assert.equal(out.status, 0, out.stderr);
      assert.deepEqual(JSON.parse(out.stdout), {
        // STATUS: 51 while g's IPv6 reservation of an older lease remains.
        codes: [0, 0, 1, 0, 0],
        files: ["172.30.5.2", "172.30.5.3", "last_reserved_ip.0"],
        afterV4: [],
        dual: 0,
        afterDual: true,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
