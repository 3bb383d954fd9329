// subnet.env kept equal to the lease (fake FileStore and clock): rewritten when deleted or changed, the newest
// lease winning when writes overlap, and an unwritable file reported with its path and errno.
import assert from "node:assert/strict";
import { TrellisError } from "#lib/errors.js";
import { SubnetFileKeeper, type SubnetFileEvent } from "../src/daemon/subnet-file.js";
import { FakeClock, settle } from "./support/fake-clock.js";
import { MemoryFiles } from "./support/memory-files.js";

const PATH = "/run/flannel/subnet.env";

function setup(): {
  files: MemoryFiles;
  clock: FakeClock;
  keeper: SubnetFileKeeper;
  events: SubnetFileEvent[];
  controller: AbortController;
  running: Promise<void>;
} {
  const files = new MemoryFiles();
  const clock = new FakeClock();
  const keeper = new SubnetFileKeeper(files, clock, PATH, 500);
  const events: SubnetFileEvent[] = [];
  keeper.events.on((e) => events.push(e));
  const controller = new AbortController();
  return { files, clock, keeper, events, controller, running: keeper.run(controller.signal) };
}

describe("subnet file keeper (fake files and clock)", () => {
  it("rewrites the file within one check when it is deleted or changed", async () => {
    const { files, clock, keeper, events, controller, running } = setup();
    await keeper.set("FLANNEL_SUBNET=172.30.5.1/24\n");
    assert.deepEqual(keeper.state, { state: "written" });
    await files.remove(PATH);
    await clock.advance(500);
    assert.equal(files.files.get(PATH), "FLANNEL_SUBNET=172.30.5.1/24\n");
    files.files.set(PATH, "garbage\n");
    await clock.advance(500);
    assert.equal(files.files.get(PATH), "FLANNEL_SUBNET=172.30.5.1/24\n");
    assert.deepEqual(
      events.map((e) => (e.type === "written" ? e.why : e.type)),
      ["lease", "missing", "changed"],
    );
    // Unchanged: no writes at all.
    const writes = files.writes;
    await clock.advance(5000);
    assert.equal(files.writes, writes);
    controller.abort();
    await running;
  });

  it("serialises writes: with the first write slow, the newest lease is what the file says", async () => {
    const { files, keeper, controller, running } = setup();
    let release: () => void = () => undefined;
    files.hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = keeper.set("FLANNEL_SUBNET=172.30.5.1/24\n");
    const second = keeper.set("FLANNEL_SUBNET=172.30.6.1/24\n");
    await settle();
    release();
    await Promise.all([first, second]);
    assert.equal(files.files.get(PATH), "FLANNEL_SUBNET=172.30.6.1/24\n");
    assert.equal(files.maxInFlight, 1, "never two writes at once");
    assert.deepEqual(keeper.state, { state: "written" });
    controller.abort();
    await running;
  });

  it("an unwritable file: set() fails with FILE_UNWRITABLE naming the file and errno; not written until it can be", async () => {
    const { files, clock, keeper, events, controller, running } = setup();
    files.failWith = "EROFS";
    await assert.rejects(
      keeper.set("FLANNEL_SUBNET=172.30.5.1/24\n"),
      (error: unknown) =>
        error instanceof TrellisError &&
        error.code === "FILE_UNWRITABLE" &&
        error.message === `cannot write the subnet file ${PATH}: EROFS`,
    );
    const state = keeper.state;
    assert.ok(state.state === "failed", `state ${state.state}`);
    assert.match(state.reason, /^cannot write the subnet file \/run\/flannel\/subnet\.env: EROFS: /);
    await clock.advance(2000);
    assert.equal(
      events.filter((e) => e.type === "failed").length,
      1,
      "one report per distinct failure, not one per retry",
    );
    files.failWith = undefined;
    await clock.advance(500);
    assert.equal(files.files.get(PATH), "FLANNEL_SUBNET=172.30.5.1/24\n");
    assert.deepEqual(keeper.state, { state: "written" });
    controller.abort();
    await running;
  });
});
