// The agent's HTTP endpoint (loopback by default): /healthz (the process answers), /readyz (200 only when the node
// can take pods, else 503 with the reasons), /metrics (Prometheus), /status (this node's view, for
// `trellis-agent status`). The one place that opens a listening socket. Slow or silent clients are cut off after a
// few seconds and connections are capped, so no local process can pin the server (Node's defaults keep them ~75 s).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { TrellisError } from "#lib/errors.js";
import type { Readiness } from "./readiness.js";

export interface NodeView {
  readonly readiness: Readiness;
  readonly lease: {
    readonly subnet: string;
    /** The IPv6 half of a dual-stack lease. */
    readonly subnet6: string | null;
    readonly publicIp: string;
    readonly publicIpv6: string | null;
    readonly reserved: boolean;
    readonly expiresAt: string | null;
  } | null;
  /** One entry per peer and address family the network has: a dual-stack peer twice. */
  readonly peers: readonly {
    readonly family: 4 | 6;
    /** The subnet of that family. */
    readonly subnet: string;
    /** The address that family's plane reaches the peer by (its PublicIPv6, when it has one, for IPv6). */
    readonly publicIp: string;
    readonly programmed: boolean;
    readonly skipped: string | null;
  }[];
}

export interface HttpHandlers<Status = NodeView> {
  readiness(): Readiness;
  metrics(): Promise<{ body: string; contentType: string }>;
  /** /status: the agent's NodeView, or what another daemon (the DNS server) reports. */
  status(): Status;
}

/** How long a client may take, and how many may be connected at once (docs/operations.md, HTTP ENDPOINT). */
export interface HttpLimits {
  /** From the connection's start to the end of the request headers (also closes a connection that sends nothing). */
  readonly headersTimeoutMs: number;
  /** From the connection's start to the end of the whole request. */
  readonly requestTimeoutMs: number;
  /** A kept-alive connection with no request in flight is closed after this. */
  readonly idleTimeoutMs: number;
  /** Connections beyond this are closed at once. */
  readonly maxConnections: number;
}

export const HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 3000,
  requestTimeoutMs: 5000,
  idleTimeoutMs: 5000,
  maxConnections: 32,
};

function send(res: ServerResponse, status: number, body: string, contentType = "application/json"): void {
  res.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
  res.end(body);
}

async function route<S>(req: IncomingMessage, res: ServerResponse, handlers: HttpHandlers<S>): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    send(res, 405, JSON.stringify({ error: "only GET" }));
    return;
  }
  const path = (req.url ?? "/").split("?")[0];
  switch (path) {
    case "/healthz":
      send(res, 200, JSON.stringify({ status: "ok" }));
      return;
    case "/readyz": {
      const readiness = handlers.readiness();
      send(res, readiness.ready ? 200 : 503, JSON.stringify(readiness));
      return;
    }
    case "/metrics": {
      const { body, contentType } = await handlers.metrics();
      send(res, 200, body, contentType);
      return;
    }
    case "/status":
      send(res, 200, JSON.stringify(handlers.status()));
      return;
    default:
      send(res, 404, JSON.stringify({ error: `no ${path ?? "/"}; try /healthz, /readyz, /metrics, /status` }));
  }
}

/** A failure while answering: a 500 if nothing was sent yet; else the response is cut (a status cannot follow a body). */
function fail(res: ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.destroy(error instanceof Error ? error : new Error(String(error)));
    return;
  }
  send(res, 500, JSON.stringify({ error: error instanceof Error ? error.message : String(error) }));
}

export interface RunningServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Listens on address:port; rejects with a clear error when the port is taken. */
export async function startHttpServer<S = NodeView>(
  address: string,
  port: number,
  handlers: HttpHandlers<S>,
  limits: HttpLimits = HTTP_LIMITS,
): Promise<RunningServer> {
  // Node checks the header and request timeouts only this often (default 30 s).
  const checkingIntervalMs = Math.max(100, Math.min(1000, limits.headersTimeoutMs / 4));
  const server: Server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.idleTimeoutMs,
      connectionsCheckingInterval: checkingIntervalMs,
    },
    (req, res) => {
      route(req, res, handlers).catch((error: unknown) => {
        fail(res, error);
      });
    },
  );
  server.maxConnections = limits.maxConnections;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      reject(
        new TrellisError(
          error.code === "EADDRINUSE" ? "CONFLICT" : "IO",
          `cannot listen on ${address}:${port} for /healthz, /readyz and /metrics: ${error.code ?? error.message} (set --healthz-port, or 0 to turn it off)`,
          { cause: error },
        ),
      );
    });
    server.listen(port, address, resolve);
  });
  const bound = server.address() as AddressInfo;
  return {
    url: `http://${bound.family === "IPv6" ? `[${bound.address}]` : bound.address}:${bound.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
