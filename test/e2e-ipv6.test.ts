// IPv6 end to end: dual-stack and IPv6-only labs (vxlan, host-gw), pods pinging across nodes in both families, the
// lease keys, values and subnet.env flannel writes, drift repair of IPv6 entries, and a restart keeping both subnets.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { runStatus } from "../lab/src/exec.js";
import { podEndpoints } from "../lab/src/lab-pods.js";
import type { Lab, UpOptions } from "../lab/src/lab.js";
import { pingMatrix, type Endpoint } from "../lab/src/ping.js";
import { TRELLIS_ROUTE_PROTOCOL } from "../agent/src/dataplane/marks.js";
import { timeUntil } from "./support/kernel-probe.js";
import { useLab } from "./support/lab-fixture.js";

async function failedPaths(endpoints: readonly Endpoint[]): Promise<string[]> {
  assert.ok(endpoints.length >= 2, `too few endpoints: ${endpoints.length}`);
  return (await pingMatrix(endpoints)).filter((r) => !r.ok).map((r) => `${r.from.name}→${r.to.name}`);
}

/** The lease keys under the lab's subnets prefix. */
async function leaseKeys(lab: Lab): Promise<string[]> {
  const out = await lab.etcdctl("get", "--prefix", "--keys-only", "/coreos.com/network/subnets/");
  return out
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.replace("/coreos.com/network/subnets/", ""))
    .sort();
}

async function subnetEnv(lab: Lab, index: number): Promise<string> {
  return readFile(join(lab.layout.node(index).dir, "subnet.env"), "utf8");
}

/** `ip -6 route show proto <ours>` in a node (the IPv6 routes the agent owns), as lines. */
async function v6Routes(lab: Lab, index: number): Promise<string[]> {
  const result = await runStatus("ip", [
    "-n",
    lab.layout.node(index).ns,
    "-6",
    "route",
    "show",
    "proto",
    String(TRELLIS_ROUTE_PROTOCOL),
  ]);
  return result.stdout.split("\n").filter((l) => l.trim() !== "");
}

const cases: [string, UpOptions][] = [
  ["dual-stack vxlan", { nodes: 3, backend: "vxlan", podsPerNode: 1, ipFamily: "dual" }],
  ["dual-stack host-gw", { nodes: 2, backend: "host-gw", podsPerNode: 1, ipFamily: "dual" }],
  ["IPv6-only vxlan", { nodes: 2, backend: "vxlan", podsPerNode: 1, ipFamily: "ipv6" }],
];

for (const [name, options] of cases) {
  describe(`e2e IPv6: ${name}`, function () {
    this.timeout(180_000);
    const fixture = useLab(options);
    const dual = options.ipFamily === "dual";

    it("every pod reaches every other pod across nodes, in each family", async () => {
      const lab = fixture.lab;
      assert.deepEqual(await failedPaths(podEndpoints(lab)), [], dual ? "IPv4" : "IPv6");
      if (dual) assert.deepEqual(await failedPaths(podEndpoints(lab, 6)), [], "IPv6");
      for (const pod of lab.current.pods) {
        const v6 = dual ? pod.ip6 : pod.ip;
        assert.match(v6 ?? "", /^fd30:0:0:[0-9a-f]+::[0-9a-f]+$/, `${pod.name} has an address of fd30::/56`);
        if (dual) assert.match(pod.ip, /^172\.30\./);
      }
    });

    it("writes flannel's keys, values and subnet.env for the family", async () => {
      const lab = fixture.lab;
      const keys = await leaseKeys(lab);
      assert.equal(keys.length, options.nodes);
      for (const key of keys)
        assert.match(
          key,
          dual ? /^172\.30\.\d+\.0-24&fd30:0:0:[0-9a-f]+::-64$/ : /^0\.0\.0\.0-0&fd30:0:0:[0-9a-f]+::-64$/,
        );
      const value = JSON.parse(
        await lab.etcdctl("get", `/coreos.com/network/subnets/${keys[0] ?? ""}`, "--print-value-only"),
      ) as Record<string, unknown>;
      assert.match(String(value.PublicIPv6), /^fd42::1\d$/, "the node's IPv6 underlay address");
      if (options.backend === "vxlan")
        assert.match(JSON.stringify(value.BackendV6Data), /^\{"VNI":1,"VtepMAC":"[0-9a-f:]{17}"\}$/);
      const env = await subnetEnv(lab, 1);
      assert.match(env, /^FLANNEL_IPV6_NETWORK=fd30::\/56$/m);
      assert.match(env, /^FLANNEL_IPV6_SUBNET=fd30:0:0:[0-9a-f]+::1\/64$/m);
      if (dual)
        assert.match(env, /^FLANNEL_NETWORK=172\.30\.0\.0\/16\nFLANNEL_SUBNET=172\.30\.\d+\.1\/24\nFLANNEL_IPV6/m);
      else assert.doesNotMatch(env, /FLANNEL_NETWORK=|FLANNEL_SUBNET=/);
    });

    if (options.backend === "vxlan") {
      it("programs flannel-v6.1 and repairs an IPv6 route deleted by hand within a second", async () => {
        const lab = fixture.lab;
        const link = await runStatus("ip", ["-n", lab.layout.node(1).ns, "-d", "link", "show", "flannel-v6.1"]);
        assert.equal(link.code, 0, "the IPv6 VXLAN device exists");
        assert.match(link.stdout, /vxlan id 1 local fd42::11 dev eth0 .*dstport 8472/);
        const routes = await v6Routes(lab, 1);
        assert.equal(routes.length, options.nodes - 1, routes.join("\n"));
        const victim = routes[0]?.split(" ")[0] ?? "";
        await runStatus("ip", ["-n", lab.layout.node(1).ns, "-6", "route", "del", victim]);
        await timeUntil(
          "the IPv6 route is back",
          async () => (await v6Routes(lab, 1)).some((r) => r.startsWith(victim)),
          1000,
        );
      });
    }

    it("an agent killed and restarted keeps its subnets (both halves of its key)", async () => {
      const lab = fixture.lab;
      const before = await leaseKeys(lab);
      const envBefore = await subnetEnv(lab, 2);
      await lab.killAgent(2, "SIGKILL");
      await lab.startAgent(2);
      await lab.waitReady(2);
      assert.deepEqual(await leaseKeys(lab), before);
      assert.equal(await subnetEnv(lab, 2), envBefore);
      assert.deepEqual(await failedPaths(podEndpoints(lab, dual ? 6 : "primary")), []);
    });
  });
}
