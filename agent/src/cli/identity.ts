// Who "this node" is for one-shot commands (status marker, leave): --public-ip, else the underlay's address,
// and the subnet from subnet.env.
import { InvalidArgumentError } from "#lib/errors.js";
import { canonical, isIpv4, type Cidr } from "#lib/ipv4.js";
import { nodeFileStore } from "#lib/files.js";
import { parseSubnetEnv } from "#lib/subnet-env.js";
import { chooseUnderlay } from "../node/public-ip.js";
import type { NodeFlags } from "./options.js";

/** --public-ip as given (it may name another, dead node), else the underlay's address. */
export async function detectPublicIp(flags: NodeFlags): Promise<string> {
  if (flags.publicIp !== undefined) {
    if (!isIpv4(flags.publicIp))
      throw new InvalidArgumentError("--public-ip", flags.publicIp, "must be an IPv4 address");
    return flags.publicIp;
  }
  const { openHostNetwork } = await import("../node/kernel-host-network.js");
  const host = openHostNetwork();
  try {
    const underlay = chooseUnderlay(
      { iface: flags.iface, publicIp: flags.publicIp },
      await host.interfaces(),
      await host.defaultRouteInterface(),
    );
    return underlay.publicIp;
  } finally {
    host.close();
  }
}

export async function subnetFromFile(path: string): Promise<Cidr | undefined> {
  const text = await nodeFileStore.read(path).catch(() => undefined);
  if (text === undefined) return undefined;
  const parsed = parseSubnetEnv(text);
  return parsed.ok && parsed.value.subnet !== undefined ? canonical(parsed.value.subnet) : undefined;
}
