// The lab itself, end to end: real etcd in the underlay namespace, a real agent per node namespace.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { listNamespaces, ipIn } from "../lab/src/netns.js";
import { commandLine, run } from "../lab/src/exec.js";
import { UNDERLAY_BRIDGE_MAC, UNDERLAY_GATEWAY } from "../lab/src/layout.js";
import { ping } from "../lab/src/ping.js";
import { useLab } from "./support/lab-fixture.js";

interface StatusJson {
  leases: { subnet: string; publicIp: string; self: boolean; vtepMac: string | null; reserved: boolean }[];
}

describe("lab (3 nodes, vxlan)", function () {
  this.timeout(120_000);
  const fixture = useLab({ nodes: 3, backend: "vxlan" });

  async function leases(index = 1): Promise<StatusJson["leases"]> {
    return (JSON.parse(await fixture.lab.status(index, true)) as StatusJson).leases;
  }

  it("gives every node its own subnet and shows them all in agent status", async () => {
    const rows = await leases(2);
    assert.equal(rows.length, 3);
    assert.equal(new Set(rows.map((r) => r.subnet)).size, 3);
    assert.deepEqual(rows.map((r) => r.publicIp).sort(), ["10.42.0.11", "10.42.0.12", "10.42.0.13"]);
    assert.deepEqual(
      rows.filter((r) => r.self).map((r) => r.publicIp),
      ["10.42.0.12"],
    );
    assert.ok(rows.every((r) => r.vtepMac !== null && !r.reserved));
  });

  it("writes a flannel-compatible subnet.env on each node", async () => {
    const node = fixture.lab.layout.node(1);
    const env = await readFile(join(node.dir, "subnet.env"), "utf8");
    const own = (await leases(1)).find((r) => r.self);
    assert.ok(own !== undefined);
    const gateway = own.subnet.replace(/\.0\/24$/, ".1/24");
    assert.equal(
      env,
      `FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=${gateway}\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`,
    );
  });

  it("installs trellis with scripts/install, renders each node's config with deploy/render-node-config and starts the agent from both, as a real node", async () => {
    const dir = fixture.lab.layout.node(1).dir;
    const env = await readFile(join(dir, "agent.env"), "utf8");
    assert.match(env, /^TRELLIS_IFACE=eth0$/m);
    assert.match(env, /^TRELLIS_ETCD_ENDPOINTS=http:\/\/10\.42\.0\.1:2379$/m);
    assert.match(env, new RegExp(`^TRELLIS_SUBNET_FILE=${join(dir, "subnet.env").replace(/[./]/g, "\\$&")}$`, "m"));
    const unit = await readFile(join(dir, "trellis-agent.service"), "utf8");
    // The agent and the plugin run as scripts/install put them (under the lab's root), as on a node.
    assert.equal(unit.match(/^ExecStart=(\S+) run$/m)?.[1], fixture.lab.layout.agentBin);
    assert.match(await readFile(fixture.lab.layout.agentBin, "utf8"), /exec .*\/agent\/bin\/agent/);
    assert.match(await readFile(join(fixture.lab.layout.cniBinDir, "trellis"), "utf8"), /launcher\.cjs/);
    const conflist = JSON.parse(await readFile(join(dir, "10-trellis.conflist"), "utf8")) as {
      plugins: { type: string; subnetFile?: string }[];
    };
    assert.deepEqual(
      conflist.plugins.map((p) => p.type),
      ["trellis", "portmap"],
    );
    assert.equal(conflist.plugins[0]?.subnetFile, join(dir, "subnet.env"));
  });

  it("an agent killed with SIGKILL and restarted keeps its subnet and VTEP MAC", async () => {
    const before = (await leases(3)).find((r) => r.self);
    assert.ok(await fixture.lab.killAgent(3));
    await fixture.lab.startAgent(3);
    await fixture.lab.waitReady(3);
    // Its log shows it reused the live lease.
    const log = await readFile(join(fixture.lab.layout.node(3).dir, "agent.log"), "utf8");
    assert.match(log, /lease acquired .*source=reused/);
    const after = (await leases(3)).find((r) => r.self);
    assert.deepEqual(
      [after?.subnet, after?.vtepMac, after?.publicIp],
      [before?.subnet, before?.vtepMac, before?.publicIp],
    );
  });

  it("a node added later gets a free subnet and is seen by the others", async () => {
    const node = await fixture.lab.addNode();
    await fixture.lab.waitReady(node.index);
    const rows = await leases(1);
    assert.equal(rows.length, 4);
    assert.ok(rows.some((r) => r.publicIp === node.ip));
    const log = await readFile(join(fixture.lab.layout.node(1).dir, "agent.log"), "utf8");
    assert.match(log, new RegExp(`peer added .*publicIp=${node.ip.replace(/\./g, "\\.")}`));
  });

  it("keeps the underlay bridge's MAC when a port with a lower MAC joins, so no node loses etcd", async () => {
    // An unpinned bridge would take this port's MAC, and every node that cached the old one in ARP would be cut off.
    const ul = fixture.lab.layout.underlayNs;
    await ipIn(ul, "link", "add", "lowmac0", "address", "02:00:00:00:00:01", "type", "veth", "peer", "name", "lowmac1");
    try {
      await ipIn(ul, "link", "set", "lowmac0", "master", "br0", "up");
      const { stdout } = await run("ip", ["-n", ul, "-j", "link", "show", "br0"]);
      assert.equal((JSON.parse(stdout) as { address: string }[])[0]?.address, UNDERLAY_BRIDGE_MAC);
      for (const { index } of fixture.lab.current.nodes) {
        const node = fixture.lab.layout.node(index);
        const result = await ping(
          { name: node.name, ns: node.ns, ip: node.ip },
          { name: "etcd", ns: ul, ip: UNDERLAY_GATEWAY },
          1,
        );
        assert.ok(result.ok, `${node.name} cannot reach the underlay gateway (etcd) after a port joined the bridge`);
      }
    } finally {
      await ipIn(ul, "link", "del", "lowmac0");
    }
  });

  it("down removes every namespace and process of the lab", async () => {
    const lab = fixture.lab;
    const pids = lab.current.nodes.map((n) => n.agentPid).filter((p): p is number => p !== undefined);
    await lab.down();
    assert.deepEqual(
      (await listNamespaces()).filter((ns) => lab.layout.owns(ns)),
      [],
    );
    assert.ok(pids.every((pid) => !/agent/.test(commandLine(pid))));
  });
});
