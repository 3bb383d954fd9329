// The pure core, no root needed: address choice, IPAM over a memory store, env/config validation, results in every
// spec version, and whole commands in-process through runPlugin with the fake kernel.
import assert from "node:assert/strict";
import { formatIpv4, parseCidr, parseIpv4 } from "#lib/ipv4.js";
import { CniCode, CniError } from "../src/cni-error.js";
import { parseConfig, parseConfigJson } from "../src/config.js";
import { parseArgs, parseInvocation } from "../src/env.js";
import { chooseAddress, type Lease } from "../src/ipam/choose.js";
import { allocate, release, releaseAllExcept } from "../src/ipam/ipam.js";
import { formatAddress } from "../src/ipam/store.js";
import { podDns } from "../src/pod-dns.js";
import { mergeResults, podNetworkSpec } from "../src/pod-spec.js";
import { runPlugin } from "../src/plugin.js";
import { formatResult, parsePrevResult, type CniResult } from "../src/result.js";
import { readLease } from "../src/subnet.js";
import { hostVethName } from "../src/wiring/host-veth-name.js";
import { FakeDeps, MemoryStore } from "./support/fake-deps.js";

const ip = (text: string): number => parseIpv4(text) ?? assert.fail(text);
const lease = (cidr: string, gateway: string): Lease => ({
  subnet: parseCidr(cidr) ?? assert.fail(cidr),
  gateway: ip(gateway),
});
const cniError =
  (code: number, pattern?: RegExp) =>
  (error: unknown): boolean =>
    error instanceof CniError && error.code === code && (pattern === undefined || pattern.test(error.message));
const SUBNET_ENV =
  "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";

describe("cni plugin core (pure)", () => {
  describe("address choice", () => {
    const l24 = lease("172.30.5.0/24", "172.30.5.1");
    it("starts after the gateway, goes round-robin after the last reserved, wraps, skips taken ones", () => {
      assert.equal(formatIpv4(chooseAddress(l24, new Set(), undefined) ?? 0), "172.30.5.2");
      assert.equal(formatIpv4(chooseAddress(l24, new Set(), ip("172.30.5.9")) ?? 0), "172.30.5.10");
      assert.equal(formatIpv4(chooseAddress(l24, new Set([ip("172.30.5.2")]), ip("172.30.5.254")) ?? 0), "172.30.5.3");
    });
    it("never hands out the network, the gateway or the broadcast address, and reports a full subnet", () => {
      const l30 = lease("172.30.7.0/30", "172.30.7.1");
      assert.equal(formatIpv4(chooseAddress(l30, new Set(), undefined) ?? 0), "172.30.7.2");
      assert.equal(chooseAddress(l30, new Set([ip("172.30.7.2")]), undefined), undefined);
      const seen = new Set<number>();
      for (let n = 0; n < 253; n += 1) seen.add(chooseAddress(l24, seen, undefined) ?? assert.fail("full too early"));
      assert.equal(chooseAddress(l24, seen, undefined), undefined);
      for (const bad of ["172.30.5.0", "172.30.5.1", "172.30.5.255"]) assert.ok(!seen.has(ip(bad)), bad);
      const gatewayInTheMiddle = lease("172.30.8.0/29", "172.30.8.3");
      const all = new Set<number>();
      for (let n = 0; n < 5; n += 1) all.add(chooseAddress(gatewayInTheMiddle, all, undefined) ?? assert.fail("full"));
      assert.deepEqual([...all].map(formatIpv4), [
        "172.30.8.1",
        "172.30.8.2",
        "172.30.8.4",
        "172.30.8.5",
        "172.30.8.6",
      ]);
    });
  });

  describe("IPAM over the store port", () => {
    const l24 = lease("172.30.5.0/24", "172.30.5.1");
    it("returns the same address for the same attachment, another for another ifname; release frees only its own", async () => {
      const store = new MemoryStore();
      const a = (await allocate(store, { ipv4: l24 }, { containerId: "c1", ifname: "eth0" })).ipv4?.ip;
      assert.deepEqual(await allocate(store, { ipv4: l24 }, { containerId: "c1", ifname: "eth0" }), {
        ipv4: { ip: a, fresh: false, superseded: [] },
      });
      const b = (await allocate(store, { ipv4: l24 }, { containerId: "c1", ifname: "net1" })).ipv4?.ip;
      assert.notEqual(a, b);
      assert.deepEqual(await release(store, { containerId: "c1", ifname: "eth0" }), [a]);
      assert.deepEqual(await release(store, { containerId: "c1", ifname: "eth0" }), []);
      assert.deepEqual(
        store.list().map((r) => r.ip),
        [b],
      );
    });
    it("replaces a reservation from an older lease and ignores old-lease addresses when choosing", async () => {
      const store = new MemoryStore();
      store.reserve({ ip: ip("172.30.9.2"), containerId: "c1", ifname: "eth0" });
      const moved = await allocate(store, { ipv4: l24 }, { containerId: "c1", ifname: "eth0" });
      assert.equal(formatIpv4(moved.ipv4?.ip ?? 0), "172.30.5.2");
      assert.deepEqual(
        store.list().map((r) => formatAddress(r.ip)),
        ["172.30.5.2"],
      );
    });
    it("fails with code 100 naming the subnet when full", async () => {
      const store = new MemoryStore();
      const tiny = lease("172.30.7.0/30", "172.30.7.1");
      await allocate(store, { ipv4: tiny }, { containerId: "c1", ifname: "eth0" });
      await assert.rejects(
        allocate(store, { ipv4: tiny }, { containerId: "c2", ifname: "eth0" }),
        cniError(CniCode.SUBNET_FULL, /172\.30\.7\.0\/30/),
      );
    });
    it("GC keeps only valid attachments and returns what it freed", async () => {
      const store = new MemoryStore();
      for (const id of ["a", "b", "c"]) await allocate(store, { ipv4: l24 }, { containerId: id, ifname: "eth0" });
      store.reserve({ ip: ip("172.30.5.200"), containerId: "", ifname: "" }); // unreadable owner
      const freed = await releaseAllExcept(store, [{ containerId: "b", ifname: "eth0" }]);
      assert.deepEqual(freed.map((r) => r.containerId).sort(), ["", "a", "c"]);
      assert.deepEqual(
        store.list().map((r) => r.containerId),
        ["b"],
      );
    });
  });

  describe("environment and config", () => {
    it("names every missing variable and refuses unsafe names", () => {
      assert.throws(
        () => parseInvocation({ CNI_COMMAND: "ADD" }),
        cniError(4, /CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME/),
      );
      assert.throws(() => parseInvocation({ CNI_COMMAND: "NOPE" }), cniError(4, /CNI_COMMAND "NOPE"/));
      const base = { CNI_COMMAND: "DEL", CNI_CONTAINERID: "abc", CNI_IFNAME: "eth0" };
      for (const id of ["../x", "a/b", " a", "a b", ".hidden", "x".repeat(257), ""]) {
        if (id === "")
          assert.throws(() => parseInvocation({ ...base, CNI_CONTAINERID: id }), cniError(4, /CNI_CONTAINERID/));
        else assert.throws(() => parseInvocation({ ...base, CNI_CONTAINERID: id }), cniError(4, /CNI_CONTAINERID/), id);
      }
      for (const name of [".", "..", "a/b", "a:b", "a b", "x".repeat(16)])
        assert.throws(() => parseInvocation({ ...base, CNI_IFNAME: name }), cniError(4, /CNI_IFNAME/), name);
      assert.throws(() => parseInvocation({ ...base, CNI_NETNS: "relative/ns" }), cniError(4, /CNI_NETNS/));
      assert.deepEqual(parseInvocation({ ...base, CNI_PATH: "/a:/b" }).path, ["/a", "/b"]);
    });
    it("CNI_ARGS: K=V pairs; unknown keys refused (code 2) unless IgnoreUnknown", () => {
      assert.deepEqual(
        [...parseArgs("K8S_POD_NAME=x;K8S_POD_NAMESPACE=y")],
        [
          ["K8S_POD_NAME", "x"],
          ["K8S_POD_NAMESPACE", "y"],
        ],
      );
      assert.throws(() => parseArgs("FOO=1"), cniError(2, /FOO/));
      assert.equal(parseArgs("IgnoreUnknown=1;FOO=1").get("FOO"), "1");
      assert.throws(() => parseArgs("novalue"), cniError(4, /CNI_ARGS/));
    });
    it("applies documented defaults", () => {
      const config = parseConfig({ cniVersion: "1.0.0", name: "net", type: "trellis" });
      assert.deepEqual(config, {
        cniVersion: "1.0.0",
        name: "net",
        type: "trellis",
        subnetFile: "/run/flannel/subnet.env",
        dataDir: "/var/lib/cni/networks/net",
        bridge: "cni0",
        agentSocket: "/run/trellis/cni.sock",
        hairpinMode: true,
        isDefaultGateway: true,
        dns: {},
        validAttachments: [],
        requestedIps: [],
        labels: {},
        podRecordDir: "/run/trellis/pods",
      });
    });
    it("refuses bad fields naming the field, the value and what is allowed", () => {
      const base = { cniVersion: "1.0.0", name: "net", type: "trellis" };
      const cases: [Record<string, unknown>, number, RegExp][] = [
        [{ ...base, mtu: 10 }, 7, /mtu 10 is invalid: an integer between 68 and 65535/],
        [{ ...base, bridge: "a/b" }, 7, /bridge "a\/b"/],
        [{ ...base, subnetFile: "relative" }, 7, /subnetFile "relative"/],
        [
          { ...base, agentSocket: "run/cni.sock" },
          7,
          /agentSocket "run\/cni\.sock" is invalid: an absolute path of at most 107 bytes/,
        ],
        [{ ...base, agentSocket: `/${"s".repeat(107)}` }, 7, /agentSocket/],
        [{ ...base, agentSocket: '/a"b' }, 7, /agentSocket/],
        [{ ...base, name: "../x" }, 7, /name/],
        [{ ...base, isDefaultGateway: 1 }, 7, /isDefaultGateway 1 is invalid: true or false/],
        [{ ...base, dns: { nameservers: [1] } }, 7, /dns\.nameservers/],
        [{ ...base, ipMasq: true }, 2, /ipMasq/],
        [{ ...base, isGateway: false }, 2, /isGateway/],
        [{ ...base, "cni.dev/valid-attachments": [{ containerID: 1 }] }, 7, /valid-attachments\[0\]/],
        [{ name: "net", type: "trellis" }, 7, /cniVersion \(missing\)/],
        [{ ...base, cniVersion: "0.2.0" }, 1, /0\.2\.0/],
      ];
      for (const [raw, code, pattern] of cases)
        assert.throws(() => parseConfig(raw), cniError(code, pattern), JSON.stringify(raw));
      assert.throws(() => parseConfigJson("[1]"), cniError(6));
      assert.throws(() => parseConfigJson("{"), cniError(6, /not JSON/));
    });
    it("reads the lease and refuses inconsistent ones", () => {
      const files = new Map([
        ["/ok", SUBNET_ENV],
        ["/outside", SUBNET_ENV.replace("172.30.5.1/24", "10.9.5.1/24")],
        ["/bcast", SUBNET_ENV.replace("172.30.5.1/24", "172.30.5.255/24")],
      ]);
      const deps = { readFile: (p: string): string | undefined => files.get(p) };
      const l = readLease(deps, "/ok");
      assert.deepEqual(
        [formatIpv4(l.ipv4?.subnet.ip ?? 0), l.ipv4?.subnet.prefixLen, formatIpv4(l.ipv4?.gateway ?? 0), l.mtu],
        ["172.30.5.0", 24, "172.30.5.1", 1450],
      );
      assert.equal(l.ipv6, undefined);
      assert.throws(() => readLease(deps, "/missing"), cniError(11));
      assert.throws(() => readLease(deps, "/outside"), cniError(101, /outside FLANNEL_NETWORK/));
      assert.throws(() => readLease(deps, "/bcast"), cniError(101));
    });
    it("names the host veth deterministically from the attachment", () => {
      const a = hostVethName({ containerId: "abc", ifname: "eth0" });
      assert.match(a, /^veth[0-9a-f]{8}$/);
      assert.equal(hostVethName({ containerId: "abc", ifname: "eth0" }), a);
      assert.notEqual(hostVethName({ containerId: "abc", ifname: "net1" }), a);
      assert.notEqual(hostVethName({ containerId: "abd", ifname: "eth0" }), a);
    });
  });

  describe("results across spec versions", () => {
    const result: CniResult = {
      interfaces: [
        { name: "cni0", mac: "0a:58:ac:1e:05:01", mtu: 1450 },
        { name: "veth01234567", mac: "02:00:00:00:00:01", mtu: 1450 },
        { name: "eth0", mac: "02:00:00:00:00:02", mtu: 1450, sandbox: "/run/netns/p" },
      ],
      ips: [{ address: "172.30.5.2/24", gateway: "172.30.5.1", interface: 2 }],
      routes: [{ dst: "0.0.0.0/0", gw: "172.30.5.1" }],
      dns: {},
    };
    it("spells ips[].version before 1.0.0 and interfaces[].mtu only in 1.1.0", () => {
      for (const version of ["0.3.0", "0.3.1", "0.4.0"] as const) {
        const out = formatResult(result, version);
        assert.deepEqual(out.ips, [{ version: "4", address: "172.30.5.2/24", gateway: "172.30.5.1", interface: 2 }]);
        assert.equal((out.interfaces as Record<string, unknown>[])[2]?.mtu, undefined);
      }
      assert.deepEqual(formatResult(result, "1.0.0").ips, [
        { address: "172.30.5.2/24", gateway: "172.30.5.1", interface: 2 },
      ]);
      assert.equal((formatResult(result, "1.1.0").interfaces as Record<string, unknown>[])[2]?.mtu, 1450);
    });
    it("parses a prevResult of any version back (round trip) and refuses malformed ones (code 7)", () => {
      for (const version of ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const) {
        const back = parsePrevResult(JSON.parse(JSON.stringify(formatResult(result, version))));
        assert.deepEqual(formatResult(back, version), formatResult(result, version), version);
      }
      assert.throws(
        () => parsePrevResult({ ips: [{ address: "nope" }] }),
        cniError(7, /prevResult\.ips\[0\]\.address/),
      );
      assert.throws(() => parsePrevResult({ interfaces: "x" }), cniError(7, /prevResult\.interfaces/));
    });
    it("appends our result after a previous plugin's, shifting interface indexes", () => {
      const previous: CniResult = {
        interfaces: [{ name: "lo" }],
        ips: [{ address: "127.0.0.1/8", interface: 0 }],
        routes: [],
        dns: { nameservers: ["1.1.1.1"] },
      };
      const merged = mergeResults(previous, result);
      assert.deepEqual(
        merged.ips.map((i) => i.interface),
        [0, 3],
      );
      assert.deepEqual(merged.dns, { nameservers: ["1.1.1.1"] });
    });
    it("routes only the pod network when isDefaultGateway is false", () => {
      const config = parseConfig({ cniVersion: "1.0.0", name: "n", type: "trellis", isDefaultGateway: false });
      const spec = podNetworkSpec(
        config,
        readLease({ readFile: () => SUBNET_ENV }, "/x"),
        { containerId: "c", ifname: "eth0" },
        { netns: "/run/netns/p", podIps: { ipv4: ip("172.30.5.7") }, hostVeth: "veth00000000" },
      );
      assert.deepEqual(
        spec.addresses.map((a) => a.routes),
        [[{ dst: "172.30.0.0", prefixLen: 16 }]],
      );
    });
  });

  describe("runPlugin in-process with the fake kernel", () => {
    const env = (command: string, id = "c1"): Record<string, string> => ({
      CNI_COMMAND: command,
      CNI_CONTAINERID: id,
      CNI_NETNS: "/run/netns/p1",
      CNI_IFNAME: "eth0",
    });
    const config = (extra: Record<string, unknown> = {}): string =>
      JSON.stringify({ cniVersion: "1.0.0", name: "n", type: "trellis", subnetFile: "/s", dataDir: "/d", ...extra });

    it("ADD wires the fake kernel; CHECK passes, then names a removed route; DEL clears everything", async () => {
      const deps = new FakeDeps();
      deps.files.set("/s", SUBNET_ENV);
      deps.world.addNamespace("/run/netns/p1");
      const added = await runPlugin({ env: env("ADD"), stdin: config(), deps });
      assert.equal(added.exitCode, 0, added.stdout);
      const result = JSON.parse(added.stdout) as Record<string, unknown>;
      assert.deepEqual(deps.world.linkNames("/run/netns/p1"), ["eth0"]);
      assert.equal(deps.world.ns("host").sysctls.get("net.ipv4.ip_forward"), "1");
      const checked = await runPlugin({ env: env("CHECK"), stdin: config({ prevResult: result }), deps });
      assert.equal(checked.exitCode, 0, checked.stdout);
      deps.world.ns("/run/netns/p1").routes = [];
      const broken = await runPlugin({ env: env("CHECK"), stdin: config({ prevResult: result }), deps });
      assert.equal((JSON.parse(broken.stdout) as { code: number }).code, 103);
      assert.match(broken.stdout, /route 0\.0\.0\.0\/0 via 172\.30\.5\.1 dev eth0 is missing/);
      const deleted = await runPlugin({
        env: { CNI_COMMAND: "DEL", CNI_CONTAINERID: "c1", CNI_IFNAME: "eth0" },
        stdin: config(),
        deps,
      });
      assert.deepEqual([deleted.exitCode, deleted.stdout], [0, ""]);
      assert.deepEqual(deps.allReservations(), []);
      assert.deepEqual(deps.world.linkNames("host"), ["cni0"]);
      assert.deepEqual(deps.world.linkNames("/run/netns/p1"), []);
    });

    it("answers errors in the config's version, or the latest when the version is unknown", async () => {
      const deps = new FakeDeps();
      const out = await runPlugin({ env: env("ADD"), stdin: config({ cniVersion: "0.4.0" }), deps });
      assert.deepEqual(JSON.parse(out.stdout), {
        cniVersion: "0.4.0",
        code: 11,
        msg: "/s does not exist yet: the trellis agent has not leased a subnet for this node",
        details: "",
      });
      const unknown = await runPlugin({ env: env("ADD"), stdin: config({ cniVersion: "7.0.0" }), deps });
      assert.equal((JSON.parse(unknown.stdout) as { cniVersion: string }).cniVersion, "1.1.0");
      // Errors found in the environment, before the config is validated, still answer in the config's version.
      const early = [
        { ...env("ADD"), CNI_CONTAINERID: "bad id" },
        { ...env("ADD"), CNI_IFNAME: "a/b" },
        { ...env("ADD"), CNI_COMMAND: "FROB" },
        { ...env("ADD"), CNI_ARGS: "NOPE=1" },
      ];
      for (const bad of early) {
        const answer = JSON.parse((await runPlugin({ env: bad, stdin: config(), deps })).stdout) as {
          cniVersion: string;
          code: number;
        };
        assert.equal(answer.cniVersion, "1.0.0", JSON.stringify(bad));
        assert.notEqual(answer.code, 0);
      }
    });

    it("records a pod the runtime named (CNI_ARGS K8S_POD_*, args.cni.labels) for the agent; DEL and GC remove the record", async () => {
      const deps = new FakeDeps();
      deps.files.set("/s", SUBNET_ENV);
      deps.world.addNamespace("/run/netns/p1");
      const named = { ...env("ADD"), CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1" };
      const labels = { args: { cni: { labels: [{ key: "app", value: "web" }] } } };
      assert.equal((await runPlugin({ env: named, stdin: config(labels), deps })).exitCode, 0);
      const records = deps.podRecords("/run/trellis/pods", "n");
      assert.deepEqual(JSON.parse(records.records.get("c1:eth0") ?? "{}"), {
        namespace: "default",
        name: "web-1",
        labels: { app: "web" },
        ip: "172.30.5.2",
        containerID: "c1",
        ifname: "eth0",
      });
      assert.equal(
        (
          await runPlugin({
            env: { CNI_COMMAND: "DEL", CNI_CONTAINERID: "c1", CNI_IFNAME: "eth0" },
            stdin: config(),
            deps,
          })
        ).exitCode,
        0,
      );
      assert.deepEqual([...records.records.keys()], []);
      // Without a name from the runtime there is no record (and no endpoint); a GC removes records it does not know.
      assert.equal((await runPlugin({ env: env("ADD"), stdin: config(), deps })).exitCode, 0);
      assert.deepEqual([...records.records.keys()], []);
      records.write({ containerId: "gone", ifname: "eth0" }, "{}");
      assert.equal(
        (
          await runPlugin({
            env: { CNI_COMMAND: "GC", CNI_PATH: "/x" },
            stdin: config({
              cniVersion: "1.1.0",
              "cni.dev/valid-attachments": [{ containerID: "c1", ifname: "eth0" }],
            }),
            deps,
          })
        ).exitCode,
        0,
      );
      assert.deepEqual([...records.records.keys()], []);
      const bad = await runPlugin({
        env: named,
        stdin: config({ args: { cni: { labels: [{ key: "bad key", value: "x" }] } } }),
        deps,
      });
      assert.equal((JSON.parse(bad.stdout) as { code: number }).code, 7);
    });

    it("a wiring failure undoes the reservation and the veth (no partial state)", async () => {
      const deps = new FakeDeps();
      deps.files.set("/s", SUBNET_ENV);
      deps.world.addNamespace("/run/netns/p1");
      // Something else already owns the bridge name.
      await (await deps.hostKernel()).createVeth({ name: "cni0", peerName: "cni0peer" });
      const out = await runPlugin({ env: env("ADD"), stdin: config(), deps });
      assert.equal((JSON.parse(out.stdout) as { code: number }).code, CniCode.CONFLICT);
      assert.deepEqual(deps.allReservations(), []);
      assert.deepEqual(deps.world.linkNames("/run/netns/p1"), []);
    });
  });
});

describe("the pod's DNS settings in the result", () => {
  it("with the cluster domain: ClusterFirst's search list for the pod's namespace, then the conflist's own", () => {
    const dns = {
      nameservers: ["169.254.20.10"],
      domain: "cluster.local",
      options: ["ndots:5"],
      search: ["corp.example", "svc.cluster.local"],
    };
    assert.deepEqual(podDns(dns, "shop"), {
      nameservers: ["169.254.20.10"],
      domain: "cluster.local",
      options: ["ndots:5"],
      search: ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"],
    });
    assert.deepEqual(
      podDns(dns, undefined).search,
      ["svc.cluster.local", "cluster.local", "corp.example"],
      "a pod the runtime did not name",
    );
    assert.deepEqual(
      podDns({ nameservers: ["10.0.0.2"] }, "shop"),
      { nameservers: ["10.0.0.2"] },
      "no domain: the conflist's dns as it is",
    );
  });
});
