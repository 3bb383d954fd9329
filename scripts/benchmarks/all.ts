// `scripts/bench all`: every benchmark, one after another on this machine, into one markdown report with each
// figure and its baseline ratio (bench-results/report-<time>.md, also printed).
import { spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg, release } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { REPO_ROOT } from "../../lab/src/paths.js";

export const BENCHMARKS = {
  leases: "Lease acquisition under contention",
  convergence: "Convergence, cold start and memory with 250 peers",
  throughput: "Throughput, pod to pod",
  latency: "Latency, pod to pod",
  cni: "CNI plugin vs bridge + host-local",
  "lab-up": "Lab up time",
  services: "Services: convergence, 10,000 Services, connect latency and throughput through cluster IPs",
  dns: "Cluster DNS vs dnsmasq, 10,000 Services",
} as const;

function runBenchmark(name: string): Promise<{ code: number; stdout: string; seconds: number }> {
  const script = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
      process.stdout.write(chunk);
    });
    child.on("exit", (code) => {
      resolve({ code: code ?? 1, stdout, seconds: (performance.now() - started) / 1000 });
    });
  });
}

async function main(): Promise<void> {
  const when = new Date();
  const sections: string[] = [
    "# trellis benchmark report",
    "",
    `${when.toISOString()} · ${cpus().length} × ${cpus()[0]?.model ?? "cpu"} · Linux ${release()} · Node ${process.versions.node} · load average at start ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
    "",
    "Every figure is printed with its baseline measured in the same run (ratio = ours / baseline).",
    "",
  ];
  let failed = 0;
  for (const [name, title] of Object.entries(BENCHMARKS)) {
    process.stderr.write(`\n== ${name}\n`);
    const result = await runBenchmark(name);
    if (result.code !== 0) failed += 1;
    sections.push(
      `## ${title} (\`scripts/bench ${name}\`, ${result.seconds.toFixed(0)} s${result.code === 0 ? "" : `, exit ${result.code}`})`,
      "",
      "```",
      result.stdout.trim(),
      "```",
      "",
    );
  }
  const dir = join(REPO_ROOT, "bench-results");
  await mkdir(dir, { recursive: true });
  const file = join(dir, `report-${when.toISOString().replace(/[:.]/g, "-")}.md`);
  await writeFile(file, sections.join("\n"));
  process.stdout.write(`\nreport: ${file}\n`);
  if (failed > 0) process.exitCode = 1;
}

await main();
