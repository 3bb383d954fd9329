// The real KvStore: etcd v3 through the etcd3 client. Transactions are single etcd txns; every error leaves here
// translated (etcd/client.ts).
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from "etcd3";
import { translateEtcdError } from "../etcd/client.js";
import { rangePaged } from "../etcd/paged-range.js";
import { followWatch, isRevisionCompacted } from "../etcd/watch.js";
import type { KvChange, KvCompare, KvEntry, KvListing, KvOp, KvStore, KvWatchSink } from "./kv-store.js";

const NO_LEASE = "0";

function entryOf(kv: IKeyValue): KvEntry {
  return {
    key: kv.key.toString("utf8"),
    value: kv.value.toString("utf8"),
    modRevision: kv.mod_revision,
    lease: kv.lease === NO_LEASE || kv.lease === "" ? undefined : kv.lease,
  };
}

export class EtcdKvStore implements KvStore {
  constructor(
    private readonly client: Etcd3,
    private readonly endpoints: readonly string[],
  ) {}

  private async call<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw translateEtcdError(error, this.endpoints, action);
    }
  }

  get(key: string): Promise<KvEntry | undefined> {
    return this.call(`reading ${key}`, async () => {
      const response = await this.client.get(key).exec();
      const kv = response.kvs[0];
      return kv === undefined ? undefined : entryOf(kv);
    });
  }

  list(prefix: string, skip: readonly string[] = []): Promise<KvListing> {
    return this.call(`listing ${prefix}`, async () => {
      const response = await rangePaged(this.client, prefix, { skip });
      return { entries: response.kvs.map(entryOf), revision: response.header.revision };
    });
  }

  commit(compares: readonly KvCompare[], ops: readonly KvOp[]): Promise<boolean> {
    const [first, ...rest] = compares;
    if (first === undefined) throw new TypeError("a transaction needs at least one compare");
    const what = ops.map((op) => ("put" in op ? op.put : op.delete)).join(", ");
    return this.call(`writing ${what}`, async () => {
      const compare = (c: KvCompare): [string, "Version" | "Mod", "==", number | string] =>
        "absent" in c ? [c.key, "Version", "==", 0] : [c.key, "Mod", "==", c.modRevision];
      let builder = this.client.if(...compare(first));
      for (const c of rest) builder = builder.and(...compare(c));
      const actions = ops.map((op) => {
        if ("delete" in op) return this.client.delete().key(op.delete);
        const put = this.client.put(op.put).value(op.value);
        return op.lease === undefined ? put : put.lease(op.lease);
      });
      return (await builder.then(...actions).commit()).succeeded;
    });
  }

  watch(prefix: string, fromRevision: string, sink: KvWatchSink): Promise<{ cancel(): Promise<void> }> {
    const watcher: Watcher = this.client.watch().prefix(prefix).startRevision(fromRevision).watcher();
    const isCompacted = (): Promise<boolean> =>
      isRevisionCompacted(() => this.client.getAll().prefix(prefix).revision(fromRevision).limit(1).keys());
    return Promise.resolve(
      followWatch(watcher, {
        endpoints: this.endpoints,
        action: `watching ${prefix}`,
        isCompacted,
        sink,
        onData: (response: IWatchResponse) => {
          const changes: KvChange[] = response.events.map((event) =>
            event.type === "Delete"
              ? { type: "delete", key: event.kv.key.toString("utf8") }
              : { type: "put", entry: entryOf(event.kv) },
          );
          sink.changes(changes, response.header.revision);
        },
      }),
    );
  }

  close(): void {
    this.client.close();
  }
}
