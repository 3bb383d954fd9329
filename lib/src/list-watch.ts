// The list-then-watch loop every mirror of an etcd prefix runs (the peer watcher, the KV prefix mirror): list, apply
// the snapshot, watch from the listed revision + 1 until the watch breaks, back off, list again — so no change is
// missed and nothing stale is kept. Never throws for store trouble: each break is reported and retried.
import { isAborted } from "./abort.js";
import type { Backoff } from "./backoff.js";
import type { Clock } from "./clock.js";

export interface WatchHandlers<Reason extends string> {
  live(): void;
  broken(reason: Reason, error: unknown): void;
}

interface Outcome<Reason extends string> {
  readonly reason: Reason | "error";
  readonly error: unknown;
}

export interface ListWatchLoop<Listing extends { readonly revision: string }, Reason extends string> {
  readonly clock: Clock;
  readonly backoff: Backoff;
  list(): Promise<Listing>;
  /** Applies a listing (the caller reports "synced"). */
  applyListing(listing: Listing): void;
  /** Starts a watch from `fromRevision`; it calls handlers.live / handlers.broken, and its own data sink. */
  watch(fromRevision: string, handlers: WatchHandlers<Reason>): Promise<{ cancel(): Promise<void> }>;
  /** The watch is live (after a (re)connection): the backoff has been reset. */
  onLive(): void;
  /** The watch broke (or the listing failed: "error"); the next attempt is in retryInMs. */
  onBroken(reason: Reason | "error", error: unknown, retryInMs: number): void;
}

/** Runs the loop until the signal aborts. */
export async function listAndWatch<Listing extends { readonly revision: string }, Reason extends string>(
  loop: ListWatchLoop<Listing, Reason>,
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted) {
    let outcome: Outcome<Reason> | undefined;
    try {
      const listing = await loop.list();
      if (isAborted(signal)) break;
      loop.applyListing(listing);
      outcome = await watchUntilBroken(loop, listing.revision, signal);
    } catch (error) {
      outcome = { reason: "error", error };
    }
    if (isAborted(signal) || outcome === undefined) break;
    const retryInMs = loop.backoff.next();
    loop.onBroken(outcome.reason, outcome.error, retryInMs);
    await loop.clock.sleep(retryInMs, signal).catch(() => undefined);
  }
}

/** Watches from just after `revision`; resolves when the watch breaks (undefined when aborted). */
async function watchUntilBroken<Listing extends { readonly revision: string }, Reason extends string>(
  loop: ListWatchLoop<Listing, Reason>,
  revision: string,
  signal: AbortSignal,
): Promise<Outcome<Reason> | undefined> {
  let settle: (value: Outcome<Reason> | undefined) => void = () => undefined;
  const ended = new Promise<Outcome<Reason> | undefined>((resolve) => {
    settle = resolve;
  });
  const onAbort = (): void => {
    settle(undefined);
  };
  signal.addEventListener("abort", onAbort, { once: true });
  const watch = await loop.watch((BigInt(revision) + 1n).toString(), {
    live: () => {
      loop.backoff.reset();
      loop.onLive();
    },
    broken: (reason, error) => {
      settle({ reason, error });
    },
  });
  try {
    return await ended;
  } finally {
    signal.removeEventListener("abort", onAbort);
    await watch.cancel();
  }
}
