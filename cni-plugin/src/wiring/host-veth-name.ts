// The host end's name is derived from the attachment, so DEL and GC find it without any state: "veth" + 8 hex
// digits, like the reference bridge plugin's names. FNV-1a rather than a crypto hash: node:crypto is not worth
// loading on every pod operation for a 32-bit name.
import type { Attachment } from "../env.js";

export const HOST_VETH_PATTERN = /^veth[0-9a-f]{8}$/;

export function hostVethName(attachment: Attachment): string {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(`${attachment.containerId}\0${attachment.ifname}`, "utf8")) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return `veth${hash.toString(16).padStart(8, "0")}`;
}
