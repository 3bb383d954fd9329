// From what the kernel has to what it should have, as one nft transaction (pure). The first sync, and any after a
// failure, is full: the table is declared, every chain refilled and both maps replaced — all in one transaction, so
// there is never a moment without rules (no flush-then-fill gap across a restart). Later syncs touch only the
// Services that changed: O(changes), not O(services). A chain no longer used is flushed at once and deleted a second
// later: before Linux 6.2 (Debian 12 runs 6.1) a removed vmap element releases its chain late, and deleting it in the
// same transaction fails.
import { formatIpv4, type Cidr } from "#lib/ipv4.js";
import type { Backend } from "../services/catalog.js";
import {
  baseScript,
  endpointMapName,
  HAIRPIN_SET,
  NO_ENDPOINT_MAP,
  pickChains,
  PROTOCOLS,
  SERVICE_MAP,
  TABLE,
  type ElementDef,
  type ServiceProgram,
} from "./service-rules.js";

/** How long a chain or set that is no longer used stays (empty) before it is deleted. */
export const STALE_DELETE_DELAY_MS = 1000;

/** What the table holds now, read back with `nft -j list table` when the agent starts. */
export interface TableContents {
  readonly chains: ReadonlySet<string>;
  readonly sets: ReadonlySet<string>;
}

export interface UdpCleanup {
  /** "10.254.0.17 . udp . 53" */
  readonly key: string;
  /** Backends that went away (their conntrack entries must go), or undefined: the port gained its first backends. */
  readonly removed: readonly { ip: number; port: number }[] | undefined;
}

export interface Plan {
  readonly script: string;
  readonly full: boolean;
  /** Services this plan programs (by key); undefined values are removals. */
  readonly programs: ReadonlyMap<string, ServiceProgram | undefined>;
  readonly udp: readonly UdpCleanup[];
  /** Names this plan deletes for good. */
  readonly deleted: readonly string[];
  /** Names this plan leaves flushed, to delete after STALE_DELETE_DELAY_MS. */
  readonly retired: readonly { name: string; kind: "chain" | "set" }[];
  /** Endpoint addresses → how many Service endpoints use them: the whole count (reset) or its change. */
  readonly hairpin: { readonly reset: boolean; readonly counts: ReadonlyMap<number, number> };
}

const T = `ip ${TABLE}`;
const builtins = new Set([
  "nat-prerouting",
  "nat-output",
  "nat-postrouting",
  "filter-forward",
  "filter-output",
  "filter-input",
  "services",
  "endpoint-check",
  "reject-chain",
  "mark-for-masquerade",
  "masquerading",
  ...pickChains().map((c) => c.name),
]);
const endpointMaps = PROTOCOLS.map(endpointMapName);
const builtinSets = new Set([SERVICE_MAP, NO_ENDPOINT_MAP, ...endpointMaps, HAIRPIN_SET]);
/** Elements per `add element` line of a full sync (it may hold tens of thousands; nft parses batches faster). */
const ELEMENTS_PER_LINE = 1000;

/** `add`/`delete element` lines for a set or map, ELEMENTS_PER_LINE elements each. */
function batchedLines(verb: "add" | "delete", name: string, items: readonly string[]): string[] {
  const lines: string[] = [];
  for (let i = 0; i < items.length; i += ELEMENTS_PER_LINE)
    lines.push(`${verb} element ${T} ${name} { ${items.slice(i, i + ELEMENTS_PER_LINE).join(", ")} }`);
  return lines;
}

function hairpinLines(verb: "add" | "delete", ips: readonly number[]): string[] {
  return batchedLines(
    verb,
    HAIRPIN_SET,
    ips.map((ip) => `${formatIpv4(ip)} . ${formatIpv4(ip)}`),
  );
}

/** A full sync's elements, batched per map. */
function elementLines(elements: readonly ElementDef[]): string[] {
  const byMap = new Map<string, string[]>();
  for (const e of elements) {
    const list = byMap.get(e.map) ?? [];
    if (list.length === 0) byMap.set(e.map, list);
    list.push(`${e.key} : ${e.value}`);
  }
  return [...byMap].flatMap(([map, list]) => batchedLines("add", map, list));
}

function chainLines(name: string, rules: readonly string[]): string[] {
  return [
    `add chain ${T} ${name}`,
    `flush chain ${T} ${name}`,
    ...rules.map((rule) => `add rule ${T} ${name} ${rule}`),
  ];
}

const setLine = (name: string, timeoutSeconds: number): string =>
  `add set ${T} ${name} { type ipv4_addr ; flags dynamic,timeout ; timeout ${timeoutSeconds}s ; }`;
const elementKey = (map: string, key: string): string => `${map}\0${key}`;

/**
 * What the planner remembers of a programmed Service: the chains by name with their rules as one string (a
 * Service's rules are rebuilt on every change, so holding them as built — thousands of small strings per 1,000
 * Services — cost more memory than anything else the proxy keeps), and what the next plan diffs against.
 */
interface Programmed {
  readonly chains: readonly { readonly name: string; readonly text: string }[];
  readonly sets: ServiceProgram["sets"];
  readonly elements: ServiceProgram["elements"];
  readonly endpoints: number;
  readonly udpBackends: ServiceProgram["udpBackends"] | undefined;
  readonly hairpin: readonly number[];
}

const chainText = (rules: readonly string[]): string => rules.join("\n");

function remembered(program: ServiceProgram): Programmed {
  return {
    chains: program.chains.map((c) => ({ name: c.name, text: chainText(c.rules) })),
    sets: program.sets,
    elements: program.elements,
    endpoints: program.endpoints,
    udpBackends: program.udpBackends.size === 0 ? undefined : program.udpBackends,
    hairpin: program.hairpin,
  };
}

function udpChanges(before: Programmed | undefined, after: ServiceProgram | undefined): UdpCleanup[] {
  const cleanups: UdpCleanup[] = [];
  for (const [key, old] of before?.udpBackends ?? new Map<string, readonly Backend[]>()) {
    const now = after?.udpBackends.get(key) ?? [];
    const kept = new Set(now.map((b) => `${b.ip}:${b.port}`));
    const removed = old.filter((b) => !kept.has(`${b.ip}:${b.port}`));
    if (removed.length > 0) cleanups.push({ key, removed });
  }
  for (const [key, now] of after?.udpBackends ?? new Map<string, readonly Backend[]>()) {
    if (now.length > 0 && (before?.udpBackends?.get(key) ?? []).length === 0)
      cleanups.push({ key, removed: undefined });
  }
  return cleanups;
}

export class ProxyPlanner {
  /** Per Service, what the kernel holds after the last committed plan. */
  private readonly programmed = new Map<string, Programmed>();
  /** Flushed chains and unused sets waiting for their deletion, with when they were retired. */
  private readonly retiring = new Map<string, { kind: "chain" | "set"; since: number }>();
  /** Endpoint address → how many programmed Service endpoints use it (its hairpin element stays while any does). */
  private readonly hairpinRefs = new Map<number, number>();
  private full = true;
  private found: TableContents | undefined;

  constructor(private readonly now: () => number) {}

  /** What a previous run left in the table: the first (full) plan retires what is no longer wanted. */
  adopt(contents: TableContents | undefined): void {
    this.found = contents;
    this.full = true;
  }

  /** After a failed transaction nothing was applied: the next plan starts from scratch. */
  failed(): void {
    this.full = true;
  }

  get needsFull(): boolean {
    return this.full;
  }

  /** Something is waiting to be deleted: run a plan again after the delay. */
  get pendingDeletes(): boolean {
    return this.retiring.size > 0;
  }

  serviceCount(): number {
    return this.programmed.size;
  }

  endpointCount(): number {
    let n = 0;
    for (const program of this.programmed.values()) n += program.endpoints;
    return n;
  }

  /** A full plan: every Service in `all`; or, incrementally, only `changed` (undefined: the Service is gone). */
  plan(
    changed: ReadonlyMap<string, ServiceProgram | undefined>,
    all: () => ReadonlyMap<string, ServiceProgram>,
    podNetwork: Cidr,
  ): Plan {
    return this.full ? this.fullPlan(all(), podNetwork) : this.incrementalPlan(changed);
  }

  private dueDeletes(lines: string[], keep: ReadonlySet<string>): string[] {
    const deleted: string[] = [];
    const now = this.now();
    // Sets first: a due set may only be referenced by a due chain's (already flushed) rules.
    for (const kind of ["chain", "set"] as const) {
      for (const [name, entry] of this.retiring) {
        if (entry.kind !== kind || keep.has(name) || now - entry.since < STALE_DELETE_DELAY_MS) continue;
        lines.push(`delete ${kind} ${T} ${name}`);
        deleted.push(name);
      }
    }
    return deleted;
  }

  private fullPlan(all: ReadonlyMap<string, ServiceProgram>, podNetwork: Cidr): Plan {
    const lines = baseScript(podNetwork);
    lines.push(
      `flush map ${T} ${SERVICE_MAP}`,
      `flush map ${T} ${NO_ENDPOINT_MAP}`,
      ...endpointMaps.map((map) => `flush map ${T} ${map}`),
      `flush set ${T} ${HAIRPIN_SET}`,
    );
    const elements: ElementDef[] = [];
    const wanted = new Set<string>();
    const udp: UdpCleanup[] = [];
    const hairpin = new Map<number, number>();
    for (const [key, program] of all) {
      for (const ip of program.hairpin) hairpin.set(ip, (hairpin.get(ip) ?? 0) + 1);
      for (const set of program.sets) {
        wanted.add(set.name);
        lines.push(setLine(set.name, set.timeoutSeconds));
      }
      for (const chain of program.chains) {
        wanted.add(chain.name);
        lines.push(...chainLines(chain.name, chain.rules));
      }
      elements.push(...program.elements);
      udp.push(...udpChanges(this.programmed.get(key), program));
    }
    const retired: { name: string; kind: "chain" | "set" }[] = [];
    const known = new Map<string, "chain" | "set">();
    for (const name of this.found?.chains ?? []) known.set(name, "chain");
    for (const name of this.found?.sets ?? []) known.set(name, "set");
    for (const program of this.programmed.values()) {
      for (const chain of program.chains) known.set(chain.name, "chain");
      for (const set of program.sets) known.set(set.name, "set");
    }
    for (const [name, kind] of known) {
      if (wanted.has(name) || builtins.has(name) || builtinSets.has(name) || this.retiring.has(name)) continue;
      if (kind === "chain") lines.push(`flush chain ${T} ${name}`);
      retired.push({ name, kind });
    }
    // After every chain they name: an element's `goto` needs its chain to exist.
    lines.push(...elementLines(elements));
    lines.push(...hairpinLines("add", [...hairpin.keys()]));
    const deleted = this.dueDeletes(lines, wanted);
    const programs = new Map<string, ServiceProgram | undefined>(all);
    for (const key of this.programmed.keys()) if (!all.has(key)) programs.set(key, undefined);
    return {
      script: `${lines.join("\n")}\n`,
      full: true,
      programs,
      udp,
      deleted,
      retired,
      hairpin: { reset: true, counts: hairpin },
    };
  }

  private incrementalPlan(changed: ReadonlyMap<string, ServiceProgram | undefined>): Plan {
    const lines: string[] = [];
    const udp: UdpCleanup[] = [];
    const retired: { name: string; kind: "chain" | "set" }[] = [];
    const wanted = new Set<string>();
    const hairpin = new Map<number, number>();
    for (const [key, after] of changed) {
      const before = this.programmed.get(key);
      for (const ip of before?.hairpin ?? []) hairpin.set(ip, (hairpin.get(ip) ?? 0) - 1);
      for (const ip of after?.hairpin ?? []) hairpin.set(ip, (hairpin.get(ip) ?? 0) + 1);
      const oldChains = new Map((before?.chains ?? []).map((c) => [c.name, c.text]));
      const newChains = new Set((after?.chains ?? []).map((c) => c.name));
      const oldSets = new Set((before?.sets ?? []).map((s) => s.name));
      const newSets = new Set((after?.sets ?? []).map((s) => s.name));
      for (const set of after?.sets ?? []) {
        wanted.add(set.name);
        if (!oldSets.has(set.name) || this.retiring.has(set.name)) lines.push(setLine(set.name, set.timeoutSeconds));
      }
      for (const chain of after?.chains ?? []) {
        wanted.add(chain.name);
        if (oldChains.get(chain.name) !== chainText(chain.rules) || this.retiring.has(chain.name))
          lines.push(...chainLines(chain.name, chain.rules));
      }
      const oldElements = new Map((before?.elements ?? []).map((e) => [elementKey(e.map, e.key), e]));
      const newElements = new Map((after?.elements ?? []).map((e) => [elementKey(e.map, e.key), e]));
      for (const [id, element] of oldElements) {
        if (newElements.get(id)?.value !== element.value)
          lines.push(`delete element ${T} ${element.map} { ${element.key} }`);
      }
      for (const [id, element] of newElements) {
        if (oldElements.get(id)?.value !== element.value)
          lines.push(`add element ${T} ${element.map} { ${element.key} : ${element.value} }`);
      }
      for (const name of oldChains.keys()) {
        if (newChains.has(name)) continue;
        lines.push(`flush chain ${T} ${name}`);
        retired.push({ name, kind: "chain" });
      }
      for (const name of oldSets) if (!newSets.has(name)) retired.push({ name, kind: "set" });
      udp.push(...udpChanges(before, after));
    }
    // Added before any rule could need it, deleted once no endpoint has the address.
    const gained: number[] = [];
    const lost: number[] = [];
    for (const [ip, change] of hairpin) {
      const before = this.hairpinRefs.get(ip) ?? 0;
      if (before === 0 && before + change > 0) gained.push(ip);
      else if (before > 0 && before + change <= 0) lost.push(ip);
    }
    lines.unshift(...hairpinLines("add", gained));
    lines.push(...hairpinLines("delete", lost));
    const deleted = this.dueDeletes(lines, wanted);
    return {
      script: lines.length === 0 ? "" : `${lines.join("\n")}\n`,
      full: false,
      programs: changed,
      udp,
      deleted,
      retired,
      hairpin: { reset: false, counts: hairpin },
    };
  }

  /** The transaction went through: remember what the kernel holds now. */
  committed(plan: Plan): void {
    if (plan.full) this.programmed.clear();
    for (const [key, program] of plan.programs) {
      if (program === undefined) this.programmed.delete(key);
      else this.programmed.set(key, remembered(program));
    }
    for (const program of plan.programs.values()) {
      for (const chain of program?.chains ?? []) this.retiring.delete(chain.name);
      for (const set of program?.sets ?? []) this.retiring.delete(set.name);
    }
    for (const name of plan.deleted) this.retiring.delete(name);
    const now = this.now();
    for (const { name, kind } of plan.retired) this.retiring.set(name, { kind, since: now });
    if (plan.hairpin.reset) this.hairpinRefs.clear();
    for (const [ip, change] of plan.hairpin.counts) {
      const count = (this.hairpinRefs.get(ip) ?? 0) + change;
      if (count > 0) this.hairpinRefs.set(ip, count);
      else this.hairpinRefs.delete(ip);
    }
    this.full = false;
    this.found = undefined;
  }
}
