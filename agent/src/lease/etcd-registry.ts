// The real SubnetRegistry: etcd v3 through the etcd3 client. Every write is one transaction; every error leaves
// here translated (see etcd/client.ts).
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from "etcd3";
import type { Cidr } from "../../../lib/src/ipv4.js";
import { translateEtcdError } from "../etcd/client.js";
import {
  configKey,
  decodeLeaseValue,
  encodeLeaseValue,
  parseSubnetKey,
  subnetKey,
  subnetsPrefix,
  type LeaseAttrs,
} from "./lease-codec.js";
import type {
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

  private toStored(kv: IKeyValue, subnet: Cidr): StoredLease {
    return {
      subnet,
      attrs: decodeLeaseValue(kv.value.toString("utf8")),
      leaseId: kv.lease === NO_LEASE || kv.lease === "" ? undefined : kv.lease,
      modRevision: kv.mod_revision,
    };
  }

  listLeases(consistency: "linearizable" | "serializable" = "linearizable"): Promise<LeaseListing> {
    const prefix = subnetsPrefix(this.prefix);
    return this.call(`listing ${prefix}`, async () => {
      const response = await this.client
        .getAll()
        .prefix(prefix)
        .serializable(consistency === "serializable")
        .exec();
      const leases: StoredLease[] = [];
      const strayKeys: string[] = [];
      for (const kv of response.kvs) {
        const key = kv.key.toString("utf8");
        const subnet = parseSubnetKey(this.prefix, key);
        if (subnet === undefined) strayKeys.push(key);
        else leases.push(this.toStored(kv, subnet));
      }
      return { leases, revision: response.header.revision, strayKeys };
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
    attrs: LeaseAttrs,
    compare: { column: "Version" | "Mod"; value: string | number },
    leaseId: string | undefined,
  ): Promise<boolean> {
    const key = subnetKey(this.prefix, subnet);
    return this.call(`${action} ${key}`, async () => {
      const put = this.client.put(key).value(encodeLeaseValue(attrs));
      if (leaseId !== undefined) put.lease(leaseId);
      const result = await this.client.if(key, compare.column, "==", compare.value).then(put).commit();
      return result.succeeded;
    });
  }

  createLease(subnet: Cidr, attrs: LeaseAttrs, leaseId: string | undefined): Promise<boolean> {
    return this.writeIf("creating", subnet, attrs, { column: "Version", value: 0 }, leaseId);
  }

  replaceLease(subnet: Cidr, attrs: LeaseAttrs, modRevision: string, leaseId: string | undefined): Promise<boolean> {
    return this.writeIf("updating", subnet, attrs, { column: "Mod", value: modRevision }, leaseId);
  }

  deleteLease(subnet: Cidr, modRevision?: string): Promise<boolean> {
    const key = subnetKey(this.prefix, subnet);
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
    const watcher: Watcher = this.client
      .watch()
      .prefix(subnetsPrefix(this.prefix))
      .startRevision(fromRevision)
      .watcher();
    let open = true;
    const stop = async (): Promise<void> => {
      if (!open) return;
      open = false;
      watcher.removeAllListeners();
      watcher.on("error", () => undefined); // late errors of a watcher we dropped are of no interest
      await watcher.cancel().catch(() => undefined);
    };
    const fail = (reason: "compacted" | "disconnected" | "cancelled", error: unknown): void => {
      if (!open) return;
      void stop();
      sink.broken(reason, translateEtcdError(error, this.endpoints, "watching leases"));
    };
    watcher.on("connected", () => {
      if (open) sink.live();
    });
    watcher.on("disconnected", (error: unknown) => {
      fail("disconnected", error);
    });
    watcher.on("error", (error: unknown) => {
      // etcd3 drops the compact_revision of a cancelled watch; ask etcd whether our start revision is gone.
      void this.isCompacted(fromRevision).then((compacted) => {
        fail(compacted ? "compacted" : "cancelled", error);
      });
    });
    watcher.on("data", (response: IWatchResponse) => {
      if (!open || response.events.length === 0) return; // progress notifications carry no events
      const updates: RegistryUpdate[] = [];
      for (const event of response.events) {
        const subnet = parseSubnetKey(this.prefix, event.kv.key.toString("utf8"));
        if (subnet === undefined) continue;
        updates.push(
          event.type === "Delete"
            ? { type: "delete", subnet }
            : { type: "put", lease: this.toStored(event.kv, subnet) },
        );
      }
      if (updates.length > 0) sink.updates(updates, response.header.revision);
    });
    return Promise.resolve({ cancel: stop });
  }

  private async isCompacted(revision: string): Promise<boolean> {
    try {
      await this.client.getAll().prefix(subnetsPrefix(this.prefix)).revision(revision).limit(1).keys();
      return false;
    } catch (error) {
      return /compacted/i.test(error instanceof Error ? error.message : String(error));
    }
  }

  close(): void {
    this.client.close();
  }
}
