// The VXLAN dataplane end to end: real agents in node namespaces, real etcd, the real kernel.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { run, runStatus, start } from "../lab/src/exec.js";
import { OUTSIDE_IP } from "../lab/src/layout.js";
import { pingMatrix, ping } from "../lab/src/ping.js";
import { fdb, linkExists, neighbors, nftTable, ourRoutes, timeUntil } from "./support/kernel-probe.js";
import { useLab } from "./support/lab-fixture.js";

const PEER_KEY = "/coreos.com/network/subnets/172.30.250.0-24";
const PEER_VALUE =
  '{"PublicIP":"10.42.0.250","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:fa:01"}}';

describe("dataplane: vxlan (3 nodes)", function () {
  this.timeout(120_000);
  const fixture = useLab({ nodes: 3, backend: "vxlan", agentEnv: { TRELLIS_IPTABLES_RESYNC: "1s" } });
  const ns = (i: number): string => fixture.lab.layout.node(i).ns;

  it("every node subnet reaches every other", async () => {
    const endpoints = await fixture.lab.ensureGateways();
    const results = await pingMatrix(endpoints);
    assert.deepEqual(
      results.filter((r) => !r.ok).map((r) => `${r.from.name}→${r.to.name}`),
      [],
    );
    assert.equal(results.length, 6);
  });

  it("programs flannel's device and per-peer route, ARP and FDB entries", async () => {
    const { stdout } = await run("ip", ["-j", "-d", "-n", ns(1), "link", "show", "flannel.1"]);
    const [link] = JSON.parse(stdout) as {
      mtu: number;
      address: string;
      linkinfo: { info_kind: string; info_data: { id: number; port: number; local: string; learning: boolean } };
    }[];
    assert.ok(link !== undefined);
    assert.equal(link.linkinfo.info_kind, "vxlan");
    const data = link.linkinfo.info_data;
    assert.deepEqual([data.id, data.port, data.local, data.learning, link.mtu], [1, 8472, "10.42.0.11", false, 1450]);
    const gateways = await Promise.all([2, 3].map((i) => fixture.lab.nodeGateway(i)));
    const routes = await ourRoutes(ns(1));
    for (const gw of gateways) {
      const subnet = gw.ip.replace(/\.1$/, ".0");
      const route = routes.find((r) => r.dst === `${subnet}/24`);
      assert.deepEqual([route?.gateway, route?.dev, route?.flags], [subnet, "flannel.1", ["onlink"]]);
      assert.ok((await neighbors(ns(1), "flannel.1")).some((n) => n.dst === subnet && n.state?.includes("PERMANENT")));
    }
    const entries = await fdb(ns(1), "flannel.1");
    assert.deepEqual(entries.map((e) => e.dst).sort(), ["10.42.0.12", "10.42.0.13"]);
    const env = await readFile(join(fixture.lab.layout.node(1).dir, "subnet.env"), "utf8");
    assert.match(
      env,
      /^FLANNEL_NETWORK=172\.30\.0\.0\/16\nFLANNEL_SUBNET=172\.30\.\d+\.1\/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n$/,
    );
  });

  it("a peer added in etcd is programmed on every node within 1 s, and removed within 1 s", async () => {
    await fixture.lab.etcdctl("put", PEER_KEY, PEER_VALUE);
    const added = await Promise.all(
      [1, 2, 3].map((i) =>
        timeUntil(
          `peer on n${i}`,
          async () =>
            (await ourRoutes(ns(i))).some((r) => r.dst === "172.30.250.0/24") &&
            (await neighbors(ns(i), "flannel.1")).some((n) => n.lladdr === "02:00:00:00:fa:01") &&
            (await fdb(ns(i), "flannel.1")).some((f) => f.mac === "02:00:00:00:fa:01" && f.dst === "10.42.0.250"),
        ),
      ),
    );
    assert.ok(Math.max(...added) < 1000, `added after ${added.map(Math.round).join("/")} ms`);
    await fixture.lab.etcdctl("del", PEER_KEY);
    const removed = await Promise.all(
      [1, 2, 3].map((i) =>
        timeUntil(
          `peer gone on n${i}`,
          async () =>
            !(await ourRoutes(ns(i))).some((r) => r.dst === "172.30.250.0/24") &&
            !(await neighbors(ns(i), "flannel.1")).some((n) => n.lladdr === "02:00:00:00:fa:01") &&
            !(await fdb(ns(i), "flannel.1")).some((f) => f.mac === "02:00:00:00:fa:01"),
        ),
      ),
    );
    assert.ok(Math.max(...removed) < 1000, `removed after ${removed.map(Math.round).join("/")} ms`);
  });

  it("repairs a hand-deleted route, neighbour, FDB entry and device within 1 s each", async () => {
    const gw = await fixture.lab.nodeGateway(2);
    const subnet = gw.ip.replace(/\.1$/, ".0");
    const mac = (await neighbors(ns(1), "flannel.1")).find((n) => n.dst === subnet)?.lladdr ?? "";
    const cases: [string, string[], () => Promise<boolean>][] = [
      [
        "route",
        ["route", "del", `${subnet}/24`],
        async () => (await ourRoutes(ns(1))).some((r) => r.dst === `${subnet}/24`),
      ],
      [
        "neighbour",
        ["neigh", "del", subnet, "dev", "flannel.1"],
        async () =>
          (await neighbors(ns(1), "flannel.1")).some(
            (n) => n.dst === subnet && n.state?.includes("PERMANENT") === true,
          ),
      ],
      [
        "device",
        ["link", "del", "flannel.1"],
        async () =>
          (await linkExists(ns(1), "flannel.1")) &&
          (await ourRoutes(ns(1))).length === 2 &&
          (await fdb(ns(1), "flannel.1")).length === 2,
      ],
    ];
    for (const [what, args, restored] of cases) {
      await run("ip", ["-n", ns(1), ...args]);
      const ms = await timeUntil(`${what} restored`, restored, 3000);
      assert.ok(ms < 1000, `${what} restored after ${Math.round(ms)} ms`);
    }
    await run("bridge", ["-n", ns(1), "fdb", "del", mac, "dev", "flannel.1", "dst", "10.42.0.12", "self"]);
    const ms = await timeUntil(
      "fdb restored",
      async () => (await fdb(ns(1), "flannel.1")).some((f) => f.mac === mac),
      3000,
    );
    assert.ok(ms < 1000, `fdb restored after ${Math.round(ms)} ms`);
    assert.match(
      await fixture.lab.agentLog(1),
      /WARN\s+repaired route that was removed from the kernel key=172\.30\.\d+\.0\/24 subnet=172\.30\.\d+\.0\/24 publicIp=10\.42\.0\.12/,
    );
    assert.match(
      await fixture.lab.agentLog(1),
      /WARN\s+vxlan device created device=flannel\.1 reason=device was deleted/,
    );
    const after = await pingMatrix(await fixture.lab.ensureGateways());
    assert.ok(after.every((r) => r.ok));
  });

  it("skips a peer lease with an unusable value, with a warning, and keeps serving the rest", async () => {
    await fixture.lab.etcdctl(
      "put",
      "/coreos.com/network/subnets/172.30.251.0-24",
      '{"PublicIP":"10.42.0.251","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"not-a-mac"}}',
    );
    await fixture.lab.etcdctl("put", "/coreos.com/network/subnets/172.30.252.0-24", '{"PublicIP":"nope"}');
    await timeUntil("warnings", async () =>
      /skipping a lease that cannot be used subnet=172\.30\.252\.0\/24/.test(await fixture.lab.agentLog(1)),
    );
    assert.match(
      await fixture.lab.agentLog(1),
      /skipping a lease that cannot be used subnet=172\.30\.251\.0\/24 reason=BackendData\.VtepMAC "not-a-mac"/,
    );
    assert.ok(!(await ourRoutes(ns(1))).some((r) => r.dst.startsWith("172.30.25")));
    await fixture.lab.etcdctl("del", "/coreos.com/network/subnets/172.30.25", "--prefix");
    assert.ok((await pingMatrix(await fixture.lab.ensureGateways())).every((r) => r.ok));
  });

  it("masquerades pod traffic leaving the network, and re-installs rules removed by hand", async () => {
    const gw = await fixture.lab.nodeGateway(1);
    // The underlay has no route back to 172.30.0.0/16: only a masqueraded packet gets an answer.
    const out = await ping(
      { name: "n1", ns: ns(1), ip: gw.ip },
      { name: "outside", ns: fixture.lab.layout.underlayNs, ip: OUTSIDE_IP },
    );
    assert.ok(out.ok, "pod subnet → outside should be masqueraded");
    assert.match((await nftTable(ns(1))) ?? "", /masquerade fully-random/);
    await run("ip", ["netns", "exec", ns(1), "nft", "delete", "table", "ip", "trellis"]);
    const ms = await timeUntil("rules back", async () => (await nftTable(ns(1))) !== undefined, 5000);
    assert.ok(ms < 2500, `rules re-installed after ${Math.round(ms)} ms`);
    // The agent logs after its transaction is committed, so the table can be seen a moment before the line.
    await timeUntil(
      "repair logged",
      async () => /masquerade rules were changed or removed; re-installed/.test(await fixture.lab.agentLog(1)),
      2000,
    );
  });

  it("an agent restart keeps subnet and VTEP MAC and does not drop a continuous ping", async () => {
    const from = await fixture.lab.nodeGateway(1);
    const to = await fixture.lab.nodeGateway(2);
    const macOf = async (): Promise<string | undefined> =>
      (
        JSON.parse((await run("ip", ["-j", "-n", ns(2), "link", "show", "flannel.1"])).stdout) as { address: string }[]
      )[0]?.address;
    const macBefore = await macOf();
    const pinger = start("ping", "ip", [
      "netns",
      "exec",
      ns(1),
      "ping",
      "-n",
      "-q",
      "-i",
      "0.02",
      "-c",
      "250",
      "-W",
      "1",
      "-I",
      from.ip,
      to.ip,
    ]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await fixture.lab.killAgent(2);
    await fixture.lab.startAgent(2);
    await fixture.lab.waitReady(2);
    await pinger.exited;
    const summary = /(\d+) packets transmitted, (\d+) received/.exec(pinger.recentOutput);
    assert.ok(summary !== null, pinger.recentOutput);
    assert.equal(summary[2], summary[1], `lost pings: ${pinger.recentOutput}`);
    assert.deepEqual(await fixture.lab.nodeGateway(2), to);
    assert.equal(await macOf(), macBefore);
    const log = await fixture.lab.agentLog(2);
    assert.doesNotMatch(
      log.slice(log.lastIndexOf("network config")),
      /vxlan device (created|recreated)|removed stale/,
      "a restart must adopt, not rebuild",
    );
  });

  it("removes stale entries of a previous run at start", async () => {
    await fixture.lab.killAgent(3, "SIGTERM");
    assert.ok(await linkExists(ns(3), "flannel.1"), "stopping keeps the datapath");
    await run("ip", [
      "-n",
      ns(3),
      "route",
      "add",
      "172.30.240.0/24",
      "via",
      "172.30.240.0",
      "dev",
      "flannel.1",
      "onlink",
      "proto",
      "145",
    ]);
    await run("ip", [
      "-n",
      ns(3),
      "neigh",
      "add",
      "172.30.240.0",
      "lladdr",
      "02:00:00:00:f0:01",
      "dev",
      "flannel.1",
      "nud",
      "permanent",
    ]);
    await run("bridge", [
      "-n",
      ns(3),
      "fdb",
      "add",
      "02:00:00:00:f0:01",
      "dev",
      "flannel.1",
      "dst",
      "10.42.0.240",
      "self",
      "permanent",
    ]);
    // Someone else's route (another protocol) must survive.
    await run("ip", ["-n", ns(3), "route", "add", "172.31.0.0/24", "via", "10.42.0.1", "proto", "static"]);
    await fixture.lab.startAgent(3);
    await fixture.lab.waitReady(3);
    assert.ok(!(await ourRoutes(ns(3))).some((r) => r.dst === "172.30.240.0/24"));
    assert.ok(!(await neighbors(ns(3), "flannel.1")).some((n) => n.dst === "172.30.240.0"));
    assert.ok(!(await fdb(ns(3), "flannel.1")).some((f) => f.mac === "02:00:00:00:f0:01"));
    assert.equal(
      (await runStatus("ip", ["-n", ns(3), "route", "show", "172.31.0.0/24", "proto", "static"])).stdout.trim() !== "",
      true,
    );
    assert.match(await fixture.lab.agentLog(3), /removed stale route key=172\.30\.240\.0\/24/);
  });

  it("`trellis-agent cleanup` removes everything the agent created", async () => {
    await fixture.lab.killAgent(3, "SIGTERM");
    const node = fixture.lab.layout.node(3);
    const result = await fixture.lab.agentCli(["cleanup"], node.ns, fixture.lab.agentEnv(node));
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /removed 2 route\(s\), device\(s\): flannel\.1, rules: nftables/);
    assert.equal(await linkExists(ns(3), "flannel.1"), false);
    assert.deepEqual(await ourRoutes(ns(3)), []);
    assert.equal(await nftTable(ns(3)), undefined);
    assert.equal((await runStatus("test", ["-e", join(node.dir, "subnet.env")])).code, 1);
  });
});
