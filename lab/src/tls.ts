// A throwaway PKI for TLS tests and a TLS-enabled lab: a CA, a server certificate for the given IPs, a client
// certificate. openssl through argument arrays only.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "./exec.js";

export interface TestPki {
  readonly caFile: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A second CA that signed nothing we trust: for "wrong CA" tests. */
  readonly otherCaFile: string;
}

async function key(path: string): Promise<void> {
  await run("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path]);
}

async function ca(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const keyFile = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  await key(keyFile);
  await run("openssl", [
    "req",
    "-x509",
    "-new",
    "-key",
    keyFile,
    "-sha256",
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
    "-out",
    cert,
  ]);
  return { cert, key: keyFile };
}

async function leaf(
  dir: string,
  name: string,
  signer: { cert: string; key: string },
  extensions: string,
): Promise<{ cert: string; key: string }> {
  const keyFile = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  await key(keyFile);
  await run("openssl", ["req", "-new", "-key", keyFile, "-subj", `/CN=${name}`, "-out", csr]);
  await writeFile(ext, extensions);
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    signer.cert,
    "-CAkey",
    signer.key,
    "-CAcreateserial",
    "-days",
    "2",
    "-sha256",
    "-extfile",
    ext,
    "-out",
    cert,
  ]);
  return { cert, key: keyFile };
}

export async function makeTestPki(dir: string, serverIps: readonly string[] = ["127.0.0.1"]): Promise<TestPki> {
  await mkdir(dir, { recursive: true });
  const root = await ca(dir, "ca");
  const other = await ca(dir, "other-ca");
  const san = serverIps.map((ip) => `IP:${ip}`).join(",");
  const server = await leaf(dir, "server", root, `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  const client = await leaf(dir, "client", root, "extendedKeyUsage=clientAuth\n");
  return {
    caFile: root.cert,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    otherCaFile: other.cert,
  };
}
