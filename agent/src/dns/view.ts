// THE input of the DNS server: an immutable snapshot of the cluster that the service registry produces (from an etcd
// watch) and hands to DnsServer.setView() on every change. Plain data, no methods: the server never mutates it and
// builds its lookup index (zone-index.ts) from it once per snapshot.

export interface DnsServicePort {
  /** Named ports get SRV records (an IANA_SVC_NAME: ≤ 15 characters of [a-z0-9-]); unnamed ones do not. */
  readonly name?: string;
  readonly port: number;
  readonly protocol: "TCP" | "UDP";
}

/** A ready endpoint of a Service (a pod IP). Only headless Services publish endpoints in DNS. */
export interface DnsEndpoint {
  readonly ip: string;
  /** Gives `<hostname>.<svc>.<ns>.svc.<zone>` (an RFC 1123 label) and its PTR; otherwise `a-b-c-d.<svc>.…`. */
  readonly hostname?: string;
}

export interface DnsService {
  readonly namespace: string;
  readonly name: string;
  /** A dotted-quad IPv4 address, or "None" for a headless Service. */
  // eslint-disable-next-line @typescript-eslint/no-redundant-type-constituents -- "None" is spelled out as documentation
  readonly clusterIP: string | "None";
  readonly ports: readonly DnsServicePort[];
  readonly endpoints: readonly DnsEndpoint[];
}

export interface DnsPod {
  readonly ip: string;
  readonly namespace: string;
}

/** An immutable snapshot; the server is handed a new one on change. */
export interface DnsView {
  /** The cluster domain, e.g. "cluster.local" (no trailing dot; any case). */
  readonly zone: string;
  readonly services: readonly DnsService[];
  readonly pods: readonly DnsPod[];
}
