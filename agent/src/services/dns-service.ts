// The cluster DNS Service, as Kubernetes names it: kube-system/kube-dns, selectorless (its endpoints are the running
// DNS servers, each publishing itself: self-endpoint.ts), at the service network config's dnsClusterIP.
import type { ServiceSpec } from "./service-spec.js";

export const DNS_SERVICE: Omit<ServiceSpec, "clusterIP"> = {
  namespace: "kube-system",
  name: "kube-dns",
  ports: [
    { name: "dns", port: 53, targetPort: 53, protocol: "UDP" },
    { name: "dns-tcp", port: 53, targetPort: 53, protocol: "TCP" },
  ],
  selector: undefined,
  sessionAffinity: "None",
  affinityTimeoutSeconds: 10_800,
};
