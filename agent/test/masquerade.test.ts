// The masquerade keeper over a fake firewall and clock: rules applied only when they differ, re-installed within one
// check when removed, re-applied for a new lease, a failing apply reported (and recovered from) without a throw.
import assert from "node:assert/strict";
import { parseCidr, type Cidr } from "#lib/ipv4.js";
import { MasqueradeKeeper, type MasqueradeEvent } from "../src/dataplane/masquerade.js";
import type { MasqueradeInput } from "../src/dataplane/masquerade-rules.js";
import { FakeClock } from "./support/fake-clock.js";
import { FakeFirewall } from "./support/fake-firewall.js";

const NETWORK = parseCidr("172.30.0.0/16")!;

function setup(): {
  firewall: FakeFirewall;
  clock: FakeClock;
  keeper: MasqueradeKeeper;
  events: MasqueradeEvent[];
  lease: { subnet: Cidr | undefined };
} {
  const firewall = new FakeFirewall();
  const clock = new FakeClock();
  const lease: { subnet: Cidr | undefined } = { subnet: parseCidr("172.30.1.0/24")! };
  const input = (): MasqueradeInput | undefined =>
    lease.subnet === undefined ? undefined : { ipv4: { network: NETWORK, ownSubnet: lease.subnet } };
  const keeper = new MasqueradeKeeper(firewall, input, clock, 1000);
  const events: MasqueradeEvent[] = [];
  keeper.events.on((e) => events.push(e));
  return { firewall, clock, keeper, events, lease };
}

describe("masquerade keeper (fake firewall and clock)", () => {
  it("applies the rules at start, and a restart that finds them in place changes nothing", async () => {
    const { firewall, keeper, events } = setup();
    assert.equal(await keeper.ensure("start"), true);
    assert.deepEqual(
      [firewall.rules, firewall.applies, keeper.ok, keeper.problem],
      ["172.30.0.0/16 172.30.1.0/24", 1, true, undefined],
    );
    assert.deepEqual(events, [{ type: "applied", reason: "start", backend: "nftables" }]);
    const restarted = setup();
    restarted.firewall.rules = firewall.rules;
    assert.equal(await restarted.keeper.ensure("start"), true);
    assert.equal(restarted.firewall.applies, 0, "exactly these rules are there: not replaced");
    assert.deepEqual(restarted.events, [{ type: "unchanged", backend: "nftables" }]);
  });

  it("re-installs rules removed by hand within one check, and only then", async () => {
    const { firewall, clock, keeper, events } = setup();
    const controller = new AbortController();
    const running = keeper.run(controller.signal);
    await keeper.ensure("start");
    await clock.advance(3000);
    assert.equal(firewall.applies, 1, "checked three times, nothing to do");
    assert.equal(firewall.checks, 4);
    await firewall.remove();
    await clock.advance(1000);
    assert.equal(firewall.rules, "172.30.0.0/16 172.30.1.0/24");
    assert.deepEqual(events.at(-1), { type: "applied", reason: "resync", backend: "nftables" });
    controller.abort();
    await running;
    await clock.advance(5000);
    assert.equal(firewall.applies, 2, "no checks after the signal aborted");
  });

  it("re-applies for a new lease, and does nothing without one", async () => {
    const { firewall, keeper, lease } = setup();
    await keeper.ensure("start");
    lease.subnet = parseCidr("172.30.9.0/24")!;
    assert.equal(await keeper.ensure("lease"), true);
    assert.equal(firewall.rules, "172.30.0.0/16 172.30.9.0/24");
    lease.subnet = undefined;
    assert.equal(await keeper.ensure("lease"), false);
    assert.equal(firewall.applies, 2);
  });

  it("a failing apply is reported, not thrown: not ok with the reason, until an apply works again", async () => {
    const { firewall, clock, keeper, events } = setup();
    const controller = new AbortController();
    const running = keeper.run(controller.signal);
    firewall.failApply = "nft: Operation not permitted";
    assert.equal(await keeper.ensure("start"), false);
    assert.deepEqual([keeper.ok, keeper.problem], [false, "nft: Operation not permitted"]);
    assert.equal(events.at(-1)?.type, "error");
    await clock.advance(1000);
    assert.equal(keeper.ok, false, "still failing at the next check");
    firewall.failApply = undefined;
    await clock.advance(1000);
    assert.deepEqual([keeper.ok, keeper.problem, firewall.installed], [true, undefined, true]);
    controller.abort();
    await running;
  });
});
