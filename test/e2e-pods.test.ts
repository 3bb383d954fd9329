// End to end with pods: every backend, pod to pod across nodes, pod to node, pod to outside (masqueraded), and an
// agent crash while traffic flows. Pods are ADDed through each node's CNI chain as a runtime would.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { run, start, startDetached, stopPid } from "../lab/src/exec.js";
import { httpGetIn } from "../lab/src/http-get.js";
import { addPods, fetchFromPod, podEndpoints, removePod, startPodServer } from "../lab/src/lab-pods.js";
import { OUTSIDE_IP } from "../lab/src/layout.js";
import type { UpOptions } from "../lab/src/lab.js";
import { ping, pingMatrix } from "../lab/src/ping.js";
import { useLab } from "./support/lab-fixture.js";

const cases: [string, UpOptions][] = [
  ["vxlan", { nodes: 3, backend: "vxlan", podsPerNode: 2 }],
  ["host-gw", { nodes: 2, backend: "host-gw", podsPerNode: 1 }],
  ["vxlan + DirectRouting", { nodes: 2, backend: "vxlan", directRouting: true, podsPerNode: 1 }],
];

for (const [name, options] of cases) {
  describe(`e2e pods: ${name}`, function () {
    this.timeout(180_000);
    const fixture = useLab(options);

    it("every pod reaches every other pod, across nodes, without NAT", async () => {
      const lab = fixture.lab;
      const results = await pingMatrix(podEndpoints(lab));
      assert.deepEqual(
        results.filter((r) => !r.ok).map((r) => `${r.from.name}→${r.to.name}`),
        [],
      );
      const [server, client] = [lab.current.pods[0], lab.current.pods[lab.current.pods.length - 1]];
      assert.ok(server !== undefined && client !== undefined && server.node !== client.node);
      await startPodServer(lab, server);
      const answer = await fetchFromPod(client, server);
      assert.ok(answer.ok, answer.body);
      assert.match(
        answer.body,
        new RegExp(`you are ${client.ip.replace(/\./g, "\\.")}$`),
        "the server sees the client pod's own IP",
      );
    });

    it("a pod reaches its node and the other nodes", async () => {
      const lab = fixture.lab;
      const pod = lab.current.pods[0];
      assert.ok(pod !== undefined);
      for (const { index } of lab.current.nodes) {
        const node = lab.layout.node(index);
        const result = await ping(
          { name: pod.name, ns: pod.name, ip: pod.ip },
          { name: node.name, ns: node.ns, ip: node.ip },
        );
        assert.ok(result.ok, `${pod.name} → ${node.name} (${node.ip})`);
      }
    });

    it("traffic from a pod to outside the network is masqueraded", async () => {
      const lab = fixture.lab;
      const pod = lab.current.pods[0];
      assert.ok(pod !== undefined);
      const script = fileURLToPath(new URL("../lab/src/pod-server.js", import.meta.url));
      const pid = startDetached(
        "ip",
        ["netns", "exec", lab.layout.underlayNs, process.execPath, script, OUTSIDE_IP, "8080", "outside"],
        `${lab.layout.stateDir}/outside-http.log`,
      );
      try {
        let answer = { status: 0, body: "" };
        for (let i = 0; i < 50 && answer.status !== 200; i++) {
          answer = await httpGetIn(pod.name, `http://${OUTSIDE_IP}:8080/`, 1000);
          if (answer.status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        assert.equal(answer.status, 200, answer.body);
        assert.match(
          answer.body.trim(),
          new RegExp(`you are ${lab.layout.node(pod.node).ip.replace(/\./g, "\\.")}$`),
          `the outside should see the node's address, not the pod's: ${answer.body}`,
        );
      } finally {
        await stopPid(pid, /pod-server/, 2000);
      }
    });

    it("each node's agent wires its pods for the plugin's shim; with the agent stopped the plugin works standalone", async () => {
      const lab = fixture.lab;
      const node = lab.layout.node(1);
      // The CNI service's histogram counts, per command and exit code, what it did for the shim.
      const served = async (command: string): Promise<number> => {
        const { body } = await httpGetIn(node.ns, "http://127.0.0.1:9808/metrics", 2000);
        return Number(
          new RegExp(`^trellis_cni_request_seconds_count\\{command="${command}",exit_code="0"\\} (\\d+)$`, "m").exec(
            body,
          )?.[1] ?? 0,
        );
      };
      assert.equal(
        await served("ADD"),
        lab.current.pods.filter((p) => p.node === 1).length,
        "the lab's pods on n1 were added by its agent",
      );
      await lab.killAgent(1, "SIGKILL");
      const [standalone] = await addPods(lab, 1, 1);
      assert.ok(standalone !== undefined);
      await lab.startAgent(1);
      await lab.waitReady(1);
      assert.equal(await served("ADD"), 0, "a fresh agent has served nothing yet");
      const peer = lab.current.pods.find((p) => p.node !== 1);
      assert.ok(peer !== undefined);
      assert.ok(
        (
          await ping(
            { name: standalone.name, ns: standalone.name, ip: standalone.ip },
            { name: peer.name, ns: peer.name, ip: peer.ip },
          )
        ).ok,
      );
      await removePod(lab, standalone.name);
      assert.equal(await served("DEL"), 1, "the restarted agent served the DEL");
    });

    it("an agent killed with SIGKILL and restarted loses no pod-to-pod ping and keeps subnet and VTEP MAC", async () => {
      const lab = fixture.lab;
      const from = lab.current.pods.find((p) => p.node === 1);
      const to = lab.current.pods.find((p) => p.node === 2);
      assert.ok(from !== undefined && to !== undefined);
      const gateway = await lab.nodeGateway(2);
      const mac = async (): Promise<string> =>
        (
          await run("ip", ["-n", lab.layout.node(2).ns, "link", "show", "flannel.1"]).catch(() => ({
            stdout: "no device",
          }))
        ).stdout.match(/link\/ether (\S+)/)?.[1] ?? "none";
      const macBefore = await mac();
      const pinger = start("ping", "ip", [
        "netns",
        "exec",
        from.name,
        "ping",
        "-n",
        "-q",
        "-i",
        "0.02",
        "-c",
        "250",
        "-W",
        "1",
        to.ip,
      ]);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await lab.killAgent(2, "SIGKILL");
      await lab.startAgent(2);
      await lab.waitReady(2);
      await pinger.exited;
      const summary = /(\d+) packets transmitted, (\d+) received/.exec(pinger.recentOutput);
      assert.ok(summary !== null, pinger.recentOutput);
      assert.equal(summary[2], summary[1], `lost pings: ${pinger.recentOutput}`);
      assert.deepEqual(await lab.nodeGateway(2), gateway);
      assert.equal(await mac(), macBefore);
    });
  });
}
