// The upstream port (upstream-exchange.ts) over real sockets: one query/answer exchange with an upstream resolver,
// over UDP or TCP. UDP uses a few *connected* sockets per upstream: the kernel then only delivers datagrams from that
// address and port, and reports ICMP port-unreachable as ECONNREFUSED, so a dead upstream on the node fails over at
// once instead of after a timeout. Each query gets a fresh random ID (the client's is never sent on) and an answer
// must match ID and question (any 0x20 spelling).

import { randomFillSync } from "node:crypto";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, isIPv6 } from "node:net";
import type { Upstream } from "./resolv-conf.js";
import type { Timers } from "./timers.js";
import { formatUpstream, UpstreamError, type UpstreamExchange, type UpstreamFailure } from "./upstream-exchange.js";
import { equalIgnoringCase, FLAG_QR, questionEnd } from "./wire.js";

interface Pending {
  readonly query: Buffer;
  readonly questionEnd: number;
  resolve(answer: Buffer): void;
  reject(error: UpstreamError): void;
}

class ConnectedUdp {
  readonly pending = new Map<number, Pending>();
  private readonly socket: UdpSocket;
  private readonly connected: Promise<void>;
  closed = false;

  constructor(
    private readonly upstream: Upstream,
    onDead: () => void,
  ) {
    this.socket = createSocket(isIPv6(upstream.address.split("%")[0] ?? "") ? "udp6" : "udp4");
    this.socket.unref();
    this.connected = new Promise<void>((resolve) => {
      this.socket.connect(upstream.port, upstream.address, resolve);
    });
    this.connected.catch(() => undefined);
    this.socket.on("message", (msg) => {
      this.onMessage(msg);
    });
    // ECONNREFUSED on a connected socket = the upstream's port is closed: every query in flight on it is lost.
    this.socket.on("error", (error: NodeJS.ErrnoException) => {
      const reason: UpstreamFailure = error.code === "ECONNREFUSED" ? "refused" : "error";
      this.failAll(new UpstreamError(upstream, reason, error.code ?? error.message));
    });
    this.socket.on("close", () => {
      this.closed = true;
      this.failAll(new UpstreamError(upstream, "closed", "socket closed"));
      onDead();
    });
  }

  async send(id: number, pending: Pending): Promise<void> {
    this.pending.set(id, pending);
    await this.connected;
    const fail = (error: Error): void => {
      if (this.pending.get(id) !== pending) return;
      this.pending.delete(id);
      pending.reject(new UpstreamError(this.upstream, "error", error.message));
    };
    try {
      this.socket.send(pending.query, (error) => {
        if (error !== null) fail(error);
      });
    } catch (error) {
      fail(error instanceof Error ? error : new Error(String(error))); // closed meanwhile
    }
  }

  private onMessage(msg: Buffer): void {
    if (msg.length < 12 || (msg.readUInt16BE(2) & FLAG_QR) === 0) return;
    const id = msg.readUInt16BE(0);
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    const end = questionEnd(msg);
    // A late or forged datagram with a reused ID but another question is ignored; the real one may still come.
    if (end < 0 || !equalIgnoringCase(msg, 12, end, pending.query, 12, pending.questionEnd)) return;
    this.pending.delete(id);
    pending.resolve(msg);
  }

  private failAll(error: UpstreamError): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(error);
  }

  close(): void {
    if (!this.closed) this.socket.close();
  }
}

export interface NetUpstreamOptions {
  readonly timers: Timers;
  /** Connected UDP sockets per upstream; more sockets = more source ports for an off-path spoofer to guess. */
  readonly socketsPerUpstream: number;
}

export class NetUpstreamExchange implements UpstreamExchange {
  private readonly sockets = new Map<string, ConnectedUdp[]>();
  private readonly random = Buffer.alloc(1024);
  private randomAt = this.random.length;
  private closed = false;

  constructor(private readonly options: NetUpstreamOptions) {}

  exchange(upstream: Upstream, query: Buffer, transport: "udp" | "tcp", timeoutMs: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(new UpstreamError(upstream, "closed", "the forwarder is closed"));
    const end = questionEnd(query);
    return transport === "udp" ? this.udp(upstream, query, end, timeoutMs) : this.tcp(upstream, query, end, timeoutMs);
  }

  private udp(upstream: Upstream, query: Buffer, end: number, timeoutMs: number): Promise<Buffer> {
    const socket = this.socketFor(upstream);
    const id = this.freshId(socket.pending);
    const packet = Buffer.from(query);
    packet.writeUInt16BE(id, 0);
    return new Promise<Buffer>((resolve, reject) => {
      const timer = this.options.timers.setTimeout(() => {
        if (socket.pending.get(id) !== pending) return;
        socket.pending.delete(id);
        reject(new UpstreamError(upstream, "timeout", `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const pending: Pending = {
        query: packet,
        questionEnd: end,
        resolve: (answer) => {
          this.options.timers.clearTimeout(timer);
          resolve(answer);
        },
        reject: (error) => {
          this.options.timers.clearTimeout(timer);
          reject(error);
        },
      };
      void socket.send(id, pending);
    });
  }

  private tcp(upstream: Upstream, query: Buffer, end: number, timeoutMs: number): Promise<Buffer> {
    const packet = Buffer.alloc(query.length + 2);
    packet.writeUInt16BE(query.length, 0);
    query.copy(packet, 2);
    const id = this.freshId(new Map());
    packet.writeUInt16BE(id, 2);
    return new Promise<Buffer>((resolve, reject) => {
      const socket = connect({ host: upstream.address, port: upstream.port });
      let received = Buffer.alloc(0);
      let done = false;
      const finish = (error: UpstreamError | undefined, answer?: Buffer): void => {
        if (done) return;
        done = true;
        this.options.timers.clearTimeout(timer);
        socket.destroy();
        if (error !== undefined) reject(error);
        else if (answer !== undefined) resolve(answer);
      };
      const timer = this.options.timers.setTimeout(() => {
        finish(new UpstreamError(upstream, "timeout", `no TCP answer within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.on("connect", () => socket.write(packet));
      socket.on("error", (error: NodeJS.ErrnoException) => {
        finish(
          new UpstreamError(upstream, error.code === "ECONNREFUSED" ? "refused" : "error", error.code ?? error.message),
        );
      });
      socket.on("close", () => {
        finish(new UpstreamError(upstream, "closed", "connection closed before an answer"));
      });
      socket.on("data", (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        if (received.length < 2) return;
        const length = received.readUInt16BE(0);
        if (received.length < 2 + length) return;
        const answer = Buffer.from(received.subarray(2, 2 + length));
        const answerEnd = questionEnd(answer);
        const matches =
          answer.length >= 12 &&
          answer.readUInt16BE(0) === id &&
          answerEnd > 0 &&
          equalIgnoringCase(answer, 12, answerEnd, packet, 14, end + 2);
        finish(
          matches ? undefined : new UpstreamError(upstream, "error", "TCP answer does not match the query"),
          answer,
        );
      });
    });
  }

  private socketFor(upstream: Upstream): ConnectedUdp {
    const key = formatUpstream(upstream);
    let list = this.sockets.get(key);
    if (list === undefined) {
      list = [];
      this.sockets.set(key, list);
    }
    if (list.length < this.options.socketsPerUpstream) {
      const socket: ConnectedUdp = new ConnectedUdp(upstream, () => {
        const current = this.sockets.get(key);
        if (current !== undefined)
          this.sockets.set(
            key,
            current.filter((s) => s !== socket),
          );
      });
      list.push(socket);
      return socket;
    }
    return list[this.randomUint16() % list.length] ?? (list[0] as ConnectedUdp);
  }

  /** A random ID not in flight on that socket (with ≤ 65 536 in flight there is always one; the cap is far lower). */
  private freshId(inFlight: ReadonlyMap<number, unknown>): number {
    for (;;) {
      const id = this.randomUint16();
      if (!inFlight.has(id)) return id;
    }
  }

  private randomUint16(): number {
    if (this.randomAt + 2 > this.random.length) {
      randomFillSync(this.random);
      this.randomAt = 0;
    }
    const value = this.random.readUInt16BE(this.randomAt);
    this.randomAt += 2;
    return value;
  }

  close(): void {
    this.closed = true;
    for (const list of this.sockets.values()) for (const socket of list) socket.close();
    this.sockets.clear();
  }
}
