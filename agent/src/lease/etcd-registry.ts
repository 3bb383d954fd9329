// The real SubnetRegistry: etcd v3 through the etcd3 client. Every write is one transaction; every error leaves
// here translated (see etcd/client.ts).
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from "etcd3";
import type { Cidr } from "#lib/ipv4.js";
import type { Cidr6 } from "#lib/ipv6.js";
import { translateEtcdError } from "../etcd/client.js";
import { rangePaged } from "../etcd/paged-range.js";
import { followWatch, isRevisionCompacted, type WatchSink as BreakSink } from "../etcd/watch.js";
import {
  configKey,
  decodeLeaseValue,
  encodeLeaseValue,
  parseLeaseKey,
  subnetKey,
  subnetsPrefix,
  type LeaseAttrs,
  type LeaseKeyName,
} from "./lease-codec.js";
import type {
  ConfigWatchSink,
  LeaseListing,
  RegistryUpdate,
  RegistryWatch,
  StoredLease,
  SubnetRegistry,
  WatchSink,
} from "./registry.js";

const NO_LEASE = "0";

export class EtcdRegistry implements SubnetRegistry {
  constructor(
    private readonly client: Etcd3,
    readonly prefix: string,
    private readonly endpoints: readonly string[],
    private readonly requestTimeoutMs: number,
  ) {}

  private async call<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw translateEtcdError(error, this.endpoints, action);
    }
  }

  getNetworkConfig(): Promise<string | undefined> {
    const key = configKey(this.prefix);
    return this.call(`reading ${key}`, async () => (await this.client.get(key).string()) ?? undefined);
  }

  async putNetworkConfig(text: string): Promise<void> {
    const key = configKey(this.prefix);
    await this.call(`writing ${key}`, () => this.client.put(key).value(text).exec());
  }

  readNetworkConfig(): Promise<{ text: string | undefined; revision: string }> {
    const key = configKey(this.prefix);
    return this.call(`reading ${key}`, async () => {
      const response = await this.client.get(key).exec();
      return { text: response.kvs[0]?.value.toString("utf8"), revision: response.header.revision };
    });
  }

  watchNetworkConfig(fromRevision: string, sink: ConfigWatchSink): Promise<RegistryWatch> {
    const key = configKey(this.prefix);
    return this.watch(
      this.client.watch().key(key).startRevision(fromRevision).watcher(),
      fromRevision,
      `watching ${key}`,
      sink,
      (response) => {
        for (const event of response.events) {
          if (event.kv.key.toString("utf8") !== key) continue;
          sink.changed(event.type === "Delete" ? undefined : event.kv.value.toString("utf8"), response.header.revision);
        }
      },
    );
  }

  private toStored(kv: IKeyValue, name: LeaseKeyName): StoredLease {
    return {
      subnet: name.subnet,
      ...(name.subnet6 === undefined ? {} : { subnet6: name.subnet6 }),
      attrs: decodeLeaseValue(kv.value.toString("utf8")),
      leaseId: kv.lease === NO_LEASE || kv.lease === "" ? undefined : kv.lease,
      modRevision: kv.mod_revision,
      createRevision: kv.create_revision,
    };
  }

  listLeases(consistency: "linearizable" | "serializable" = "linearizable"): Promise<LeaseListing> {
    const prefix = subnetsPrefix(this.prefix);
    return this.call(`listing ${prefix}`, async () => {
      const response = await rangePaged(this.client, prefix, { serializable: consistency === "serializable" });
      const leases: StoredLease[] = [];
      for (const kv of response.kvs) {
        // A key under the prefix whose name is not a subnet is never handed out or deleted: skipped.
        const name = parseLeaseKey(this.prefix, kv.key.toString("utf8"));
        if (name !== undefined) leases.push(this.toStored(kv, name));
      }
      return { leases, revision: response.header.revision, clusterId: response.header.cluster_id };
    });
  }

  timeToLive(leaseId: string): Promise<number | undefined> {
    return this.call("reading a lease TTL", async () => {
      const response = await this.client.leaseClient.leaseTimeToLive({ ID: leaseId });
      const ttl = Number(response.TTL);
      return ttl > 0 ? ttl : undefined;
    });
  }

  grantLease(ttlSeconds: number): Promise<string> {
    return this.call(
      "granting a lease",
      async () => (await this.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 })).ID,
    );
  }

  private writeIf(
    action: string,
    subnet: Cidr,
    subnet6: Cidr6 | undefined,
    attrs: LeaseAttrs,
    compare: { column: "Version" | "Mod"; value: string | number },
    leaseId: string | undefined,
  ): Promise<boolean> {
    const key = subnetKey(this.prefix, subnet, subnet6);
    return this.call(`${action} ${key}`, async () => {
      const put = this.client.put(key).value(encodeLeaseValue(attrs));
      if (leaseId !== undefined) put.lease(leaseId);
      let txn = this.client.if(key, compare.column, "==", compare.value);
      // A new dual-stack key must not share its IPv4 subnet with an IPv4-only key (a node of another shape).
      if (subnet6 !== undefined && compare.column === "Version")
        txn = txn.and(subnetKey(this.prefix, subnet), "Version", "==", 0);
      const result = await txn.then(put).commit();
      return result.succeeded;
    });
  }

  createLease(subnet: Cidr, attrs: LeaseAttrs, leaseId: string | undefined, subnet6?: Cidr6): Promise<boolean> {
    return this.writeIf("creating", subnet, subnet6, attrs, { column: "Version", value: 0 }, leaseId);
  }

  replaceLease(
    subnet: Cidr,
    attrs: LeaseAttrs,
    modRevision: string,
    leaseId: string | undefined,
    subnet6?: Cidr6,
  ): Promise<boolean> {
    return this.writeIf("updating", subnet, subnet6, attrs, { column: "Mod", value: modRevision }, leaseId);
  }

  deleteLease(subnet: Cidr, modRevision?: string, subnet6?: Cidr6): Promise<boolean> {
    const key = subnetKey(this.prefix, subnet, subnet6);
    return this.call(`deleting ${key}`, async () => {
      if (modRevision === undefined) {
        const response = await this.client.delete().key(key).exec();
        return Number(response.deleted) > 0;
      }
      const result = await this.client.if(key, "Mod", "==", modRevision).then(this.client.delete().key(key)).commit();
      return result.succeeded;
    });
  }

  keepAlive(leaseId: string): Promise<number | undefined> {
    return this.call("renewing the lease", async () => {
      // Streams get no default deadline; a keepalive must not hang on a half-open connection.
      const stream = await this.client.leaseClient.leaseKeepAlive({ deadline: Date.now() + this.requestTimeoutMs });
      try {
        const response = await new Promise<{ TTL: string }>((resolve, reject) => {
          stream.on("data", resolve);
          stream.on("error", reject);
          stream.on("end", () => {
            reject(new Error("keepalive stream ended"));
          });
          stream.write({ ID: leaseId });
        });
        const ttl = Number(response.TTL);
        return ttl > 0 ? ttl : undefined;
      } finally {
        stream.end();
      }
    });
  }

  async revoke(leaseId: string): Promise<void> {
    await this.call("revoking a lease", async () => {
      try {
        await this.client.leaseClient.leaseRevoke({ ID: leaseId });
      } catch (error) {
        // Revoking a lease that is already gone is what we wanted anyway.
        if (!/lease not found/i.test(error instanceof Error ? error.message : "")) throw error;
      }
    });
  }

  watchLeases(fromRevision: string, sink: WatchSink): Promise<RegistryWatch> {
    const watcher = this.client.watch().prefix(subnetsPrefix(this.prefix)).startRevision(fromRevision).watcher();
    return this.watch(watcher, fromRevision, "watching leases", sink, (response) => {
      const updates: RegistryUpdate[] = [];
      for (const event of response.events) {
        const name = parseLeaseKey(this.prefix, event.kv.key.toString("utf8"));
        if (name === undefined) continue;
        updates.push(
          event.type === "Delete" ? { type: "delete", ...name } : { type: "put", lease: this.toStored(event.kv, name) },
        );
      }
      if (updates.length > 0) sink.updates(updates, response.header.revision);
    });
  }

  /** One watch: its breaks translated once (etcd/watch.ts), its data handed on until cancelled. */
  private watch(
    watcher: Watcher,
    fromRevision: string,
    action: string,
    sink: BreakSink,
    onData: (response: IWatchResponse) => void,
  ): Promise<RegistryWatch> {
    const isCompacted = (): Promise<boolean> =>
      isRevisionCompacted(() =>
        this.client.getAll().prefix(subnetsPrefix(this.prefix)).revision(fromRevision).limit(1).keys(),
      );
    return Promise.resolve(followWatch(watcher, { endpoints: this.endpoints, action, isCompacted, sink, onData }));
  }

  close(): void {
    this.client.close();
  }
}
