// Which host veth is an attachment's: proven by our mark on the link, or — for a pod wired before marks existed —
// by its peer being the pod's interface in the pod's namespace. Never assumed from a name (host-veth-name.ts).
import type { Kernel, LinkInfo } from "#lib/netlink/kernel.js";
import { CniCode, CniError } from "../cni-error.js";
import type { Attachment } from "../env.js";
import { HOST_VETH_CANDIDATES, hostVethMark, hostVethName } from "./host-veth-name.js";

/** The pod side, when its namespace can be looked at. */
export interface PodSide {
  readonly kernel: Kernel;
  readonly ifname: string;
}

/** Both ends name each other (IFLA_LINK): ifindexes are per namespace, so one direction alone could be chance. */
export function arePeers(hostEnd: LinkInfo, podEnd: LinkInfo): boolean {
  return (
    hostEnd.kind === "veth" &&
    podEnd.kind === "veth" &&
    hostEnd.peerIndex === podEnd.index &&
    podEnd.peerIndex === hostEnd.index
  );
}

/** The pod's end of `hostEnd` in the pod's namespace, if that is where its peer is. */
export async function podEndOf(hostEnd: LinkInfo, pod: PodSide): Promise<LinkInfo | undefined> {
  const podEnd = await pod.kernel.getLink(pod.ifname);
  return podEnd !== undefined && arePeers(hostEnd, podEnd) ? podEnd : undefined;
}

/**
 * The attachment's host veth, or undefined when none is provably its. Usually the first name is it; a link dump is
 * needed only when that name belongs to someone else (ADD then took another candidate) or does not exist.
 */
export async function findHostVeth(
  host: Kernel,
  network: string,
  attachment: Attachment,
  pod?: PodSide,
): Promise<LinkInfo | undefined> {
  const mark = hostVethMark(network, attachment);
  const first = await host.getLink(hostVethName(attachment));
  if (first?.kind === "veth") {
    if (first.alias === mark) return first;
    if (first.alias === undefined && pod !== undefined && (await podEndOf(first, pod)) !== undefined) return first;
  }
  return (await host.listLinks()).find((link) => link.kind === "veth" && link.alias === mark);
}

/** A name for a new host end that no link has: the first free candidate (never someone else's link renamed or deleted). */
export async function freeHostVethName(host: Kernel, attachment: Attachment): Promise<string> {
  for (let n = 0; n < HOST_VETH_CANDIDATES; n += 1) {
    const name = hostVethName(attachment, n);
    if ((await host.getLink(name)) === undefined) return name;
  }
  throw new CniError(
    CniCode.CONFLICT,
    `no free host veth name for ${attachment.containerId}/${attachment.ifname}: all ${HOST_VETH_CANDIDATES} candidates (${hostVethName(attachment)} …) are taken by other links`,
  );
}

/** Deletes the attachment's host veth (the pod end goes with it) when one is provably its; true if deleted. */
export async function removeHostVeth(
  host: Kernel,
  network: string,
  attachment: Attachment,
  pod?: PodSide,
): Promise<boolean> {
  const link = await findHostVeth(host, network, attachment, pod);
  if (link === undefined) return false;
  await host.deleteLink(link.index);
  return true;
}
