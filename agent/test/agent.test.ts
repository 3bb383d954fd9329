// The daemon's composition over fakes (registry, clock, files, host, kernel, firewall): what it keeps equal to what
// it should be, and what /readyz says while it cannot.
import assert from "node:assert/strict";
import { TrellisError } from "#lib/errors.js";
import { parseCidr } from "#lib/ipv4.js";
import { exitCodeFor } from "../src/cli/exit-codes.js";
import { Agent, type AgentEvent, type Started } from "../src/daemon/agent.js";
import { ForeignLinkError, REPAIR_DEBOUNCE_MS } from "../src/dataplane/reconciler.js";
import type { HostNetwork } from "../src/node/host-network.js";
import { readiness, type Readiness } from "../src/observability/readiness.js";
import { FakeClock, settle } from "./support/fake-clock.js";
import { FakeFirewall } from "./support/fake-firewall.js";
import { MemoryFiles } from "./support/memory-files.js";
import { fakeNode, type FakeKernel } from "../../lib/test/support/fake-kernel.js";
import { MemoryRegistry } from "./support/memory-registry.js";

const CONFIG = '{"Network":"172.30.0.0/16","Backend":{"Type":"vxlan"}}';
const SUBNET_FILE = "/run/flannel/subnet.env";
const CONFIG_KEY = "/coreos.com/network/config";

const host: HostNetwork = {
  interfaces: () => Promise.resolve([{ name: "eth0", index: 2, mtu: 1500, up: true, addresses: ["10.42.0.11"] }]),
  defaultRouteInterface: () => Promise.resolve("eth0"),
};

interface World {
  clock: FakeClock;
  registry: MemoryRegistry;
  files: MemoryFiles;
  kernel: FakeKernel;
  firewall: FakeFirewall;
  agent: Agent;
  events: AgentEvent[];
  controller: AbortController;
  ready(): Readiness;
}

function world(options: { config?: string | undefined; vxlanDevice?: string } = {}): World {
  const clock = new FakeClock();
  const registry = new MemoryRegistry(clock);
  registry.config = "config" in options ? options.config : CONFIG;
  const files = new MemoryFiles();
  const kernel = fakeNode({ name: "eth0", mtu: 1500, address: "10.42.0.11", prefixLen: 24 });
  const firewall = new FakeFirewall();
  const agent = new Agent(
    {
      etcdPrefix: "/coreos.com/network",
      subnetFile: SUBNET_FILE,
      leaseTtlSeconds: 60,
      ipMasq: true,
      iface: "eth0",
      publicIp: undefined,
      vxlanDevice: options.vxlanDevice,
      resyncIntervalMs: 600_000,
      storeResetGraceMs: 20_000,
    },
    { registry, clock, files, host, kernel, firewall, random: () => 0 },
  );
  const events: AgentEvent[] = [];
  agent.events.on((e) => events.push(e));
  return {
    clock,
    registry,
    files,
    kernel,
    firewall,
    agent,
    events,
    controller: new AbortController(),
    ready: () => readiness(agent.readinessInput()),
  };
}

/** Moves the fake clock on, then past the reconciler's debounce (it runs on the same clock), and lets work settle. */
async function tick(w: World, ms: number): Promise<void> {
  await w.clock.advance(ms);
  await w.clock.advance(REPAIR_DEBOUNCE_MS);
  await settle();
}

async function started(w: World): Promise<Started> {
  const starting = w.agent.start(w.controller.signal);
  for (let i = 0; i < 50; i++) {
    const done = await Promise.race([starting.then(() => true), tick(w, 0).then(() => false)]);
    if (done) break;
  }
  return starting;
}

async function stop(w: World, s: Started | undefined): Promise<void> {
  w.controller.abort();
  await s?.done;
}

describe("agent daemon (fakes)", () => {
  it("readiness names the root cause while the network config is missing or invalid, not five symptoms", async () => {
    const w = world({ config: undefined });
    const starting = w.agent.start(w.controller.signal);
    await tick(w, 0);
    assert.deepEqual(w.ready().reasons, [
      `no network config at ${CONFIG_KEY} yet: set one with \`trellis-agent network set\``,
    ]);
    w.registry.config = '{"Network":"nope"}';
    await tick(w, 1000);
    assert.equal(w.ready().reasons.length, 1);
    assert.match(
      w.ready().reasons[0] ?? "",
      /^network config at \/coreos\.com\/network\/config is invalid: Network "nope" is invalid: must be an IPv4 CIDR/,
    );
    w.registry.config = CONFIG;
    await tick(w, 2000);
    let s: Started | undefined;
    for (let i = 0; i < 20 && s === undefined; i++) {
      s = await Promise.race([starting, tick(w, 0).then(() => undefined)]);
    }
    assert.deepEqual(w.ready(), { ready: true, reasons: [], warnings: [] });
    await stop(w, s);
  });

  it("keeps subnet.env equal to the lease: deleted or overwritten, it is back within a second", async () => {
    const w = world();
    const s = await started(w);
    const good = w.files.files.get(SUBNET_FILE);
    assert.match(good ?? "", /^FLANNEL_NETWORK=172\.30\.0\.0\/16\nFLANNEL_SUBNET=172\.30\.1\.1\/24\n/);
    w.files.files.delete(SUBNET_FILE);
    await tick(w, 1000);
    assert.equal(w.files.files.get(SUBNET_FILE), good);
    w.files.files.set(SUBNET_FILE, "FLANNEL_SUBNET=172.30.99.1/24\n");
    await tick(w, 1000);
    assert.equal(w.files.files.get(SUBNET_FILE), good);
    // Stale and unwritable: not ready, naming the file and the errno, until it can be written again.
    w.files.failWith = "EROFS";
    w.files.files.set(SUBNET_FILE, "FLANNEL_SUBNET=172.30.99.1/24\n");
    await tick(w, 1000);
    assert.equal(w.ready().ready, false);
    assert.match(w.ready().reasons[0] ?? "", /^cannot write the subnet file \/run\/flannel\/subnet\.env: EROFS/);
    w.files.failWith = undefined;
    await tick(w, 1000);
    assert.equal(w.files.files.get(SUBNET_FILE), good);
    assert.equal(w.ready().ready, true);
    await stop(w, s);
  });

  it("start with an unwritable subnet file fails with exit code 7", async () => {
    const w = world();
    w.files.failWith = "EROFS";
    await assert.rejects(
      started(w),
      (error: unknown) =>
        error instanceof TrellisError &&
        error.code === "FILE_UNWRITABLE" &&
        exitCodeFor(error.code) === 7 &&
        /subnet\.env: EROFS/.test(error.message),
    );
  });

  it("start with another kind of link where the VXLAN device goes fails naming it, and leaves it alone", async () => {
    const w = world({ vxlanDevice: "eth0" });
    await assert.rejects(started(w), /--vxlan-device "eth0" is invalid: is the underlay interface/);
    const v = world();
    const foreign = v.kernel.addForeignLink("flannel.1", "bridge");
    await assert.rejects(
      started(v),
      (error: unknown) =>
        error instanceof ForeignLinkError &&
        exitCodeFor(error.code) === 6 &&
        /a bridge link named flannel\.1/.test(error.message),
    );
    assert.deepEqual(v.kernel.byName("flannel.1"), foreign);
    assert.equal(v.registry.entries.size, 0, "refused before registering a lease");
  });

  it("masquerade rules removed and not re-installable: not ready within a second, saying why", async () => {
    const w = world();
    const s = await started(w);
    assert.equal(w.ready().ready, true);
    await w.firewall.remove();
    w.firewall.failApply = "nft: no such table";
    await tick(w, 1000);
    assert.deepEqual(w.ready().reasons, ["masquerade rules not installed: nft: no such table"]);
    w.firewall.failApply = undefined;
    await tick(w, 1000);
    assert.equal(w.ready().ready, true);
    await stop(w, s);
  });

  it("a network config change is logged and reported as not ready; a deleted config is a warning", async () => {
    const w = world();
    const s = await started(w);
    w.registry.setConfig('{"Network":"10.50.0.0/16"}');
    await tick(w, 0);
    assert.equal(w.ready().ready, false);
    assert.match(
      w.ready().reasons[0] ?? "",
      /^network config \/coreos\.com\/network\/config changed \(Network 172\.30\.0\.0\/16 → 10\.50\.0\.0\/16, SubnetMin .*\); .*restart it to move this node$/,
    );
    assert.ok(w.events.some((e) => e.type === "config-drift" && e.drift.kind === "changed"));
    w.registry.setConfig(undefined);
    await tick(w, 0);
    assert.equal(w.ready().ready, true);
    assert.match(w.ready().warnings.join("\n"), /was deleted from etcd/);
    w.registry.setConfig(CONFIG);
    await tick(w, 0);
    assert.deepEqual(w.ready(), { ready: true, reasons: [], warnings: [] });
    await stop(w, s);
  });

  it("repairs its own key overwritten with garbage; a forged 0.0.0.0/0 lease is skipped and everything else converges", async () => {
    const w = world();
    const s = await started(w);
    const own = s.keeper.current!.subnet;
    w.registry.overwrite(own, "garbage");
    await tick(w, 0);
    assert.match(w.registry.entries.get("172.30.1.0-24")?.value ?? "", /"PublicIP":"10\.42\.0\.11"/);
    assert.equal(w.registry.entries.get("172.30.1.0-24")?.leaseId, s.keeper.current?.leaseId);
    assert.ok(w.events.some((e) => e.type === "keeper" && e.event.type === "repaired"));

    w.registry.putRaw(
      parseCidr("0.0.0.0/0")!,
      '{"PublicIP":"10.42.0.66","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:66"}}',
    );
    w.registry.putRaw(
      parseCidr("172.30.2.0/24")!,
      '{"PublicIP":"10.42.0.12","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:12"}}',
      60,
    );
    await tick(w, 0);
    assert.deepEqual(
      w.kernel.routes.map((r) => `${r.dst}/${r.prefixLen}`),
      ["172.30.2.0/24"],
    );
    assert.equal(w.ready().ready, true);
    const view = w.agent.nodeView();
    assert.deepEqual(
      view.peers.map((p) => [p.subnet, p.programmed, p.skipped?.replace(/: .*/, "")]),
      [
        ["172.30.2.0/24", true, undefined],
        ["0.0.0.0/0", false, "invalid lease"],
      ].map(([a, b, c]) => [a, b, c ?? undefined]),
    );
    assert.equal(w.agent.peerCounts().rejected.get("outside-network"), 1);
    await stop(w, s);
  });

  it("etcd restored empty: every route stays while the nodes register again, and this node registers again", async () => {
    const w = world();
    w.registry.putRaw(
      parseCidr("172.30.2.0/24")!,
      '{"PublicIP":"10.42.0.12","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:12"}}',
      600,
    );
    w.registry.putRaw(
      parseCidr("172.30.3.0/24")!,
      '{"PublicIP":"10.42.0.13","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:13"}}',
      600,
    );
    const s = await started(w);
    assert.equal(w.kernel.routes.length, 2);
    w.registry.wipe();
    w.registry.setConfig(CONFIG);
    await tick(w, 500);
    assert.equal(w.kernel.routes.length, 2, "no route dropped after the reset");
    assert.ok(w.registry.entries.has("172.30.1.0-24"), "this node registered again, with its subnet");
    assert.match(w.ready().warnings.join("\n"), /etcd store reset: peers missing from etcd keep their routes until/);
    w.registry.putRaw(
      parseCidr("172.30.2.0/24")!,
      '{"PublicIP":"10.42.0.12","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:12"}}',
      600,
    );
    await tick(w, 20_000);
    assert.deepEqual(
      w.kernel.routes.map((r) => r.dst),
      ["172.30.2.0"],
      "only the node that never came back is removed after the grace",
    );
    await stop(w, s);
  });

  describe("composition: start order, readiness, re-acquiring the lease", () => {
    /** What the agent did, in order, as its events say. */
    function journal(w: World): string[] {
      const steps: string[] = [];
      w.agent.events.on((e) => {
        if (e.type === "keeper" && e.event.type === "acquired") steps.push("lease");
        else if (e.type === "watcher" && e.event.type === "synced")
          steps.push(`peers listed (kernel requests so far: ${w.kernel.requests.length})`);
        else if (e.type === "dataplane" && e.event.type === "pass")
          steps.push(`pass ${e.event.trigger}${e.event.converged ? "" : " (not converged)"}`);
        else if (e.type === "masquerade" && e.event.type === "applied") steps.push(`masquerade ${e.event.reason}`);
        else if (e.type === "subnet-file" && e.event.type === "written") steps.push("subnet.env");
        else if (e.type === "ready") steps.push("ready");
      });
      return steps;
    }

    it("lease → first peer listing → kernel programmed → masquerade rules → subnet.env → ready", async () => {
      const w = world();
      w.registry.putRaw(
        parseCidr("172.30.2.0/24")!,
        '{"PublicIP":"10.42.0.12","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:12"}}',
        600,
      );
      const steps = journal(w);
      const s = await started(w);
      assert.deepEqual(steps, [
        "lease",
        "peers listed (kernel requests so far: 0)",
        "pass start",
        "masquerade start",
        "subnet.env",
        "ready",
      ]);
      assert.deepEqual(
        w.kernel.routes.map((r) => r.dst),
        ["172.30.2.0"],
        "the first pass already had the peers",
      );
      assert.equal(w.firewall.rules, "172.30.0.0/16 172.30.1.0/24");
      await stop(w, s);
      assert.ok(
        w.kernel.byName("flannel.1") !== undefined && w.kernel.routes.length === 1 && w.firewall.installed,
        "stopping removes nothing",
      );
    });

    it("is not ready, and start() does not resolve, until subnet.env is written", async () => {
      const w = world();
      let release = (): void => undefined;
      w.files.hold = new Promise((resolve) => {
        release = resolve;
      });
      const starting = w.agent.start(w.controller.signal);
      let resolved = false;
      void starting.then(() => {
        resolved = true;
      });
      for (let i = 0; i < 10; i++) await tick(w, 100);
      assert.equal(resolved, false);
      assert.ok(
        w.kernel.byName("flannel.1") !== undefined && w.firewall.installed,
        "everything before the file is in place",
      );
      assert.deepEqual(w.ready(), { ready: false, reasons: ["subnet file not written yet"], warnings: [] });
      release();
      const s = await starting;
      assert.equal(w.ready().ready, true);
      assert.match(w.files.files.get(SUBNET_FILE) ?? "", /FLANNEL_SUBNET=172\.30\.1\.1\/24/);
      await stop(w, s);
    });

    it("a lease lost and its subnet taken meanwhile: re-acquired elsewhere, and the device, rules and subnet.env follow", async () => {
      const w = world();
      const steps = journal(w);
      const s = await started(w);
      const leaseId = s.keeper.current?.leaseId ?? assert.fail("no etcd lease");
      steps.length = 0;
      // The lease expires, and another node takes the subnet before this one is back.
      w.registry.revokeNow(leaseId);
      w.registry.putRaw(
        parseCidr("172.30.1.0/24")!,
        '{"PublicIP":"10.42.0.12","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:12"}}',
        600,
      );
      for (let i = 0; i < 10 && !steps.includes("subnet.env"); i++) await tick(w, 1000);
      const now = s.keeper.current?.subnet ?? assert.fail("no lease after re-acquiring");
      assert.notEqual(now.ip, parseCidr("172.30.1.0/24")!.ip, "another subnet");
      const subnet = `172.30.${(now.ip >>> 8) & 255}`;
      assert.deepEqual(
        steps.filter((step) => !step.startsWith("pass peers") && !step.startsWith("pass kernel")),
        ["lease", "pass lease", "masquerade lease", "subnet.env"],
      );
      const device = w.kernel.byName("flannel.1")!;
      assert.deepEqual(
        w.kernel.addresses.filter((a) => a.index === device.index).map((a) => `${a.address}/${a.prefixLen}`),
        [`${subnet}.0/32`],
      );
      assert.equal(w.firewall.rules, `172.30.0.0/16 ${subnet}.0/24`);
      assert.match(
        w.files.files.get(SUBNET_FILE) ?? "",
        new RegExp(`FLANNEL_SUBNET=${subnet.replaceAll(".", "\\.")}\\.1/24`),
      );
      // The node that took the old subnet is now a peer like any other.
      await tick(w, 0);
      assert.deepEqual(
        w.kernel.routes.map((r) => r.dst),
        ["172.30.1.0"],
      );
      assert.equal(w.ready().ready, true);
      await stop(w, s);
    });
  });
});
