// Two real agents on a dual-stack network with an IPv6 underlay: an underlay namespace (bridge with IPv4 and IPv6,
// etcd), two node namespaces on it, `network set --ipv6-network`, `trellis-agent run` in each. Each registers one
// dual-stack key with PublicIPv6 and BackendV6Data, programs flannel-v6.1 for the other, installs table ip6 trellis,
// writes subnet.env's IPv6 pair and says so in /status — and IPv6 pods' addresses reach each other. Everything is
// removed in after(), also when a test fails.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EtcdServer } from "../lab/src/etcd.js";
import { commandLine, run, runStatus, startDetached, stopPid } from "../lab/src/exec.js";
import { httpGetIn } from "../lab/src/http-get.js";
import { ipIn, NamespaceSet, uniqueName } from "../lab/src/netns.js";
import { AGENT_BIN } from "../lab/src/paths.js";
import { waitFor } from "../lab/src/ports.js";

const AGENT_CMD = /agent\/bin\/agent run/;
const UNDERLAY = { v4: "10.98.0.1", v6: "fd98::1" };
const nodeIp = (n: number): { v4: string; v6: string } => ({ v4: `10.98.0.${10 + n}`, v6: `fd98::${10 + n}` });

interface AgentNode {
  readonly n: number;
  readonly ns: string;
  readonly dir: string;
  pid?: number;
}

describe("two agents on a dual-stack network (real etcd, kernel, nft)", function () {
  this.timeout(90_000);
  const namespaces = new NamespaceSet();
  let etcd: EtcdServer | undefined;
  let dir = "";
  let underlay = "";
  const nodes: AgentNode[] = [];

  const env = (node: AgentNode): NodeJS.ProcessEnv => ({
    ...process.env,
    TRELLIS_ETCD_ENDPOINTS: etcd?.endpoint ?? "",
    TRELLIS_IFACE: "eth0",
    TRELLIS_SUBNET_FILE: join(node.dir, "subnet.env"),
    TRELLIS_CNI_SOCKET: "",
    TRELLIS_SERVICES: "false",
    TRELLIS_IP_MASQ: "true",
    TRELLIS_FIREWALL_BACKEND: "nftables",
    TRELLIS_LOG_FORMAT: "text",
  });
  const log = (node: AgentNode): Promise<string> => readFile(join(node.dir, "agent.log"), "utf8").catch(() => "");

  before(async function () {
    this.timeout(60_000);
    dir = await mkdtemp(join(tmpdir(), "trellis-dual-stack-"));
    underlay = await namespaces.add();
    await ipIn(underlay, "link", "add", "br0", "type", "bridge");
    await ipIn(underlay, "addr", "add", `${UNDERLAY.v4}/24`, "dev", "br0");
    await ipIn(underlay, "addr", "add", `${UNDERLAY.v6}/64`, "dev", "br0", "nodad");
    await ipIn(underlay, "link", "set", "br0", "up");
    etcd = await EtcdServer.start({ netns: underlay, host: UNDERLAY.v4, clientPort: 2379, peerPort: 2380 });
    for (const n of [1, 2]) {
      const ns = await namespaces.add();
      const uplink = uniqueName("up");
      await namespaces.link({ ns: underlay, ifname: uplink }, { ns, ifname: "eth0", cidr: `${nodeIp(n).v4}/24` });
      await ipIn(underlay, "link", "set", uplink, "master", "br0");
      await ipIn(ns, "addr", "add", `${nodeIp(n).v6}/64`, "dev", "eth0", "nodad");
      nodes.push({ n, ns, dir: await mkdtemp(join(dir, `n${n}-`)) });
    }
    const set = await runStatus(
      "ip",
      [
        "netns",
        "exec",
        underlay,
        AGENT_BIN,
        "network",
        "set",
        "--network",
        "172.30.0.0/16",
        "--ipv6-network",
        "fd30::/56",
        "--backend",
        "vxlan",
      ],
      { env: { ...process.env, TRELLIS_ETCD_ENDPOINTS: etcd.endpoint }, timeoutMs: 30_000 },
    );
    assert.equal(set.code, 0, `network set: ${set.stderr}`);
    for (const node of nodes) {
      node.pid = startDetached(
        "ip",
        ["netns", "exec", node.ns, AGENT_BIN, "run"],
        join(node.dir, "agent.log"),
        env(node),
      );
    }
    for (const node of nodes) {
      await waitFor(
        `the agent on n${node.n} to be ready`,
        async () => {
          if (node.pid !== undefined && !AGENT_CMD.test(commandLine(node.pid)))
            throw new Error(`the agent on n${node.n} exited:\n${(await log(node)).slice(-2000)}`);
          return /\bINFO\s+ready\b/.test(await log(node));
        },
        30_000,
      );
    }
    // Both peers programmed everywhere (the second node's lease reaches the first within a pass).
    await waitFor(
      "each node's IPv6 route to the other",
      async () => {
        for (const node of nodes) {
          const { stdout } = await run("ip", ["-6", "-n", node.ns, "route", "show", "proto", "145"]);
          if (!stdout.includes("flannel-v6.1")) return false;
        }
        return true;
      },
      10_000,
    );
  });

  after(async function () {
    this.timeout(60_000);
    for (const node of nodes) if (node.pid !== undefined) await stopPid(node.pid, AGENT_CMD, 5000);
    await etcd?.stop();
    await namespaces.dispose();
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  });

  it("registers one dual-stack key per node with PublicIPv6 and BackendV6Data", async () => {
    const got = await runStatus(
      "ip",
      [
        "netns",
        "exec",
        underlay,
        "etcdctl",
        "--endpoints",
        etcd?.endpoint ?? "",
        "get",
        "--prefix",
        "/coreos.com/network/subnets/",
      ],
      { env: { ...process.env, ETCDCTL_API: "3" }, timeoutMs: 10_000 },
    );
    assert.equal(got.code, 0, got.stderr);
    const lines = got.stdout.trim().split("\n");
    const keys = lines.filter((_, i) => i % 2 === 0);
    assert.equal(keys.length, 2);
    for (const key of keys) assert.match(key, /\/subnets\/172\.30\.\d+\.0-24&fd30:0:0:[0-9a-f]+::-64$/);
    const values = lines.filter((_, i) => i % 2 === 1).map((v) => JSON.parse(v) as Record<string, unknown>);
    assert.deepEqual(values.map((v) => v.PublicIPv6).sort(), [nodeIp(1).v6, nodeIp(2).v6]);
    for (const value of values) {
      const v6 = value.BackendV6Data as { VNI: number; VtepMAC: string };
      const v4 = value.BackendData as { VtepMAC: string };
      assert.equal(v6.VNI, 1);
      assert.notEqual(v6.VtepMAC, v4.VtepMAC, "two devices, two MACs");
    }
  });

  it("writes subnet.env with the IPv6 pair, installs table ip6 trellis, and /status shows both families programmed", async () => {
    for (const node of nodes) {
      const text = await readFile(join(node.dir, "subnet.env"), "utf8");
      assert.match(
        text,
        /^FLANNEL_NETWORK=172\.30\.0\.0\/16\nFLANNEL_SUBNET=172\.30\.\d+\.1\/24\nFLANNEL_IPV6_NETWORK=fd30::\/56\nFLANNEL_IPV6_SUBNET=fd30:0:0:[0-9a-f]+::1\/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=true\n$/,
      );
      const { stdout } = await run("ip", ["netns", "exec", node.ns, "nft", "list", "table", "ip6", "trellis"]);
      assert.match(stdout, /ip6 saddr fd30::\/56 ip6 daddr != ff00::\/8 masquerade fully-random/);
      const status = JSON.parse((await httpGetIn(node.ns, "http://127.0.0.1:9808/status")).body) as {
        lease: { subnet6: string | null; publicIpv6: string | null };
        peers: { family: number; programmed: boolean }[];
      };
      assert.match(status.lease.subnet6 ?? "", /^fd30:0:0:[0-9a-f]+::\/64$/);
      assert.equal(status.lease.publicIpv6, nodeIp(node.n).v6);
      assert.deepEqual(
        status.peers.map((p) => [p.family, p.programmed]),
        [
          [4, true],
          [6, true],
        ],
      );
    }
  });

  it("an IPv6 pod address on one node reaches one on the other through flannel-v6.1", async () => {
    // The CNI plugin's bridge, by hand: the first address of each node's IPv6 subnet, as subnet.env says.
    const pods: string[] = [];
    for (const node of nodes) {
      const text = await readFile(join(node.dir, "subnet.env"), "utf8");
      const subnet = /FLANNEL_IPV6_SUBNET=(\S+)/.exec(text)?.[1] ?? assert.fail("no FLANNEL_IPV6_SUBNET");
      await ipIn(node.ns, "link", "add", "cni0", "type", "bridge");
      await ipIn(node.ns, "addr", "add", subnet, "dev", "cni0", "nodad");
      await ipIn(node.ns, "link", "set", "cni0", "up");
      pods.push(subnet.split("/")[0] ?? "");
    }
    const [a, b] = nodes;
    assert.ok(a !== undefined && b !== undefined);
    const ping = await runStatus("ip", [
      "netns",
      "exec",
      a.ns,
      "ping",
      "-6",
      "-n",
      "-c",
      "1",
      "-W",
      "2",
      "-I",
      pods[0] ?? "",
      pods[1] ?? "",
    ]);
    assert.match(ping.stdout, /1 received/, ping.stdout + ping.stderr);
    const { stdout } = await run("ip", ["-6", "-n", a.ns, "route", "get", pods[1] ?? ""]);
    assert.match(stdout, /dev flannel-v6\.1/);
  });
});
