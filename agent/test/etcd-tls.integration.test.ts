// TLS with client certificates against a real etcd started with --client-cert-auth.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isTrellisError, InvalidArgumentError } from "#lib/errors.js";
import { EtcdServer } from "../../lab/src/etcd.js";
import { makeTestPki, type TestPki } from "../../lab/src/tls.js";
import { createEtcdClient, type EtcdConnectionOptions } from "../src/etcd/client.js";
import { EtcdRegistry } from "../src/lease/etcd-registry.js";

describe("etcd over TLS with client certificates", function () {
  this.timeout(60_000);
  let dir = "";
  let pki: TestPki;
  let server: EtcdServer | undefined;
  const registries: EtcdRegistry[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "trellis-tls-"));
    pki = await makeTestPki(dir);
    server = await EtcdServer.start({
      tls: { caFile: pki.caFile, certFile: pki.serverCert, keyFile: pki.serverKey, clientCertAuth: true },
    });
  });

  after(async () => {
    for (const r of registries) r.close();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function registry(options: Partial<EtcdConnectionOptions>): Promise<EtcdRegistry> {
    const connection: EtcdConnectionOptions = {
      endpoints: [server!.endpoint],
      requestTimeoutMs: 2000,
      retry: false,
      ...options,
    };
    const r = new EtcdRegistry(await createEtcdClient(connection), "/tls-test/network", connection.endpoints, 2000);
    registries.push(r);
    return r;
  }

  it("works with the CA, a client certificate and its key", async () => {
    assert.match(server!.endpoint, /^https:/);
    const r = await registry({ caFile: pki.caFile, certFile: pki.clientCert, keyFile: pki.clientKey });
    await r.putNetworkConfig('{"Network":"172.30.0.0/16"}');
    assert.equal(await r.getNetworkConfig(), '{"Network":"172.30.0.0/16"}');
  });

  it("is refused without a client certificate", async () => {
    const r = await registry({ caFile: pki.caFile });
    await assert.rejects(
      r.getNetworkConfig(),
      (error: unknown) => isTrellisError(error, "ETCD_UNAVAILABLE") && /TLS handshake failed/.test(error.message),
    );
  });

  it("is refused when the server is not signed by the given CA, and says TLS", async () => {
    const r = await registry({ caFile: pki.otherCaFile, certFile: pki.clientCert, keyFile: pki.clientKey });
    await assert.rejects(
      r.getNetworkConfig(),
      (error: unknown) =>
        isTrellisError(error, "ETCD_UNAVAILABLE") &&
        /TLS handshake failed.*unable to verify the first certificate$/.test(error.message),
    );
  });

  it("names the flag and path of an unreadable TLS file", async () => {
    await assert.rejects(
      createEtcdClient({
        endpoints: [server!.endpoint],
        requestTimeoutMs: 1000,
        retry: false,
        caFile: join(dir, "missing.pem"),
      }),
      (error: unknown) =>
        error instanceof InvalidArgumentError &&
        error.field === "--etcd-cafile" &&
        /missing\.pem.*readable PEM file \(ENOENT\)/.test(error.message),
    );
  });
});
