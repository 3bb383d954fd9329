// `trellis-agent cleanup`: removes everything the agent put on this node — routes (IPv4 and IPv6) with our protocol
// number, our VXLAN devices (flannel.<VNI>, flannel-v6.<VNI>), our firewall tables/chains, the subnet file. The lease in etcd is left alone (`leave` does that).
// Only a vxlan link is ever deleted: a link of another kind with the device's name is not ours and is kept.
import type { FileStore } from "#lib/files.js";
import { VXLAN6_DEVICE_NAME, VXLAN_DEVICE_NAME } from "#lib/names.js";
import type { Kernel } from "#lib/netlink/kernel.js";
import { linkKindName } from "./backends/backend.js";
import { TRELLIS_ROUTE_PROTOCOL } from "./marks.js";
import type { Firewall } from "./firewall.js";

export interface CleanupSummary {
  readonly routes: number;
  readonly devices: readonly string[];
  /** Links with the device's name that are not vxlan devices, kept: "eth0 (veth)". */
  readonly kept: readonly string[];
  readonly firewalls: readonly string[];
  readonly subnetFile: boolean;
}

export async function cleanupNode(deps: {
  kernel: Kernel;
  firewalls: readonly Firewall[];
  files: FileStore;
  subnetFile: string;
  vxlanDevice?: string | undefined;
}): Promise<CleanupSummary> {
  const { kernel } = deps;
  const routes = [
    ...(await kernel.listRoutes({ protocol: TRELLIS_ROUTE_PROTOCOL })),
    ...(await kernel.listRoutes({ protocol: TRELLIS_ROUTE_PROTOCOL, family: 6 })),
  ];
  for (const route of routes) await kernel.deleteRoute({ ...route, protocol: TRELLIS_ROUTE_PROTOCOL });
  const devices: string[] = [];
  const kept: string[] = [];
  for (const link of await kernel.listLinks()) {
    // Our devices: the name given, or every vxlan link named as we name them (flannel.<VNI>); and the IPv6 ones.
    const named =
      VXLAN6_DEVICE_NAME.test(link.name) ||
      (deps.vxlanDevice === undefined ? VXLAN_DEVICE_NAME.test(link.name) : link.name === deps.vxlanDevice);
    if (!named) continue;
    if (link.kind !== "vxlan") {
      kept.push(`${link.name} (${linkKindName(link)})`);
      continue;
    }
    await kernel.deleteLink(link.index);
    devices.push(link.name);
  }
  const firewalls: string[] = [];
  for (const firewall of deps.firewalls) {
    await firewall.remove();
    firewalls.push(firewall.kind);
  }
  const hadFile = (await deps.files.read(deps.subnetFile)) !== undefined;
  await deps.files.remove(deps.subnetFile);
  return { routes: routes.length, devices, kept, firewalls, subnetFile: hadFile };
}
