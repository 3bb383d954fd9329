// Repeated requests from inside a namespace, for the lab and its tests: `ip netns exec NS node probe.js MODE …`
// prints one JSON summary ({ok, failed, answers: {text: count}, errors: {code: count}, ms}) on stdout.
//   http URL COUNT [INTERVAL_MS]         COUNT GETs (a fresh connection each), INTERVAL_MS apart
//   http-for URL DURATION_MS [INTERVAL]  GETs until DURATION_MS passed (a request loop across a restart)
//   udp IP PORT COUNT [SOURCE_PORT]      COUNT datagrams from one socket (one conntrack flow), each awaiting its answer
//   connect IP PORT                      one TCP connect: how it ended and how long it took
// Run through probeIn(), since a socket cannot be opened in another namespace from the lab's own process.
import { createSocket } from "node:dgram";
import { get } from "node:http";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { runStatus } from "./exec.js";

export interface ProbeSummary {
  readonly ok: number;
  readonly failed: number;
  /** First line of each answer (e.g. "hello from n1-p1 (…)") → how often. */
  readonly answers: Readonly<Record<string, number>>;
  readonly errors: Readonly<Record<string, number>>;
  readonly ms: number;
}

export async function probeIn(ns: string, args: readonly string[], timeoutMs = 60_000): Promise<ProbeSummary> {
  const script = fileURLToPath(import.meta.url);
  const result = await runStatus("ip", ["netns", "exec", ns, process.execPath, script, ...args], { timeoutMs });
  if (result.code !== 0) throw new Error(`probe ${args.join(" ")} in ${ns} failed: ${result.stderr.trim()}`);
  return JSON.parse(result.stdout) as ProbeSummary;
}

/** "hello from n1-p1 (172.30.1.2), you are …" → "n1-p1": who answered. */
export function answeredBy(summary: ProbeSummary): Record<string, number> {
  const by: Record<string, number> = {};
  for (const [text, count] of Object.entries(summary.answers)) {
    const who = /hello from (\S+)/.exec(text)?.[1] ?? text;
    by[who] = (by[who] ?? 0) + count;
  }
  return by;
}

function httpOnce(url: string, timeoutMs: number): Promise<{ ok: boolean; text: string }> {
  return new Promise((resolve) => {
    const req = get(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => {
        resolve({ ok: res.statusCode === 200, text: body.split("\n")[0] ?? "" });
      });
    });
    req.on("timeout", () => {
      req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" }));
    });
    req.on("error", (error: NodeJS.ErrnoException) => {
      resolve({ ok: false, text: error.code ?? error.message });
    });
  });
}

async function main(mode: string, args: string[]): Promise<void> {
  const started = performance.now();
  const answers: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  const count = (outcome: { ok: boolean; text: string }): void => {
    if (outcome.ok) {
      ok += 1;
      answers[outcome.text] = (answers[outcome.text] ?? 0) + 1;
    } else {
      failed += 1;
      errors[outcome.text] = (errors[outcome.text] ?? 0) + 1;
    }
  };
  const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  if (mode === "http" || mode === "http-for") {
    const [url = "", amount = "1", interval = "0"] = args;
    const until = performance.now() + Number(amount);
    for (let i = 0; mode === "http" ? i < Number(amount) : performance.now() < until; i++) {
      count(await httpOnce(url, 2000));
      if (Number(interval) > 0) await pause(Number(interval));
    }
  } else if (mode === "udp") {
    const [ip = "", port = "0", amount = "1", source = "0"] = args;
    const socket = createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(Number(source), resolve));
    for (let i = 0; i < Number(amount); i++) {
      const answer = new Promise<{ ok: boolean; text: string }>((resolve) => {
        const timer = setTimeout(() => {
          socket.removeAllListeners("message");
          resolve({ ok: false, text: "TIMEOUT" });
        }, 1000);
        socket.once("message", (message) => {
          clearTimeout(timer);
          resolve({ ok: true, text: message.toString("utf8").split("\n")[0] ?? "" });
        });
      });
      socket.send(`ping ${i}`, Number(port), ip);
      count(await answer);
      await pause(50);
    }
    socket.close();
  } else if (mode === "connect") {
    const [ip = "", port = "0"] = args;
    count(
      await new Promise((resolve) => {
        const socket = connect({ host: ip, port: Number(port), timeout: 3000 });
        socket.once("connect", () => {
          socket.destroy();
          resolve({ ok: true, text: "connected" });
        });
        socket.once("timeout", () => {
          socket.destroy();
          resolve({ ok: false, text: "TIMEOUT" });
        });
        socket.once("error", (error: NodeJS.ErrnoException) => {
          resolve({ ok: false, text: error.code ?? error.message });
        });
      }),
    );
  } else {
    throw new Error(`unknown probe mode ${JSON.stringify(mode)}`);
  }
  const summary: ProbeSummary = { ok, failed, answers, errors, ms: performance.now() - started };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [mode = "", ...args] = process.argv.slice(2);
  await main(mode, args);
}
