// Building the etcd client from our options, and translating its errors into ours — the one place that knows
// etcd3's and gRPC's error classes.
import { readFile } from "node:fs/promises";
import { ExponentialBackoff, handleWhen, noop, retry } from "cockatiel";
import {
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  EtcdUserNotFoundError,
  GRPCDeadlineExceededError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
  GRPCCancelledError,
  ClientClosedError,
  isRecoverableError,
  type IOptions,
} from "etcd3";
import { InvalidArgumentError, TrellisError } from "#lib/errors.js";
import { installFastLongToString } from "./long-strings.js";

export interface EtcdConnectionOptions {
  readonly endpoints: readonly string[];
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly username?: string;
  readonly password?: string;
  /** Deadline for each unary request; a down etcd fails calls after this long. */
  readonly requestTimeoutMs: number;
  /** Retry unary requests that failed with a recoverable error (the daemon: yes; one-shot CLI commands: no). */
  readonly retry: boolean;
}

/** How long to wait for a TCP+TLS connection to an endpoint. */
export const DIAL_TIMEOUT_MS = 3000;

async function readCredential(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unreadable";
    throw new InvalidArgumentError(flag, path, `must be a readable PEM file (${code})`);
  }
}

export async function createEtcdClient(options: EtcdConnectionOptions): Promise<Etcd3> {
  const config: IOptions = {
    hosts: [...options.endpoints],
    dialTimeout: DIAL_TIMEOUT_MS,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + options.requestTimeoutMs }),
    faultHandling: {
      // No circuit breaker: after an etcd restart we want the very next call to go through.
      host: () => noop,
      global: options.retry
        ? retry(handleWhen(isRecoverableError), {
            maxAttempts: 2,
            backoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }),
          })
        : noop,
    },
    grpcOptions: {
      // Notice a dead connection within seconds (etcd accepts pings every 5 s).
      "grpc.keepalive_time_ms": 10_000,
      // Listings come in pages (paged-range.ts), but one page of large values may pass the 4 MiB default.
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
      "grpc.keepalive_timeout_ms": 5_000,
      "grpc.initial_reconnect_backoff_ms": 200,
      "grpc.max_reconnect_backoff_ms": 2_000,
    },
  };
  const tlsFiles = [options.caFile, options.certFile, options.keyFile].some((f) => f !== undefined);
  if (tlsFiles) {
    if ((options.certFile === undefined) !== (options.keyFile === undefined)) {
      throw new InvalidArgumentError(
        "--etcd-certfile/--etcd-keyfile",
        options.certFile ?? options.keyFile,
        "must be given together",
      );
    }
    const rootCertificate =
      options.caFile === undefined ? undefined : await readCredential("--etcd-cafile", options.caFile);
    const certChain =
      options.certFile === undefined ? undefined : await readCredential("--etcd-certfile", options.certFile);
    const privateKey =
      options.keyFile === undefined ? undefined : await readCredential("--etcd-keyfile", options.keyFile);
    // etcd3 wants a root certificate object even when the system CAs should be used; an empty buffer means "system".
    config.credentials = {
      rootCertificate: rootCertificate ?? Buffer.alloc(0),
      ...(certChain === undefined ? {} : { certChain }),
      ...(privateKey === undefined ? {} : { privateKey }),
    };
  }
  if (options.username !== undefined) {
    config.auth = { username: options.username, password: options.password ?? "" };
  }
  installFastLongToString();
  return new Etcd3(config);
}

/** Translates anything etcd3/gRPC throws into our taxonomy. Never includes the password. */
export function translateEtcdError(error: unknown, endpoints: readonly string[], action: string): TrellisError {
  if (error instanceof TrellisError) return error;
  const where = endpoints.join(",");
  const detail = error instanceof Error ? error.message : String(error);
  if (
    error instanceof EtcdAuthenticationFailedError ||
    error instanceof EtcdInvalidAuthTokenError ||
    error instanceof EtcdPermissionDeniedError ||
    error instanceof EtcdUserNotFoundError ||
    error instanceof GRPCUnauthenticatedError
  ) {
    return new TrellisError("ETCD_AUTH", `etcd at ${where} refused ${action}: ${detail}`, { cause: error });
  }
  if (
    error instanceof GRPCUnavailableError ||
    error instanceof GRPCDeadlineExceededError ||
    error instanceof GRPCCancelledError ||
    error instanceof ClientClosedError ||
    /No connection established|ECONNREFUSED|Failed to connect|deadline|handshake/i.test(detail)
  ) {
    const tlsHint = /ssl|tls|certificate|handshake/i.test(detail)
      ? " (TLS handshake failed: check --etcd-cafile/--etcd-certfile/--etcd-keyfile)"
      : "";
    return new TrellisError(
      "ETCD_UNAVAILABLE",
      `etcd is unreachable at ${where}${tlsHint}: ${action} failed: ${firstLine(detail)}`,
      { cause: error },
    );
  }
  return new TrellisError("ETCD_FAILED", `etcd at ${where}: ${action} failed: ${firstLine(detail)}`, { cause: error });
}

/** gRPC messages carry multi-line detail and a dangling "Resolution note:"; one line is enough for a user. */
function firstLine(text: string): string {
  return (text.split("\n")[0] ?? text).replace(/\.? ?Resolution note:.*$/, "").trim();
}
