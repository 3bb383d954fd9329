// Typed failures of the netlink adapter. The `netlink` package reports a kernel rejection only as
// Error("Request rejected: ENODEV"); it is translated here, once, so that callers (and fakes) branch on `errno`.
// No runtime dependency on the package: fakes of the Kernel port throw these too.
import { getSystemErrorMap } from "node:util";
import { TrellisError } from "../errors.js";

/** The errnos callers act on; any other name the kernel returns passes through as a string. */
export type Errno =
  | "EEXIST"
  | "ENOENT"
  | "ESRCH"
  | "ENODEV"
  | "EPERM"
  | "EACCES"
  | "EINVAL"
  | "EBUSY"
  | "EADDRNOTAVAIL"
  | "ENETUNREACH"
  | "ENOTSUP" // Node's name for EOPNOTSUPP (the same number on Linux)
  | "ERANGE"
  | "ETIMEDOUT"
  | "EBADF"
  | "EPROTO"
  | (string & NonNullable<unknown>);

/** Errnos that mean "the thing to delete is already gone". */
export const GONE_ERRNOS: readonly Errno[] = ["ENOENT", "ESRCH", "ENODEV", "EADDRNOTAVAIL"];

export class NetlinkError extends TrellisError {
  declare readonly code: "NETLINK" | "PERMISSION_DENIED";

  constructor(
    /** What was attempted, e.g. "create vxlan link". */
    readonly operation: string,
    /** Which object, e.g. "flannel.1" or "10.244.2.0/24 via 10.244.2.0". */
    readonly object: string,
    readonly errno: Errno,
    options?: { cause?: unknown; detail?: string },
  ) {
    const denied = errno === "EPERM" || errno === "EACCES";
    const what = `${operation} ${object}`.trim();
    super(
      denied ? "PERMISSION_DENIED" : "NETLINK",
      denied
        ? `${what}: needs root or CAP_NET_ADMIN`
        : `${what} failed: ${options?.detail ?? describeErrno(errno)} (${errno})`,
      options,
    );
  }
}

export function isNetlinkErrno(error: unknown, ...errnos: readonly Errno[]): error is NetlinkError {
  return error instanceof NetlinkError && (errnos.length === 0 || errnos.includes(error.errno));
}

/** The errno name hidden in whatever the package, the native socket or a syscall threw. */
export function errnoOf(error: unknown): Errno {
  if (error instanceof NetlinkError) return error.errno;
  if (!(error instanceof Error)) return "EPROTO";
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) return code;
  const rejected = /^Request rejected: (\S+)$/.exec(error.message);
  if (rejected?.[1] !== undefined) return rejected[1];
  if (error.message === "Timeout has been reached") return "ETIMEDOUT";
  return errnoByMessage(error.message) ?? "EPROTO";
}

/**
 * Translates any failure of one operation. TrellisErrors pass through unchanged (already translated, e.g. invalid
 * input); anything else becomes a NetlinkError naming the operation and the object.
 */
export function translateError(error: unknown, operation: string, object: string): TrellisError {
  if (error instanceof TrellisError) return error;
  const errno = errnoOf(error);
  const detail = errno === "EPROTO" && error instanceof Error ? error.message : undefined;
  return new NetlinkError(operation, object, errno, detail === undefined ? { cause: error } : { cause: error, detail });
}

let descriptions: Map<string, string> | undefined;
let namesByMessage: Map<string, string> | undefined;

function loadErrnoTable(): void {
  descriptions = new Map();
  namesByMessage = new Map();
  for (const [name, message] of getSystemErrorMap().values()) {
    descriptions.set(name, message);
    namesByMessage.set(message.toLowerCase(), name);
  }
}

export function describeErrno(errno: string): string {
  if (descriptions === undefined) loadErrnoTable();
  return descriptions?.get(errno) ?? "error";
}

/** syscall-napi throws Error(strerror(errno)) without a code: recover the name from the text. */
export function errnoByMessage(message: string): string | undefined {
  if (namesByMessage === undefined) loadErrnoTable();
  return namesByMessage?.get(message.toLowerCase());
}
