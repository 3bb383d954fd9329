// The dual-stack dataplane on the real kernel: two "nodes" (namespaces) joined by a veth underlay, each running the
// agent's dataplane pass over real netlink for the other as its peer. Over an IPv6 underlay: flannel-v6.1 and each
// peer's route, NDP and FDB entries exactly as intended, an IPv6 ping between the nodes' pod-side addresses through
// the tunnel, a route deleted by hand repaired on the kernel's event, a restart that changes nothing. Without an IPv6
// underlay: IPv6 through flannel.1, pinged the same way.
import assert from "node:assert/strict";
import { systemClock } from "#lib/clock.js";
import { parseCidr } from "#lib/ipv4.js";
import { parseCidr6 } from "#lib/ipv6.js";
import type { Kernel } from "#lib/netlink/kernel.js";
import { openKernel } from "#lib/netlink/rtnetlink-kernel.js";
import { run } from "../../lab/src/exec.js";
import { inNetns, ipIn, NamespaceSet } from "../../lab/src/netns.js";
import type { OwnLease } from "../src/dataplane/backends/backend.js";
import { backendFor } from "../src/dataplane/backends/registry.js";
import { DataplanePass, type DataplaneEvent, type PassOptions } from "../src/dataplane/pass.js";
import { Reconciler } from "../src/dataplane/reconciler.js";
import { deriveVtepMac, deriveVtepMac6 } from "../src/dataplane/vtep-mac.js";
import type { Peer } from "../src/lease/peers.js";

interface Node {
  readonly ns: string;
  readonly n: number;
  readonly kernel: Kernel;
  readonly underlay6: boolean;
}

const ip4 = (n: number): string => `10.99.0.${n}`;
const ip6 = (n: number): string => `fd99::${n}`;

function own(n: number, underlay6: boolean): OwnLease {
  return {
    subnet: parseCidr(`172.30.${n}.0/24`)!,
    vtepMac: deriveVtepMac(ip4(n), 1),
    subnet6: parseCidr6(`fd30:0:0:${n}::/64`)!,
    ...(underlay6 ? { vtepMac6: deriveVtepMac6(ip6(n), 1) } : {}),
  };
}

/** The other node as the lease watcher would hand it over. */
function peerOf(n: number, underlay6: boolean): Peer {
  const lease = own(n, underlay6);
  return {
    subnet: lease.subnet,
    subnet6: lease.subnet6,
    attrs: {
      publicIp: ip4(n),
      backendType: "vxlan",
      vni: 1,
      vtepMac: lease.vtepMac ?? "",
      ...(underlay6 ? { publicIpv6: ip6(n), v6: { vni: 1, vtepMac: lease.vtepMac6 ?? "" } } : {}),
    },
    reserved: false,
  };
}

function passOptions(node: Node, peer: number): PassOptions {
  return {
    kernel: node.kernel,
    backend: backendFor({ type: "vxlan", vni: 1, port: 8472, directRouting: false }),
    deviceName: "flannel.1",
    device6Name: "flannel-v6.1",
    underlayName: "ul0",
    localIp: ip4(node.n),
    localIp6: node.underlay6 ? ip6(node.n) : undefined,
    own: () => own(node.n, node.underlay6),
    peers: () => [peerOf(peer, node.underlay6)],
  };
}

async function json<T>(ns: string, ...args: string[]): Promise<T> {
  const { stdout } = await run("ip", ["-j", "-n", ns, ...args]);
  return (stdout.trim() === "" ? [] : JSON.parse(stdout)) as T;
}

async function ourRoutes6(ns: string): Promise<{ dst: string; gateway?: string; dev?: string; flags?: string[] }[]> {
  return json(ns, "-6", "route", "show", "proto", "145");
}

/** Two namespaces on one veth underlay (IPv4, and IPv6 when asked), each with a "pod" bridge holding .1 addresses. */
async function twoNodes(namespaces: NamespaceSet, kernels: Kernel[], underlay6: boolean): Promise<[Node, Node]> {
  const ns1 = await namespaces.add();
  const ns2 = await namespaces.add();
  await namespaces.link(
    { ns: ns1, ifname: "ul0", cidr: `${ip4(1)}/24` },
    { ns: ns2, ifname: "ul0", cidr: `${ip4(2)}/24` },
  );
  const nodes: Node[] = [];
  for (const [n, ns] of [
    [1, ns1],
    [2, ns2],
  ] as const) {
    const kernel = openKernel({ netns: ns });
    kernels.push(kernel);
    if (underlay6) {
      const ul = await kernel.getLink("ul0");
      assert.ok(ul !== undefined);
      await kernel.addAddress({ index: ul.index, address: ip6(n), prefixLen: 64 });
    }
    await ipIn(ns, "link", "add", "cni0", "type", "bridge");
    await ipIn(ns, "addr", "add", `172.30.${n}.1/24`, "dev", "cni0");
    await ipIn(ns, "addr", "add", `fd30:0:0:${n}::1/64`, "dev", "cni0", "nodad");
    await ipIn(ns, "link", "set", "cni0", "up");
    nodes.push({ ns, n, kernel, underlay6 });
  }
  return [nodes[0]!, nodes[1]!];
}

async function ping(from: Node, to: number, family: 4 | 6): Promise<boolean> {
  const [source, target] =
    family === 4 ? [`172.30.${from.n}.1`, `172.30.${to}.1`] : [`fd30:0:0:${from.n}::1`, `fd30:0:0:${to}::1`];
  const result = await run("ip", [
    "netns",
    "exec",
    from.ns,
    "ping",
    `-${family}`,
    "-n",
    "-c",
    "1",
    "-W",
    "2",
    "-I",
    source,
    target,
  ]).catch((error: unknown) => ({ stdout: String(error) }));
  return /1 received/.test(result.stdout);
}

async function until(what: string, predicate: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const started = Date.now();
  while (!(await predicate())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("dual-stack dataplane on the real kernel (two namespaces)", function () {
  this.timeout(30_000);
  const namespaces = new NamespaceSet();
  const kernels: Kernel[] = [];

  after(async () => {
    for (const kernel of kernels) kernel.close();
    await namespaces.dispose();
  });

  describe("over an IPv6 underlay", () => {
    let nodes: [Node, Node];

    before(async () => {
      nodes = await twoNodes(namespaces, kernels, true);
      for (const [node, peer] of [
        [nodes[0], 2],
        [nodes[1], 1],
      ] as const) {
        const outcome = await new DataplanePass(passOptions(node, peer)).run("start");
        assert.deepEqual(outcome, { converged: true, error: undefined }, `node ${node.n} converges`);
      }
    });

    it("programs flannel-v6.1 and the peer's IPv6 route, NDP and FDB entries as intended", async () => {
      const [node] = nodes;
      const [link] = await json<
        {
          mtu: number;
          address: string;
          linkinfo: { info_kind: string; info_data: { id: number; port: number; local6: string; learning: boolean } };
        }[]
      >(node.ns, "-d", "link", "show", "flannel-v6.1");
      assert.ok(link !== undefined, "flannel-v6.1 exists");
      const data = link.linkinfo.info_data;
      assert.deepEqual(
        [link.linkinfo.info_kind, data.id, data.port, data.local6, data.learning, link.mtu, link.address],
        ["vxlan", 1, 8472, ip6(1), false, 1430, deriveVtepMac6(ip6(1), 1)],
      );
      const addresses = await json<{ addr_info: { local: string; prefixlen: number; scope: string }[] }[]>(
        node.ns,
        "-6",
        "addr",
        "show",
        "dev",
        "flannel-v6.1",
      );
      assert.ok(
        addresses[0]?.addr_info.some((a) => a.local === "fd30:0:0:1::" && a.prefixlen === 128),
        "the subnet's first address as a /128",
      );
      const routes = await ourRoutes6(node.ns);
      assert.deepEqual(
        routes.map((r) => [r.dst, r.gateway, r.dev, r.flags]),
        [["fd30:0:0:2::/64", "fd30:0:0:2::", "flannel-v6.1", ["onlink"]]],
      );
      const neighbours = await json<{ dst: string; lladdr?: string; state?: string[] }[]>(
        node.ns,
        "-6",
        "neigh",
        "show",
        "dev",
        "flannel-v6.1",
      );
      assert.ok(
        neighbours.some(
          (n) => n.dst === "fd30:0:0:2::" && n.lladdr === deriveVtepMac6(ip6(2), 1) && n.state?.includes("PERMANENT"),
        ),
        `a permanent NDP entry for the peer: ${JSON.stringify(neighbours)}`,
      );
      const { stdout } = await run("bridge", ["-j", "-n", node.ns, "fdb", "show", "dev", "flannel-v6.1"]);
      const fdb = JSON.parse(stdout) as { mac: string; dst?: string }[];
      assert.deepEqual(
        fdb.filter((f) => f.dst !== undefined).map((f) => [f.mac, f.dst]),
        [[deriveVtepMac6(ip6(2), 1), ip6(2)]],
      );
      const forwarding = await inNetns(node.ns, "cat", ["/proc/sys/net/ipv6/conf/all/forwarding"]);
      const acceptRa = await inNetns(node.ns, "cat", ["/proc/sys/net/ipv6/conf/flannel-v6.1/accept_ra"]);
      assert.deepEqual([forwarding.stdout.trim(), acceptRa.stdout.trim()], ["1", "0"]);
    });

    it("pings between the nodes' pod-side addresses over IPv6 through flannel-v6.1, and over IPv4 through flannel.1", async () => {
      const tx = async (): Promise<number> =>
        Number(
          (await inNetns(nodes[0].ns, "cat", ["/sys/class/net/flannel-v6.1/statistics/tx_packets"])).stdout.trim(),
        );
      const before = await tx();
      assert.ok(await ping(nodes[0], 2, 6), "IPv6 ping n1 → n2");
      assert.ok((await tx()) > before, "the echo request left through flannel-v6.1");
      assert.ok(await ping(nodes[1], 1, 6), "IPv6 ping n2 → n1");
      assert.ok(await ping(nodes[0], 2, 4), "IPv4 ping n1 → n2");
    });

    it("a restart changes nothing; an IPv6 route deleted by hand is back on the kernel's event", async () => {
      const [node] = nodes;
      const events: DataplaneEvent[] = [];
      const reconciler = new Reconciler({ ...passOptions(node, 2), clock: systemClock, resyncIntervalMs: 600_000 });
      reconciler.events.on((e) => events.push(e));
      const controller = new AbortController();
      const running = reconciler.run(controller.signal);
      try {
        assert.deepEqual(await reconciler.pass("start"), { converged: true, error: undefined });
        const start = events.find((e) => e.type === "pass");
        assert.ok(start?.type === "pass" && start.changes === 0, "a restart adopts everything: no change");
        assert.deepEqual(
          events.filter((e) => e.type !== "pass"),
          [],
        );
        await ipIn(node.ns, "-6", "route", "del", "fd30:0:0:2::/64", "proto", "145");
        await until("the route back", async () => (await ourRoutes6(node.ns)).length === 1);
        assert.ok(
          events.some(
            (e) => e.type === "repaired" && e.family === 6 && e.kind === "route" && e.key === "fd30:0:0:2::/64",
          ),
          "reported as a repair",
        );
        assert.ok(
          events.some((e) => e.type === "pass" && e.trigger === "kernel"),
          "on the kernel's event",
        );
        assert.ok(await ping(node, 2, 6), "and traffic flows again");
      } finally {
        controller.abort();
        await running;
      }
    });
  });

  describe("without an IPv6 underlay address", () => {
    let nodes: [Node, Node];

    before(async () => {
      nodes = await twoNodes(namespaces, kernels, false);
      for (const [node, peer] of [
        [nodes[0], 2],
        [nodes[1], 1],
      ] as const)
        assert.ok((await new DataplanePass(passOptions(node, peer)).run("start")).converged, `node ${node.n}`);
    });

    it("tunnels IPv6 through flannel.1 (no flannel-v6.1), and pings across", async () => {
      const [node] = nodes;
      const links = await json<{ ifname: string }[]>(node.ns, "link", "show");
      assert.ok(!links.some((l) => l.ifname === "flannel-v6.1"), "no IPv6 device");
      assert.deepEqual(
        (await ourRoutes6(node.ns)).map((r) => [r.dst, r.gateway, r.dev]),
        [["fd30:0:0:2::/64", "fd30:0:0:2::", "flannel.1"]],
      );
      assert.ok(await ping(nodes[0], 2, 6), "IPv6 ping n1 → n2 over the IPv4 tunnel");
      assert.ok(await ping(nodes[1], 1, 6), "IPv6 ping n2 → n1");
      assert.ok(await ping(nodes[0], 2, 4), "IPv4 still");
    });
  });
});
