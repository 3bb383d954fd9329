// One real etcd per test file (started in before(), stopped in after(), also when tests fail), and registries on
// it under a fresh key prefix per test so tests never see each other's keys.
import { EtcdServer, type EtcdServerOptions } from "../../../lab/src/etcd.js";
import { createEtcdClient, type EtcdConnectionOptions } from "../../src/etcd/client.js";
import { EtcdRegistry } from "../../src/lease/etcd-registry.js";

let prefixCounter = 0;

export function freshPrefix(): string {
  prefixCounter += 1;
  return `/test-${process.pid}-${prefixCounter}/network`;
}

export interface EtcdFixture {
  readonly server: EtcdServer;
  /** A registry under its own prefix (closed automatically after the file). */
  registry(prefix?: string, overrides?: Partial<EtcdConnectionOptions>): Promise<EtcdRegistry & { prefix: string }>;
}

export function useEtcd(options: EtcdServerOptions = {}): EtcdFixture {
  let server: EtcdServer | undefined;
  const opened: EtcdRegistry[] = [];
  before(async function () {
    this.timeout(30_000);
    server = await EtcdServer.start(options);
  });
  after(async () => {
    for (const registry of opened) registry.close();
    await server?.stop();
  });
  return {
    get server(): EtcdServer {
      if (server === undefined) throw new Error("etcd not started");
      return server;
    },
    async registry(prefix = freshPrefix(), overrides = {}) {
      if (server === undefined) throw new Error("etcd not started");
      const connection: EtcdConnectionOptions = {
        endpoints: [server.endpoint],
        requestTimeoutMs: 3000,
        retry: false,
        ...overrides,
      };
      const client = await createEtcdClient(connection);
      const registry = Object.assign(
        new EtcdRegistry(client, prefix, connection.endpoints, connection.requestTimeoutMs),
        { prefix },
      );
      opened.push(registry);
      return registry;
    },
  };
}
