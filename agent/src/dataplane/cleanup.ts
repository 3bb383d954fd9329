// `trellis-agent cleanup`: removes everything the agent put on this node — routes with our protocol number, our
// VXLAN device, our firewall table/chains, the subnet file. The lease in etcd is left alone (`leave` does that).
import type { FileStore } from "../../../lib/src/files.js";
import type { Kernel } from "../../../lib/src/netlink/kernel.js";
import { TRELLIS_ROUTE_PROTOCOL } from "./desired.js";
import type { Firewall } from "./firewall.js";

/** Our devices: the name given, or every vxlan link named as we name them (flannel.<VNI>). */
const OUR_DEVICE = /^flannel\.\d+$/;

export interface CleanupSummary {
  readonly routes: number;
  readonly devices: readonly string[];
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
  const routes = await kernel.listRoutes({ protocol: TRELLIS_ROUTE_PROTOCOL });
  for (const route of routes) await kernel.deleteRoute({ ...route, protocol: TRELLIS_ROUTE_PROTOCOL });
  const devices: string[] = [];
  for (const link of await kernel.listLinks()) {
    const ours =
      deps.vxlanDevice === undefined
        ? OUR_DEVICE.test(link.name) && link.kind === "vxlan"
        : link.name === deps.vxlanDevice;
    if (!ours) continue;
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
  return { routes: routes.length, devices, firewalls, subnetFile: hadFile };
}
