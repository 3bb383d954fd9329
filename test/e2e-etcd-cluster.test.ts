// A 3-member etcd: with one member killed, agents keep their leases and watches and a new node still joins.
import assert from "node:assert/strict";
import { httpGetIn } from "../lab/src/http-get.js";
import { addPods, podEndpoints } from "../lab/src/lab-pods.js";
import { pingMatrix } from "../lab/src/ping.js";
import { ourRoutes, timeUntil } from "./support/kernel-probe.js";
import { useLab } from "./support/lab-fixture.js";

describe("e2e: 3-member etcd, one member killed", function () {
  this.timeout(180_000);
  const fixture = useLab({
    nodes: 2,
    backend: "vxlan",
    etcdMembers: 3,
    podsPerNode: 1,
    agentEnv: { TRELLIS_SUBNET_LEASE_TTL: "15s" },
  });

  it("agents keep leases (renewing) and watches; a node added meanwhile is reachable from all", async () => {
    const lab = fixture.lab;
    assert.equal(lab.current.etcdEndpoints.length, 3);
    const before = await Promise.all([1, 2].map((i) => lab.nodeGateway(i)));
    // Kill the first member: the one every client tried first.
    await lab.stopEtcd(0, "SIGKILL");
    // Longer than the 15 s lease TTL: only renewals through the other members keep the leases.
    await new Promise((resolve) => setTimeout(resolve, 20_000));
    for (const i of [1, 2]) {
      const ready = await httpGetIn(lab.layout.node(i).ns, "http://127.0.0.1:9808/readyz");
      assert.equal(ready.status, 200, `n${i}: ${ready.body}`);
    }
    assert.deepEqual(await Promise.all([1, 2].map((i) => lab.nodeGateway(i))), before, "subnets kept");
    const node = await lab.addNode();
    await lab.waitReady(node.index, 60_000);
    await addPods(lab, node.index, 1);
    const gw = await lab.nodeGateway(node.index);
    const subnet = `${gw.ip.replace(/\.1$/, ".0")}/24`;
    await Promise.all(
      [1, 2].map((i) =>
        timeUntil(
          `n${i} learns the new node (its watch is live)`,
          async () => (await ourRoutes(lab.layout.node(i).ns)).some((r) => r.dst === subnet),
          20_000,
        ),
      ),
    );
    const results = await pingMatrix(podEndpoints(lab));
    assert.deepEqual(
      results.filter((r) => !r.ok).map((r) => `${r.from.name}→${r.to.name}`),
      [],
    );
  });
});
