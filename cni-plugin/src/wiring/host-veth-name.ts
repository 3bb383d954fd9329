// The host end of a pod's veth: its name and the mark that proves it is ours (pure).
// Names are "veth" + 8 hex digits of a hash of the attachment, like the reference bridge plugin's (which flannel's
// CNI plugin delegates to, on the same cni0) — so a name alone proves nothing. Every host end we create carries
// IFLA_IFALIAS "trellis:<network>:<containerID>/<ifname>": DEL and GC delete only links with their attachment's
// mark (GC of one network never touches another's pods), and a
// name taken by someone else's link makes ADD take the next candidate instead of deleting it. FNV-1a rather than a
// crypto hash: node:crypto is not worth loading on every pod operation for a 32-bit name.
import type { Attachment } from "../env.js";

const MARK_PREFIX = "trellis:";
/** IFALIASZ: 256 bytes with the NUL. */
const MAX_ALIAS_BYTES = 255;
/** How many names ADD tries before giving up (each a different hash of the same attachment). */
export const HOST_VETH_CANDIDATES = 16;

function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, "utf8")) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

const hex8 = (n: number): string => n.toString(16).padStart(8, "0");

/** The n-th name for the attachment's host end; the 0th is what every trellis version has used. */
export function hostVethName(attachment: Attachment, n = 0): string {
  const key = `${attachment.containerId}\0${attachment.ifname}`;
  return `veth${hex8(fnv1a32(n === 0 ? key : `${key}\0${n}`))}`;
}

/** Whose marks start with this: the network's (its name has no ":"). */
function networkPrefix(network: string): string {
  return `${MARK_PREFIX}${network}:`;
}

/**
 * The alias that marks a host end as this attachment's on this network. Container IDs of up to 256 characters do
 * not always fit in an alias: those are marked by two independent 32-bit hashes instead of the text.
 */
export function hostVethMark(network: string, attachment: Attachment): string {
  const plain = `${networkPrefix(network)}${attachment.containerId}/${attachment.ifname}`;
  if (Buffer.byteLength(plain) <= MAX_ALIAS_BYTES) return plain;
  const key = `${attachment.containerId}\0${attachment.ifname}`;
  return `${networkPrefix(network)}#${hex8(fnv1a32(key))}${hex8(fnv1a32(`${key}\0mark`))}`;
}

/** True for an alias an ADD of this network wrote (whatever the attachment). */
export function isNetworkMark(network: string, alias: string | undefined): boolean {
  return alias?.startsWith(networkPrefix(network)) === true;
}
