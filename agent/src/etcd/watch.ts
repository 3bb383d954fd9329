// One etcd3 watch with its breaks translated once: "connected" → live, a lost connection → disconnected, an error →
// compacted (when etcd no longer has the start revision) or cancelled; late events of a dropped watch are ignored.
// The registry (lease/etcd-registry.ts) and the KV store (kv/etcd-kv-store.ts) both watch through it.
import type { IWatchResponse, Watcher } from "etcd3";
import { translateEtcdError } from "./client.js";

export type WatchBreak = "compacted" | "disconnected" | "cancelled";

export interface WatchSink {
  live(): void;
  broken(reason: WatchBreak, error: unknown): void;
}

export interface EtcdWatchOptions {
  readonly endpoints: readonly string[];
  /** What the watch is for, in error messages ("watching /coreos.com/network/subnets/"). */
  readonly action: string;
  /** Whether etcd has compacted the watch's start revision away. */
  readonly isCompacted: () => Promise<boolean>;
  readonly sink: WatchSink;
  /** Each response that carries events (progress notifications carry none). */
  readonly onData: (response: IWatchResponse) => void;
}

export function followWatch(watcher: Watcher, options: EtcdWatchOptions): { cancel(): Promise<void> } {
  let open = true;
  const stop = async (): Promise<void> => {
    if (!open) return;
    open = false;
    watcher.removeAllListeners();
    watcher.on("error", () => undefined); // late errors of a watcher we dropped are of no interest
    await watcher.cancel().catch(() => undefined);
  };
  const fail = (reason: WatchBreak, error: unknown): void => {
    if (!open) return;
    void stop();
    options.sink.broken(reason, translateEtcdError(error, options.endpoints, options.action));
  };
  watcher.on("connected", () => {
    if (open) options.sink.live();
  });
  watcher.on("disconnected", (error: unknown) => {
    fail("disconnected", error);
  });
  watcher.on("error", (error: unknown) => {
    // etcd3 drops the compact_revision of a cancelled watch; ask etcd whether our start revision is gone.
    void options.isCompacted().then((compacted) => {
      fail(compacted ? "compacted" : "cancelled", error);
    });
  });
  watcher.on("data", (response: IWatchResponse) => {
    if (open && response.events.length > 0) options.onData(response);
  });
  return { cancel: stop };
}

/** True when reading `prefix` at `revision` fails because etcd compacted it. */
export async function isRevisionCompacted(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read();
    return false;
  } catch (error) {
    return /compacted/i.test(error instanceof Error ? error.message : String(error));
  }
}
