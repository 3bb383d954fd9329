// iperf3 between two addresses in two namespaces: a one-off server, a client, the received rate in Gbit/s.
import { run, start } from "../../lab/src/exec.js";

export interface IperfEnd {
  readonly ns: string;
  readonly ip: string;
}

export const IPERF_PORT = 5201;

/** `target`: the address the client connects to (a cluster IP in front of the server); the server's own by default. */
export async function iperf(client: IperfEnd, server: IperfEnd, seconds: number, target = server.ip): Promise<number> {
  const srv = start("iperf3 server", "ip", [
    "netns",
    "exec",
    server.ns,
    "iperf3",
    "-s",
    "-1",
    "-B",
    server.ip,
    "-p",
    String(IPERF_PORT),
  ]);
  try {
    // The server needs a moment to listen.
    for (let i = 0; i < 50; i++) {
      const { stdout } = await run("ip", ["netns", "exec", server.ns, "ss", "-ltn", `sport = :${IPERF_PORT}`]);
      if (stdout.includes(`:${IPERF_PORT}`)) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const { stdout } = await run(
      "ip",
      [
        "netns",
        "exec",
        client.ns,
        "iperf3",
        "-c",
        target,
        "-B",
        client.ip,
        "-p",
        String(IPERF_PORT),
        "-t",
        String(seconds),
        "-J",
      ],
      {
        timeoutMs: (seconds + 10) * 1000,
      },
    );
    const result = JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number } } };
    return result.end.sum_received.bits_per_second / 1e9;
  } finally {
    await srv.stop();
  }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
