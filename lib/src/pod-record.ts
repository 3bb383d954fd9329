// A pod as the CNI plugin records it for the agent, and the agent for the registry: who the runtime said it is
// (CNI_ARGS K8S_POD_NAMESPACE / K8S_POD_NAME, args.cni.labels) and the address it got. One JSON shape for both: a
// file the plugin writes at ADD (also when it runs standalone, while the agent is down) and the etcd value the agent
// publishes from it (docs/operations.md, "Pods as endpoints").
import { InvalidArgumentError } from "./errors.js";
import { formatIpv4, parseIpv4 } from "./ipv4.js";
import { checkLabels } from "./labels.js";
import { isRecord } from "./records.js";

export interface PodRecord {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ip: number;
  readonly containerId: string;
  readonly ifname: string;
}

const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function isPodNamespace(text: string): boolean {
  return DNS_1123_LABEL.test(text);
}

export function isPodName(text: string): boolean {
  return DNS_1123_SUBDOMAIN.test(text);
}

/**
 * The file (in the plugin's record directory) of an attachment of a network: ":" is in none of a network name, a
 * container ID or an ifname, so the name is unambiguous and one network's GC finds its own records only.
 */
export function podRecordFile(network: string, attachment: { containerId: string; ifname: string }): string {
  return `${network}:${attachment.containerId}:${attachment.ifname}.json`;
}

export function encodePodRecord(pod: PodRecord): string {
  return JSON.stringify({
    namespace: pod.namespace,
    name: pod.name,
    labels: pod.labels,
    ip: formatIpv4(pod.ip),
    containerID: pod.containerId,
    ifname: pod.ifname,
  });
}

export function decodePodRecord(text: string): PodRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError("pod record", text.slice(0, 60), "must be JSON");
  }
  if (!isRecord(raw)) throw new InvalidArgumentError("pod record", raw, "must be an object");
  if (typeof raw.namespace !== "string" || !isPodNamespace(raw.namespace))
    throw new InvalidArgumentError("namespace", raw.namespace, "must be a DNS-1123 label");
  if (typeof raw.name !== "string" || !isPodName(raw.name))
    throw new InvalidArgumentError("name", raw.name, "must be a DNS-1123 subdomain");
  const ip = typeof raw.ip === "string" ? parseIpv4(raw.ip) : undefined;
  if (ip === undefined) throw new InvalidArgumentError("ip", raw.ip, "must be an IPv4 address");
  if (typeof raw.containerID !== "string" || typeof raw.ifname !== "string")
    throw new InvalidArgumentError("containerID/ifname", raw, "must be strings");
  return {
    namespace: raw.namespace,
    name: raw.name,
    labels: checkLabels(raw.labels ?? {}, "labels"),
    ip,
    containerId: raw.containerID,
    ifname: raw.ifname,
  };
}

/** A pod's identity from the runtime (CNI_ARGS K8S_POD_*), or undefined when it gave none: no record, not an endpoint. */
export function podIdentity(args: ReadonlyMap<string, string>): { namespace: string; name: string } | undefined {
  const namespace = args.get("K8S_POD_NAMESPACE");
  const name = args.get("K8S_POD_NAME");
  if (namespace === undefined || name === undefined || !isPodNamespace(namespace) || !isPodName(name)) return undefined;
  return { namespace, name };
}
