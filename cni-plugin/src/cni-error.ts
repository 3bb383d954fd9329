// CNI errors: what the runtime reads on stdout. Every failure inside the plugin becomes exactly one CniError here
// (toCniError), so the codes are decided in one place.
import { describeValue, errorMessage, isTrellisError } from "#lib/errors.js";

/** The spec's well-known codes, plus ours from 100 on. */
export const CniCode = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODE_FAILURE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  NOT_AVAILABLE: 50,
  LIMITED_CONNECTIVITY: 51,
  /** No free address is left in the node's subnet. */
  SUBNET_FULL: 100,
  /** subnet.env exists but cannot be parsed. */
  SUBNET_ENV_INVALID: 101,
  /** The kernel refused a netlink request. */
  KERNEL_FAILURE: 102,
  /** CHECK found the pod's network different from what ADD set up. */
  CHECK_FAILED: 103,
  /** Something in the way that the plugin did not create (e.g. the pod interface name is taken). */
  CONFLICT: 104,
  /** A requested IP is outside the node's lease or reserved for another attachment. */
  ADDRESS_UNAVAILABLE: 105,
  INTERNAL: 999,
} as const;

export type CniCodeValue = (typeof CniCode)[keyof typeof CniCode];

export class CniError extends Error {
  constructor(
    readonly code: CniCodeValue,
    message: string,
    readonly details = "",
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CniError";
  }
}

/** Env var problems name the variable (code 4); config problems name the field (code 7). */
export function invalidEnv(name: string, value: string | undefined, allowed: string): CniError {
  const shown = value === undefined ? "is missing" : `${JSON.stringify(value.slice(0, 300))} is invalid`;
  return new CniError(CniCode.INVALID_ENV, `${name} ${shown}: ${allowed}`);
}

export function invalidConfig(field: string, value: unknown, allowed: string): CniError {
  return new CniError(CniCode.INVALID_CONFIG, `config field ${field} ${describe(value)} is invalid: ${allowed}`);
}

function describe(value: unknown): string {
  const text = describeValue(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** Any failure → one CniError. Our own classes carry their code; the project's taxonomy maps here. */
export function toCniError(error: unknown): CniError {
  if (error instanceof CniError) return error;
  if (isTrellisError(error)) {
    switch (error.code) {
      case "NETLINK":
        return new CniError(CniCode.KERNEL_FAILURE, error.message, "", { cause: error });
      case "IO":
      case "PERMISSION_DENIED":
        return new CniError(CniCode.IO_FAILURE, error.message, "", { cause: error });
      case "INVALID_ARGUMENT":
      case "INVALID_CONFIG":
        return new CniError(CniCode.INVALID_CONFIG, error.message, "", { cause: error });
      default:
        return new CniError(CniCode.INTERNAL, error.message, error.code, { cause: error });
    }
  }
  const errno = (error as { code?: unknown } | undefined)?.code;
  if (typeof errno === "string" && /^E[A-Z]+$/.test(errno)) {
    return new CniError(CniCode.IO_FAILURE, errorMessage(error), errno, { cause: error });
  }
  return new CniError(CniCode.INTERNAL, `internal error: ${errorMessage(error)}`, "", { cause: error });
}

/** The JSON object a runtime expects on stdout. */
export function errorJson(error: CniError, cniVersion: string): string {
  return JSON.stringify({ cniVersion, code: error.code, msg: error.message, details: error.details });
}
