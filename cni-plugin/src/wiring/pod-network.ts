// Pod wiring over the Kernel port: the node's bridge (with the gateway address of each IP family), a veth pair whose
// pod end is created directly inside the pod's namespace, the pod's addresses and routes. Every step is idempotent,
// so a repeated ADD converges instead of failing; nothing that is not provably ours is deleted (ownership.ts).
import { isNetlinkErrno } from "#lib/netlink/errors.js";
import type { IpFamily, Kernel, LinkInfo, RouteSpec } from "#lib/netlink/kernel.js";
import { CniCode, CniError } from "../cni-error.js";
import { arePeers } from "./ownership.js";

export interface PodNetworkSpec {
  bridge: string;
  /** Fixed, so the bridge never takes over a port's MAC (it would change as pods come and go). */
  bridgeMac: string;
  mtu: number;
  /** One per IP family of the lease, IPv4 first. */
  addresses: readonly PodAddressSpec[];
  /** The host end's name: an existing one of this attachment, or a free candidate. */
  hostVeth: string;
  /** The alias that marks the host end as this attachment's. */
  mark: string;
  ifname: string;
  /** The pod's namespace as the runtime named it (CNI_NETNS): for the result and messages. */
  netns: string;
  /** A MAC the runtime asked for (CNI_ARGS MAC, args.cni.mac, the "mac" capability); else the kernel picks one. */
  mac?: string;
  hairpin: boolean;
}

/** A pod's address of one family, the bridge's gateway address of that family and the pod's routes via it. */
export interface PodAddressSpec {
  family: IpFamily;
  /** The bridge's address and the pod's gateway, with the subnet's prefix length. */
  gateway: string;
  prefixLen: number;
  podIp: string;
  /** Routes inside the pod, all via the gateway; dst as the kernel reports it ("0.0.0.0", "::"). */
  routes: readonly { dst: string; prefixLen: number }[];
}

/** A sysctl name part for an interface: "." inside a name is written "/" (sysctl(8) notation). */
function sysctlIf(name: string): string {
  return name.replaceAll(".", "/");
}

/** Sets a sysctl only when it differs (a read is cheaper than a write, and most are already right). */
async function ensureSysctl(kernel: Kernel, name: string, value: string): Promise<void> {
  if ((await kernel.getSysctl(name)) !== value) await kernel.setSysctl(name, value);
}

/** IPv6 on for these interfaces (a namespace may default to off), or a clear error when the kernel has no IPv6. */
async function enableIpv6(kernel: Kernel, names: readonly string[], where: string): Promise<void> {
  try {
    for (const name of names) await ensureSysctl(kernel, `net.ipv6.conf.${sysctlIf(name)}.disable_ipv6`, "0");
  } catch (error) {
    if ((error as { code?: unknown }).code === "NOT_FOUND")
      throw new CniError(
        CniCode.KERNEL_FAILURE,
        `IPv6 is not available in ${where} (net.ipv6 sysctls missing: a kernel booted with ipv6.disable=1?), but this node's lease has an IPv6 subnet`,
        "",
        { cause: error },
      );
    throw error;
  }
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
  for (const family of spec.addresses) {
    if (family.family === 6) {
      await enableIpv6(host, [spec.bridge], `the node's namespace`);
      // No duplicate address detection on the bridge: it starts when the first port brings carrier, and until its
      // link-local address passes, the node cannot solicit its pods' addresses — a new node's first pod would get
      // no IPv6 traffic for a second or two.
      await ensureSysctl(host, `net.ipv6.conf.${sysctlIf(spec.bridge)}.accept_dad`, "0");
    }
    let hasGateway = false;
    for (const address of await host.listAddresses(bridge.index, family.family)) {
      if (address.address === family.gateway && address.prefixLen === family.prefixLen) hasGateway = true;
      else if (inNetwork(address.address)) await host.deleteAddress(address);
    }
    if (!hasGateway)
      await host.addAddress({ index: bridge.index, address: family.gateway, prefixLen: family.prefixLen });
  }
  if (bridge.mac !== spec.bridgeMac) {
    await host.setLink(bridge.index, { mac: spec.bridgeMac });
    bridge = { ...bridge, mac: spec.bridgeMac };
  }
  if (!bridge.up) await host.setLink(bridge.index, { up: true });
  return bridge;
}

/** Forwarding on for each family the pod gets, as the reference bridge plugin does for its gateway. */
export async function ensureForwarding(host: Kernel, spec: PodNetworkSpec): Promise<void> {
  for (const { family } of spec.addresses)
    await ensureSysctl(host, family === 4 ? "net.ipv4.ip_forward" : "net.ipv6.conf.all.forwarding", "1");
}

/**
 * The veth pair. `existing` is the attachment's host end found before (ownership.ts): kept when its peer is the pod's
 * interface (a repeated ADD), refused when the attachment is wired into another namespace. Otherwise a new pair.
 */
export async function ensureVeth(
  host: Kernel,
  pod: Kernel,
  spec: PodNetworkSpec,
  existing: LinkInfo | undefined,
): Promise<{ host: LinkInfo; pod: LinkInfo }> {
  const podEnd = await pod.getLink(spec.ifname);
  if (existing !== undefined) {
    if (podEnd === undefined || !arePeers(existing, podEnd)) {
      throw new CniError(
        CniCode.CONFLICT,
        `the attachment is already wired into another network namespace (host end ${existing.name}), not ${spec.netns}: DEL it first`,
      );
    }
    // Wired before marks existed, proven ours by its peer: mark it now.
    if (existing.alias !== spec.mark) await host.setLink(existing.index, { alias: spec.mark });
    return { host: existing, pod: podEnd };
  }
  if (podEnd !== undefined) throw new CniError(CniCode.CONFLICT, `${spec.ifname} already exists in ${spec.netns}`);
  const hostEnd = await host.createVeth({
    name: spec.hostVeth,
    peerName: spec.ifname,
    mtu: spec.mtu,
    alias: spec.mark,
    peerNetns: pod.netns ?? spec.netns,
    ...(spec.mac === undefined ? {} : { peerMac: spec.mac }),
  });
  const created = await pod.getLink(spec.ifname);
  if (created === undefined)
    throw new CniError(
      CniCode.KERNEL_FAILURE,
      `${spec.ifname} did not appear in ${spec.netns} after creating the veth pair`,
    );
  return { host: hostEnd, pod: created };
}

export async function setupPod(
  host: Kernel,
  pod: Kernel,
  spec: PodNetworkSpec,
  inNetwork: (ip: string) => boolean,
  existing: LinkInfo | undefined,
): Promise<WiredPod> {
  const bridge = await ensureBridge(host, spec, inNetwork);
  await ensureForwarding(host, spec);
  const veth = await ensureVeth(host, pod, spec, existing);

  if (veth.host.mtu !== spec.mtu) await host.setLink(veth.host.index, { mtu: spec.mtu });
  if (veth.host.masterIndex !== bridge.index || !veth.host.up)
    await host.setLink(veth.host.index, { masterIndex: bridge.index, up: true });
  // A new bridge port starts with hairpin off.
  if ((veth.host.hairpin ?? false) !== spec.hairpin) await host.setHairpin(veth.host.index, spec.hairpin);

  const podIndex = veth.pod.index;
  if (veth.pod.mtu !== spec.mtu) await pod.setLink(podIndex, { mtu: spec.mtu });
  // A veth takes a new MAC while up; a repeated ADD with another requested MAC changes it in place.
  let podLink = veth.pod;
  if (spec.mac !== undefined && veth.pod.mac !== spec.mac) {
    await pod.setLink(podIndex, { mac: spec.mac });
    podLink = { ...veth.pod, mac: spec.mac };
  }
  for (const family of spec.addresses) {
    if (family.family === 6) {
      // Usable at once: IPv6 on (the namespace may default to off), and no duplicate address detection on the
      // interface — hairpin mode echoes the kernel's own neighbour solicitations, which would fail its link-local.
      await enableIpv6(pod, ["all", spec.ifname], spec.netns);
      await ensureSysctl(pod, `net.ipv6.conf.${sysctlIf(spec.ifname)}.accept_dad`, "0");
    }
    let hasAddress = false;
    for (const address of await pod.listAddresses(podIndex, family.family)) {
      if (address.address === family.podIp && address.prefixLen === family.prefixLen) hasAddress = true;
      else if (!isLinkLocal(address.address)) await pod.deleteAddress(address); // from an older lease
    }
    if (!hasAddress) await pod.addAddress({ index: podIndex, address: family.podIp, prefixLen: family.prefixLen });
  }
  if (!veth.pod.up) await pod.setLink(podIndex, { up: true });
  for (const route of podRoutes(spec, podIndex)) await pod.replaceRoute(route);

  // Names and MACs are all the result needs.
  return { bridge, host: veth.host, pod: podLink };
}

export function podRoutes(spec: PodNetworkSpec, podIndex: number): RouteSpec[] {
  return spec.addresses.flatMap((family) =>
    family.routes.map((r) => ({ dst: r.dst, prefixLen: r.prefixLen, gateway: family.gateway, oif: podIndex })),
  );
}

/** fe80::/10: the kernel's own on every IPv6 interface, never an address of a lease. */
function isLinkLocal(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}
