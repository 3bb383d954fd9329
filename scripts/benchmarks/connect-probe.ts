// Runs inside a pod's namespace (started by services.ts): `connect-probe.js COUNT IP:PORT [IP:PORT …]` opens COUNT
// TCP connections to each target, one after another and alternating between the targets (so each pair of samples
// shares the machine's moment), and prints each target's connect times (SYN → established, in ms) as JSON arrays.
import { connect } from "node:net";

const [count = "0", ...targets] = process.argv.slice(2);

function once(ip: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const socket = connect({ host: ip, port });
    socket.setTimeout(3000, () => {
      socket.destroy(new Error(`connect to ${ip}:${port} timed out`));
    });
    socket.once("connect", () => {
      const elapsed = performance.now() - t0;
      socket.destroy();
      resolve(elapsed);
    });
    socket.once("error", reject);
  });
}

const parsed = targets.map((t) => {
  const at = t.lastIndexOf(":");
  return { ip: t.slice(0, at), port: Number(t.slice(at + 1)) };
});
const times = parsed.map((): number[] => []);
for (let i = 0; i < Number(count); i++) {
  for (const [n, target] of parsed.entries()) times[n]?.push(await once(target.ip, target.port));
}
process.stdout.write(`${JSON.stringify(times)}\n`);
