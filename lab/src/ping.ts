// Reachability: matrices (every source pings every other target once, a few at a time) and continuous pings.
import { runStatus, start } from "./exec.js";

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
  // Row labels carry the address: IPv6 ones are longer than the 16 columns an IPv4 one needs.
  const label = Math.max(width + 16, ...endpoints.map((e) => `${e.name} (${e.ip})`.length + 1));
  const header = ["from \\ to".padEnd(label), ...endpoints.map((e) => e.name.padEnd(width))].join(" ");
  const rows = endpoints.map((from) => {
    const cells = endpoints.map((to) => {
      if (to === from) return "--".padEnd(width);
      const result = results.find((r) => r.from === from && r.to === to);
      return (result?.ok === true ? "ok" : "FAIL").padEnd(width);
    });
    return [`${from.name} (${from.ip})`.padEnd(label), ...cells].join(" ");
  });
  const failed = results.filter((r) => !r.ok).length;
  return `${[header, ...rows].join("\n")}\n${failed === 0 ? `all ${results.length} paths ok` : `${failed} of ${results.length} paths FAILED`}\n`;
}

export interface ContinuousPing {
  /** Stops the pinger (SIGINT, so it prints its summary) and returns what it sent and got back. */
  stop(): Promise<{ sent: number; received: number }>;
}

/** A ping every intervalS seconds from one endpoint to another until stopped: how many are lost across an event. */
export function continuousPing(from: Endpoint, to: Endpoint, intervalS = 0.05): ContinuousPing {
  const pinger = start("ping", "ip", [
    "netns",
    "exec",
    from.ns,
    "ping",
    "-n",
    "-i",
    String(intervalS),
    "-W",
    "1",
    "-I",
    from.ip,
    to.ip,
  ]);
  return {
    async stop() {
      await pinger.stop(3000, "SIGINT");
      const summary = /(\d+) packets transmitted, (\d+) received/.exec(pinger.recentOutput);
      if (summary === null)
        throw new Error(`ping ${from.name} → ${to.name} printed no summary: ${pinger.recentOutput.slice(-300)}`);
      return { sent: Number(summary[1]), received: Number(summary[2]) };
    },
  };
}
