// The agent's HTTP endpoint (loopback by default): /healthz (the process answers), /readyz (200 only when the node
// can take pods, else 503 with the reasons), /metrics (Prometheus), /status (this node's view, for
// `trellis-agent status`). The one place that opens a listening socket.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { TrellisError } from "../../../lib/src/errors.js";
import type { Readiness } from "./readiness.js";

export interface NodeView {
  readonly readiness: Readiness;
  readonly lease: {
    readonly subnet: string;
    readonly publicIp: string;
    readonly reserved: boolean;
    readonly expiresAt: string | null;
  } | null;
  readonly peers: readonly {
    readonly subnet: string;
    readonly publicIp: string;
    readonly programmed: boolean;
    readonly skipped: string | null;
  }[];
}

export interface HttpHandlers {
  readiness(): Readiness;
  metrics(): Promise<{ body: string; contentType: string }>;
  status(): NodeView;
}

function send(res: ServerResponse, status: number, body: string, contentType = "application/json"): void {
  res.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
  res.end(body);
}

async function route(req: IncomingMessage, res: ServerResponse, handlers: HttpHandlers): Promise<void> {
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
      send(res, readiness.ready ? 200 : 503, JSON.stringify({ ready: readiness.ready, reasons: readiness.reasons }));
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

export interface RunningServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Listens on address:port; rejects with a clear error when the port is taken. */
export async function startHttpServer(address: string, port: number, handlers: HttpHandlers): Promise<RunningServer> {
  const server: Server = createServer((req, res) => {
    route(req, res, handlers).catch((error: unknown) => {
      send(res, 500, JSON.stringify({ error: error instanceof Error ? error.message : String(error) }));
    });
  });
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
