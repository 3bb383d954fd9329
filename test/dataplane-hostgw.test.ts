// host-gw and vxlan+DirectRouting end to end, and how the daemon reports bad node settings.
import assert from "node:assert/strict";
import { join } from "node:path";
import { runStatus } from "../lab/src/exec.js";
import { pingMatrix } from "../lab/src/ping.js";
import { AGENT_BIN } from "../lab/src/paths.js";
import { fdb, ourRoutes, timeUntil } from "./support/kernel-probe.js";
import { useLab } from "./support/lab-fixture.js";

describe("dataplane: host-gw (2 nodes)", function () {
  this.timeout(120_000);
  const fixture = useLab({ nodes: 2, backend: "host-gw" });
  const ns = (i: number): string => fixture.lab.layout.node(i).ns;

  it("routes each peer subnet via the peer's public IP, no device, and node subnets reach each other", async () => {
    const peer = await fixture.lab.nodeGateway(2);
    const routes = await ourRoutes(ns(1));
    assert.deepEqual(
      routes.map((r) => [r.dst, r.gateway, r.dev]),
      [[`${peer.ip.replace(/\.1$/, ".0")}/24`, "10.42.0.12", "eth0"]],
    );
    assert.equal((await runStatus("ip", ["-n", ns(1), "link", "show", "flannel.1"])).code, 1);
    const results = await pingMatrix(await fixture.lab.ensureGateways());
    assert.ok(results.every((r) => r.ok));
    assert.match(await fixture.lab.agentLog(1), /FLANNEL_MTU|ready/);
  });

  it("reports a peer that is not directly reachable and programs nothing for it", async () => {
    await fixture.lab.etcdctl(
      "put",
      "/coreos.com/network/subnets/172.30.250.0-24",
      '{"PublicIP":"10.50.0.1","BackendType":"host-gw"}',
    );
    await timeUntil("warning", async () =>
      /peer not programmed subnet=172\.30\.250\.0\/24 publicIp=10\.50\.0\.1 reason=public IP 10\.50\.0\.1 is not on a network directly connected to eth0/.test(
        await fixture.lab.agentLog(1),
      ),
    );
    assert.ok(!(await ourRoutes(ns(1))).some((r) => r.dst === "172.30.250.0/24"));
    await fixture.lab.etcdctl("del", "/coreos.com/network/subnets/172.30.250.0-24");
  });

  describe("bad node settings: a clear message and exit code, never a hang or a stack trace", () => {
    // A node namespace of its own, wired to the underlay but without an agent: the runs below start there.
    let bare = "";
    before(async () => {
      const node = await fixture.lab.addNode(undefined, undefined, false);
      bare = node.ns;
      await runStatus("ip", ["-n", bare, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"]);
      await runStatus("ip", ["-n", bare, "link", "set", "eth1", "up"]);
    });

    async function agentRun(args: string[], wrap: string[] = []): Promise<{ code: number; stderr: string }> {
      const env = {
        ...process.env,
        TRELLIS_ETCD_ENDPOINTS: fixture.lab.current.etcdEndpoints.join(","),
        TRELLIS_SUBNET_FILE: join(fixture.lab.layout.stateDir, "bare-subnet.env"),
        TRELLIS_CNI_SOCKET: "",
        TRELLIS_LOG_FORMAT: "text",
      };
      return runStatus("ip", ["netns", "exec", bare, ...wrap, AGENT_BIN, "run", ...args], { env, timeoutMs: 20_000 });
    }

    it("an interface that does not exist", async () => {
      const result = await agentRun(["--iface", "eth9"]);
      assert.equal(result.code, 2);
      assert.match(
        result.stderr,
        /--iface "eth9" is invalid: must name an interface or one of its IPv4 addresses; this node has: .*eth0 \(10\.42\.0\.\d+\)/,
      );
      assert.match(result.stderr, /eth1 \(no IPv4\)/);
    });

    it("an interface without an IPv4 address, and a loopback one", async () => {
      const none = await agentRun(["--iface", "eth1"]);
      assert.equal(none.code, 2);
      assert.match(none.stderr, /--iface "eth1" is invalid: must have an IPv4 address; eth1 has none/);
      const loopback = await agentRun(["--iface", "lo"]);
      assert.equal(loopback.code, 2);
      assert.match(loopback.stderr, /--iface "lo" is invalid: is a loopback interface/);
    });

    it("a public IP that is on no interface", async () => {
      const result = await agentRun(["--public-ip", "10.42.0.99"]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /--public-ip "10\.42\.0\.99" is invalid: is not on any interface of this node/);
    });

    it("no permission to program the kernel", async () => {
      // Root without any capability, rather than another user: the checkout may sit where only root can read (a
      // clone in /root is 0700), and uid 0 still owns those files.
      const result = await agentRun(["--ip-masq=false"], ["setpriv", "--inh-caps=-all", "--bounding-set=-all"]);
      assert.equal(result.code, 7, result.stderr);
      assert.match(result.stderr, /needs root or CAP_NET_ADMIN/);
      assert.doesNotMatch(result.stderr, /\n\s+at /);
    });
  });
});

describe("dataplane: vxlan with DirectRouting (2 nodes)", function () {
  this.timeout(120_000);
  const fixture = useLab({ nodes: 2, backend: "vxlan", directRouting: true });
  const ns = (i: number): string => fixture.lab.layout.node(i).ns;

  it("routes same-L2 peers directly and others through the tunnel", async () => {
    const peer = await fixture.lab.nodeGateway(2);
    await fixture.lab.etcdctl(
      "put",
      "/coreos.com/network/subnets/172.30.250.0-24",
      '{"PublicIP":"10.50.0.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:fa:01"}}',
    );
    await timeUntil("tunnel route", async () => (await ourRoutes(ns(1))).some((r) => r.dst === "172.30.250.0/24"));
    const routes = await ourRoutes(ns(1));
    assert.deepEqual(routes.find((r) => r.dst === `${peer.ip.replace(/\.1$/, ".0")}/24`)?.gateway, "10.42.0.12");
    assert.deepEqual(routes.find((r) => r.dst === "172.30.250.0/24")?.dev, "flannel.1");
    assert.deepEqual(
      (await fdb(ns(1), "flannel.1")).map((f) => f.dst),
      ["10.50.0.1"],
    );
    const results = await pingMatrix(await fixture.lab.ensureGateways());
    assert.ok(results.every((r) => r.ok));
  });
});
