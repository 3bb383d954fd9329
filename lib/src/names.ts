// Names, paths and limits that the agent, the CNI plugin, the plugin's native shim and the lab must agree on, and the
// rules that names and MACs follow: defined here once. The shim is C; the build hands it these values
// (scripts/build/bundle.ts), and deploy/render-node-config's defaults are checked against them by a unit test.

/** Where the agent writes the node's lease and CNI plugins (ours and flannel's) read it: flannel's path. */
export const DEFAULT_SUBNET_FILE = "/run/flannel/subnet.env";
/** The agent's CNI service for the plugin's shim (docs/decisions/0011): `--cni-socket` and the conflist's `agentSocket`. */
export const DEFAULT_CNI_SOCKET = "/run/trellis/cni.sock";
/** Where ADD leaves a record of each pod for the node's agent (lib/src/pod-record.ts). */
export const DEFAULT_POD_RECORD_DIR = "/run/trellis/pods";
/** The network config on the plugin's stdin beyond this is refused before parsing (a GC list of 10,000 attachments is ~1 MiB). */
export const MAX_CNI_STDIN_BYTES = 4 * 1024 * 1024;

/** The VXLAN device of a VNI, as flannel names it. */
export function vxlanDeviceName(vni: number): string {
  return `flannel.${vni}`;
}

/** A name vxlanDeviceName gives: the devices `cleanup` looks for when not told a name. */
export const VXLAN_DEVICE_NAME = /^flannel\.\d+$/;

/** The IPv6 VXLAN device of a VNI, as flannel names it (15 bytes at most: VNIs up to 9999). */
export function vxlanDevice6Name(vni: number): string {
  return `flannel-v6.${vni}`;
}

/** A name vxlanDevice6Name gives: `cleanup` removes every vxlan device so named. */
export const VXLAN6_DEVICE_NAME = /^flannel-v6\.\d+$/;

/** The kernel's rule for an interface name: 1–15 bytes, not "." or "..", no "/", ":", whitespace or NUL. */
export function isInterfaceName(name: string): boolean {
  return (
    name.length > 0 &&
    Buffer.byteLength(name) <= 15 &&
    name !== "." &&
    name !== ".." &&
    !/[/:\s]/.test(name) &&
    !name.includes("\0")
  );
}

/** The stricter rule for a device the agent creates by a name it is given (--vxlan-device): letters, digits, ".", "_", "-". */
export function isPlainInterfaceName(name: string): boolean {
  return /^[A-Za-z0-9._-]{1,15}$/.test(name);
}
export const PLAIN_INTERFACE_NAME_RULE = "must be an interface name of 1-15 letters, digits, '.', '_' or '-'";

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** A MAC as every port spells it: six lowercase hex pairs separated by ":". */
export function isMac(text: string): boolean {
  return MAC.test(text);
}

/** A lowercase MAC that is unicast (the lowest bit of the first byte clear). */
export function isUnicastMac(text: string): boolean {
  return isMac(text) && (Number.parseInt(text.slice(0, 2), 16) & 1) === 0;
}

/** An absolute path without ".." parts or NUL, shorter than PATH_MAX. */
export const isAbsolutePath = (p: string): boolean =>
  p.startsWith("/") && p.length < 4096 && !p.includes("\0") && !p.split("/").includes("..");

/**
 * A socket path the shim can use as it reads it — without a JSON decoder, so no quotes, backslashes or newlines — and
 * that fits sockaddr_un (107 bytes and a NUL). The agent's --cni-socket and the conflist's agentSocket follow it.
 */
export function isCniSocketPath(p: string): boolean {
  return isAbsolutePath(p) && Buffer.byteLength(p) <= 107 && !/["\\\n]/.test(p);
}
export const CNI_SOCKET_PATH_RULE =
  'an absolute path of at most 107 bytes without quotes, backslashes or newlines, or "" (off)';
