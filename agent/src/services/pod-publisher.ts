// Publishes this node's pods as Service endpoints: the records the CNI plugin leaves at ADD (lib/src/pod-record.ts)
// become keys under <registry>/pods/<this node's lease>/, attached to the node's etcd lease — so a node that loses
// its lease (or leaves) takes its pods out of every Service with it. Records written by the standalone plugin while
// the agent was down are published when it comes back; a DEL's removal unpublishes. Kept equal by a diff of the
// directory against etcd, after every CNI request the agent serves and every few seconds.
import { isAborted } from "#lib/abort.js";
import type { Clock } from "#lib/clock.js";
import { Emitter } from "#lib/emitter.js";
import { containsIp, type Cidr } from "#lib/ipv4.js";
import { encodePodRecord, type PodRecord } from "#lib/pod-record.js";
import type { KvOp, KvStore } from "../kv/kv-store.js";
import type { RegistryLayout } from "./registry-layout.js";

/** How often the record directory is compared with etcd when nothing announced a change. */
export const POD_RESYNC_MS = 2000;

export interface PodRecordSource {
  /** Every readable record, and the files that were not (named, with why). */
  read(): Promise<{ records: PodRecord[]; unreadable: { file: string; reason: string }[] }>;
}

export interface PublishedNode {
  /** The lease key naming this node ("172.30.5.0-24"). */
  readonly key: string;
  readonly subnet: Cidr;
  /** The etcd lease the pods' keys hang on; undefined for a reservation. */
  readonly leaseId: string | undefined;
}

export type PodPublisherEvent =
  | { readonly type: "published"; readonly added: number; readonly removed: number; readonly pods: number }
  | { readonly type: "skipped"; readonly what: string; readonly reason: string }
  | { readonly type: "error"; readonly error: unknown };

export class PodPublisher {
  readonly events = new Emitter<PodPublisherEvent>();
  /** Aborted to end the current wait early (a notify, or the run's own signal). */
  private waiting: AbortController | undefined;
  private pending = true;
  private readonly reported = new Set<string>();
  private lastNode: string | undefined;

  constructor(
    private readonly options: {
      readonly kv: KvStore;
      readonly layout: RegistryLayout;
      readonly source: PodRecordSource;
      readonly clock: Clock;
      readonly node: () => PublishedNode | undefined;
      readonly resyncMs?: number;
    },
  ) {}

  /** A CNI request was served, or the lease changed: compare again now. */
  notify(): void {
    this.pending = true;
    this.waiting?.abort();
  }

  private skip(what: string, reason: string): void {
    if (this.reported.has(`${what}\n${reason}`)) return;
    this.reported.add(`${what}\n${reason}`);
    this.events.emit({ type: "skipped", what, reason });
  }

  /** One comparison; resolves when etcd holds exactly this node's readable records. */
  async sync(): Promise<void> {
    const node = this.options.node();
    if (node === undefined) return;
    const { kv, layout } = this.options;
    const { records, unreadable } = await this.options.source.read();
    for (const file of unreadable) this.skip(file.file, file.reason);
    const desired = new Map<string, string>();
    for (const pod of records) {
      // An address outside our subnet is from an older lease: that pod is not reachable here any more.
      if (!containsIp(node.subnet, pod.ip)) {
        this.skip(`${pod.namespace}/${pod.name}`, "its address is outside this node's current subnet");
        continue;
      }
      desired.set(layout.pod(node.key, pod.containerId, pod.ifname), encodePodRecord(pod));
    }
    const ops: KvOp[] = [];
    let added = 0;
    let removed = 0;
    const published = await kv.list(layout.nodePods(node.key));
    const have = new Map(published.entries.map((e) => [e.key, e]));
    for (const [key, value] of desired) {
      const entry = have.get(key);
      if (entry?.value === value && entry.lease === node.leaseId) continue;
      ops.push({ put: key, value, lease: node.leaseId });
      added += 1;
    }
    for (const key of have.keys()) {
      if (desired.has(key)) continue;
      ops.push({ delete: key });
      removed += 1;
    }
    // A new subnet: the pods published under the old one are gone (their addresses are no more).
    if (this.lastNode !== undefined && this.lastNode !== node.key) {
      for (const entry of (await kv.list(layout.nodePods(this.lastNode))).entries) {
        ops.push({ delete: entry.key });
        removed += 1;
      }
    }
    if (ops.length > 0) {
      // One transaction, conditional on a key that is always absent: etcd needs a compare to run ops.
      await kv.commit([{ key: `${layout.nodePods(node.key)}\0`, absent: true }], ops);
      this.events.emit({ type: "published", added, removed, pods: desired.size });
    }
    this.lastNode = node.key;
  }

  async run(signal: AbortSignal): Promise<void> {
    const { clock } = this.options;
    const stop = (): void => {
      this.waiting?.abort();
    };
    signal.addEventListener("abort", stop, { once: true });
    try {
      while (!signal.aborted) {
        if (this.pending) {
          this.pending = false;
          try {
            await this.sync();
          } catch (error) {
            this.pending = true;
            this.events.emit({ type: "error", error });
          }
        }
        if (this.pending) continue; // notified while syncing
        this.waiting = new AbortController();
        await clock.sleep(this.options.resyncMs ?? POD_RESYNC_MS, this.waiting.signal).catch(() => undefined);
        this.waiting = undefined;
        if (isAborted(signal)) break;
        this.pending = true;
      }
    } finally {
      signal.removeEventListener("abort", stop);
    }
  }
}
