// End to end under hostile data and faults (issue 10): forged leases, our own key overwritten, subnet.env deleted,
// edited or unwritable, the masquerade table and the VXLAN learning flag changed by hand, someone else's link where
// the VXLAN device goes; then etcd restored empty and the network config changed under running agents. Real etcd,
// real agents, real kernel, pods pinging each other continuously.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, runStatus } from "../lab/src/exec.js";
import { httpGetIn } from "../lab/src/http-get.js";
import type { Lab } from "../lab/src/lab.js";
import { podEndpoints } from "../lab/src/lab-pods.js";
import { readAgentEnv } from "../lab/src/node-config.js";
import { continuousPing, type Endpoint } from "../lab/src/ping.js";
import { nftTable, ourRoutes, timeUntil } from "./support/kernel-probe.js";
import { useLab } from "./support/lab-fixture.js";

const PREFIX = "/coreos.com/network";
const vxlanValue = (ip: string, mac: string): string =>
  `{"PublicIP":"${ip}","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;

async function readyz(lab: Lab, index: number): Promise<{ status: number; reasons: string[]; warnings: string[] }> {
  const answer = await httpGetIn(lab.layout.node(index).ns, "http://127.0.0.1:9808/readyz");
  if (answer.status === 0) return { status: 0, reasons: [answer.body], warnings: [] };
  const body = JSON.parse(answer.body) as { reasons: string[]; warnings?: string[] };
  return { status: answer.status, reasons: body.reasons, warnings: body.warnings ?? [] };
}

async function subnetOf(lab: Lab, index: number): Promise<string> {
  const gw = await lab.nodeGateway(index);
  return `${gw.ip.replace(/\.1$/, ".0")}/${gw.prefixLen}`;
}

const keyOf = (subnet: string): string => `${PREFIX}/subnets/${subnet.replace("/", "-")}`;

function pod(lab: Lab, node: number): Endpoint {
  const endpoint = podEndpoints(lab).find((e) => e.name.startsWith(`n${node}/`));
  if (endpoint === undefined) throw new Error(`no pod on n${node}`);
  return endpoint;
}

/** Keys under subnets/ whose value names this public IP. */
async function keysNaming(lab: Lab, publicIp: string): Promise<string[]> {
  const lines = (await lab.etcdctl("get", `${PREFIX}/subnets/`, "--prefix")).split("\n").filter((l) => l !== "");
  const keys: string[] = [];
  for (let i = 0; i + 1 < lines.length; i += 2)
    if (lines[i + 1]?.includes(`"PublicIP":"${publicIp}"`) === true) keys.push(lines[i] ?? "");
  return keys;
}

async function learning(ns: string): Promise<{ index: number; learning: boolean } | undefined> {
  const { stdout, code } = await runStatus("ip", ["-j", "-d", "-n", ns, "link", "show", "flannel.1"]);
  if (code !== 0) return undefined;
  const [link] = JSON.parse(stdout) as { ifindex: number; linkinfo: { info_data: { learning: boolean } } }[];
  return link === undefined ? undefined : { index: link.ifindex, learning: link.linkinfo.info_data.learning };
}

describe("e2e hostile data: forged leases, own key, subnet.env, masquerade, learning, foreign link (vxlan, 3 nodes)", function () {
  this.timeout(300_000);
  const fixture = useLab({ nodes: 3, backend: "vxlan", podsPerNode: 1 });
  const ns = (i: number): string => fixture.lab.layout.node(i).ns;

  it("forged and malformed peer leases are skipped with a reason; no route, no ping lost, every node ready", async () => {
    const lab = fixture.lab;
    const inside = (await subnetOf(lab, 2)).replace("/24", "/25");
    const forged = [inside, "192.0.2.0/24", "172.30.0.0/16", "0.0.0.0/0"];
    const ping = continuousPing(pod(lab, 1), pod(lab, 2));
    let pings: { sent: number; received: number };
    try {
      for (const [n, subnet] of forged.entries())
        await lab.etcdctl("put", keyOf(subnet), vxlanValue(`10.42.0.${90 + n}`, `02:00:00:00:9${n}:01`));
      // A real new peer still converges everywhere meanwhile.
      await lab.etcdctl("put", keyOf("172.30.250.0/24"), vxlanValue("10.42.0.250", "02:00:00:00:fa:01"));
      await Promise.all(
        [1, 2, 3].map((i) =>
          timeUntil(
            `n${i} routes the new peer`,
            async () => (await ourRoutes(ns(i))).some((r) => r.dst === "172.30.250.0/24"),
            2000,
          ),
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 1000));
      for (const i of [1, 2, 3]) {
        assert.deepEqual(
          (await ourRoutes(ns(i))).filter((r) => forged.includes(r.dst)).map((r) => r.dst),
          [],
          `n${i}`,
        );
        assert.equal((await readyz(lab, i)).status, 200, `n${i} ready`);
      }
      const status = await lab.status(1);
      assert.match(
        status,
        /192\.0\.2\.0\/24 .* skipped: invalid lease: 192\.0\.2\.0\/24 is not inside Network 172\.30\.0\.0\/16 with SubnetLen 24/,
      );
      assert.match(status, /172\.30\.0\.0\/16 .* skipped: invalid lease: 172\.30\.0\.0\/16 is a \/16/);
      assert.match(
        await lab.agentLog(1),
        /WARN\s+skipping a lease that cannot be used subnet=0\.0\.0\.0\/0 reason=0\.0\.0\.0\/0 is not inside Network/,
      );
      const metrics = (await httpGetIn(ns(1), "http://127.0.0.1:9808/metrics")).body;
      assert.match(metrics, /^trellis_peer_leases_rejected\{reason="outside-network"\} 2$/m);
      assert.match(metrics, /^trellis_peer_leases_rejected\{reason="wrong-length"\} 2$/m);
    } finally {
      pings = await ping.stop();
      for (const subnet of [...forged, "172.30.250.0/24"]) await lab.etcdctl("del", keyOf(subnet));
    }
    assert.equal(pings.received, pings.sent, `pings n1→n2 lost: ${pings.sent - pings.received} of ${pings.sent}`);
  });

  it("its own key overwritten with garbage is written back at once; a restart over a garbage key keeps the subnet", async () => {
    const lab = fixture.lab;
    const subnet = await subnetOf(lab, 2);
    const ping = continuousPing(pod(lab, 1), pod(lab, 2));
    let repairedMs: number;
    let pings: { sent: number; received: number };
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      await lab.etcdctl("put", keyOf(subnet), "garbage");
      repairedMs = await timeUntil(
        "key repaired",
        async () => (await lab.etcdctl("get", keyOf(subnet), "--print-value-only")).includes('"PublicIP":"10.42.0.12"'),
        3000,
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      pings = await ping.stop();
    }
    // The peers see garbage for the few milliseconds until the repair: a ping may fall into it, not more.
    assert.ok(
      pings.sent > 0 && pings.sent - pings.received <= 2,
      `pings n1→n2 lost: ${pings.sent - pings.received} of ${pings.sent}`,
    );
    assert.ok(repairedMs < 1000, `repaired after ${Math.round(repairedMs)} ms`);
    assert.match(
      await lab.agentLog(2),
      /WARN\s+our lease key held something else; wrote it back subnet=.* found=value is not valid JSON: "garbage"/,
    );
    // Its etcd lease is attached again: the key has a TTL.
    assert.notEqual((await lab.etcdctl("get", keyOf(subnet), "-w", "json")).match(/"lease":(\d+)/)?.[1] ?? "0", "0");

    await lab.killAgent(2);
    await lab.etcdctl("put", keyOf(subnet), "garbage");
    await lab.startAgent(2);
    await lab.waitReady(2);
    assert.equal(await subnetOf(lab, 2), subnet, "the subnet its pods have");
    assert.deepEqual(await keysNaming(lab, "10.42.0.12"), [keyOf(subnet)]);
    assert.match(await lab.agentLog(2), /lease acquired subnet=.* source=reclaimed/);
  });

  it("subnet.env deleted or overwritten is back within a second; while unwritable the node is not ready naming file and errno", async () => {
    const lab = fixture.lab;
    const node = lab.layout.node(1);
    const file = join(node.dir, "subnet.env");
    const good = await readFile(file, "utf8");
    await rm(file);
    const rewritten = await timeUntil(
      "rewritten",
      async () => (await readFile(file, "utf8").catch(() => "")) === good,
      3000,
    );
    assert.ok(rewritten < 1000, `rewritten after ${Math.round(rewritten)} ms`);
    await writeFile(file, "FLANNEL_SUBNET=garbage\n");
    await timeUntil("repaired", async () => (await readFile(file, "utf8")) === good, 1500);
    // Stale content in a directory nobody can write to (immutable: even root gets EPERM).
    await run("chattr", ["+i", node.dir]);
    try {
      await writeFile(file, good.replace(/FLANNEL_SUBNET=\S+/, "FLANNEL_SUBNET=172.30.77.1/24"));
      const honest = await timeUntil("not ready", async () => (await readyz(lab, 1)).status === 503, 3000);
      assert.ok(honest < 1000, `not ready after ${Math.round(honest)} ms`);
      assert.match(
        (await readyz(lab, 1)).reasons[0] ?? "",
        new RegExp(`^cannot write the subnet file ${file.replace(/[.]/g, "\\.")}: EPERM`),
      );
    } finally {
      await run("chattr", ["-i", node.dir]);
    }
    await timeUntil(
      "written and ready",
      async () => (await readFile(file, "utf8")) === good && (await readyz(lab, 1)).status === 200,
      3000,
    );
  });

  it("an unwritable subnet file at start: exit code 7, naming the file and the errno", async () => {
    const lab = fixture.lab;
    const node = lab.layout.node(3);
    const env = await readAgentEnv(node);
    await lab.killAgent(3, "SIGTERM");
    await rm(join(node.dir, "subnet.env"));
    // The node's directory read-only for the agent (a bind mount over it: its own files stay where they are).
    const ro = await mkdtemp(join(tmpdir(), "trellis-ro-"));
    await run("mount", ["--bind", ro, node.dir]);
    try {
      await run("mount", ["-o", "remount,bind,ro", node.dir]);
      const result = await runStatus(
        "ip",
        ["netns", "exec", node.ns, lab.layout.agentBin, "run", "--healthz-port", "0", "--cni-socket", ""],
        { env: { ...process.env, ...env }, timeoutMs: 60_000 },
      );
      assert.equal(result.code, 7, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(`cannot write the subnet file ${join(node.dir, "subnet.env").replace(/[.]/g, "\\.")}: EROFS`),
      );
    } finally {
      await run("umount", [node.dir]);
      await rm(ro, { recursive: true, force: true });
    }
    await lab.startAgent(3);
    await lab.waitReady(3);
  });

  it("the masquerade table deleted by hand is back within a second and a half, every time", async () => {
    // Three times: with checks every 5 s one deletion could fall just before a check by luck, three hardly.
    for (let round = 0; round < 3; round++) {
      await run("ip", ["netns", "exec", ns(1), "nft", "delete", "table", "ip", "trellis"]);
      const ms = await timeUntil("rules back", async () => (await nftTable(ns(1))) !== undefined, 6000);
      assert.ok(ms < 1500, `round ${round + 1}: rules re-installed after ${Math.round(ms)} ms`);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  });

  it("the VXLAN learning flag switched on is switched off in place at once, without losing a ping", async () => {
    const lab = fixture.lab;
    const before = await learning(ns(2));
    assert.ok(before !== undefined && !before.learning, "flannel.1 with learning off");
    const ping = continuousPing(pod(lab, 1), pod(lab, 2), 0.01);
    let repairedMs: number;
    let pings: { sent: number; received: number };
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      await run("ip", ["-n", ns(2), "link", "set", "flannel.1", "type", "vxlan", "learning"]);
      repairedMs = await timeUntil("learning off", async () => (await learning(ns(2)))?.learning === false, 5000);
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      pings = await ping.stop();
    }
    assert.equal(
      pings.received,
      pings.sent,
      `pings n1→n2 every 10 ms lost: ${pings.sent - pings.received} of ${pings.sent}`,
    );
    assert.ok(repairedMs < 1000, `repaired after ${Math.round(repairedMs)} ms`);
    assert.equal((await learning(ns(2)))?.index, before.index, "the same device, not a new one");
    assert.match(await lab.agentLog(2), /WARN\s+vxlan device updated device=flannel\.1 reason=learning on → off/);
  });

  it("a link of another kind named like the VXLAN device is refused (exit 6, named), never deleted; cleanup keeps it", async () => {
    const lab = fixture.lab;
    const node = await lab.addNode(undefined, undefined, false);
    await run("ip", ["-n", node.ns, "link", "add", "flannel.1", "type", "bridge"]);
    const env = { ...(await readAgentEnv(node)), TRELLIS_HEALTHZ_PORT: "0", TRELLIS_CNI_SOCKET: "" };
    const result = await lab.agentCli(["run"], node.ns, env);
    assert.equal(result.code, 6, result.stderr);
    assert.match(result.stderr, /a bridge link named flannel\.1 exists, and it is not a vxlan device/);
    const underlay = await lab.agentCli(["run"], node.ns, { ...env, TRELLIS_VXLAN_DEVICE: "eth0" });
    assert.equal(underlay.code, 2, underlay.stderr);
    assert.match(underlay.stderr, /--vxlan-device "eth0" is invalid: is the underlay interface/);
    const cleanup = await lab.agentCli(["cleanup", "--vxlan-device", "flannel.1"], node.ns, lab.agentEnv(node));
    assert.equal(cleanup.code, 0, cleanup.stderr);
    assert.match(cleanup.stderr, /kept flannel\.1 \(bridge\): not a vxlan device/);
    assert.match((await run("ip", ["-d", "-n", node.ns, "link", "show", "flannel.1"])).stdout, /\bbridge\b/);
    assert.equal((await runStatus("ip", ["-n", node.ns, "link", "show", "eth0"])).code, 0);
  });
});

describe("e2e: etcd restored empty, then the network config changed under running agents (vxlan, 3 nodes)", function () {
  this.timeout(300_000);
  const GRACE_MS = 8000;
  const fixture = useLab({
    nodes: 3,
    backend: "vxlan",
    podsPerNode: 1,
    agentEnv: { TRELLIS_STORE_RESET_GRACE: `${GRACE_MS / 1000}s` },
  });
  const ns = (i: number): string => fixture.lab.layout.node(i).ns;

  it("etcd wiped: no route dropped, no ping lost while nodes register again; a node that never does goes after the grace", async () => {
    const lab = fixture.lab;
    const gone = await subnetOf(lab, 3);
    await lab.killAgent(3); // its datapath stays, but it will not register again
    const ping = continuousPing(pod(lab, 1), pod(lab, 2));
    let resetAt: number;
    let pings: { sent: number; received: number };
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      await lab.stopEtcd();
      await rm(join(lab.layout.stateDir, "etcd1"), { recursive: true, force: true });
      await lab.startEtcdAgain();
      resetAt = Date.now();
      const set = await lab.agentCli(["network", "set", "--network", "172.30.0.0/16", "--backend", "vxlan"]);
      assert.equal(set.code, 0, set.stderr);
      await timeUntil(
        "n1 and n2 registered again",
        async () =>
          (await keysNaming(lab, "10.42.0.11")).length === 1 && (await keysNaming(lab, "10.42.0.12")).length === 1,
        20_000,
      );
      for (const i of [1, 2])
        assert.ok(
          (await ourRoutes(ns(i))).some((r) => r.dst === gone),
          `n${i} keeps n3's route during the grace`,
        );
      await new Promise((resolve) => setTimeout(resolve, 1000));
    } finally {
      pings = await ping.stop();
    }
    assert.equal(pings.received, pings.sent, `pings n1→n2 lost: ${pings.sent - pings.received} of ${pings.sent}`);
    assert.match(
      await lab.agentLog(1),
      /WARN\s+etcd store reset: keeping peers' routes while nodes register again reason=/,
    );
    await Promise.all(
      [1, 2].map((i) =>
        timeUntil(
          `n${i} drops n3 after the grace`,
          async () => !(await ourRoutes(ns(i))).some((r) => r.dst === gone),
          GRACE_MS + 10_000,
        ),
      ),
    );
    assert.ok(Date.now() - resetAt >= GRACE_MS - 1000, "not before the grace period ends");
    await lab.startAgent(3);
    await lab.waitReady(3);
    await Promise.all(
      [1, 2].map((i) =>
        timeUntil(`n${i} routes n3 again`, async () => (await ourRoutes(ns(i))).some((r) => r.dst === gone), 10_000),
      ),
    );
  });

  it("a Network change: every node is not ready within a second, saying so first; a restarted node moves, leaving one key", async () => {
    const lab = fixture.lab;
    const old = (await lab.etcdctl("get", `${PREFIX}/config`, "--print-value-only")).trim();
    const set = await lab.agentCli(["network", "set", "--network", "10.50.0.0/16", "--backend", "vxlan"]);
    assert.equal(set.code, 0, set.stderr);
    const honest = await Promise.all(
      [1, 2, 3].map((i) => timeUntil(`n${i} not ready`, async () => (await readyz(lab, i)).status === 503, 3000)),
    );
    assert.ok(Math.max(...honest) < 1000, `not ready after ${honest.map(Math.round).join("/")} ms`);
    assert.match(
      (await readyz(lab, 1)).reasons[0] ?? "",
      /^network config \/coreos\.com\/network\/config changed \(Network 172\.30\.0\.0\/16 → 10\.50\.0\.0\/16, .*restart it to move this node$/,
    );
    assert.match(
      await lab.agentLog(1),
      /ERROR\s+network config \/coreos\.com\/network\/config changed \(Network 172\.30\.0\.0\/16 → 10\.50\.0\.0\/16/,
    );

    await lab.killAgent(3, "SIGTERM");
    await lab.startAgent(3);
    await lab.waitReady(3);
    const moved = await subnetOf(lab, 3);
    assert.match(moved, /^10\.50\.\d+\.0\/24$/);
    assert.deepEqual(await keysNaming(lab, "10.42.0.13"), [keyOf(moved)], "one key per node");
    // The nodes not restarted yet still route to it: leases of the new network are accepted while it changes.
    await timeUntil(
      "n1 routes n3's new subnet",
      async () => (await ourRoutes(ns(1))).some((r) => r.dst === moved),
      5000,
    );

    await lab.etcdctl("put", `${PREFIX}/config`, old);
    await Promise.all(
      [1, 2].map((i) => timeUntil(`n${i} ready again`, async () => (await readyz(lab, i)).status === 200, 3000)),
    );
  });
});
