// The daemon on a dual-stack network, over fakes: the IPv6 underlay chosen, the lease published with PublicIPv6 and
// BackendV6Data, both planes programmed, the IPv6 masquerade rules, subnet.env's IPv6 pair (and the IPv6 subnet it
// remembers), /status by family; without an IPv6 underlay vxlan tunnels IPv6 over IPv4, and host-gw refuses to start.
import assert from "node:assert/strict";
import { TrellisError } from "#lib/errors.js";
import { parseCidr } from "#lib/ipv4.js";
import { parseCidr6 } from "#lib/ipv6.js";
import { exitCodeFor } from "../src/cli/exit-codes.js";
import { Agent, type AgentEvent, type Started } from "../src/daemon/agent.js";
import { REPAIR_DEBOUNCE_MS } from "../src/dataplane/reconciler.js";
import { deriveVtepMac, deriveVtepMac6 } from "../src/dataplane/vtep-mac.js";
import type { HostInterface } from "../src/node/host-network.js";
import { readiness } from "../src/observability/readiness.js";
import { FakeClock, settle } from "./support/fake-clock.js";
import { FakeFirewall } from "./support/fake-firewall.js";
import { MemoryFiles } from "./support/memory-files.js";
import { fakeNode, type FakeKernel } from "../../lib/test/support/fake-kernel.js";
import { MemoryRegistry } from "./support/memory-registry.js";

const DUAL = (backend = "vxlan"): string =>
  JSON.stringify({ Network: "172.30.0.0/16", EnableIPv6: true, IPv6Network: "fd30::/56", Backend: { Type: backend } });
const SUBNET_FILE = "/run/flannel/subnet.env";

interface World {
  clock: FakeClock;
  registry: MemoryRegistry;
  files: MemoryFiles;
  kernel: FakeKernel;
  firewall: FakeFirewall;
  agent: Agent;
  events: AgentEvent[];
  controller: AbortController;
}

function world(options: { config?: string; underlay6?: boolean; publicIpv6?: string } = {}): World {
  const underlay6 = options.underlay6 ?? true;
  const clock = new FakeClock();
  const registry = new MemoryRegistry(clock);
  registry.config = options.config ?? DUAL();
  const files = new MemoryFiles();
  const kernel = fakeNode({ name: "eth0", mtu: 1500, address: "10.42.0.11", prefixLen: 24 });
  if (underlay6) kernel.world.ns("host").addresses.push({ index: 2, address: "fd00:42::11", prefixLen: 64 });
  const eth0: HostInterface = {
    name: "eth0",
    index: 2,
    mtu: 1500,
    up: true,
    addresses: ["10.42.0.11"],
    addresses6: underlay6 ? ["fd00:42::11"] : [],
  };
  const firewall = new FakeFirewall();
  const agent = new Agent(
    {
      etcdPrefix: "/coreos.com/network",
      subnetFile: SUBNET_FILE,
      leaseTtlSeconds: 60,
      ipMasq: true,
      iface: "eth0",
      publicIp: undefined,
      publicIpv6: options.publicIpv6,
      resyncIntervalMs: 600_000,
    },
    {
      registry,
      clock,
      files,
      host: { interfaces: () => Promise.resolve([eth0]), defaultRouteInterface: () => Promise.resolve("eth0") },
      kernel,
      firewall,
      random: () => 0,
    },
  );
  const events: AgentEvent[] = [];
  agent.events.on((e) => events.push(e));
  return { clock, registry, files, kernel, firewall, agent, events, controller: new AbortController() };
}

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

const PEER_KEY = { v4: parseCidr("172.30.2.0/24")!, v6: parseCidr6("fd30:0:0:2::/64")! };
const PEER_VALUE = JSON.stringify({
  PublicIP: "10.42.0.12",
  PublicIPv6: "fd00:42::12",
  BackendType: "vxlan",
  BackendData: { VNI: 1, VtepMAC: "02:00:00:00:00:12" },
  BackendV6Data: { VNI: 1, VtepMAC: "02:00:00:00:06:12" },
});

describe("agent daemon on a dual-stack network (fakes)", () => {
  it("publishes PublicIPv6 and BackendV6Data, programs both planes, installs both rule sets, writes subnet.env's IPv6 pair", async () => {
    const w = world();
    w.registry.putRaw(PEER_KEY.v4, PEER_VALUE, 600, PEER_KEY.v6);
    const s = await started(w);
    assert.deepEqual(s.underlay6, { localIp6: "fd00:42::11", publicIpv6: "fd00:42::11" });
    const lease = s.keeper.current ?? assert.fail("no lease");
    assert.equal(lease.subnet6?.prefixLen, 64, "one dual-stack key");
    assert.deepEqual(lease.attrs, {
      publicIp: "10.42.0.11",
      publicIpv6: "fd00:42::11",
      backendType: "vxlan",
      vni: 1,
      vtepMac: deriveVtepMac("10.42.0.11", 1),
      v6: { vni: 1, vtepMac: deriveVtepMac6("fd00:42::11", 1) },
    });
    assert.notEqual(deriveVtepMac6("fd00:42::11", 1), lease.attrs.vtepMac, "the two devices have MACs of their own");
    const v6 = w.kernel.byName("flannel-v6.1") ?? assert.fail("no IPv6 device");
    assert.deepEqual([v6.mac, v6.vxlan?.local, v6.mtu], [deriveVtepMac6("fd00:42::11", 1), "fd00:42::11", 1430]);
    assert.deepEqual(
      w.kernel.routes.map((r) => `${r.dst}/${r.prefixLen}`).sort(),
      ["172.30.2.0/24", "fd30:0:0:2::/64"],
      "the peer's two subnets",
    );
    assert.equal(w.firewall.rules, "172.30.0.0/16 172.30.1.0/24 | fd30::/56 fd30:0:0:1::/64");
    assert.equal(
      w.files.files.get(SUBNET_FILE),
      [
        "FLANNEL_NETWORK=172.30.0.0/16",
        "FLANNEL_SUBNET=172.30.1.1/24",
        "FLANNEL_IPV6_NETWORK=fd30::/56",
        "FLANNEL_IPV6_SUBNET=fd30:0:0:1::1/64",
        "FLANNEL_MTU=1430",
        "FLANNEL_IPMASQ=true",
        "",
      ].join("\n"),
      "the pods' MTU fits the IPv6 tunnel too (1500 - 70)",
    );
    assert.deepEqual(readiness(w.agent.readinessInput()), { ready: true, reasons: [], warnings: [] });
    await stop(w, s);
  });

  it("/status: both subnets of this node, and each peer once per family with its own state", async () => {
    const w = world();
    w.registry.putRaw(PEER_KEY.v4, PEER_VALUE, 600, PEER_KEY.v6);
    // A dual-stack peer without BackendV6Data: its IPv4 half is programmed, its IPv6 half skipped.
    w.registry.putRaw(
      parseCidr("172.30.3.0/24")!,
      '{"PublicIP":"10.42.0.13","PublicIPv6":"fd00:42::13","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:13"}}',
      600,
      parseCidr6("fd30:0:0:3::/64"),
    );
    const s = await started(w);
    const view = w.agent.nodeView();
    assert.deepEqual(
      [view.lease?.subnet, view.lease?.subnet6, view.lease?.publicIp, view.lease?.publicIpv6],
      ["172.30.1.0/24", "fd30:0:0:1::/64", "10.42.0.11", "fd00:42::11"],
    );
    assert.deepEqual(
      view.peers.map((p) => [p.family, p.subnet, p.publicIp, p.programmed, p.skipped]),
      [
        [4, "172.30.2.0/24", "10.42.0.12", true, null],
        [6, "fd30:0:0:2::/64", "fd00:42::12", true, null],
        [4, "172.30.3.0/24", "10.42.0.13", true, null],
        [6, "fd30:0:0:3::/64", "fd00:42::13", false, "lease has no BackendV6Data.VtepMAC"],
      ],
    );
    const counts = w.agent.programmedCounts();
    assert.equal(counts.peers, 2, "a peer whose IPv6 half is skipped is still served in full");
    assert.deepEqual(
      [...counts.byFamily],
      [
        [4, 2],
        [6, 1],
      ],
    );
    await stop(w, s);
  });

  it("asks for the IPv6 subnet subnet.env remembers, with the IPv4 one", async () => {
    const w = world();
    w.files.files.set(
      SUBNET_FILE,
      "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.7.1/24\nFLANNEL_IPV6_NETWORK=fd30::/56\nFLANNEL_IPV6_SUBNET=fd30:0:0:9::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=true\n",
    );
    const s = await started(w);
    assert.ok(w.registry.entries.has("172.30.7.0-24&fd30:0:0:9::-64"), "the remembered pair, one key");
    await stop(w, s);
  });

  it("--public-ipv6 names the IPv6 address peers use", async () => {
    const w = world({ publicIpv6: "2001:db8::11" });
    const s = await started(w);
    assert.equal(s.keeper.current?.attrs.publicIpv6, "2001:db8::11");
    assert.equal(w.kernel.byName("flannel-v6.1")?.vxlan?.local, "fd00:42::11", "sent from the interface's own");
    await stop(w, s);
  });

  it("vxlan without an IPv6 underlay address: IPv6 over flannel.1, no BackendV6Data, the MTU of IPv4", async () => {
    const w = world({ underlay6: false });
    const s = await started(w);
    assert.equal(s.underlay6, undefined);
    assert.ok(w.events.some((e) => e.type === "underlay6" && e.underlay6 === undefined));
    const attrs = s.keeper.current?.attrs;
    assert.deepEqual([attrs?.publicIpv6, attrs?.v6], [undefined, undefined]);
    assert.equal(w.kernel.byName("flannel-v6.1"), undefined);
    const v4 = w.kernel.byName("flannel.1")!;
    assert.deepEqual(
      w.kernel.addresses
        .filter((a) => a.index === v4.index)
        .map((a) => a.address)
        .sort(),
      ["172.30.1.0", "fd30:0:0:1::"],
    );
    assert.match(w.files.files.get(SUBNET_FILE) ?? "", /FLANNEL_IPV6_SUBNET=fd30:0:0:1::1\/64\nFLANNEL_MTU=1450\n/);
    await stop(w, s);
  });

  it("host-gw without an IPv6 underlay address: refused at start naming the interface (exit 2), before any lease", async () => {
    const w = world({ config: DUAL("host-gw"), underlay6: false });
    await assert.rejects(
      started(w),
      (error: unknown) =>
        error instanceof TrellisError &&
        exitCodeFor(error.code) === 2 &&
        /--iface "eth0" is invalid: must have a global IPv6 address: the host-gw backend routes the IPv6 pod network/.test(
          error.message,
        ),
    );
    assert.equal(w.registry.entries.size, 0);
  });

  it("host-gw with one: routes the peer's IPv6 subnet via its PublicIPv6, publishes no BackendV6Data", async () => {
    const w = world({ config: DUAL("host-gw") });
    w.registry.putRaw(
      PEER_KEY.v4,
      '{"PublicIP":"10.42.0.12","PublicIPv6":"fd00:42::12","BackendType":"host-gw"}',
      600,
      PEER_KEY.v6,
    );
    const s = await started(w);
    assert.deepEqual(s.keeper.current?.attrs, {
      publicIp: "10.42.0.11",
      publicIpv6: "fd00:42::11",
      backendType: "host-gw",
    });
    assert.deepEqual(w.kernel.routes.map((r) => `${r.dst}/${r.prefixLen} via ${r.gateway ?? ""}`).sort(), [
      "172.30.2.0/24 via 10.42.0.12",
      "fd30:0:0:2::/64 via fd00:42::12",
    ]);
    assert.match(w.files.files.get(SUBNET_FILE) ?? "", /FLANNEL_MTU=1500\n/);
    await stop(w, s);
  });
});
