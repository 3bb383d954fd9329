// Reading a node namespace's kernel state with iproute2's JSON output, for assertions in end-to-end tests.
import { run, runStatus } from "../../lab/src/exec.js";

export interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  flags?: string[];
}
export interface IpNeigh {
  dst: string;
  lladdr?: string;
  state?: string[];
}
export interface BridgeFdb {
  mac: string;
  dst?: string;
  flags?: string[];
}

async function json<T>(args: string[]): Promise<T> {
  const { stdout } = await run("ip", args);
  return (stdout.trim() === "" ? [] : JSON.parse(stdout)) as T;
}

export const ROUTE_PROTO = "145";

export async function ourRoutes(ns: string): Promise<IpRoute[]> {
  return json<IpRoute[]>(["-j", "-n", ns, "route", "show", "proto", ROUTE_PROTO]);
}

export async function neighbors(ns: string, dev: string): Promise<IpNeigh[]> {
  return json<IpNeigh[]>(["-j", "-n", ns, "neigh", "show", "dev", dev]);
}

export async function fdb(ns: string, dev: string): Promise<BridgeFdb[]> {
  const { stdout } = await run("bridge", ["-j", "-n", ns, "fdb", "show", "dev", dev]);
  return (stdout.trim() === "" ? [] : JSON.parse(stdout)) as BridgeFdb[];
}

export async function linkExists(ns: string, dev: string): Promise<boolean> {
  return (await runStatus("ip", ["-n", ns, "link", "show", dev])).code === 0;
}

export async function nftTable(ns: string): Promise<string | undefined> {
  const result = await runStatus("ip", ["netns", "exec", ns, "nft", "list", "table", "ip", "trellis"]);
  return result.code === 0 ? result.stdout : undefined;
}

/** Polls until predicate holds; returns how long it took (ms) or throws after timeoutMs. */
export async function timeUntil(what: string, predicate: () => Promise<boolean>, timeoutMs = 5000): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (await predicate()) return performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
