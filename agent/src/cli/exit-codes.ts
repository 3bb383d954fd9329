// Exit codes of trellis-agent, documented in docs/operations.md. Scripts can branch on them.
import type { ErrorCode } from "#lib/errors.js";

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  etcdUnavailable: 3,
  invalidConfig: 4,
  notFound: 5,
  conflict: 6,
  permission: 7,
  poolExhausted: 8,
  /** The process could not go on safely (a thread stuck in a pod's network namespace); a restart mends it. */
  fatal: 9,
} as const;

export function exitCodeFor(code: ErrorCode | undefined): number {
  switch (code) {
    case "INVALID_ARGUMENT":
      return EXIT.usage;
    case "ETCD_UNAVAILABLE":
    case "ETCD_AUTH":
      return EXIT.etcdUnavailable;
    case "INVALID_CONFIG":
      return EXIT.invalidConfig;
    case "NOT_FOUND":
      return EXIT.notFound;
    case "CONFLICT":
      return EXIT.conflict;
    case "PERMISSION_DENIED":
    case "FILE_UNWRITABLE":
      return EXIT.permission;
    case "POOL_EXHAUSTED":
      return EXIT.poolExhausted;
    case "FATAL":
      return EXIT.fatal;
    default:
      return EXIT.failure;
  }
}
