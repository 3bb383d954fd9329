// Watches the network config in etcd while the agent runs with the one it read at start. The agent never moves a
// running node to another network by itself (its pods hold addresses of the old one): a change is logged and
// reported (/readyz: not ready, `status`), and a restart makes the move. A config deleted or made invalid leaves the
// running node as it is (warnings): it only stops new nodes from starting.
import { isAborted } from "#lib/abort.js";
import { Backoff, type BackoffPolicy } from "#lib/backoff.js";
import type { Clock } from "#lib/clock.js";
import { Emitter } from "#lib/emitter.js";
import { errorMessage } from "#lib/errors.js";
import { formatCidr, formatIpv4 } from "#lib/ipv4.js";
import { parseNetworkConfig, type Ipv6Pool, type NetworkConfig } from "../config/network-config.js";
import { formatCidr6, formatIpv6 } from "#lib/ipv6.js";
import type { SubnetRegistry } from "../lease/registry.js";

export const CONFIG_WATCH_BACKOFF: BackoffPolicy = { initialMs: 200, maxMs: 5000, multiplier: 2, jitter: 0.2 };

export type ConfigDrift =
  | { readonly kind: "changed"; readonly config: NetworkConfig; readonly differences: readonly string[] }
  | { readonly kind: "deleted" }
  | { readonly kind: "invalid"; readonly error: unknown };

export type ConfigWatchEvent =
  | { readonly type: "drift"; readonly drift: ConfigDrift }
  | { readonly type: "in-sync" }
  | { readonly type: "broken"; readonly error: unknown; readonly retryInMs: number };

/** What differs between two configs, field by field ("Network 172.30.0.0/16 → 10.50.0.0/16"); empty when equal. */
export function configDifferences(from: NetworkConfig, to: NetworkConfig): string[] {
  const fields: [string, string, string][] = [
    ["Network", formatCidr(from.network), formatCidr(to.network)],
    ["SubnetLen", String(from.subnetLen), String(to.subnetLen)],
    ["SubnetMin", formatIpv4(from.subnetMin), formatIpv4(to.subnetMin)],
    ["SubnetMax", formatIpv4(from.subnetMax), formatIpv4(to.subnetMax)],
    ["EnableIPv6", String(from.ipv6 !== undefined), String(to.ipv6 !== undefined)],
    ["IPv6Network", v6(from, (p) => formatCidr6(p.network)), v6(to, (p) => formatCidr6(p.network))],
    ["IPv6SubnetLen", v6(from, (p) => String(p.subnetLen)), v6(to, (p) => String(p.subnetLen))],
    ["IPv6SubnetMin", v6(from, (p) => formatIpv6(p.subnetMin)), v6(to, (p) => formatIpv6(p.subnetMin))],
    ["IPv6SubnetMax", v6(from, (p) => formatIpv6(p.subnetMax)), v6(to, (p) => formatIpv6(p.subnetMax))],
    ["Backend.Type", from.backend.type, to.backend.type],
    ["Backend.VNI", String(from.backend.vni), String(to.backend.vni)],
    ["Backend.Port", String(from.backend.port), String(to.backend.port)],
    ["Backend.DirectRouting", String(from.backend.directRouting), String(to.backend.directRouting)],
  ];
  return fields.filter(([, a, b]) => a !== b).map(([name, a, b]) => `${name} ${a} → ${b}`);
}

function v6(config: NetworkConfig, show: (pool: Ipv6Pool) => string): string {
  return config.ipv6 === undefined ? "-" : show(config.ipv6);
}

/** The drift of the stored text from the running config, or undefined when they agree. */
export function judgeConfig(running: NetworkConfig, text: string | undefined): ConfigDrift | undefined {
  if (text === undefined) return { kind: "deleted" };
  let stored: NetworkConfig;
  try {
    stored = parseNetworkConfig(text);
  } catch (error) {
    return { kind: "invalid", error };
  }
  const differences = configDifferences(running, stored);
  return differences.length === 0 ? undefined : { kind: "changed", config: stored, differences };
}

export function describeDrift(drift: ConfigDrift, key: string): string {
  switch (drift.kind) {
    case "changed":
      return `network config ${key} changed (${drift.differences.join(", ")}); this agent still runs with the one it started with: restart it to move this node`;
    case "deleted":
      return `network config ${key} was deleted from etcd; this agent keeps running with the one it started with, new nodes cannot start`;
    case "invalid":
      return `network config ${key} is now invalid (${errorMessage(drift.error)}); this agent keeps running with the one it started with`;
  }
}

export class ConfigWatcher {
  readonly events = new Emitter<ConfigWatchEvent>();
  private current: ConfigDrift | undefined;
  private readonly backoff: Backoff;

  constructor(
    private readonly registry: SubnetRegistry,
    private readonly clock: Clock,
    private readonly running: NetworkConfig,
    random?: () => number,
  ) {
    this.backoff = new Backoff(CONFIG_WATCH_BACKOFF, random);
  }

  /** How the stored config differs from the running one right now; undefined when they agree. */
  get drift(): ConfigDrift | undefined {
    return this.current;
  }

  private judge(text: string | undefined): void {
    const next = judgeConfig(this.running, text);
    const before = this.current;
    this.current = next;
    if (next === undefined) {
      if (before !== undefined) this.events.emit({ type: "in-sync" });
      return;
    }
    if (before === undefined || describeDrift(before, "") !== describeDrift(next, ""))
      this.events.emit({ type: "drift", drift: next });
  }

  /** Reads, then watches, the config until the signal aborts; a broken watch is read again after a backoff. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let failure: unknown;
      try {
        const { text, revision } = await this.registry.readNetworkConfig();
        if (isAborted(signal)) break;
        this.judge(text);
        failure = await this.watchFrom(revision, signal);
      } catch (error) {
        failure = error;
      }
      if (isAborted(signal) || failure === undefined) break;
      const retryInMs = this.backoff.next();
      this.events.emit({ type: "broken", error: failure, retryInMs });
      await this.clock.sleep(retryInMs, signal).catch(() => undefined);
    }
  }

  private async watchFrom(revision: string, signal: AbortSignal): Promise<unknown> {
    let settle: (error: unknown) => void = () => undefined;
    const ended = new Promise<unknown>((resolve) => {
      settle = resolve;
    });
    const onAbort = (): void => {
      settle(undefined);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const watch = await this.registry.watchNetworkConfig((BigInt(revision) + 1n).toString(), {
      changed: (text) => {
        this.judge(text);
      },
      live: () => {
        this.backoff.reset();
      },
      broken: (_reason, error) => {
        settle(error ?? new Error("config watch ended"));
      },
    });
    try {
      return await ended;
    } finally {
      signal.removeEventListener("abort", onAbort);
      await watch.cancel();
    }
  }
}
