// Exit codes of trellis-agent, documented in docs/operations.md. Scripts can branch on them.
import type { ErrorCode } from "../../../lib/src/errors.js";

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
      return EXIT.permission;
    case "POOL_EXHAUSTED":
      return EXIT.poolExhausted;
    default:
      return EXIT.failure;
  }
}
