// The whole registry read once (for the CLI's listings): the catalog built from one consistent listing, and the
// nodes that hold a lease (only their pods are endpoints).
import type { KvStore } from "../kv/kv-store.js";
import { subnetKeyName } from "../lease/lease-codec.js";
import type { SubnetRegistry } from "../lease/registry.js";
import { ServiceCatalog } from "./catalog.js";
import type { RegistryLayout } from "./registry-layout.js";

export interface RegistryView {
  readonly catalog: ServiceCatalog;
  /** Per Service key, metadata.creationTimestamp. */
  readonly createdAt: ReadonlyMap<string, string>;
  readonly leased: ReadonlySet<string>;
}

export async function readRegistry(
  kv: KvStore,
  layout: RegistryLayout,
  subnets: SubnetRegistry,
): Promise<RegistryView> {
  const [listing, leases] = await Promise.all([kv.list(layout.all), subnets.listLeases()]);
  const catalog = new ServiceCatalog(layout);
  const createdAt = new Map<string, string>();
  for (const entry of listing.entries) {
    catalog.apply({ type: "put", entry });
    const kind = layout.classify(entry.key);
    if (kind?.kind !== "service") continue;
    try {
      const stamp = (JSON.parse(entry.value) as { metadata?: { creationTimestamp?: unknown } }).metadata
        ?.creationTimestamp;
      if (typeof stamp === "string") createdAt.set(`${kind.namespace}/${kind.name}`, stamp);
    } catch {
      // the catalog has recorded why it is unusable
    }
  }
  return { catalog, createdAt, leased: new Set(leases.leases.map((lease) => subnetKeyName(lease.subnet))) };
}
