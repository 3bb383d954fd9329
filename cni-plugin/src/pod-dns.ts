// The DNS settings a pod gets in the ADD result (pure): the conflist's `dns`, and when it names the cluster domain
// (`dns.domain`), Kubernetes' ClusterFirst search list before the conflist's own — `<pod namespace>.svc.<domain>
// svc.<domain> <domain>` — so `nginx-service` resolves in the pod's namespace and `nginx-service.default` anywhere.
// A pod the runtime did not name (no K8S_POD_NAMESPACE) gets `svc.<domain> <domain>`.
import type { Dns } from "./result.js";

export function podDns(dns: Dns, namespace: string | undefined): Dns {
  if (dns.domain === undefined || dns.domain === "") return dns;
  const domain = dns.domain.replace(/\.$/, "");
  const cluster = [...(namespace === undefined ? [] : [`${namespace}.svc.${domain}`]), `svc.${domain}`, domain];
  const search = [...cluster, ...(dns.search ?? []).filter((s) => !cluster.includes(s))];
  return { ...dns, search };
}
