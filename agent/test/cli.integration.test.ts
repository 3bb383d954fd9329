// The real trellis-agent executable, invoked as a user would, against a real etcd.
import assert from "node:assert/strict";
import { runStatus } from "../../lab/src/exec.js";
import { AGENT_BIN } from "../../lab/src/paths.js";
import { freshPrefix, useEtcd } from "./support/etcd-fixture.js";

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

describe("trellis-agent CLI", function () {
  this.timeout(30_000);
  const etcd = useEtcd();

  function agent(args: string[], env: Record<string, string> = {}): Promise<Result> {
    return runStatus(AGENT_BIN, args, {
      env: { ...process.env, TRELLIS_ETCD_ENDPOINTS: etcd.server.endpoint, ...env },
      timeoutMs: 20_000,
    });
  }

  function noStack(result: Result): void {
    assert.doesNotMatch(result.stderr, /\n\s+at /, `stack trace in stderr: ${result.stderr}`);
  }

  it("has --help for every subcommand", async () => {
    for (const args of [
      ["--help"],
      ["run", "--help"],
      ["dns", "--help"],
      ["status", "--help"],
      ["network", "set", "--help"],
      ["network", "show", "--help"],
      ["reserve", "--help"],
      ["unreserve", "--help"],
      ["leave", "--help"],
      ["cleanup", "--help"],
      ["version", "--help"],
    ]) {
      const result = await agent(args);
      assert.equal(result.code, 0, args.join(" "));
      assert.match(result.stdout, /Usage: trellis-agent/);
    }
    for (const args of [
      ["run"],
      ["dns"],
      ["status"],
      ["network"],
      ["network", "set"],
      ["network", "show"],
      ["reserve"],
      ["unreserve"],
      ["leave"],
      ["cleanup"],
      ["version"],
    ]) {
      assert.match(
        (await agent([...args, "--help"])).stdout,
        /Examples:\n {2}trellis-agent /,
        `${args.join(" ")} --help has examples`,
      );
    }
    const status = await agent(["status", "--help"]);
    assert.match(status.stdout, /env:\s+TRELLIS_ETCD_ENDPOINTS/);
    assert.match(status.stdout, /Examples:/);
  });

  it("writes, validates and shows the network config; a rejected value changes nothing", async () => {
    const prefix = freshPrefix();
    const show0 = await agent(["network", "show", "--etcd-prefix", prefix]);
    assert.equal(show0.code, 5);
    assert.match(show0.stderr, /no network config at .*\/config: write one with/);

    const set = await agent(["network", "set", "--network", "172.30.0.0/16", "--vni", "7", "--etcd-prefix", prefix]);
    assert.equal(set.code, 0, set.stderr);
    const stored = await etcd.server.etcdctl("get", `${prefix}/config`, "--print-value-only");
    assert.deepEqual(JSON.parse(stored), {
      Network: "172.30.0.0/16",
      SubnetLen: 24,
      SubnetMin: "172.30.1.0",
      SubnetMax: "172.30.255.0",
      Backend: { Type: "vxlan", VNI: 7, Port: 8472, DirectRouting: false },
    });

    const bad: [string[], RegExp][] = [
      [["--network", "172.30.0.0/33"], /Network "172\.30\.0\.0\/33" is invalid: must be an IPv4 CIDR/],
      [["--network", "172.30.0.0/16", "--subnet-len", "31"], /SubnetLen 31 is invalid: must be between 18 and 30/],
      [["--network", "172.30.0.0/16", "--subnet-len", "abc"], /SubnetLen "abc" is invalid: must be an integer/],
      [
        ["--network", "172.30.0.0/16", "--subnet-min", "172.30.1.7"],
        /SubnetMin "172\.30\.1\.7" is invalid: must be on a \/24/,
      ],
      [
        ["--network", "172.30.0.0/16", "--subnet-max", "10.0.0.0"],
        /SubnetMax "10\.0\.0\.0" is invalid: must be inside Network/,
      ],
      [
        ["--network", "172.30.0.0/16", "--vni", "16777216"],
        /Backend\.VNI 16777216 is invalid: must be an integer between 0 and 16777215/,
      ],
      [["--network", "172.30.0.0/16", "--port", "99999"], /Backend\.Port 99999 is invalid/],
      [["--ipv6-network", "fd30::1/56"], /IPv6Network "fd30::1\/56" is invalid: has host bits set/],
      [["--ipv6-subnet-len", "64"], /IPv6Network .* is invalid: is required with EnableIPv6/],
      [["--ipv6-network", "fd30::/56", "--ipv6-subnet-len", "50"], /IPv6SubnetLen 50 is invalid: must be between 58/],
    ];
    for (const [args, message] of bad) {
      const result = await agent(["network", "set", ...args, "--etcd-prefix", prefix]);
      assert.equal(result.code, 4, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, message);
      noStack(result);
    }
    assert.equal(
      await etcd.server.etcdctl("get", `${prefix}/config`, "--print-value-only"),
      stored,
      "a failed set must not overwrite",
    );

    const dual = await agent(["network", "set", "--ipv6-network", "fd30::/56", "--etcd-prefix", prefix]);
    assert.equal(dual.code, 0, dual.stderr);
    assert.deepEqual(JSON.parse(await etcd.server.etcdctl("get", `${prefix}/config`, "--print-value-only")), {
      Network: "172.30.0.0/16",
      SubnetLen: 24,
      SubnetMin: "172.30.1.0",
      SubnetMax: "172.30.255.0",
      EnableIPv6: true,
      IPv6Network: "fd30::/56",
      IPv6SubnetLen: 64,
      IPv6SubnetMin: "fd30:0:0:1::",
      IPv6SubnetMax: "fd30:0:0:ff::",
      Backend: { Type: "vxlan", VNI: 1, Port: 8472, DirectRouting: false },
    });

    const backend = await agent(["network", "set", "--backend", "udp", "--etcd-prefix", prefix]);
    assert.equal(backend.code, 2);
    assert.match(backend.stderr, /Allowed choices are vxlan, host-gw/);

    // A config someone wrote by hand that does not validate is reported, not crashed on.
    await etcd.server.etcdctl("put", `${prefix}/config`, '{"Network": 17');
    const broken = await agent(["network", "show", "--etcd-prefix", prefix]);
    assert.equal(broken.code, 4);
    assert.match(broken.stderr, /network config .* is invalid: must be JSON/);
    const raw = await agent(["network", "show", "--raw", "--etcd-prefix", prefix]);
    assert.equal(raw.stdout, '{"Network": 17\n');
  });

  it("lists leases as a table and as JSON, marking this node's", async () => {
    const prefix = freshPrefix();
    await agent(["network", "set", "--network", "172.30.0.0/16", "--etcd-prefix", prefix]);
    const registry = await etcd.registry(prefix);
    await registry.createLease(
      { ip: ((172 << 24) | (30 << 16) | (5 << 8)) >>> 0, prefixLen: 24 },
      { publicIp: "10.0.0.5", backendType: "vxlan", vni: 1, vtepMac: "02:00:00:00:00:05" },
      await registry.grantLease(3600),
    );
    await registry.createLease(
      { ip: ((172 << 24) | (30 << 16) | (9 << 8)) >>> 0, prefixLen: 24 },
      { publicIp: "10.0.0.9", backendType: "vxlan", vni: 1, vtepMac: "02:00:00:00:00:09" },
      await registry.grantLease(3600),
    );
    const reserve = await agent(["reserve", "172.30.200.0/24", "--public-ip", "10.0.0.200", "--etcd-prefix", prefix]);
    assert.equal(reserve.code, 0, reserve.stderr);
    await etcd.server.etcdctl("put", `${prefix}/subnets/172.30.201.0-24`, "garbage");

    const table = await agent(["status", "--etcd-prefix", prefix, "--public-ip", "10.0.0.9", "--healthz-port", "0"]);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split("\n");
    assert.match(lines[0] ?? "", /^\s+SUBNET\s+PUBLIC IP\s+BACKEND\s+VTEP MAC\s+EXPIRES$/);
    assert.match(lines[1] ?? "", /^\s+172\.30\.5\.0\/24\s+10\.0\.0\.5\s+vxlan\s+02:00:00:00:00:05\s+in (59m\d+s|1h)$/);
    assert.match(lines[2] ?? "", /^\*\s+172\.30\.9\.0\/24\s+10\.0\.0\.9\s+vxlan/);
    assert.match(lines[3] ?? "", /^\s+172\.30\.200\.0\/24\s+10\.0\.0\.200\s+vxlan\s+-\s+reserved$/);
    assert.match(lines[4] ?? "", /172\.30\.201\.0\/24.*invalid: value is not valid JSON/);
    assert.equal(lines[5], "* this node");

    const json = await agent([
      "status",
      "-o",
      "json",
      "--etcd-prefix",
      prefix,
      "--public-ip",
      "10.0.0.9",
      "--healthz-port",
      "0",
    ]);
    const parsed = JSON.parse(json.stdout) as { leases: Record<string, unknown>[] };
    assert.equal(parsed.leases.length, 4);
    const own = parsed.leases.find((l) => l.self === true);
    assert.ok(own !== undefined);
    assert.equal(own.subnet, "172.30.9.0/24");
    assert.equal(own.vtepMac, "02:00:00:00:00:09");
    assert.ok(typeof own.ttlSeconds === "number" && own.ttlSeconds > 3500);
    assert.ok(!Number.isNaN(Date.parse(String(own.expiresAt))));
    const reserved = parsed.leases.find((l) => l.subnet === "172.30.200.0/24");
    assert.deepEqual([reserved?.reserved, reserved?.expiresAt, reserved?.ttlSeconds], [true, null, null]);
  });

  it("fails within a few seconds, clearly, when etcd is unreachable", async () => {
    const started = Date.now();
    const result = await agent(["status"], { TRELLIS_ETCD_ENDPOINTS: "http://127.0.0.1:1" });
    assert.ok(Date.now() - started < 6000, `took ${Date.now() - started} ms`);
    assert.equal(result.code, 3);
    assert.match(result.stderr, /^trellis-agent: etcd is unreachable at http:\/\/127\.0\.0\.1:1/);
    noStack(result);
  });

  it("rejects bad options by name, before touching etcd", async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [
        ["status"],
        { TRELLIS_ETCD_ENDPOINTS: "not a url" },
        /--etcd-endpoints "not a url" is invalid: each endpoint must be a URL/,
      ],
      [["status", "--etcd-endpoints", "ftp://x:1"], {}, /must use http:\/\/ or https:\/\//],
      [["status", "--etcd-prefix", "relative"], {}, /--etcd-prefix "relative" is invalid/],
      [
        ["status", "--etcd-cafile", "/nonexistent/ca.pem", "--etcd-endpoints", "https://127.0.0.1:2379"],
        {},
        /--etcd-cafile "\/nonexistent\/ca\.pem" is invalid: must be a readable PEM file \(ENOENT\)/,
      ],
      [["status", "--etcd-cafile", "/nonexistent/ca.pem"], {}, /must use https:\/\/ when TLS files/],
      [["reserve", "172.30.5.7/24", "--public-ip", "10.0.0.1"], {}, /<subnet> "172\.30\.5\.7\/24" is invalid/],
      [["reserve", "172.30.5.0/24", "--public-ip", "10.0.0"], {}, /--public-ip "10\.0\.0" is invalid/],
      [["run", "--subnet-lease-ttl", "forever"], {}, /--subnet-lease-ttl "forever" is invalid: must be a duration/],
      [["run"], { TRELLIS_STORE_RESET_GRACE: "soon" }, /--store-reset-grace "soon" is invalid: must be a duration/],
      [
        ["run", "--cni-socket", "run/cni.sock"],
        {},
        /--cni-socket "run\/cni\.sock" is invalid: must be an absolute path of at most 107 bytes/,
      ],
      [["run"], { TRELLIS_CNI_SOCKET: `/run/${"s".repeat(110)}` }, /--cni-socket "\/run\/s+" is invalid/],
      [["dns", "--port", "0"], {}, /--port "0" is invalid: must be a port number from 1 to 65535/],
      [["dns"], { TRELLIS_NODE_LOCAL_IP: "169.254.20" }, /--node-local-ip "169\.254\.20" is invalid/],
      [["dns", "--endpoint-ttl", "1s"], {}, /--endpoint-ttl "1s" is invalid: must be whole seconds from 2s/],
    ];
    for (const [args, env, message] of cases) {
      const result = await agent(args, env);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, message);
      noStack(result);
    }
  });

  it("takes options from TRELLIS_* variables, and a flag wins over its variable", async () => {
    const prefix = freshPrefix();
    const set = await agent(["network", "set", "--network", "10.8.0.0/16"], { TRELLIS_ETCD_PREFIX: prefix });
    assert.equal(set.code, 0, set.stderr);
    const show = await agent(["network", "show", "--etcd-prefix", prefix], { TRELLIS_ETCD_PREFIX: "/elsewhere" });
    assert.match(show.stdout, /"Network": "10\.8\.0\.0\/16"/);
  });

  it("reserves, refuses to take another node's subnet, unreserves, and leave releases this node's lease", async () => {
    const prefix = freshPrefix();
    await agent(["network", "set", "--network", "172.30.0.0/16", "--etcd-prefix", prefix]);
    const registry = await etcd.registry(prefix);
    const subnet = { ip: ((172 << 24) | (30 << 16) | (3 << 8)) >>> 0, prefixLen: 24 };
    await registry.createLease(subnet, { publicIp: "10.0.0.3", backendType: "vxlan" }, await registry.grantLease(3600));

    const taken = await agent(["reserve", "172.30.3.0/24", "--public-ip", "10.0.0.4", "--etcd-prefix", prefix]);
    assert.equal(taken.code, 6);
    assert.match(taken.stderr, /172\.30\.3\.0\/24 is held by 10\.0\.0\.3; nothing written/);

    const notReservation = await agent(["unreserve", "172.30.3.0/24", "--etcd-prefix", prefix]);
    assert.equal(notReservation.code, 6);
    assert.match(notReservation.stderr, /is a lease with a TTL held by 10\.0\.0\.3, not a reservation/);

    assert.equal(
      (await agent(["reserve", "172.30.8.0/24", "--public-ip", "10.0.0.3", "--etcd-prefix", prefix])).code,
      0,
    );
    const leave = await agent(["leave", "--public-ip", "10.0.0.3", "--etcd-prefix", prefix]);
    assert.equal(leave.code, 0, leave.stderr);
    assert.match(leave.stdout, /released 172\.30\.3\.0\/24 \(10\.0\.0\.3\)/);
    assert.match(leave.stdout, /kept reservation 172\.30\.8\.0\/24/);
    assert.deepEqual(
      (await registry.listLeases()).leases.map((l) => (l.subnet.ip >>> 8) & 255),
      [8],
    );

    const unreserve = await agent(["unreserve", "172.30.8.0/24", "--etcd-prefix", prefix]);
    assert.equal(unreserve.code, 0, unreserve.stderr);
    assert.equal((await registry.listLeases()).leases.length, 0);
    const again = await agent(["unreserve", "172.30.8.0/24", "--etcd-prefix", prefix]);
    assert.equal(again.code, 5);
    assert.match(again.stderr, /there is no reservation for 172\.30\.8\.0\/24/);
  });
});
