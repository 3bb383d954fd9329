// A sample of the mutated inputs (support/mutations.ts) through the real executable, in a namespace of its own
// (root): an answer for every one, errors clean, and no reservation or veth left after a failure.
import assert from "node:assert/strict";
import { assertAnswer, FUZZ_SEED, randomInput, seeded } from "./support/mutations.js";
import { usePluginFixture } from "./support/plugin-fixture.js";

const REAL = 100;
const SEED = FUZZ_SEED;

describe("cni plugin: randomised bad input", function () {
  this.timeout(120_000);

  describe(`${REAL} mutated inputs through the real executable`, () => {
    const f = usePluginFixture();
    it("answers every one cleanly and leaves no state after failures", async () => {
      const rng = seeded(SEED + 1);
      const pod = await f.pod();
      const paths = {
        subnetFile: f.subnetFile,
        dataDir: f.dataDir,
        netns: `/run/netns/${pod}`,
        badNetns: ["/run/netns/trellis-absent-ns", f.subnetFile],
      };
      const codes = new Set<number>();
      for (let i = 0; i < REAL; i += 1) {
        const input = randomInput(rng, paths, true);
        const raw = await f.invokeRaw(input.env, input.stdin);
        assertAnswer(input, { stdout: raw.stdout, exitCode: raw.code }, raw.stderr, `real #${i}`);
        assert.equal(raw.stderr, "", `real #${i}: nothing on stderr`);
        if (raw.code !== 0) codes.add((JSON.parse(raw.stdout) as { code: number }).code);
        if (raw.code !== 0 && input.env.CNI_COMMAND === "ADD") {
          assert.deepEqual(await f.reservations(), [], `real #${i}: ${raw.stdout}`);
          assert.deepEqual(await f.hostVeths(), [], `real #${i}`);
        }
        if (
          raw.code === 0 &&
          input.env.CNI_COMMAND === "ADD" &&
          input.containerId !== undefined &&
          input.ifname !== undefined
        ) {
          const config = JSON.parse(input.stdin) as Record<string, unknown>;
          const del = await f.invoke("DEL", {
            containerId: input.containerId,
            ifname: input.ifname,
            config: { ...config, cniVersion: "1.0.0" },
          });
          assert.equal(del.code, 0, del.stdout);
        }
      }
      assert.ok(codes.size >= 5, `error codes seen: ${[...codes].join(",")}`);
      assert.deepEqual(await f.reservations(), []);
      assert.deepEqual(await f.hostVeths(), []);
    });
  });
});
