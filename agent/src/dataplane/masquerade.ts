// Keeps our masquerade/forward rules installed: applied atomically at start (only when they differ, so a restart
// changes nothing), re-applied when the lease changes, and re-installed when someone removes or edits them. The
// check runs every second by default, so readiness says within a second that the rules are gone.
import { isAborted } from "#lib/abort.js";
import type { Clock } from "#lib/clock.js";
import { Emitter } from "#lib/emitter.js";
import { errorMessage } from "#lib/errors.js";
import type { Firewall } from "./firewall.js";
import type { MasqueradeInput } from "./masquerade-rules.js";

/** How often the rules are checked (flannel checks every 5 s; a check is one `nft -j list table`). */
export const DEFAULT_MASQ_RESYNC_MS = 1000;

export type MasqueradeEvent =
  | { readonly type: "applied"; readonly reason: "start" | "lease" | "resync"; readonly backend: Firewall["kind"] }
  | { readonly type: "unchanged"; readonly backend: Firewall["kind"] }
  | { readonly type: "error"; readonly error: unknown };

export class MasqueradeKeeper {
  readonly events = new Emitter<MasqueradeEvent>();
  private installed = false;
  private lastError: unknown;

  constructor(
    private readonly firewall: Firewall,
    private readonly input: () => MasqueradeInput | undefined,
    private readonly clock: Clock,
    private readonly intervalMs = DEFAULT_MASQ_RESYNC_MS,
  ) {}

  /** True when the last check or apply left our rules in place. */
  get ok(): boolean {
    return this.installed;
  }

  /** Why the last apply failed, while the rules are not in place. */
  get problem(): string | undefined {
    return this.installed || this.lastError === undefined ? undefined : errorMessage(this.lastError);
  }

  /** Installs the rules unless exactly these are there already. */
  async ensure(reason: "start" | "lease" | "resync"): Promise<boolean> {
    const input = this.input();
    if (input === undefined) return false;
    try {
      if (await this.firewall.check(input)) {
        if (reason !== "resync") this.events.emit({ type: "unchanged", backend: this.firewall.kind });
      } else {
        await this.firewall.apply(input);
        this.events.emit({ type: "applied", reason, backend: this.firewall.kind });
      }
      this.installed = true;
      this.lastError = undefined;
    } catch (error) {
      this.installed = false;
      this.lastError = error;
      this.events.emit({ type: "error", error });
    }
    return this.installed;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.clock.sleep(this.intervalMs, signal).catch(() => undefined);
      if (!isAborted(signal)) await this.ensure("resync");
    }
  }
}
