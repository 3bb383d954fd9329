// host-gw: no device and no encapsulation; a route to each peer's subnet via its public IP on the underlay (and, on
// an IPv6 network, to its IPv6 subnet via its PublicIPv6). Every node must be on one L2 network: a peer that is not
// directly reachable is skipped, with the reason.
import type { Backend } from "./backend.js";
import { NO_SUBNET6, peerDst, peerDst6, routeViaUnderlay } from "./backend.js";
import { directlyReachable } from "../underlay.js";

export function hostGwBackend(): Backend {
  const offLink = (ip: string, underlay: string): string =>
    `public IP ${ip} is not on a network directly connected to ${underlay}; host-gw needs every node on one L2 network (use vxlan)`;
  return {
    type: "host-gw",
    device: undefined,
    needsUnderlay6: true,
    plane: (family) => ({ family, device: undefined, address: undefined, mtuOverhead: 0 }),
    peerEntries(family, peer, { underlay }) {
      if (family === 4) {
        const { publicIp } = peer.attrs;
        if (!directlyReachable(underlay, publicIp)) return { skip: offLink(publicIp, underlay.name) };
        return { route: routeViaUnderlay(peerDst(peer), publicIp, underlay) };
      }
      const dst = peerDst6(peer);
      if (dst === undefined) return { skip: NO_SUBNET6 };
      const { publicIpv6 } = peer.attrs;
      if (underlay.localIp6 === undefined)
        return { skip: `this node has no IPv6 address on ${underlay.name}; host-gw routes IPv6 subnets via them` };
      if (publicIpv6 === undefined) return { skip: "lease has no PublicIPv6; host-gw routes its IPv6 subnet via it" };
      if (!directlyReachable(underlay, publicIpv6)) return { skip: offLink(publicIpv6, underlay.name) };
      return { route: routeViaUnderlay(dst, publicIpv6, underlay) };
    },
    leaseAttrs: ({ publicIp, publicIpv6, families }) => ({
      publicIp,
      ...(families.includes(6) && publicIpv6 !== undefined ? { publicIpv6 } : {}),
      backendType: "host-gw",
    }),
  };
}
