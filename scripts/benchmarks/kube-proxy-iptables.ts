// kube-proxy's iptables-mode layout, built by hand for the services benchmark's anchor (pure): an iptables-restore
// input for the nat table with KUBE-SERVICES matching every cluster IP in turn, a KUBE-SVC chain per Service picking
// an endpoint with `statistic --mode random`, and a KUBE-SEP chain per endpoint marking hairpin traffic and DNATing
// (../shared/reference/services.md). The linear KUBE-SERVICES walk is what the nftables map lookup replaces.
import { createHash } from "node:crypto";
import { formatIpv4 } from "#lib/ipv4.js";
import type { BenchService } from "./service-set.js";

/** kube-proxy names its chains by a hash of what they serve; 16 characters, as it does. */
function chainName(kind: "SVC" | "SEP", of: string): string {
  return `KUBE-${kind}-${createHash("sha256").update(of).digest("base64url").slice(0, 16).toUpperCase().replace(/[-_]/g, "X")}`;
}

export function kubeProxyIptables(services: readonly BenchService[], podNetwork: string): string {
  const chains: string[] = [":KUBE-SERVICES - [0:0]", ":KUBE-MARK-MASQ - [0:0]", ":KUBE-POSTROUTING - [0:0]"];
  const rules: string[] = [
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
    "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
    "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
    "-A KUBE-POSTROUTING -j MASQUERADE --random-fully",
  ];
  for (const svc of services) {
    const ip = formatIpv4(svc.clusterIP);
    const id = `bench/${svc.name}:p0`;
    const svcChain = chainName("SVC", id);
    chains.push(`:${svcChain} - [0:0]`);
    rules.push(
      `-A KUBE-SERVICES -d ${ip}/32 -p tcp -m comment --comment "${id} cluster IP" -m tcp --dport ${svc.port} -j ${svcChain}`,
    );
    rules.push(`-A ${svcChain} ! -s ${podNetwork} -d ${ip}/32 -p tcp -m tcp --dport ${svc.port} -j KUBE-MARK-MASQ`);
    svc.endpoints.forEach((endpoint, n) => {
      const ep = `${formatIpv4(endpoint)}:${svc.targetPort}`;
      const sepChain = chainName("SEP", `${id}/${ep}`);
      chains.push(`:${sepChain} - [0:0]`);
      const left = svc.endpoints.length - n;
      rules.push(
        left === 1
          ? `-A ${svcChain} -j ${sepChain}`
          : `-A ${svcChain} -m statistic --mode random --probability ${(1 / left).toFixed(10)} -j ${sepChain}`,
      );
      rules.push(
        `-A ${sepChain} -s ${formatIpv4(endpoint)}/32 -j KUBE-MARK-MASQ`,
        `-A ${sepChain} -p tcp -m tcp -j DNAT --to-destination ${ep}`,
      );
    });
  }
  return ["*nat", ...chains, ...rules, "COMMIT", ""].join("\n");
}
