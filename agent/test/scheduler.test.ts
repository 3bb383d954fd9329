// When passes run (dataplane/scheduler.ts), on a fake clock: a burst of requests is one pass after the debounce, a
// request during a pass is one more pass after it, a full trigger wins over "peers", a failed pass is retried, the
// periodic pass ticks, and nothing runs after stop.
import assert from "node:assert/strict";
import { PassScheduler, type PassOutcome, type PassTrigger } from "../src/dataplane/scheduler.js";
import { FakeClock, settle } from "./support/fake-clock.js";

interface Harness {
  clock: FakeClock;
  scheduler: PassScheduler;
  runs: PassTrigger[];
  /** The outcome of the next passes (default: converged). */
  outcomes: PassOutcome[];
  /** While set, a pass waits for it to resolve. */
  gate: Promise<void> | undefined;
}

function harness(): Harness {
  const clock = new FakeClock();
  const h: Harness = {
    clock,
    runs: [],
    outcomes: [],
    gate: undefined,
    scheduler: undefined as unknown as PassScheduler,
  };
  h.scheduler = new PassScheduler(
    clock,
    async (trigger) => {
      h.runs.push(trigger);
      if (h.gate !== undefined) await h.gate;
      return h.outcomes.shift() ?? { converged: true, error: undefined };
    },
    { debounceMs: 5, retryMs: 1000 },
  );
  return h;
}

describe("pass scheduler (fake clock)", () => {
  it("coalesces a burst of requests into one pass after the debounce", async () => {
    const h = harness();
    for (let i = 0; i < 10; i++) h.scheduler.schedule("kernel");
    await h.clock.advance(4);
    assert.deepEqual(h.runs, [], "not before the debounce");
    await h.clock.advance(1);
    assert.deepEqual(h.runs, ["kernel"]);
    await h.clock.advance(100);
    assert.deepEqual(h.runs, ["kernel"]);
  });

  it("a request while a pass runs becomes exactly one more pass, right after it", async () => {
    const h = harness();
    let open = (): void => undefined;
    h.gate = new Promise((resolve) => {
      open = resolve;
    });
    const first = h.scheduler.pass("start");
    await settle();
    assert.ok(h.scheduler.busy);
    h.scheduler.schedule("kernel");
    h.scheduler.schedule("periodic");
    h.gate = undefined;
    open();
    assert.deepEqual(await first, { converged: true, error: undefined });
    await settle();
    assert.deepEqual(h.runs, ["start", "kernel"], "the first full trigger asked for, once, with no clock movement");
    assert.equal(h.scheduler.busy, false);
  });

  it('a full trigger wins over a pending "peers", and a "peers" pass with a full one pending runs as full', async () => {
    const h = harness();
    h.scheduler.schedule("peers");
    h.scheduler.schedule("kernel");
    h.scheduler.schedule("peers");
    await h.clock.advance(5);
    assert.deepEqual(h.runs, ["kernel"]);
    h.scheduler.schedule("lease");
    await h.scheduler.pass("peers");
    assert.deepEqual(h.runs, ["kernel", "lease"], "the pending full pass ran instead, and nothing is left over");
    await h.clock.advance(10);
    assert.deepEqual(h.runs, ["kernel", "lease"]);
  });

  it("retries a pass that did not converge after retryMs, until one does", async () => {
    const h = harness();
    h.outcomes.push({ converged: false, error: new Error("EBUSY") }, { converged: false, error: new Error("EBUSY") });
    await h.scheduler.pass("start");
    await h.clock.advance(999);
    assert.deepEqual(h.runs, ["start"]);
    await h.clock.advance(1);
    assert.deepEqual(h.runs, ["start", "retry"]);
    await h.clock.advance(1000);
    assert.deepEqual(h.runs, ["start", "retry", "retry"]);
    await h.clock.advance(5000);
    assert.deepEqual(h.runs, ["start", "retry", "retry"], "converged: no more retries");
  });

  it("asks for a periodic pass every interval until its signal aborts", async () => {
    const h = harness();
    const controller = new AbortController();
    const periodic = h.scheduler.runPeriodic(10_000, controller.signal);
    await h.clock.advance(30_000);
    await h.clock.advance(5);
    assert.deepEqual(h.runs, ["periodic", "periodic", "periodic"]);
    controller.abort();
    await periodic;
    await h.clock.advance(30_000);
    assert.equal(h.runs.length, 3);
  });

  it("after stop, nothing is scheduled and a pending pass never runs", async () => {
    const h = harness();
    h.scheduler.schedule("kernel");
    await h.scheduler.stop();
    h.scheduler.schedule("periodic");
    await h.clock.advance(10_000);
    assert.deepEqual(h.runs, []);
  });
});
