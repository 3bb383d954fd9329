// Names and addresses of a lab. Everything lives in network namespaces named <prefix>-…, on an underlay
// 10.42.0.0/24 (and fd42::/64 for a lab with IPv6) that exists only inside them (never in the root namespace).

export const UNDERLAY_PREFIX_LEN = 24;
export const UNDERLAY_NET = "10.42.0";
/** The underlay namespace's own address: etcd listens here, and it routes to the "outside" address below. */
export const UNDERLAY_GATEWAY = `${UNDERLAY_NET}.1`;
/** The underlay's IPv6 network (a lab with --ipv6 or --ipv6-only): the nodes' PublicIPv6. */
export const UNDERLAY_NET6 = "fd42::";
export const UNDERLAY_PREFIX_LEN6 = 64;
export const UNDERLAY_GATEWAY6 = "fd42::1";
/** The pod networks of the lab. */
export const POD_NETWORK = "172.30.0.0/16";
export const POD_NETWORK6 = "fd30::/56";
/** An address outside the pod network, inside the lab: masquerade tests reach it. */
export const OUTSIDE_IP = "10.99.0.1";
/**
 * The underlay bridge's own MAC, fixed. A Linux bridge without an address set takes the lowest MAC of its ports, so
 * every node that joins may change it; nodes that already cached the old one in ARP then send frames the bridge
 * drops as not its own, and lose etcd for up to the ARP reachable time (~30 s). The CNI plugin pins cni0 likewise.
 */
export const UNDERLAY_BRIDGE_MAC = "02:42:0a:2a:00:01";
export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
export const MAX_NODES = 200;

export interface NodeLayout {
  /** "n1" */
  readonly name: string;
  readonly index: number;
  readonly ns: string;
  /** The node's underlay address (its public IP). */
  readonly ip: string;
  /** Its IPv6 underlay address (PublicIPv6), in a lab with IPv6. */
  readonly ip6: string;
  /** The underlay-side end of the node's veth, in the underlay namespace (<= 15 chars). */
  readonly uplink: string;
  /** Its files: subnet.env, agent log, CNI state. */
  readonly dir: string;
}

export class LabLayout {
  constructor(
    readonly prefix: string,
    readonly stateDir: string,
  ) {
    if (!/^[a-z][a-z0-9]{0,7}$/.test(prefix))
      throw new Error(`lab prefix ${JSON.stringify(prefix)} must be 1-8 lowercase letters/digits`);
  }

  get underlayNs(): string {
    return `${this.prefix}-ul`;
  }

  get stateFile(): string {
    return `${this.stateDir}/state.json`;
  }

  /** Where `scripts/install --root` puts trellis for this lab: the agent and plugin run from there, as on a node. */
  get installRoot(): string {
    return `${this.stateDir}/root`;
  }

  get agentBin(): string {
    return `${this.installRoot}/usr/local/bin/trellis-agent`;
  }

  get cniBinDir(): string {
    return `${this.installRoot}/opt/cni/bin`;
  }

  /** Member m (0-based) of the lab's etcd: all in the underlay namespace, ports 2379/2380 + 10·m. */
  etcdMember(member: number): { name: string; host: string; clientPort: number; peerPort: number; netns: string } {
    return {
      name: `etcd${member + 1}`,
      host: UNDERLAY_GATEWAY,
      clientPort: ETCD_CLIENT_PORT + member * 10,
      peerPort: ETCD_PEER_PORT + member * 10,
      netns: this.underlayNs,
    };
  }

  etcdEndpoint(member = 0): string {
    return `http://${UNDERLAY_GATEWAY}:${ETCD_CLIENT_PORT + member * 10}`;
  }

  node(index: number): NodeLayout {
    if (!Number.isInteger(index) || index < 1 || index > MAX_NODES)
      throw new Error(`node index ${index} outside 1..${MAX_NODES}`);
    return {
      name: `n${index}`,
      index,
      ns: `${this.prefix}-n${index}`,
      ip: `${UNDERLAY_NET}.${10 + index}`,
      ip6: `${UNDERLAY_NET6}${10 + index}`,
      uplink: `${this.prefix}u${index}`,
      dir: `${this.stateDir}/n${index}`,
    };
  }

  /** True for namespaces that belong to this lab. */
  owns(ns: string): boolean {
    return ns === this.underlayNs || ns.startsWith(`${this.prefix}-`);
  }
}
