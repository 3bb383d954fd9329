// When dataplane passes run: requests are coalesced (a burst of kernel events is one pass after a short debounce),
// a request made while a pass runs becomes one more pass after it, a failed pass is retried, and a periodic pass
// is the safety net. Time comes from the injected Clock, so tests drive it with a fake one.
import { isAborted } from "#lib/abort.js";
import type { Clock } from "#lib/clock.js";

export type PassTrigger = "start" | "peers" | "lease" | "kernel" | "periodic" | "retry";

export interface PassOutcome {
  readonly converged: boolean;
  /** The first error of a pass that did not converge. */
  readonly error: unknown;
}

export interface SchedulerTiming {
  /** Requests are coalesced for this long before a pass. */
  readonly debounceMs: number;
  /** After a pass that did not converge, the next one this soon. */
  readonly retryMs: number;
}

export class PassScheduler {
  /** The pass asked for while one runs or waits for its debounce; a full trigger wins over "peers". */
  private pending: PassTrigger | undefined;
  private timer: AbortController | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly runPass: (trigger: PassTrigger) => Promise<PassOutcome>,
    private readonly timing: SchedulerTiming,
  ) {}

  /** True while a pass runs. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Asks for a pass soon; many requests while one is pending or running become one more pass. */
  schedule(trigger: PassTrigger, delayMs = this.timing.debounceMs): void {
    if (this.stopped) return;
    this.pending = this.pending === undefined || this.pending === "peers" ? trigger : this.pending;
    if (this.running !== undefined || this.timer !== undefined) return;
    const timer = new AbortController();
    this.timer = timer;
    const fire = (): void => {
      if (this.timer !== timer) return; // cancelled by a pass that started meanwhile
      this.timer = undefined;
      const next = this.pending;
      this.pending = undefined;
      if (next !== undefined) void this.pass(next);
    };
    // 0 means "as soon as this task is done", not "when the clock next moves".
    if (delayMs === 0) queueMicrotask(fire);
    else this.clock.sleep(delayMs, timer.signal).then(fire, () => undefined);
  }

  /** Runs a pass now (waiting for one in progress first); resolves with its outcome. */
  async pass(trigger: PassTrigger): Promise<PassOutcome> {
    while (this.running !== undefined) await this.running;
    // This pass reads the latest state, so it satisfies every request made before it started — but a "peers"
    // pass does not dump the kernel, so a pending full pass stays pending.
    this.cancelTimer();
    const waiting = this.pending;
    this.pending = undefined;
    const effective = waiting !== undefined && waiting !== "peers" && trigger === "peers" ? waiting : trigger;
    const work = this.runPass(effective);
    const done = work.then((outcome) => {
      this.running = undefined;
      const again = this.pending;
      this.pending = undefined;
      if (again !== undefined) this.schedule(again, 0);
      else if (!outcome.converged) this.schedule("retry", this.timing.retryMs);
    });
    this.running = done;
    await done;
    return work;
  }

  /** Asks for a "periodic" pass every intervalMs until the signal aborts. */
  async runPeriodic(intervalMs: number, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.clock.sleep(intervalMs, signal).catch(() => undefined);
      if (!isAborted(signal)) this.schedule("periodic");
    }
  }

  /** No more passes are started; resolves when the one running (if any) is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer();
    await this.running;
  }

  private cancelTimer(): void {
    this.timer?.abort();
    this.timer = undefined;
  }
}
