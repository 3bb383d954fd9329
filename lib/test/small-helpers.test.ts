import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Backoff } from "#lib/backoff.js";
import { formatDuration, parseDuration } from "#lib/duration.js";
import { InvalidArgumentError } from "#lib/errors.js";
import { nodeFileStore, writeFileAtomic } from "#lib/files.js";

describe("durations", () => {
  it("parses units, combinations and bare seconds", () => {
    assert.equal(parseDuration("--x", "24h"), 86_400_000);
    assert.equal(parseDuration("--x", "1h30m"), 5_400_000);
    assert.equal(parseDuration("--x", "90"), 90_000);
    assert.equal(parseDuration("--x", "250ms"), 250);
    assert.equal(parseDuration("--x", "1.5s"), 1500);
  });

  it("rejects malformed and out-of-range values naming the field", () => {
    assert.throws(
      () => parseDuration("--ttl", "soon"),
      (e: unknown) =>
        e instanceof InvalidArgumentError &&
        e.field === "--ttl" &&
        /"soon" is invalid: must be a duration/.test(e.message),
    );
    assert.throws(() => parseDuration("--ttl", "1s2"), InvalidArgumentError);
    assert.throws(() => parseDuration("--ttl", "1s", 2000), /must be between 2s and/);
  });

  it("formats compactly", () => {
    assert.equal(formatDuration(86_399_000), "23h59m");
    assert.equal(formatDuration(250_000), "4m10s");
    assert.equal(formatDuration(350), "350ms");
    assert.equal(formatDuration(3 * 86_400_000 + 5_000), "3d");
  });
});

describe("backoff", () => {
  it("doubles up to the cap, jitters within bounds, and resets", () => {
    const exact = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.2 }, () => 0.5);
    assert.deepEqual(
      [1, 2, 3, 4, 5].map(() => exact.next()),
      [100, 200, 400, 800, 1000],
    );
    exact.reset();
    assert.equal(exact.next(), 100);
    const low = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.2 }, () => 0);
    const high = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.2 }, () => 0.999999);
    assert.equal(low.next(), 80);
    assert.equal(high.next(), 120);
  });
});

describe("atomic files", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "trellis-files-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("creates parent directories, replaces content and leaves no temp files", async () => {
    const path = join(dir, "a/b/subnet.env");
    await writeFileAtomic(path, "one\n");
    await writeFileAtomic(path, "two\n", 0o600);
    assert.equal(await readFile(path, "utf8"), "two\n");
    assert.deepEqual(await readdir(join(dir, "a/b")), ["subnet.env"]);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  it("reads a missing file as undefined and removes idempotently", async () => {
    assert.equal(await nodeFileStore.read(join(dir, "missing")), undefined);
    await nodeFileStore.remove(join(dir, "missing"));
  });

  it("reports an unwritable path as a typed IO error and cleans its temp file", async () => {
    await writeFileAtomic(join(dir, "file"), "x");
    await assert.rejects(
      writeFileAtomic(join(dir, "file/child"), "y"),
      (e: unknown) =>
        e instanceof Error && "code" in e && e.code === "IO" && /cannot write .*file\/child/.test(e.message),
    );
  });
});
