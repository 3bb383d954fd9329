// Change events: state programmed through the adapter, then removed behind its back with `ip`/`bridge` (the drift
// the reconciler must repair); each event must arrive within 1 s.
import assert from "node:assert/strict";
import { run } from "../../../lab/src/exec.js";
import { ipIn, NamespaceSet } from "../../../lab/src/netns.js";
import type { Kernel, KernelEvent, LinkInfo, Subscription } from "#lib/netlink/kernel.js";
import { namespaceWithVxlan } from "./fixture.js";

const OURS = 0x91;
const PEER_MAC = "0a:58:0a:f4:02:00";

/** Collects events; `waitFor` resolves with the first matching event at or after `from`. */
class EventLog {
  readonly events: KernelEvent[] = [];
  private readonly listeners = new Set<() => void>();

  readonly push = (event: KernelEvent): void => {
    this.events.push(event);
    for (const listener of this.listeners) listener();
  };

  waitFor(
    from: number,
    match: (event: KernelEvent) => boolean,
    timeoutMs = 1000,
  ): Promise<{ event: KernelEvent; ms: number }> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const event = this.events.slice(from).find(match);
        if (event === undefined) return;
        cleanup();
        resolve({ event, ms: Date.now() - started });
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(this.events.slice(from))}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }
}

describe("netlink adapter: change events", () => {
  const namespaces = new NamespaceSet();
  const subscriptions: Subscription[] = [];
  let ns = "";
  let otherNs = "";
  let kernel: Kernel;
  let vxlan: LinkInfo;
  const log = new EventLog();

  before(async () => {
    ({ ns, kernel, vxlan } = await namespaceWithVxlan(namespaces));
    otherNs = await namespaces.add();
    await kernel.addAddress({ index: vxlan.index, address: "10.244.1.0", prefixLen: 32 });
    subscriptions.push(kernel.watch(log.push));
  });

  after(async () => {
    for (const subscription of subscriptions) subscription.close();
    kernel.close();
    await namespaces.dispose();
  });

  it("reports a route deleted by hand", async () => {
    await kernel.replaceRoute({
      dst: "10.244.2.0",
      prefixLen: 24,
      gateway: "10.244.2.0",
      oif: vxlan.index,
      onlink: true,
      protocol: OURS,
    });
    const from = log.events.length;
    await ipIn(ns, "route", "del", "10.244.2.0/24");
    const { event, ms } = await log.waitFor(
      from,
      (e) => e.type === "route" && e.action === "del" && e.route.dst === "10.244.2.0",
    );
    assert.ok(event.type === "route");
    assert.deepEqual(
      [event.route.protocol, event.route.gateway, event.route.oif, event.route.onlink],
      [OURS, "10.244.2.0", vxlan.index, true],
    );
    assert.ok(ms < 1000);
  });

  it("reports a neighbour deleted by hand", async () => {
    await kernel.replaceNeighbor({ index: vxlan.index, ip: "10.244.2.0", mac: PEER_MAC, permanent: true });
    const from = log.events.length;
    await ipIn(ns, "neigh", "del", "10.244.2.0", "dev", "flannel.1");
    const { event } = await log.waitFor(from, (e) => e.type === "neighbor" && e.action === "del");
    // The kernel reports the removed entry as it left it (state "failed", no MAC): identify it by link and IP.
    assert.ok(event.type === "neighbor");
    assert.deepEqual([event.neighbor.index, event.neighbor.ip], [vxlan.index, "10.244.2.0"]);
  });

  it("reports an FDB entry deleted by hand", async () => {
    await kernel.replaceFdb({ index: vxlan.index, mac: PEER_MAC, dst: "10.99.0.2" });
    const from = log.events.length;
    await run("bridge", ["-n", ns, "fdb", "del", PEER_MAC, "dev", "flannel.1", "self"]);
    const { event } = await log.waitFor(from, (e) => e.type === "fdb" && e.action === "del");
    assert.ok(event.type === "fdb");
    assert.deepEqual([event.fdb.index, event.fdb.mac, event.fdb.dst], [vxlan.index, PEER_MAC, "10.99.0.2"]);
  });

  it("reports addresses and link changes, and nothing from another namespace", async () => {
    await ipIn(otherNs, "link", "add", "elsewhere", "type", "bridge");
    const from = log.events.length;
    await kernel.addAddress({ index: vxlan.index, address: "10.244.1.1", prefixLen: 32 });
    await log.waitFor(from, (e) => e.type === "address" && e.action === "new" && e.address.address === "10.244.1.1");
    await ipIn(ns, "link", "set", "flannel.1", "down");
    const { event } = await log.waitFor(from, (e) => e.type === "link" && e.link.name === "flannel.1" && !e.link.up);
    assert.equal(event.type === "link" && event.action, "new", "a change is reported as new");
    assert.ok(!log.events.some((e) => e.type === "link" && e.link.name === "elsewhere"));
  });

  it("stops delivering after close(), while another subscription goes on", async () => {
    const closedLog = new EventLog();
    const closing = kernel.watch(closedLog.push);
    const second = new EventLog();
    subscriptions.push(kernel.watch(second.push));
    closing.close();
    closing.close();
    await ipIn(ns, "link", "set", "flannel.1", "up");
    await second.waitFor(0, (e) => e.type === "link" && e.link.name === "flannel.1" && e.link.up);
    assert.deepEqual(closedLog.events, []);
  });

  it("reports a device deleted by hand", async () => {
    const from = log.events.length;
    await ipIn(ns, "link", "del", "flannel.1");
    const { event, ms } = await log.waitFor(from, (e) => e.type === "link" && e.action === "del");
    assert.ok(event.type === "link");
    assert.deepEqual([event.link.index, event.link.name, event.link.kind], [vxlan.index, "flannel.1", "vxlan"]);
    assert.ok(ms < 1000);
  });
});
