// Network namespaces for the lab and tests. Every name carries a per-run prefix so that a run only ever removes
// what it created, and a crashed run's leftovers can be found by prefix.
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { run } from "./exec.js";

let counter = 0;

/** A short prefix unique to this process: `<tag><pid in base36>` (link names must stay <= 15 chars). */
export function runPrefix(tag = "t"): string {
  return `${tag}${process.pid.toString(36)}`;
}

/** A fresh short name under this run's prefix. */
export function uniqueName(tag = "t"): string {
  counter += 1;
  return `${runPrefix(tag)}${counter.toString(36)}`;
}

export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run("ip", ["netns", "list"]);
  return stdout
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name !== "");
}

export async function addNamespace(name: string): Promise<void> {
  await run("ip", ["netns", "add", name]);
  await run("ip", ["-n", name, "link", "set", "lo", "up"]);
}

export async function deleteNamespace(name: string): Promise<void> {
  // Kill whatever still runs inside first, or the namespace lingers as long as they live.
  const { stdout } = await run("ip", ["netns", "pids", name]).catch(() => ({ stdout: "" }));
  for (const pid of stdout.split("\n").filter((p) => p !== "")) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // already gone
    }
  }
  await run("ip", ["netns", "del", name]).catch(() => undefined);
  // Its files for `ip netns exec` (the resolv.conf a pod's runtime wrote): named after it, so ours.
  await rm(netnsEtcDir(name), { recursive: true, force: true });
}

/** /etc/netns/<name>: what `ip netns exec` bind-mounts over /etc (a pod's resolv.conf). */
export function netnsEtcDir(name: string): string {
  return `/etc/netns/${name}`;
}

/** deleteNamespace's file cleanup, synchronously (last-resort cleanup at process exit). */
export function removeNetnsEtcDirSync(name: string): void {
  rmSync(netnsEtcDir(name), { recursive: true, force: true });
}

/** Runs a command inside a namespace. */
export function inNetns(ns: string, file: string, args: readonly string[], input?: string): ReturnType<typeof run> {
  return run("ip", ["netns", "exec", ns, file, ...args], input === undefined ? {} : { input });
}

/** `ip -n ns …` */
export function ipIn(ns: string, ...args: string[]): ReturnType<typeof run> {
  return run("ip", ["-n", ns, ...args]);
}

/**
 * Tracks namespaces created by one test file or lab run and removes them all in dispose(), which also runs
 * synchronously at process exit as a last resort.
 */
export class NamespaceSet {
  private readonly names = new Set<string>();
  private readonly onExit = (): void => {
    this.disposeSync();
  };

  constructor() {
    process.once("exit", this.onExit);
  }

  async add(name = uniqueName()): Promise<string> {
    this.names.add(name);
    await addNamespace(name);
    return name;
  }

  /** Connects two namespaces with a veth pair, returns nothing; addresses are CIDRs like 10.0.0.1/24. */
  async link(
    a: { ns: string; ifname: string; cidr?: string },
    b: { ns: string; ifname: string; cidr?: string },
  ): Promise<void> {
    const tmpA = uniqueName("va");
    const tmpB = uniqueName("vb");
    await run("ip", ["link", "add", tmpA, "type", "veth", "peer", "name", tmpB]);
    await run("ip", ["link", "set", tmpA, "netns", a.ns, "name", a.ifname]);
    await run("ip", ["link", "set", tmpB, "netns", b.ns, "name", b.ifname]);
    for (const end of [a, b]) {
      if (end.cidr !== undefined) await ipIn(end.ns, "addr", "add", end.cidr, "dev", end.ifname);
      await ipIn(end.ns, "link", "set", end.ifname, "up");
    }
  }

  async dispose(): Promise<void> {
    process.removeListener("exit", this.onExit);
    for (const name of [...this.names].reverse()) {
      await deleteNamespace(name);
      this.names.delete(name);
    }
  }

  private disposeSync(): void {
    for (const name of this.names) {
      try {
        execFileSync("ip", ["netns", "del", name], { stdio: "ignore" });
      } catch {
        // best effort at exit
      }
    }
    this.names.clear();
  }
}
