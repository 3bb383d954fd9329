// Thousands of mutated inputs through runPlugin (the function main.ts runs) with fakes (a sample through the real
// executable: fuzz.integration.test.ts). For every input: an answer (never a throw, never a stack trace); on failure
// the spec's error JSON on stdout with exit 1 and no state left behind; nothing accepted names a path outside the
// data dir.
import assert from "node:assert/strict";
import { isInterfaceName } from "#lib/names.js";
import { isValidContainerId } from "../src/env.js";
import { runPlugin } from "../src/plugin.js";
import { FakeDeps } from "./support/fake-deps.js";
import { assertAnswer, FUZZ_SEED, randomInput, seeded } from "./support/mutations.js";

const SUBNET_ENV = "FLANNEL_NETWORK=172.30.0.0/16\nFLANNEL_SUBNET=172.30.5.1/24\nFLANNEL_MTU=1450\n";
const IN_PROCESS = 3000;
const SEED = FUZZ_SEED;

describe("cni plugin: randomised bad input", function () {
  this.timeout(120_000);

  it(`${IN_PROCESS} mutated inputs in-process (fake kernel and store): always an answer, errors clean, no partial state (seed ${SEED})`, async () => {
    const rng = seeded(SEED);
    const paths = {
      subnetFile: "/fz/subnet.env",
      dataDir: "/fz/ipam",
      netns: "/run/netns/fzpod",
      badNetns: ["/run/netns/absent", "/fz/subnet.env"],
    };
    const failures = new Map<number, number>();
    for (let i = 0; i < IN_PROCESS; i += 1) {
      const input = randomInput(rng, paths, false);
      const deps = new FakeDeps();
      if (rng() < 0.9) deps.files.set(paths.subnetFile, rng() < 0.95 ? SUBNET_ENV : "FLANNEL_NETWORK=garbage\n");
      deps.world.addNamespace(paths.netns);
      const out = await runPlugin({ env: input.env, stdin: input.stdin, deps });
      assertAnswer(input, out, "", `#${i}`);
      for (const r of deps.allReservations()) {
        assert.ok(
          isValidContainerId(r.containerId) && isInterfaceName(r.ifname),
          `only safe names reach the store: ${JSON.stringify(r)}`,
        );
      }
      if (out.exitCode !== 0) {
        failures.set(
          (JSON.parse(out.stdout) as { code: number }).code,
          (failures.get((JSON.parse(out.stdout) as { code: number }).code) ?? 0) + 1,
        );
        assert.deepEqual(deps.allReservations(), [], `#${i}: a failure leaves no reservation`);
        assert.deepEqual(
          deps.world.linkNames("host").filter((n) => n.startsWith("veth")),
          [],
          `#${i}: a failure leaves no veth`,
        );
      }
    }
    // The mutations must reach many different errors, or the test proves little.
    assert.ok(failures.size >= 8, `error codes seen: ${JSON.stringify([...failures])}`);
  });
});
