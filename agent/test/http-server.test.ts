// The HTTP endpoint on loopback: slow and silent clients are cut off, connections are capped, and an error after
// the headers went out cuts the response instead of throwing inside the error path.
import assert from "node:assert/strict";
import { get } from "node:http";
import { connect, type Socket } from "node:net";
import {
  startHttpServer,
  type HttpHandlers,
  type HttpLimits,
  type RunningServer,
} from "../src/observability/http-server.js";

const handlers: HttpHandlers = {
  readiness: () => ({ ready: true, reasons: [], warnings: [] }),
  metrics: () => Promise.resolve({ body: "# metrics\n", contentType: "text/plain" }),
  status: () => ({ readiness: { ready: true, reasons: [], warnings: [] }, lease: null, peers: [] }),
};
const LIMITS: HttpLimits = { headersTimeoutMs: 400, requestTimeoutMs: 600, idleTimeoutMs: 600, maxConnections: 8 };

function open(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      resolve(socket);
    });
    socket.on("error", reject);
    socket.resume(); // flowing: the server closing it is seen as end, then close
  });
}

function closed(socket: Socket): Promise<void> {
  return socket.destroyed || socket.readableEnded
    ? Promise.resolve()
    : new Promise((resolve) =>
        socket.once("close", () => {
          resolve();
        }),
      );
}

function status(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on("error", reject);
  });
}

describe("http endpoint (loopback)", () => {
  let server: RunningServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("closes connections that never finish their headers or never send a byte", async () => {
    server = await startHttpServer("127.0.0.1", 0, handlers, LIMITS);
    const halfSent = await open(server.url);
    halfSent.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const silent = await open(server.url);
    const started = performance.now();
    await Promise.all([closed(halfSent), closed(silent)]);
    // Both within a few checking intervals of their timeouts, far from Node's default of minutes.
    assert.ok(performance.now() - started < 3000, `closed after ${Math.round(performance.now() - started)} ms`);
    assert.equal(await status(`${server.url}/healthz`), 200);
  });

  it("caps connections: those beyond the limit are closed at once, the endpoint answers again once they go", async () => {
    server = await startHttpServer("127.0.0.1", 0, handlers, LIMITS);
    const sockets = await Promise.all(Array.from({ length: LIMITS.maxConnections + 4 }, () => open(server?.url ?? "")));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const dropped = sockets.filter((s) => s.destroyed || s.readableEnded || s.closed).length;
    // The four beyond the cap are refused at once (ended by the server), the others stay until they time out.
    const ends = await Promise.all(
      sockets.map((s) =>
        Promise.race([
          closed(s).then(() => 1),
          new Promise<number>((resolve) =>
            setTimeout(() => {
              resolve(0);
            }, 150),
          ),
        ]),
      ),
    );
    assert.ok(dropped + ends.filter((e) => e === 1).length >= 4, `only ${dropped} dropped`);
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(await status(`${server.url}/readyz`), 200);
  });

  it("an error after the headers were sent cuts the response; the server keeps answering", async () => {
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown): void => {
      rejections.push(reason);
    };
    process.on("unhandledRejection", onRejection);
    try {
      // res.end() with a number throws after writeHead: the catch must not try to send a 500 on top.
      const broken: HttpHandlers = {
        ...handlers,
        metrics: () => Promise.resolve({ body: 42 as unknown as string, contentType: "text/plain" }),
      };
      server = await startHttpServer("127.0.0.1", 0, broken, LIMITS);
      const outcome = await new Promise<string>((resolve) => {
        get(`${server?.url ?? ""}/metrics`, (res) => {
          res.on("data", () => undefined);
          res.on("end", () => {
            resolve(`complete ${res.statusCode ?? 0}`);
          });
          res.on("error", () => {
            resolve("cut");
          });
          res.on("aborted", () => {
            resolve("cut");
          });
        }).on("error", () => {
          resolve("cut");
        });
      });
      assert.equal(outcome, "cut");
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(rejections, []);
      assert.equal(await status(`${server.url}/healthz`), 200);
    } finally {
      process.off("unhandledRejection", onRejection);
    }
  });
});
