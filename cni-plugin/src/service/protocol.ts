// The wire format between the plugin's native shim (cni-plugin/shim/trellis-shim.c) and the CNI service in the
// node's agent (docs/decisions/0011). Plain bytes, so that the shim stays a few lines of C:
//
//   shim → request:  "TRELLIS-CNI/2\n"
//                    "N <caller's /proc/self/ns/net link>\n"
//                    "F\n"            CNI_NETNS, opened by the shim, travels as a descriptor (SCM_RIGHTS) with the
//                                     request's first byte: the service enters what the caller opened, as the
//                                     caller sees it (its own mount namespace, a private /tmp)
//                    "F! <errno>\n"   instead, when the shim could not open CNI_NETNS (the answer names it)
//                    "E <CNI_…=value>\n"…
//                    "L <stdin bytes>\n"
//                    "\n"  <stdin bytes>
//   service → "READY\n"     it has the request and will do it once told to (or "FALLBACK\n": not served here,
//                           the shim runs the standalone plugin)
//   shim → "GO\n"           only if READY came within the shim's bound; a shim that gave up closes instead, and
//                           the service then does nothing: a late service never wires a pod twice
//   service → "<exit code> <n>\n" <n stdout bytes> — the plugin's answer, exactly what it would print
//
// The header is ASCII lines; values never contain a newline (the shim falls back when one would).

export const PROTOCOL_LINE = "TRELLIS-CNI/2";
export const FALLBACK = "FALLBACK\n";
export const READY = "READY\n";
export const GO = "GO\n";
/**
 * How long the shim waits for READY before it runs the standalone plugin (a stopped or stalled agent must not hold
 * pods); the build gives it to the shim. A busy agent answers in well under a millisecond.
 */
export const SHIM_READY_TIMEOUT_MS = 3000;
/** The header (netns + CNI_* variables) may not be larger than this. */
export const MAX_HEADER_BYTES = 64 * 1024;

/** How the caller's CNI_NETNS reached us: a descriptor, or the errno the shim got opening it. */
export type NetnsSource =
  { readonly kind: "fd" } | { readonly kind: "errno"; readonly errno: number } | { readonly kind: "none" };

export interface CniRequest {
  /** The caller's network namespace as readlink(/proc/self/ns/net) shows it: "net:[4026531840]". */
  readonly netns: string;
  /** Only CNI_* variables: nothing else of the runtime's environment reaches the plugin. */
  readonly env: Readonly<Record<string, string>>;
  readonly target: NetnsSource;
  readonly stdin: string;
}

export type ParsedRequest =
  | { readonly kind: "request"; readonly request: CniRequest }
  | { readonly kind: "incomplete" }
  | { readonly kind: "invalid"; readonly reason: string };

/** Parses what arrived so far; "incomplete" until the header and all its stdin bytes are there. */
export function parseRequest(bytes: Buffer): ParsedRequest {
  const end = bytes.indexOf("\n\n");
  if (end < 0)
    return bytes.length > MAX_HEADER_BYTES
      ? { kind: "invalid", reason: `header longer than ${MAX_HEADER_BYTES} bytes` }
      : { kind: "incomplete" };
  if (end > MAX_HEADER_BYTES) return { kind: "invalid", reason: `header longer than ${MAX_HEADER_BYTES} bytes` };
  const [first, ...lines] = bytes.subarray(0, end).toString("latin1").split("\n");
  if (first !== PROTOCOL_LINE)
    return { kind: "invalid", reason: `unknown protocol ${JSON.stringify((first ?? "").slice(0, 40))}` };
  let netns: string | undefined;
  let length: number | undefined;
  let target: NetnsSource = { kind: "none" };
  const env: Record<string, string> = {};
  for (const line of lines) {
    if (line.startsWith("N ")) netns = line.slice(2);
    else if (line === "F") target = { kind: "fd" };
    else if (/^F! \d{1,4}$/.test(line)) target = { kind: "errno", errno: Number(line.slice(3)) };
    else if (/^L \d{1,10}$/.test(line)) length = Number(line.slice(2));
    else if (line.startsWith("E CNI_") && line.includes("=")) {
      const eq = line.indexOf("=");
      // Header values are bytes; the runtime's are UTF-8 (a container ID or netns path could be).
      env[line.slice(2, eq)] = Buffer.from(line.slice(eq + 1), "latin1").toString("utf8");
    } else return { kind: "invalid", reason: `unexpected header line ${JSON.stringify(line.slice(0, 40))}` };
  }
  if (netns === undefined) return { kind: "invalid", reason: "no namespace line" };
  if (length === undefined) return { kind: "invalid", reason: "no length line" };
  const body = bytes.subarray(end + 2);
  if (body.length < length) return { kind: "incomplete" };
  if (body.length > length) return { kind: "invalid", reason: `${body.length - length} bytes after the request` };
  return { kind: "request", request: { netns, env, target, stdin: body.toString("utf8") } };
}

/**
 * The plugin's answer: exit code and length, then stdout exactly as the standalone plugin prints it (with its
 * newline). The length lets the shim tell a complete answer from one cut short.
 */
export function formatResponse(exitCode: number, stdout: string): Buffer {
  const body = Buffer.from(stdout === "" ? "" : `${stdout}\n`, "utf8");
  return Buffer.concat([Buffer.from(`${exitCode} ${body.length}\n`, "latin1"), body]);
}

/** What a shim of ours sends (the descriptor, if any, goes separately): for tests and the benchmark's client. */
export function formatRequest(request: CniRequest): Buffer {
  const target =
    request.target.kind === "fd" ? ["F"] : request.target.kind === "errno" ? [`F! ${request.target.errno}`] : [];
  const stdin = Buffer.from(request.stdin, "utf8");
  const env = Object.entries(request.env).map(([k, v]) => `E ${k}=${v}`);
  const header = [PROTOCOL_LINE, `N ${request.netns}`, ...target, ...env, `L ${stdin.length}`, "", ""].join("\n");
  return Buffer.concat([Buffer.from(header, "utf8"), stdin]);
}
