// An independent client: BIND's dig (bind9-dnsutils, installed by scripts/setup) against the real server on
// 127.0.0.1 — its parsing of our answers, its own EDNS and its automatic TCP retry after TC.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { DnsView } from "../../src/dns/view.js";
import { startServer, VIEW, type Fixture } from "./support/fixture.js";

const run = promisify(execFile);

async function haveDig(): Promise<boolean> {
  try {
    await run("dig", ["-v"]);
    return true;
  } catch {
    return false;
  }
}

const WIDE: DnsView = {
  ...VIEW,
  services: [
    ...VIEW.services,
    {
      namespace: "default",
      name: "wide",
      clusterIP: "None",
      ports: [],
      endpoints: Array.from({ length: 60 }, (_, i) => ({ ip: `172.30.6.${i + 1}` })),
    },
  ],
};

describe("dns with dig", function () {
  let f: Fixture | undefined;
  before(async function () {
    if (!(await haveDig())) this.skip();
    f = await startServer({ view: WIDE, upstream: true });
  });
  after(async () => {
    await f?.close();
  });

  async function dig(...args: string[]): Promise<string> {
    const { stdout } = await run("dig", ["@127.0.0.1", "-p", String(f!.port), "+tries=1", "+time=2", ...args]);
    return stdout;
  }

  it("answers A, SRV, TXT and PTR as dig reads them", async () => {
    assert.equal((await dig("+short", "nginx-service.default.svc.cluster.local")).trim(), "10.254.0.20");
    assert.equal(
      (await dig("+short", "SRV", "_http._tcp.nginx-service.default.svc.cluster.local")).trim(),
      "0 100 8000 nginx-service.default.svc.cluster.local.",
    );
    assert.equal((await dig("+short", "TXT", "dns-version.cluster.local")).trim(), '"1.0.1"');
    assert.equal((await dig("+short", "-x", "10.254.0.20")).trim(), "nginx-service.default.svc.cluster.local.");
  });

  it("status NOERROR with an SOA for AAAA on an IPv4 Service, NXDOMAIN for a missing one", async () => {
    const aaaa = await dig("+noall", "+comments", "+authority", "AAAA", "nginx-service.default.svc.cluster.local");
    assert.match(aaaa, /status: NOERROR/);
    assert.match(aaaa, /ANSWER: 0/);
    assert.match(
      aaaa,
      /cluster\.local\.\s+5\s+IN\s+SOA\s+ns\.dns\.cluster\.local\. hostmaster\.cluster\.local\. \d+ 7200 1800 86400 5/,
    );
    assert.match(await dig("+noall", "+comments", "missing.default.svc.cluster.local"), /status: NXDOMAIN/);
  });

  it("retries over TCP by itself when the UDP answer is truncated, and gets all 60 records", async () => {
    const tcpBefore = f!.server.stats().queries.tcp;
    const out = await dig("+short", "wide.default.svc.cluster.local");
    assert.equal(out.trim().split("\n").length, 60);
    assert.equal(f!.server.stats().queries.tcp, tcpBefore + 1);
  });

  it("gets forwarded names from the fake upstream, with RA set", async () => {
    const out = await dig("+noall", "+comments", "+answer", "example.org");
    assert.match(out, /flags: qr rd ra;/);
    assert.match(out, /example\.org\.\s+300\s+IN\s+A\s+192\.0\.2\.1/);
  });
});
