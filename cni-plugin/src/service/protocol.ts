// The wire format between the plugin's native shim (cni-plugin/shim/trellis-shim.c) and the CNI service in the
// node's agent (docs/decisions/0011). Plain bytes, so that the shim stays a few lines of C:
//
//   request:  "TRELLIS-CNI/1\n"  "N <caller's /proc/self/ns/net link>\n"  "E <CNI_…=value>\n"…  "\n"  <stdin bytes>
//             (the shim half-closes its end after stdin)
//   response: "<exit code> <n>\n" <n stdout bytes> — the plugin's answer, exactly what it would print
//             "FALLBACK\n"                         — not served here: the shim runs the standalone plugin instead
//
// The header is ASCII lines; values never contain a newline (the shim falls back when one would).

export const PROTOCOL_LINE = "TRELLIS-CNI/1";
export const FALLBACK = "FALLBACK\n";
/** The header (netns + CNI_* variables) may not be larger than this. */
export const MAX_HEADER_BYTES = 64 * 1024;

export interface CniRequest {
  /** The caller's network namespace as readlink(/proc/self/ns/net) shows it: "net:[4026531840]". */
  readonly netns: string;
  /** Only CNI_* variables: nothing else of the runtime's environment reaches the plugin. */
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: string;
}

export type ParsedRequest =
  | { readonly kind: "request"; readonly request: CniRequest }
  | { readonly kind: "incomplete" }
  | { readonly kind: "invalid"; readonly reason: string };

/**
 * Parses a complete request (everything up to the caller's half-close). "incomplete" means the header has not
 * ended yet; "invalid" anything a shim of ours would never send.
 */
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
  const env: Record<string, string> = {};
  for (const line of lines) {
    if (line.startsWith("N ")) {
      netns = line.slice(2);
      continue;
    }
    const eq = line.indexOf("=");
    if (!line.startsWith("E CNI_") || eq < 0)
      return { kind: "invalid", reason: `unexpected header line ${JSON.stringify(line.slice(0, 40))}` };
    // Header values are bytes; the runtime's are UTF-8 (a container ID or netns path could be).
    env[line.slice(2, eq)] = Buffer.from(line.slice(eq + 1), "latin1").toString("utf8");
  }
  if (netns === undefined) return { kind: "invalid", reason: "no namespace line" };
  return { kind: "request", request: { netns, env, stdin: bytes.subarray(end + 2).toString("utf8") } };
}

/**
 * The plugin's answer: exit code and length, then stdout exactly as the standalone plugin prints it (with its
 * newline). The length lets the shim tell a complete answer from one cut short.
 */
export function formatResponse(exitCode: number, stdout: string): Buffer {
  const body = Buffer.from(stdout === "" ? "" : `${stdout}\n`, "utf8");
  return Buffer.concat([Buffer.from(`${exitCode} ${body.length}\n`, "latin1"), body]);
}

/** What a shim of ours sends: for tests and for the benchmark's client. */
export function formatRequest(request: CniRequest): Buffer {
  const header = [
    PROTOCOL_LINE,
    `N ${request.netns}`,
    ...Object.entries(request.env).map(([k, v]) => `E ${k}=${v}`),
    "",
    "",
  ].join("\n");
  return Buffer.concat([Buffer.from(header, "utf8"), Buffer.from(request.stdin, "utf8")]);
}
