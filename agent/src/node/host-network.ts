// The node's own interfaces, behind a port: choosing the public IP and underlay interface is pure logic over it.

export interface HostInterface {
  readonly name: string;
  readonly index: number;
  readonly mtu: number;
  readonly up: boolean;
  /** IPv4 addresses (dotted), primary first. */
  readonly addresses: readonly string[];
  /** Global IPv6 addresses (RFC 5952; link-local fe80::/10 left out), primary first. */
  readonly addresses6?: readonly string[] | undefined;
}

export interface HostNetwork {
  interfaces(): Promise<readonly HostInterface[]>;
  /** The interface of the IPv4 default route in the main table, if any. */
  defaultRouteInterface(): Promise<string | undefined>;
}
