// A tiny HTTP GET for use inside a namespace: `ip netns exec NS node http-get.js URL [timeoutMs]` prints
// {"status":…,"body":…} on stdout (status 0 with the error when nothing answered). The lab runs it through
// httpGetIn() because a socket cannot be opened in another namespace from this process.
import { get } from "node:http";
import { fileURLToPath } from "node:url";
import { runStatus } from "./exec.js";

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** GET url from inside namespace ns. */
export async function httpGetIn(ns: string, url: string, timeoutMs = 2000): Promise<HttpAnswer> {
  const script = fileURLToPath(import.meta.url);
  const result = await runStatus("ip", ["netns", "exec", ns, process.execPath, script, url, String(timeoutMs)], {
    timeoutMs: timeoutMs + 5000,
  });
  return JSON.parse(result.stdout) as HttpAnswer;
}

function main(url: string, timeoutMs: number): void {
  const print = (answer: HttpAnswer): void => {
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  };
  const req = get(url, { timeout: timeoutMs }, (res) => {
    let body = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      body += chunk;
    });
    res.on("end", () => {
      print({ status: res.statusCode ?? 0, body });
    });
  });
  req.on("timeout", () => {
    req.destroy(new Error("timeout"));
  });
  req.on("error", (error: NodeJS.ErrnoException) => {
    print({ status: 0, body: error.code ?? error.message });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] !== undefined) {
  main(process.argv[2], Number(process.argv[3] ?? 2000));
}
