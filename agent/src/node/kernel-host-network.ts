// The real HostNetwork, read over netlink from the namespace the agent runs in.
import { openKernel } from "#lib/netlink/rtnetlink-kernel.js";
import type { Kernel } from "#lib/netlink/kernel.js";
import type { HostInterface, HostNetwork } from "./host-network.js";
import { isLinkLocal6 } from "#lib/ipv6.js";

export class KernelHostNetwork implements HostNetwork {
  constructor(private readonly kernel: Kernel) {}

  async interfaces(): Promise<readonly HostInterface[]> {
    const [links, addresses, addresses6] = await Promise.all([
      this.kernel.listLinks(),
      this.kernel.listAddresses(),
      this.kernel.listAddresses(undefined, 6),
    ]);
    return links.map((link) => ({
      name: link.name,
      index: link.index,
      mtu: link.mtu,
      up: link.up,
      addresses: addresses.filter((a) => a.index === link.index).map((a) => a.address),
      addresses6: addresses6.filter((a) => a.index === link.index && !isLinkLocal6(a.address)).map((a) => a.address),
    }));
  }

  async defaultRouteInterface(): Promise<string | undefined> {
    const routes = await this.kernel.listRoutes();
    const route = routes.find((r) => r.dst === "0.0.0.0" && r.prefixLen === 0 && r.oif !== undefined);
    if (route?.oif === undefined) return undefined;
    return (await this.kernel.getLink(route.oif))?.name;
  }
}

/** A HostNetwork over a kernel handle of its own; close() releases the socket. */
export function openHostNetwork(): KernelHostNetwork & { close(): void } {
  const kernel = openKernel();
  return Object.assign(new KernelHostNetwork(kernel), {
    close: () => {
      kernel.close();
    },
  });
}
