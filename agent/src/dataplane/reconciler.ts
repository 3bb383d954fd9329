// The reconciler keeps the kernel equal to the desired state: the pass (pass.ts) over the Kernel port, run by the
// scheduler (scheduler.ts) when peers change, when the kernel reports that something of ours was deleted or
// changed (repair within one debounce interval), after a failed pass, and periodically as a safety net.
import type { Clock } from "#lib/clock.js";
import type { IpFamily } from "#lib/netlink/kernel.js";
import { DataplanePass, type PassOptions } from "./pass.js";
import { PassScheduler, type PassOutcome, type PassTrigger } from "./scheduler.js";

export { describeEntry, ForeignLinkError, type DataplaneEvent, type EntryRef } from "./pass.js";
export type { PassOutcome, PassTrigger } from "./scheduler.js";

/** Kernel events are coalesced for this long before a pass: a burst of deletions is one repair. */
export const REPAIR_DEBOUNCE_MS = 5;
/** After a failed pass, try again this soon. */
export const RETRY_AFTER_ERROR_MS = 1000;
export const DEFAULT_RESYNC_INTERVAL_MS = 10_000;

export interface ReconcilerOptions extends PassOptions {
  /** Debounce, retry and the periodic pass run on it. */
  readonly clock: Clock;
  readonly resyncIntervalMs?: number;
}

export class Reconciler {
  private readonly dataplane: DataplanePass;
  private readonly scheduler: PassScheduler;

  constructor(private readonly options: ReconcilerOptions) {
    this.dataplane = new DataplanePass(options);
    this.scheduler = new PassScheduler(options.clock, (trigger) => this.dataplane.run(trigger), {
      debounceMs: REPAIR_DEBOUNCE_MS,
      retryMs: RETRY_AFTER_ERROR_MS,
    });
  }

  get events(): DataplanePass["events"] {
    return this.dataplane.events;
  }

  /** True when the last pass left the kernel equal to the desired state. */
  get converged(): boolean {
    return this.dataplane.converged;
  }

  /** The first error of the last pass, while it did not converge. */
  get problem(): string | undefined {
    return this.dataplane.problem;
  }

  /** Peer subnets whose entries are all in the kernel after the last pass. */
  programmedPeers(): ReadonlySet<string> {
    return this.dataplane.programmedPeers();
  }

  /** Peers the plane of `family` does not serve, with why (see DataplanePass.skippedPeers). */
  skippedPeers(family: IpFamily = 4): ReadonlyMap<string, string> {
    return this.dataplane.skippedPeers(family);
  }

  /** Asks for a pass soon; many requests while one is pending or running become one more pass. */
  schedule(trigger: PassTrigger, delayMs?: number): void {
    this.scheduler.schedule(trigger, delayMs);
  }

  /** Runs a pass now (waiting for one in progress first); resolves with its outcome. */
  pass(trigger: PassTrigger): Promise<PassOutcome> {
    return this.scheduler.pass(trigger);
  }

  /** Subscribes to kernel events and runs the periodic pass until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const subscription = this.options.kernel.watch((event) => {
      if (this.dataplane.relevant(event, this.scheduler.busy)) this.schedule("kernel");
    });
    const periodic = new AbortController();
    const ticking = this.scheduler.runPeriodic(
      this.options.resyncIntervalMs ?? DEFAULT_RESYNC_INTERVAL_MS,
      periodic.signal,
    );
    try {
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        signal.addEventListener(
          "abort",
          () => {
            resolve();
          },
          { once: true },
        );
      });
    } finally {
      periodic.abort();
      subscription.close();
      await ticking;
      await this.scheduler.stop();
    }
  }
}
