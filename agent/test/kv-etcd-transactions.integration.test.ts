// The service registry's KV adapter and the paged listing against a real etcd: transactions on their compares,
// listings that are one snapshot however many pages they take (also while others write), pages halved when one is
// too large for the client, and a watch that delivers what a listing missed.
import assert from "node:assert/strict";
import { noop } from "cockatiel";
import { Etcd3 } from "etcd3";
import { rangePaged } from "../src/etcd/paged-range.js";
import { EtcdKvStore } from "../src/kv/etcd-kv-store.js";
import type { KvChange } from "../src/kv/kv-store.js";
import { useEtcd, freshPrefix } from "./support/etcd-fixture.js";

describe("the registry's KV store on a real etcd", function () {
  this.timeout(60_000);
  const etcd = useEtcd();
  const clients: Etcd3[] = [];
  const client = (grpcOptions: Record<string, number> = {}): Etcd3 => {
    // As the agent's client (etcd/client.ts): no circuit breaker, so one refused response does not block the next.
    const c = new Etcd3({
      hosts: [etcd.server.endpoint],
      grpcOptions,
      faultHandling: { host: () => noop, global: noop },
    });
    clients.push(c);
    return c;
  };
  after(() => {
    for (const c of clients) c.close();
  });

  it("commits only when every compare holds (absent, mod revision), all ops or none", async () => {
    const prefix = freshPrefix();
    const kv = new EtcdKvStore(client(), [etcd.server.endpoint]);
    assert.equal(
      await kv.commit(
        [{ key: `${prefix}/a`, absent: true }],
        [
          { put: `${prefix}/a`, value: "1" },
          { put: `${prefix}/b`, value: "2" },
        ],
      ),
      true,
    );
    const a = (await kv.get(`${prefix}/a`)) ?? assert.fail("written");
    assert.equal(
      await kv.commit([{ key: `${prefix}/a`, absent: true }], [{ put: `${prefix}/c`, value: "3" }]),
      false,
      "a is not absent",
    );
    assert.equal(await kv.get(`${prefix}/c`), undefined, "nothing of a refused transaction is written");
    assert.equal(
      await kv.commit(
        [
          { key: `${prefix}/a`, modRevision: a.modRevision },
          { key: `${prefix}/b`, modRevision: "1" },
        ],
        [{ delete: `${prefix}/a` }],
      ),
      false,
      "b's revision is not 1",
    );
    assert.equal(
      await kv.commit([{ key: `${prefix}/a`, modRevision: a.modRevision }], [{ delete: `${prefix}/a` }]),
      true,
    );
    assert.deepEqual(
      (await kv.list(`${prefix}/`)).entries.map((e) => [e.key, e.value]),
      [[`${prefix}/b`, "2"]],
    );
  });

  it("a paged listing is one snapshot: every page at the first one's revision, even while keys are written", async () => {
    const prefix = freshPrefix();
    const writer = client();
    for (let i = 0; i < 40; i++) await writer.put(`${prefix}/k${String(i).padStart(3, "0")}`).value(String(i));
    let writing = true;
    const writes = (async () => {
      for (let i = 0; writing; i++) {
        await writer.put(`${prefix}/k${String(i % 80).padStart(3, "0")}`).value(`changed ${i}`);
        if (i % 7 === 0) await writer.delete().key(`${prefix}/k${String((i * 3) % 40).padStart(3, "0")}`);
      }
    })();
    try {
      const reader = client();
      for (let round = 0; round < 5; round++) {
        const paged = await rangePaged(reader, `${prefix}/`, { pageKeys: 3 });
        const whole = await reader.getAll().prefix(`${prefix}/`).revision(paged.header.revision).exec();
        assert.deepEqual(
          paged.kvs.map((kv) => `${kv.key.toString()}=${kv.value.toString()}`),
          whole.kvs.map((kv) => `${kv.key.toString()}=${kv.value.toString()}`),
          `round ${round}: the pages equal the store at revision ${paged.header.revision}`,
        );
      }
    } finally {
      writing = false;
      await writes;
    }
  });

  it("leaves skipped sub-prefixes out of a listing, pages and all, at one revision", async () => {
    const prefix = freshPrefix();
    const writer = client();
    for (const sub of ["a", "clusterips", "clusteripsX", "config", "pods", "z"])
      for (let i = 0; i < 4; i++) await writer.put(`${prefix}/${sub}/${i}`).value(sub);
    await writer.put(`${prefix}/clusterips`).value("the bare prefix key is not under it");
    const reader = client();
    const paged = await rangePaged(reader, `${prefix}/`, {
      pageKeys: 3,
      skip: [`${prefix}/clusterips/`, `${prefix}/z/`, "/elsewhere/"],
    });
    const whole = await reader.getAll().prefix(`${prefix}/`).revision(paged.header.revision).exec();
    const keys = (kvs: { key: Buffer }[]): string[] => kvs.map((kv) => kv.key.toString().slice(prefix.length));
    assert.deepEqual(
      keys(paged.kvs),
      keys(whole.kvs).filter((k) => !k.startsWith("/clusterips/") && !k.startsWith("/z/")),
    );
    assert.ok(keys(paged.kvs).includes("/clusteripsX/0") && keys(paged.kvs).includes("/clusterips"));
    const nothing = await rangePaged(reader, `${prefix}/`, { skip: [`${prefix}/`] });
    assert.equal(nothing.kvs.length, whole.kvs.length, "a skip equal to the prefix is ignored: everything");
  });

  it("a page too large for the client's receive limit is asked for again in halves", async () => {
    const prefix = freshPrefix();
    const writer = client();
    for (let i = 0; i < 12; i++) await writer.put(`${prefix}/big${i}`).value("x".repeat(1500));
    const small = client({ "grpc.max_receive_message_length": 4096 });
    await assert.rejects(
      small.getAll().prefix(`${prefix}/`).exec(),
      /RESOURCE_EXHAUSTED|larger than max/,
      "one response for all 12 is too large",
    );
    const paged = await rangePaged(small, `${prefix}/`, { pageKeys: 12 });
    assert.equal(paged.kvs.length, 12);
  });

  it("a watch from a listing's revision + 1 delivers the changes after it, puts and deletes in order", async () => {
    const prefix = freshPrefix();
    const kv = new EtcdKvStore(client(), [etcd.server.endpoint]);
    await kv.commit([{ key: `${prefix}/a`, absent: true }], [{ put: `${prefix}/a`, value: "1" }]);
    const listing = await kv.list(`${prefix}/`);
    await kv.commit(
      [{ key: `${prefix}/b`, absent: true }],
      [{ put: `${prefix}/b`, value: "2" }, { delete: `${prefix}/a` }],
    );
    const seen: KvChange[] = [];
    const got = new Promise<void>((resolve, reject) => {
      void kv
        .watch(`${prefix}/`, String(BigInt(listing.revision) + 1n), {
          changes: (changes) => {
            seen.push(...changes);
            if (seen.length >= 2) resolve();
          },
          live: () => undefined,
          broken: (_reason, error) => {
            reject(error instanceof Error ? error : new Error(String(error)));
          },
        })
        .then((w) => {
          after(() => w.cancel());
        });
    });
    await got;
    assert.deepEqual(
      seen.map((c) => (c.type === "put" ? `put ${c.entry.key}=${c.entry.value}` : `delete ${c.key}`)),
      [`put ${prefix}/b=2`, `delete ${prefix}/a`],
    );
  });
});
