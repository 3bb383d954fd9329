// A DnsServer on 127.0.0.1 (ephemeral port, UDP and TCP), optionally with a fake upstream, closed after each test.
import { DnsServer, type DnsServerEvent } from "../../../src/dns/server.js";
import type { DnsServerOptions } from "../../../src/dns/options.js";
import type { DnsView } from "../../../src/dns/view.js";
import { FakeDnsUpstream } from "../../../../lab/src/fake-dns-upstream.js";

export const ZONE = "cluster.local";

/** The example's Service, a headless one with hostnames, one without, one with no endpoints, and pods. */
export const VIEW: DnsView = {
  zone: ZONE,
  services: [
    {
      namespace: "default",
      name: "nginx-service",
      clusterIP: "10.254.0.20",
      ports: [
        { name: "http", port: 8000, protocol: "TCP" },
        { port: 9000, protocol: "TCP" },
      ],
      endpoints: [{ ip: "172.30.1.2" }],
    },
    {
      namespace: "kube-system",
      name: "kube-dns",
      clusterIP: "10.254.0.10",
      ports: [
        { name: "dns", port: 53, protocol: "UDP" },
        { name: "dns-tcp", port: 53, protocol: "TCP" },
      ],
      endpoints: [],
    },
    {
      namespace: "db",
      name: "pg",
      clusterIP: "None",
      ports: [{ name: "pg", port: 5432, protocol: "TCP" }],
      endpoints: [
        { ip: "172.30.2.5", hostname: "pg-0" },
        { ip: "172.30.3.6", hostname: "pg-1" },
      ],
    },
    {
      namespace: "db",
      name: "anon",
      clusterIP: "None",
      ports: [{ name: "x", port: 1, protocol: "UDP" }],
      endpoints: [{ ip: "172.30.2.7" }],
    },
    {
      namespace: "db",
      name: "empty",
      clusterIP: "None",
      ports: [{ name: "x", port: 1, protocol: "TCP" }],
      endpoints: [],
    },
  ],
  pods: [
    { ip: "172.30.1.2", namespace: "default" },
    { ip: "172.30.2.9", namespace: "pods-only" },
  ],
};

export interface Fixture {
  readonly server: DnsServer;
  readonly port: number;
  readonly upstream: FakeDnsUpstream | undefined;
  readonly events: DnsServerEvent[];
  close(): Promise<void>;
}

export async function startServer(
  options: { view?: DnsView | undefined; upstream?: boolean; server?: Partial<DnsServerOptions> } = {},
): Promise<Fixture> {
  let upstream: FakeDnsUpstream | undefined;
  let upstreamPort = 0;
  if (options.upstream === true) {
    upstream = new FakeDnsUpstream();
    upstreamPort = await upstream.start();
  }
  const server = new DnsServer({
    listen: [{ address: "127.0.0.1", port: 0 }],
    upstreams: upstream === undefined ? [] : [{ address: "127.0.0.1", port: upstreamPort }],
    ...options.server,
  });
  const events: DnsServerEvent[] = [];
  server.events.on((e) => events.push(e));
  const [bound] = await server.start();
  if (options.view !== undefined) server.setView(options.view);
  return {
    server,
    port: bound?.port ?? 0,
    upstream,
    events,
    close: async () => {
      await server.close();
      await upstream?.close();
    },
  };
}

/** A UDP and TCP port on 127.0.0.1 with nothing listening (an upstream that is down: ECONNREFUSED). */
export async function closedPort(): Promise<number> {
  const probe = new FakeDnsUpstream();
  const port = await probe.start();
  await probe.close();
  return port;
}
