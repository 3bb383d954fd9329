// Reachability matrices: every source pings every other target once (in parallel, a few at a time).
import { runStatus } from "./exec.js";

export interface Endpoint {
  /** Shown in the matrix: "n1", "n1/pod1". */
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
}

export interface PingResult {
  readonly from: Endpoint;
  readonly to: Endpoint;
  readonly ok: boolean;
  readonly rttMs: number | undefined;
}

const PARALLEL = 8;

export async function ping(from: Endpoint, to: Endpoint, timeoutS = 2, count = 1): Promise<PingResult> {
  const result = await runStatus(
    "ip",
    ["netns", "exec", from.ns, "ping", "-n", "-q", "-c", String(count), "-W", String(timeoutS), "-I", from.ip, to.ip],
    {
      timeoutMs: (timeoutS + 2) * 1000 * count,
    },
  );
  const rtt = /= [\d.]+\/([\d.]+)\//.exec(result.stdout);
  return { from, to, ok: result.code === 0, rttMs: rtt === null ? undefined : Number(rtt[1]) };
}

export async function pingMatrix(endpoints: readonly Endpoint[]): Promise<PingResult[]> {
  const pairs = endpoints.flatMap((from) => endpoints.filter((to) => to !== from).map((to) => ({ from, to })));
  const results: PingResult[] = [];
  for (let i = 0; i < pairs.length; i += PARALLEL) {
    results.push(...(await Promise.all(pairs.slice(i, i + PARALLEL).map(({ from, to }) => ping(from, to)))));
  }
  return results;
}

/** A square table: rows are sources, columns targets; "ok", "--" for itself, "FAIL". */
export function formatMatrix(endpoints: readonly Endpoint[], results: readonly PingResult[]): string {
  const width = Math.max(6, ...endpoints.map((e) => e.name.length));
  const header = ["from \\ to".padEnd(width + 16), ...endpoints.map((e) => e.name.padEnd(width))].join(" ");
  const rows = endpoints.map((from) => {
    const cells = endpoints.map((to) => {
      if (to === from) return "--".padEnd(width);
      const result = results.find((r) => r.from === from && r.to === to);
      return (result?.ok === true ? "ok" : "FAIL").padEnd(width);
    });
    return [`${from.name} (${from.ip})`.padEnd(width + 16), ...cells].join(" ");
  });
  const failed = results.filter((r) => !r.ok).length;
  return `${[header, ...rows].join("\n")}\n${failed === 0 ? `all ${results.length} paths ok` : `${failed} of ${results.length} paths FAILED`}\n`;
}
