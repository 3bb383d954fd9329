// The VTEP MAC is derived from the public IP and VNI, so it is the same after every restart and reboot without any
// state on disk: peers never see MAC churn (flannel picks a random one per start in etcd mode, #1795).
import { createHash } from "node:crypto";

export function deriveVtepMac(publicIp: string, vni: number): string {
  const digest = createHash("sha256").update(`trellis-vtep:${publicIp}:${vni}`).digest();
  const bytes = [...digest.subarray(0, 6)];
  // Locally administered (bit 1 set), unicast (bit 0 clear).
  bytes[0] = ((bytes[0] ?? 0) & 0xfc) | 0x02;
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}
