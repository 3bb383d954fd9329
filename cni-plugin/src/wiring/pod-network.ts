// Pod wiring over the Kernel port: the node's bridge (with the gateway address), a veth pair whose pod end is
// created directly inside the pod's namespace, the pod's address and routes. Every step is idempotent, so a
// repeated ADD converges instead of failing.
import { isNetlinkErrno } from "../../../lib/src/netlink/errors.js";
import type { Kernel, LinkInfo, RouteSpec } from "../../../lib/src/netlink/kernel.js";
import { CniCode, CniError } from "../cni-error.js";

export interface PodNetworkSpec {
  bridge: string;
  /** Fixed, so the bridge never takes over a port's MAC (it would change as pods come and go). */
  bridgeMac: string;
  mtu: number;
  /** The bridge's address and the pod's default gateway. */
  gateway: string;
  prefixLen: number;
  podIp: string;
  hostVeth: string;
  ifname: string;
  netns: string;
  hairpin: boolean;
  /** Routes inside the pod, all via the gateway. */
  routes: readonly { dst: string; prefixLen: number }[];
}

export interface WiredPod {
  bridge: LinkInfo;
  host: LinkInfo;
  pod: LinkInfo;
}

/** The bridge exists, is up and carries gateway/len; other addresses of the network on it are from an old lease. */
export async function ensureBridge(
  host: Kernel,
  spec: PodNetworkSpec,
  inNetwork: (ip: string) => boolean,
): Promise<LinkInfo> {
  let bridge = await host.getLink(spec.bridge);
  if (bridge === undefined) {
    try {
      bridge = await host.createBridge({ name: spec.bridge, mtu: spec.mtu, mac: spec.bridgeMac });
    } catch (error) {
      // Another ADD created it meanwhile.
      if (!isNetlinkErrno(error, "EEXIST")) throw error;
      bridge = await host.getLink(spec.bridge);
    }
  }
  if (bridge?.kind !== "bridge") {
    throw new CniError(
      CniCode.CONFLICT,
      `${spec.bridge} exists and is not a bridge (kind ${bridge?.kind ?? "none"}): set "bridge" in the config to another name`,
    );
  }
  let hasGateway = false;
  for (const address of await host.listAddresses(bridge.index)) {
    if (address.address === spec.gateway && address.prefixLen === spec.prefixLen) hasGateway = true;
    else if (inNetwork(address.address)) await host.deleteAddress(address);
  }
  if (!hasGateway) await host.addAddress({ index: bridge.index, address: spec.gateway, prefixLen: spec.prefixLen });
  if (bridge.mac !== spec.bridgeMac) {
    await host.setLink(bridge.index, { mac: spec.bridgeMac });
    bridge = { ...bridge, mac: spec.bridgeMac };
  }
  if (!bridge.up) await host.setLink(bridge.index, { up: true });
  return bridge;
}

export async function ensureForwarding(host: Kernel): Promise<void> {
  if ((await host.getSysctl("net.ipv4.ip_forward")) !== "1") await host.setSysctl("net.ipv4.ip_forward", "1");
}

/** The veth pair: kept when both ends exist (a repeated ADD), otherwise made anew. */
export async function ensureVeth(
  host: Kernel,
  pod: Kernel,
  spec: PodNetworkSpec,
): Promise<{ host: LinkInfo; pod: LinkInfo }> {
  let hostEnd = await host.getLink(spec.hostVeth);
  let podEnd = await pod.getLink(spec.ifname);
  if (hostEnd !== undefined && (hostEnd.kind !== "veth" || podEnd === undefined)) {
    // A killed ADD's leftover (or the pod end vanished): start over. Deleting one end removes both.
    if (hostEnd.kind === "veth") await host.deleteLink(hostEnd.index);
    else throw new CniError(CniCode.CONFLICT, `${spec.hostVeth} exists on the node and is not a veth`);
    hostEnd = undefined;
    podEnd = await pod.getLink(spec.ifname);
  }
  if (hostEnd === undefined) {
    if (podEnd !== undefined) throw new CniError(CniCode.CONFLICT, `${spec.ifname} already exists in ${spec.netns}`);
    hostEnd = await host.createVeth({
      name: spec.hostVeth,
      peerName: spec.ifname,
      mtu: spec.mtu,
      peerNetns: spec.netns,
    });
    podEnd = await pod.getLink(spec.ifname);
  }
  if (podEnd === undefined)
    throw new CniError(
      CniCode.KERNEL_FAILURE,
      `${spec.ifname} did not appear in ${spec.netns} after creating the veth pair`,
    );
  return { host: hostEnd, pod: podEnd };
}

export async function setupPod(
  host: Kernel,
  pod: Kernel,
  spec: PodNetworkSpec,
  inNetwork: (ip: string) => boolean,
): Promise<WiredPod> {
  const bridge = await ensureBridge(host, spec, inNetwork);
  await ensureForwarding(host);
  const veth = await ensureVeth(host, pod, spec);

  if (veth.host.mtu !== spec.mtu) await host.setLink(veth.host.index, { mtu: spec.mtu });
  if (veth.host.masterIndex !== bridge.index || !veth.host.up)
    await host.setLink(veth.host.index, { masterIndex: bridge.index, up: true });
  // A new bridge port starts with hairpin off.
  if ((veth.host.hairpin ?? false) !== spec.hairpin) await host.setHairpin(veth.host.index, spec.hairpin);

  const podIndex = veth.pod.index;
  if (veth.pod.mtu !== spec.mtu) await pod.setLink(podIndex, { mtu: spec.mtu });
  let hasAddress = false;
  for (const address of await pod.listAddresses(podIndex)) {
    if (address.address === spec.podIp && address.prefixLen === spec.prefixLen) hasAddress = true;
    else await pod.deleteAddress(address); // from an older lease
  }
  if (!hasAddress) await pod.addAddress({ index: podIndex, address: spec.podIp, prefixLen: spec.prefixLen });
  if (!veth.pod.up) await pod.setLink(podIndex, { up: true });
  for (const route of podRoutes(spec, podIndex)) await pod.replaceRoute(route);

  // Names and MACs are all the result needs, and they do not change with the settings above.
  return { bridge, host: veth.host, pod: veth.pod };
}

export function podRoutes(spec: PodNetworkSpec, podIndex: number): RouteSpec[] {
  return spec.routes.map((r) => ({ dst: r.dst, prefixLen: r.prefixLen, gateway: spec.gateway, oif: podIndex }));
}

/** Deletes the host end (and with it the pod end) if it is there and is a veth; true when something was deleted. */
export async function removeHostVeth(host: Kernel, name: string): Promise<boolean> {
  const link = await host.getLink(name);
  if (link?.kind !== "veth") return false;
  await host.deleteLink(link.index);
  return true;
}
