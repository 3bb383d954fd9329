// The VTEP MACs are derived from the public IP and VNI, so they are the same after every restart and reboot without
// any state on disk: peers never see MAC churn (flannel picks a random one per start in etcd mode, #1795). The IPv6
// device's MAC (BackendV6Data.VtepMAC) is derived the same way from the address its tunnel runs over, with a salt of
// its own: never the IPv4 device's (docs/decisions/0009).
import { createHash } from "node:crypto";

function derive(seed: string): string {
  const digest = createHash("sha256").update(seed).digest();
  const bytes = [...digest.subarray(0, 6)];
  // Locally administered (bit 1 set), unicast (bit 0 clear).
  bytes[0] = ((bytes[0] ?? 0) & 0xfc) | 0x02;
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

export function deriveVtepMac(publicIp: string, vni: number): string {
  return derive(`trellis-vtep:${publicIp}:${vni}`);
}

/** The IPv6 device's MAC: from its tunnel's address (the node's PublicIPv6, or its PublicIP over an IPv4 underlay). */
export function deriveVtepMac6(tunnelIp: string, vni: number): string {
  return derive(`trellis-vtep6:${tunnelIp}:${vni}`);
}
