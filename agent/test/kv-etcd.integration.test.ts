// The KV store's real adapter and the prefix mirror over a real etcd: a watch from a compacted revision breaks as
// "compacted", and the mirror lists, follows puts and deletes, and after a break lists again and reports only the
// difference.
import assert from "node:assert/strict";
import { systemClock } from "#lib/clock.js";
import { createEtcdClient } from "../src/etcd/client.js";
import { EtcdKvStore } from "../src/kv/etcd-kv-store.js";
import { PrefixMirror, type MirrorEvent } from "../src/kv/prefix-mirror.js";
import { freshPrefix, useEtcd } from "./support/etcd-fixture.js";

async function until(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("kv store and prefix mirror (real etcd)", function () {
  this.timeout(30_000);
  const etcd = useEtcd();
  const stores: EtcdKvStore[] = [];
  after(() => {
    for (const store of stores) store.close();
  });

  async function store(retry = false): Promise<EtcdKvStore> {
    const endpoints = [etcd.server.endpoint];
    const kv = new EtcdKvStore(await createEtcdClient({ endpoints, requestTimeoutMs: 3000, retry }), endpoints);
    stores.push(kv);
    return kv;
  }

  it("a watch from a compacted revision breaks as 'compacted'", async () => {
    const kv = await store();
    const prefix = `${freshPrefix()}/`;
    const before = (await kv.list(prefix)).revision;
    assert.ok(await kv.commit([{ key: `${prefix}a`, absent: true }], [{ put: `${prefix}a`, value: "1" }]));
    await etcd.server.etcdctl("compact", (await kv.list(prefix)).revision);
    const reason = await new Promise<string>((resolve) => {
      void kv.watch(prefix, before, {
        changes: () => undefined,
        live: () => undefined,
        broken: (r) => {
          resolve(r);
        },
      });
    });
    assert.equal(reason, "compacted");
  });

  it("the mirror follows puts and deletes, and after a break lists again and reports only the difference", async function () {
    this.timeout(60_000);
    const kv = await store(true);
    const prefix = `${freshPrefix()}/`;
    await kv.commit([{ key: `${prefix}a`, absent: true }], [{ put: `${prefix}a`, value: "1" }]);
    await kv.commit([{ key: `${prefix}skip/0`, absent: true }], [{ put: `${prefix}skip/0`, value: "0" }]);
    const mirror = new PrefixMirror({
      kv,
      prefix,
      skip: [`${prefix}skip/`],
      clock: systemClock,
      backoff: { initialMs: 20, maxMs: 100, multiplier: 2, jitter: 0 },
    });
    const events: MirrorEvent[] = [];
    mirror.events.on((e) => events.push(e));
    const controller = new AbortController();
    const running = mirror.run(controller.signal);
    await until("live", () => mirror.live);
    assert.deepEqual([...mirror.revisions().keys()], [`${prefix}a`]);
    await kv.commit([{ key: `${prefix}skip/1`, absent: true }], [{ put: `${prefix}skip/1`, value: "1" }]);
    await kv.commit([{ key: `${prefix}b`, absent: true }], [{ put: `${prefix}b`, value: "2" }]);
    await until("b", () => mirror.revisions().has(`${prefix}b`));
    assert.deepEqual([...mirror.revisions().keys()], [`${prefix}a`, `${prefix}b`], "skipped: not listed, not watched");
    await kv.commit(
      [{ key: `${prefix}a`, modRevision: mirror.revisions().get(`${prefix}a`) ?? "0" }],
      [{ delete: `${prefix}a` }],
    );
    await until("a deleted", () => !mirror.revisions().has(`${prefix}a`));
    // Break the watch: etcd stops answering for a while.
    await etcd.server.pause();
    await until("broken", () => events.some((e) => e.type === "broken"), 15_000);
    await etcd.server.resume();
    await until("synced again", () => events.filter((e) => e.type === "synced").length >= 2 && mirror.live, 20_000);
    assert.deepEqual([...mirror.revisions().keys()], [`${prefix}b`]);
    const resync = events.filter((e) => e.type === "changes" && e.resync);
    assert.deepEqual(
      resync.flatMap((e) => (e.type === "changes" ? e.changes : [])),
      [],
      "nothing changed while it was away",
    );
    controller.abort();
    await running;
    assert.equal(mirror.live, false);
  });
});
