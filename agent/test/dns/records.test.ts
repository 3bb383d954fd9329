// The Kubernetes DNS specification's records, asked of the real server over UDP on 127.0.0.1.
import assert from "node:assert/strict";
import dnsPacket from "dns-packet";
import { buildQuery, rawUdp, udp, decode } from "./support/dns-client.js";
import { startServer, VIEW, type Fixture } from "./support/fixture.js";

const SOA = "cluster.local SOA 5 ns.dns.cluster.local hostmaster.cluster.local 5";
const NGINX = "nginx-service.default.svc.cluster.local";

describe("dns records (real server, UDP)", () => {
  let f: Fixture;
  before(async () => {
    f = await startServer({ view: VIEW, server: { nameserverAddresses: ["10.254.0.10"] } });
  });
  after(async () => {
    await f.close();
  });

  const ask = (name: string, type: dnsPacket.RecordType | "ANY" = "A") => udp(f.port, name, { type });

  it("a Service's A record is its cluster IP, authoritative, with the default 5 s TTL", async () => {
    const a = await ask(NGINX);
    assert.equal(a.rcode, "NOERROR");
    assert.equal(a.aa, true);
    assert.deepEqual(a.answers, [`${NGINX} A 5 10.254.0.20`]);
    assert.deepEqual(a.authorities, []);
  });

  it("matches case-insensitively and echoes the question's spelling byte for byte", async () => {
    const name = "NGINX-Service.Default.SVC.Cluster.LOCAL";
    const query = buildQuery(name);
    const raw = await rawUdp(f.port, query);
    assert.ok(raw !== undefined);
    const a = decode(raw);
    assert.deepEqual(a.answers, [`${name} A 5 10.254.0.20`]);
    assert.deepEqual(raw.subarray(12, query.length), query.subarray(12)); // the question section
  });

  it("an existing name without the asked type is NODATA (NOERROR, no answers, the SOA), never NXDOMAIN", async () => {
    for (const type of ["AAAA", "TXT", "MX", "SRV"] as const) {
      const a = await ask(NGINX, type);
      assert.equal(a.rcode, "NOERROR", type);
      assert.deepEqual(a.answers, [], type);
      assert.deepEqual(a.authorities, [SOA], type);
    }
  });

  it("empty non-terminals are NODATA: the namespace, svc, pod, the apex for A, a namespace with only pods", async () => {
    for (const name of [
      "default.svc.cluster.local",
      "svc.cluster.local",
      "pod.cluster.local",
      "cluster.local",
      "db.svc.cluster.local",
      "pods-only.svc.cluster.local",
      "default.pod.cluster.local",
      `_tcp.${NGINX}`,
    ]) {
      const a = await ask(name);
      assert.equal(a.rcode, "NOERROR", name);
      assert.deepEqual(a.answers, [], name);
      assert.deepEqual(a.authorities, [SOA], name);
    }
  });

  it("names that do not exist are NXDOMAIN with the SOA (its minimum is the negative TTL)", async () => {
    for (const name of [
      "nope.default.svc.cluster.local",
      "nginx-service.nope.svc.cluster.local",
      "nope.svc.cluster.local",
      `x.${NGINX}`,
      "nope.cluster.local",
      `_http._udp.${NGINX}`,
      `_9000._tcp.${NGINX}`,
      "example.com.default.svc.cluster.local",
    ]) {
      const a = await ask(name);
      assert.equal(a.rcode, "NXDOMAIN", name);
      assert.equal(a.aa, true);
      assert.deepEqual(a.answers, [], name);
      assert.deepEqual(a.authorities, [SOA], name);
    }
  });

  it("SRV for named ports only, with the target's A record in the additional section", async () => {
    const a = await ask(`_http._tcp.${NGINX}`, "SRV");
    assert.deepEqual(a.answers, [`_http._tcp.${NGINX} SRV 5 0 100 8000 ${NGINX}`]);
    assert.deepEqual(a.additionals, [`${NGINX} A 5 10.254.0.20`]);
    const dns = await ask("_dns._udp.kube-dns.kube-system.svc.cluster.local", "SRV");
    assert.deepEqual(dns.answers, [
      "_dns._udp.kube-dns.kube-system.svc.cluster.local SRV 5 0 100 53 kube-dns.kube-system.svc.cluster.local",
    ]);
    const dnsTcp = await ask("_dns-tcp._tcp.kube-dns.kube-system.svc.cluster.local", "SRV");
    assert.equal(dnsTcp.answers.length, 1);
    assert.equal((await ask(`_dns._tcp.kube-dns.kube-system.svc.cluster.local`, "SRV")).rcode, "NXDOMAIN"); // dns is UDP
  });

  it("a headless Service: one A per ready endpoint, hostnames, SRV = endpoints × ports with their A records", async () => {
    const base = "pg.db.svc.cluster.local";
    assert.deepEqual((await ask(base)).answers.sort(), [`${base} A 5 172.30.2.5`, `${base} A 5 172.30.3.6`]);
    assert.deepEqual((await ask(`pg-1.${base}`)).answers, [`pg-1.${base} A 5 172.30.3.6`]);
    const srv = await ask(`_pg._tcp.${base}`, "SRV");
    assert.deepEqual(srv.answers.sort(), [
      `_pg._tcp.${base} SRV 5 0 50 5432 pg-0.${base}`,
      `_pg._tcp.${base} SRV 5 0 50 5432 pg-1.${base}`,
    ]);
    assert.deepEqual(srv.additionals.sort(), [`pg-0.${base} A 5 172.30.2.5`, `pg-1.${base} A 5 172.30.3.6`]);
  });

  it("a headless endpoint without a hostname is named by its dashed IP; no endpoints = NXDOMAIN", async () => {
    const base = "anon.db.svc.cluster.local";
    assert.deepEqual((await ask(`_x._udp.${base}`, "SRV")).answers, [
      `_x._udp.${base} SRV 5 0 100 1 172-30-2-7.${base}`,
    ]);
    assert.deepEqual((await ask(`172-30-2-7.${base}`)).answers, [`172-30-2-7.${base} A 5 172.30.2.7`]);
    assert.equal((await ask("empty.db.svc.cluster.local")).rcode, "NXDOMAIN");
    assert.equal((await ask("_x._tcp.empty.db.svc.cluster.local", "SRV")).rcode, "NXDOMAIN");
  });

  it("PTR for cluster IPs and for headless endpoints with a hostname", async () => {
    assert.deepEqual((await ask("20.0.254.10.in-addr.arpa", "PTR")).answers, [
      `20.0.254.10.in-addr.arpa PTR 5 ${NGINX}`,
    ]);
    assert.deepEqual((await ask("5.2.30.172.IN-ADDR.ARPA", "PTR")).answers, [
      "5.2.30.172.IN-ADDR.ARPA PTR 5 pg-0.pg.db.svc.cluster.local",
    ]);
    // Not a cluster IP: forwarded; this server has no upstream, so REFUSED.
    assert.equal((await ask("7.2.30.172.in-addr.arpa", "PTR")).rcode, "REFUSED");
  });

  it("pod records exist only for a pod with that IP in that namespace (pods verified)", async () => {
    assert.deepEqual((await ask("172-30-1-2.default.pod.cluster.local")).answers, [
      "172-30-1-2.default.pod.cluster.local A 5 172.30.1.2",
    ]);
    assert.equal((await ask("172-30-1-2.db.pod.cluster.local")).rcode, "NXDOMAIN");
    assert.equal((await ask("172-30-9-9.default.pod.cluster.local")).rcode, "NXDOMAIN");
    const aaaa = await ask("172-30-1-2.default.pod.cluster.local", "AAAA");
    assert.equal(aaaa.rcode, "NOERROR");
    assert.deepEqual(aaaa.answers, []);
  });

  it("dns-version TXT, the apex SOA and NS (with the NS name's A record)", async () => {
    assert.deepEqual((await ask("dns-version.cluster.local", "TXT")).answers, [
      "dns-version.cluster.local TXT 5 1.0.1",
    ]);
    assert.deepEqual((await ask("cluster.local", "SOA")).answers, [SOA]);
    const ns = await ask("cluster.local", "NS");
    assert.deepEqual(ns.answers, ["cluster.local NS 5 ns.dns.cluster.local"]);
    assert.deepEqual(ns.additionals, ["ns.dns.cluster.local A 5 10.254.0.10"]);
    assert.deepEqual((await ask("ns.dns.cluster.local")).answers, ["ns.dns.cluster.local A 5 10.254.0.10"]);
  });

  it("ANY returns every record of the name; AXFR is NOTIMP; another class is REFUSED", async () => {
    assert.deepEqual((await ask(NGINX, "ANY")).answers, [`${NGINX} A 5 10.254.0.20`]);
    assert.equal((await ask("cluster.local", "AXFR")).rcode, "NOTIMP");
    const ch = dnsPacket.encode({
      type: "query",
      id: 7,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ name: NGINX, type: "A", class: "CH" }],
    });
    const raw = await rawUdp(f.port, ch);
    assert.ok(raw !== undefined);
    assert.equal(decode(raw).rcode, "REFUSED");
  });

  it("flags: RD echoed, RA clear without upstreams, the query's ID", async () => {
    const withRd = await udp(f.port, NGINX, { id: 4242 });
    assert.equal(withRd.packet.id, 4242);
    assert.equal(withRd.packet.flag_rd, true);
    assert.equal(withRd.packet.flag_ra, false);
    assert.equal((await udp(f.port, NGINX, { rd: false })).packet.flag_rd, false);
  });
});

describe("dns records: TTLs, views and the time before the first view", () => {
  it("TTL and negative TTL (SOA TTL and minimum) are configurable", async () => {
    const f = await startServer({ view: VIEW, server: { ttlSeconds: 30, negativeTtlSeconds: 7 } });
    try {
      assert.deepEqual((await udp(f.port, NGINX)).answers, [`${NGINX} A 30 10.254.0.20`]);
      assert.deepEqual((await udp(f.port, "nope.cluster.local")).authorities, [
        "cluster.local SOA 7 ns.dns.cluster.local hostmaster.cluster.local 7",
      ]);
    } finally {
      await f.close();
    }
  });

  it("setView swaps atomically: an added Service answers on the next query, a removed one is NXDOMAIN", async () => {
    const f = await startServer({ view: VIEW });
    try {
      const serial = (await udp(f.port, "cluster.local", { type: "SOA" })).packet.answers?.[0];
      assert.equal((await udp(f.port, "new.default.svc.cluster.local")).rcode, "NXDOMAIN");
      const added = {
        ...VIEW,
        services: [
          ...VIEW.services,
          { namespace: "default", name: "new", clusterIP: "10.254.0.99", ports: [], endpoints: [] },
        ],
      };
      f.server.setView(added);
      assert.deepEqual((await udp(f.port, "new.default.svc.cluster.local")).answers, [
        "new.default.svc.cluster.local A 5 10.254.0.99",
      ]);
      f.server.setView({ ...VIEW, services: VIEW.services.filter((s) => s.name !== "nginx-service") });
      assert.equal((await udp(f.port, NGINX)).rcode, "NXDOMAIN");
      assert.equal((await udp(f.port, "new.default.svc.cluster.local")).rcode, "NXDOMAIN");
      const after = (await udp(f.port, "cluster.local", { type: "SOA" })).packet.answers?.[0];
      assert.ok(serial?.type === "SOA" && after?.type === "SOA");
      assert.equal(after.data.serial, (serial.data.serial ?? 0) + 2);
      assert.equal(f.server.stats().view.services, 4);
    } finally {
      await f.close();
    }
  });

  it("before the first view: zone names SERVFAIL (not a cacheable denial), other names are still forwarded", async () => {
    const f = await startServer({ upstream: true });
    try {
      const a = await udp(f.port, NGINX);
      assert.equal(a.rcode, "SERVFAIL");
      assert.deepEqual(a.authorities, []);
      assert.deepEqual((await udp(f.port, "example.com")).answers, ["example.com A 300 192.0.2.1"]);
      assert.equal(f.server.stats().view.loaded, false);
      f.server.setView(VIEW);
      assert.equal((await udp(f.port, NGINX)).rcode, "NOERROR");
    } finally {
      await f.close();
    }
  });

  it("invalid entries of a view are skipped and reported; a bad zone is rejected", async () => {
    const f = await startServer({
      view: {
        ...VIEW,
        services: [
          ...VIEW.services,
          { namespace: "default", name: "Bad_Name", clusterIP: "10.254.0.30", ports: [], endpoints: [] },
          { namespace: "default", name: "v6", clusterIP: "fd00::1", ports: [], endpoints: [] },
        ],
      },
    });
    try {
      const view = f.events.find((e) => e.type === "view");
      assert.ok(view?.type === "view");
      assert.deepEqual(
        view.skipped.map((s) => s.what),
        ["service default/Bad_Name", "service default/v6"],
      );
      assert.equal(view.services, 5);
      assert.throws(() => {
        f.server.setView({ ...VIEW, zone: "cluster..local" });
      }, /zone "cluster\.\.local" is invalid/);
      assert.equal((await udp(f.port, NGINX)).rcode, "NOERROR"); // the previous view still serves
    } finally {
      await f.close();
    }
  });
});
