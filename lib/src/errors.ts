// One error taxonomy for the whole project. Adapters translate foreign errors (netlink errno text, etcd gRPC status,
// fs errno) into these classes exactly once, so callers branch on `code`, never on message text.

export type ErrorCode =
  | "INVALID_ARGUMENT" // bad input from a user: flag, env var, config file, CLI argument
  | "INVALID_CONFIG" // the network config stored in etcd is malformed or out of range
  | "ETCD_UNAVAILABLE" // no etcd endpoint answered in time
  | "ETCD_AUTH" // etcd refused our credentials or TLS identity
  | "ETCD_FAILED" // any other etcd failure
  | "POOL_EXHAUSTED" // no free subnet is left in the pool
  | "NOT_FOUND" // a named object (lease, reservation, interface) does not exist
  | "CONFLICT" // a compare-and-swap lost, or an object exists with other contents
  | "PERMISSION_DENIED" // the operation needs root / CAP_NET_ADMIN
  | "NETLINK" // the kernel rejected a netlink request (see NetlinkError.errno)
  | "IO" // a file could not be read or written
  | "FILE_UNWRITABLE" // a file the agent must keep (subnet.env) cannot be written: read-only, full, permission
  | "COMMAND_FAILED" // a host tool (nft, iptables-restore) rejected its input
  | "UPSTREAM_FAILED" // an upstream DNS resolver refused, timed out or sent an answer that does not match
  | "FATAL"; // the process cannot go on safely (e.g. a thread stuck in a foreign network namespace)

export class TrellisError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad user input: names the field, the value given and what is allowed. */
export class InvalidArgumentError extends TrellisError {
  constructor(
    readonly field: string,
    readonly value: unknown,
    readonly allowed: string,
    code: "INVALID_ARGUMENT" | "INVALID_CONFIG" = "INVALID_ARGUMENT",
  ) {
    super(code, `${field} ${describeValue(value)} is invalid: ${allowed}`);
  }
}

/** The same as InvalidArgumentError, for the network config read from etcd. */
export class InvalidConfigError extends InvalidArgumentError {
  constructor(field: string, value: unknown, allowed: string) {
    super(field, value, allowed, "INVALID_CONFIG");
  }
}

export function describeValue(value: unknown): string {
  if (value === undefined) return "(missing)";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  try {
    // JSON.stringify is typed as string but returns undefined for functions and symbols.
    const json = JSON.stringify(value) as string | undefined;
    return json === undefined ? typeof value : json;
  } catch {
    return typeof value;
  }
}

/** Any error as one line for a user: our own message, or the foreign one with its class name. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

export function isTrellisError(error: unknown, code?: ErrorCode): error is TrellisError {
  return error instanceof TrellisError && (code === undefined || error.code === code);
}
