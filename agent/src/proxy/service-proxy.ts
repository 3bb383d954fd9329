// The proxy in every agent: keeps the kernel's service rules equal to the registry. Changes mark Services dirty; a
// sync (after a short debounce, so a burst is one transaction) programs exactly those — or everything, the first
// time and after a failure. Nothing is written before the registry and the peer leases were listed completely: a
// partial view would remove rules the rest of the cluster still needs. Stopping the agent leaves the rules in place.
import { isAborted } from "#lib/abort.js";
import type { Clock } from "#lib/clock.js";
import { Emitter } from "#lib/emitter.js";
import type { Cidr } from "#lib/ipv4.js";
import { parseIpv4 } from "#lib/ipv4.js";
import type { ServiceCatalog } from "../services/catalog.js";
import type { Conntrack, ProxyTable } from "./nft-proxy-table.js";
import { ProxyPlanner, STALE_DELETE_DELAY_MS, type Plan } from "./proxy-plan.js";
import { serviceProgram, type ServiceProgram } from "./service-rules.js";

/** Changes arriving within this window are programmed together. */
export const PROXY_DEBOUNCE_MS = 5;
/** After a failed sync, a full one is tried this soon (doubling to 10 s). */
export const PROXY_RETRY_MS = 500;

export type ProxyEvent =
  | {
      readonly type: "synced";
      readonly full: boolean;
      readonly services: number;
      readonly changed: number;
      readonly durationMs: number;
      readonly latencyMs: number | undefined;
    }
  | { readonly type: "error"; readonly error: unknown; readonly retryInMs: number }
  | { readonly type: "conntrack-error"; readonly error: unknown };

export interface ServiceProxyOptions {
  readonly catalog: ServiceCatalog;
  readonly table: ProxyTable;
  readonly conntrack: Conntrack;
  readonly clock: Clock;
  /** The pod network (sources outside it are masqueraded); undefined until the network config is known. */
  readonly podNetwork: () => Cidr | undefined;
  /** Whether a node (by its lease key) holds a lease: only its pods are endpoints. */
  readonly leased: (node: string) => boolean;
  /** The registry and the leases were listed completely at least once. */
  readonly ready: () => boolean;
  readonly debounceMs?: number;
}

export class ServiceProxy {
  readonly events = new Emitter<ProxyEvent>();
  private readonly planner: ProxyPlanner;
  private readonly dirty = new Set<string>();
  private everything = true;
  /** When the oldest unprogrammed change arrived (for the programming-latency metric). */
  private dirtySince: number | undefined;
  /** Aborted to end the current wait early (a change, or the run's own signal). */
  private waiting: AbortController | undefined;
  private lastOk = false;
  private syncedOnce = false;
  private retryMs = PROXY_RETRY_MS;

  constructor(private readonly options: ServiceProxyOptions) {
    this.planner = new ProxyPlanner(() => options.clock.now());
  }

  /** True when the last sync succeeded and the rules match the registry as last seen. */
  get inSync(): boolean {
    return this.syncedOnce && this.lastOk && this.dirty.size === 0 && !this.everything;
  }

  get hasSynced(): boolean {
    return this.syncedOnce;
  }

  /** The last transaction was refused: the kernel may lag behind the registry until a full sync succeeds. */
  get failing(): boolean {
    return this.syncedOnce && !this.lastOk;
  }

  programmedServices(): number {
    return this.planner.serviceCount();
  }

  programmedEndpoints(): number {
    return this.planner.endpointCount();
  }

  /** Services whose rules may be out of date ("namespace/name"); "config" or anything else of the config: all. */
  markDirty(keys: Iterable<string>): void {
    for (const key of keys) {
      if (key === "config") this.everything = true;
      else this.dirty.add(key);
    }
    this.poke();
  }

  markAll(): void {
    this.everything = true;
    this.poke();
  }

  private poke(): void {
    this.dirtySince ??= this.options.clock.now();
    // Once is enough: abort() builds a DOMException on every call, and a listing marks 20,000 keys one by one.
    if (this.waiting?.signal.aborted === false) this.waiting.abort();
  }

  private program(key: string): ServiceProgram | undefined {
    const service = this.options.catalog.resolve(key, this.options.leased);
    return service === undefined ? undefined : serviceProgram(service);
  }

  private allPrograms(): Map<string, ServiceProgram> {
    const all = new Map<string, ServiceProgram>();
    for (const key of this.options.catalog.serviceKeys()) {
      const program = this.program(key);
      if (program !== undefined) all.set(key, program);
    }
    return all;
  }

  /** One sync now; resolves with whether it succeeded. Exposed for the agent's start and for tests. */
  async syncOnce(): Promise<boolean> {
    const podNetwork = this.options.podNetwork();
    if (podNetwork === undefined || !this.options.ready()) return false;
    const started = performance.now();
    if (this.everything) this.planner.failed(); // a full plan
    const changed = new Map<string, ServiceProgram | undefined>();
    // A full plan builds every program itself: the dirty ones (after a listing, all of them) would be built twice.
    if (!this.planner.needsFull) for (const key of this.dirty) changed.set(key, this.program(key));
    const since = this.dirtySince;
    this.dirty.clear();
    this.everything = false;
    this.dirtySince = undefined;
    const plan = this.planner.plan(changed, () => this.allPrograms(), podNetwork);
    try {
      if (plan.script !== "") await this.options.table.apply(plan.script);
    } catch (error) {
      this.planner.failed();
      this.everything = true;
      this.lastOk = false;
      this.dirtySince ??= since;
      this.events.emit({ type: "error", error, retryInMs: this.retryMs });
      return false;
    }
    this.planner.committed(plan);
    this.lastOk = true;
    this.syncedOnce = true;
    this.retryMs = PROXY_RETRY_MS;
    const now = this.options.clock.now();
    this.events.emit({
      type: "synced",
      full: plan.full,
      services: this.planner.serviceCount(),
      changed: plan.programs.size,
      durationMs: performance.now() - started,
      latencyMs: since === undefined ? undefined : now - since,
    });
    await this.cleanConntrack(plan);
    return true;
  }

  /** UDP flows keep going to a backend that went away until conntrack forgets them: make it forget now. */
  private async cleanConntrack(plan: Plan): Promise<void> {
    for (const cleanup of plan.udp) {
      const [ipText = "", , portText = ""] = cleanup.key.split(" . ");
      const ip = parseIpv4(ipText);
      if (ip === undefined) continue;
      try {
        if (cleanup.removed === undefined) await this.options.conntrack.deleteUdp(ip, Number(portText));
        else
          for (const backend of cleanup.removed)
            await this.options.conntrack.deleteUdp(ip, Number(portText), backend.ip);
      } catch (error) {
        this.events.emit({ type: "conntrack-error", error });
      }
    }
  }

  /** Nothing to program (a method: changes arrive while the loop awaits). */
  private idle(): boolean {
    return !this.everything && this.dirty.size === 0;
  }

  /** Sleeps until `ms` passed or a change (or the end) wakes it; `ms` undefined: only a change or the end. */
  private async pause(ms: number | undefined): Promise<void> {
    this.waiting = new AbortController();
    // A day stands for "until woken": the controller is aborted by the next change or the run's signal.
    await this.options.clock.sleep(ms ?? 86_400_000, this.waiting.signal).catch(() => undefined);
    this.waiting = undefined;
  }

  /** Reads what a previous run left, then syncs whenever something changed, until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    this.planner.adopt(await this.options.table.read().catch(() => undefined));
    const { clock } = this.options;
    const stop = (): void => {
      this.waiting?.abort();
    };
    signal.addEventListener("abort", stop, { once: true });
    try {
      while (!signal.aborted) {
        if (this.idle()) {
          // Wait for a change, or for the deletion of retired chains to fall due.
          await this.pause(this.planner.pendingDeletes ? STALE_DELETE_DELAY_MS : undefined);
          if (isAborted(signal)) break;
          if (this.idle()) {
            if (this.planner.pendingDeletes) await this.syncOnce();
            continue;
          }
        }
        await clock.sleep(this.options.debounceMs ?? PROXY_DEBOUNCE_MS, signal).catch(() => undefined);
        if (isAborted(signal)) break;
        if (!this.options.ready() || this.options.podNetwork() === undefined) {
          await this.pause(100);
          continue;
        }
        if (!(await this.syncOnce())) {
          await this.pause(this.retryMs);
          this.retryMs = Math.min(this.retryMs * 2, 10_000);
        }
      }
    } finally {
      signal.removeEventListener("abort", stop);
    }
  }
}
