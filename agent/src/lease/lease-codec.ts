// Lease keys and values exactly as flannel writes them:
//   <prefix>/subnets/172.30.5.0-24 → {"PublicIP":"10.0.0.2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"…"}}
// Pure: the registry adapter uses these to talk to etcd, the watcher to decode what it sees.
import { formatIpv4, isCanonical, isIpv4, isUnicastMac, parseCidr, type Cidr } from "../../../lib/src/ipv4.js";

export interface LeaseAttrs {
  readonly publicIp: string;
  /** "vxlan", "host-gw", or whatever another agent wrote; absent in a bare reservation. */
  readonly backendType?: string;
  readonly vni?: number;
  readonly vtepMac?: string;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

export function subnetsPrefix(etcdPrefix: string): string {
  return `${etcdPrefix}/subnets/`;
}

export function configKey(etcdPrefix: string): string {
  return `${etcdPrefix}/config`;
}

/** "172.30.5.0-24": the subnet in a key. */
export function subnetKeyName(subnet: Cidr): string {
  return `${formatIpv4(subnet.ip)}-${subnet.prefixLen}`;
}

export function subnetKey(etcdPrefix: string, subnet: Cidr): string {
  return subnetsPrefix(etcdPrefix) + subnetKeyName(subnet);
}

/** The subnet named by a key under <prefix>/subnets/, or undefined for anything else. */
export function parseSubnetKey(etcdPrefix: string, key: string): Cidr | undefined {
  const prefix = subnetsPrefix(etcdPrefix);
  if (!key.startsWith(prefix)) return undefined;
  const name = key.slice(prefix.length);
  const dash = name.lastIndexOf("-");
  if (dash < 0) return undefined;
  const cidr = parseCidr(`${name.slice(0, dash)}/${name.slice(dash + 1)}`);
  return cidr !== undefined && isCanonical(cidr) ? cidr : undefined;
}

/** Also accepts the user's "172.30.5.0/24" and the key form "172.30.5.0-24". */
export function parseSubnetArg(text: string): Cidr | undefined {
  const cidr = parseCidr(text.replace(/-(\d+)$/, "/$1"));
  return cidr !== undefined && isCanonical(cidr) ? cidr : undefined;
}

export function encodeLeaseValue(attrs: LeaseAttrs): string {
  const value: Record<string, unknown> = { PublicIP: attrs.publicIp };
  if (attrs.backendType !== undefined) value.BackendType = attrs.backendType;
  if (attrs.vni !== undefined || attrs.vtepMac !== undefined) {
    const data: Record<string, unknown> = {};
    if (attrs.vni !== undefined) data.VNI = attrs.vni;
    if (attrs.vtepMac !== undefined) data.VtepMAC = attrs.vtepMac;
    value.BackendData = data;
  }
  return JSON.stringify(value);
}

/** Decodes a lease value; a value we cannot use comes back with the reason, so callers can skip it and say why. */
export function decodeLeaseValue(text: string): Decoded<LeaseAttrs> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: `value is not valid JSON: ${JSON.stringify(text.slice(0, 60))}` };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    return { ok: false, reason: "value is not a JSON object" };
  const obj = raw as Record<string, unknown>;
  const publicIp = obj.PublicIP;
  if (typeof publicIp !== "string" || !isIpv4(publicIp)) {
    return { ok: false, reason: `PublicIP ${JSON.stringify(publicIp ?? null)} is not an IPv4 address` };
  }
  const backendType = obj.BackendType;
  if (backendType !== undefined && typeof backendType !== "string")
    return { ok: false, reason: "BackendType is not a string" };
  let vni: number | undefined;
  let vtepMac: string | undefined;
  const data = obj.BackendData;
  if (typeof data === "object" && data !== null && !Array.isArray(data)) {
    const d = data as Record<string, unknown>;
    if (d.VNI !== undefined) {
      if (typeof d.VNI !== "number" || !Number.isInteger(d.VNI) || d.VNI < 0 || d.VNI > 16_777_215) {
        return { ok: false, reason: `BackendData.VNI ${JSON.stringify(d.VNI)} is not a VNI` };
      }
      vni = d.VNI;
    }
    if (d.VtepMAC !== undefined) {
      const mac = typeof d.VtepMAC === "string" ? d.VtepMAC.toLowerCase() : undefined;
      if (mac === undefined || !isUnicastMac(mac)) {
        return { ok: false, reason: `BackendData.VtepMAC ${JSON.stringify(d.VtepMAC)} is not a unicast MAC address` };
      }
      vtepMac = mac;
    }
  }
  return {
    ok: true,
    value: {
      publicIp,
      ...(backendType === undefined ? {} : { backendType }),
      ...(vni === undefined ? {} : { vni }),
      ...(vtepMac === undefined ? {} : { vtepMac }),
    },
  };
}

export function sameAttrs(a: LeaseAttrs, b: LeaseAttrs): boolean {
  return a.publicIp === b.publicIp && a.backendType === b.backendType && a.vni === b.vni && a.vtepMac === b.vtepMac;
}
