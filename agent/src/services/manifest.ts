// Kubernetes manifests for `trellis-agent apply -f` (pure): YAML or JSON, several documents, a `kind: List` of items.
// Only v1 Services are taken; any other kind is refused by name before anything is written.
import { parseAllDocuments } from "yaml";
import { InvalidArgumentError } from "#lib/errors.js";
import { isRecord } from "#lib/records.js";
import { parseService, type ServiceSpec } from "./service-spec.js";

export interface ManifestItem {
  /** "Service", "Deployment", … */
  readonly kind: string;
  readonly name: string;
  readonly object: Record<string, unknown>;
}

/** Every object of the manifest, in order; a document that is not a Kubernetes object is refused. */
export function readManifest(text: string, source: string): ManifestItem[] {
  const items: ManifestItem[] = [];
  for (const [n, doc] of parseAllDocuments(text).entries()) {
    if (doc.errors.length > 0)
      throw new InvalidArgumentError(
        `${source} document ${n + 1}`,
        doc.errors[0]?.message ?? "",
        "must be valid YAML or JSON",
      );
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue; // an empty document (a trailing ---)
    const objects =
      isRecord(value) && value.kind === "List" && Array.isArray(value.items) ? (value.items as unknown[]) : [value];
    for (const object of objects) {
      if (!isRecord(object) || typeof object.kind !== "string")
        throw new InvalidArgumentError(
          `${source} document ${n + 1}`,
          object,
          "must be a Kubernetes object with apiVersion, kind and metadata",
        );
      const metadata = isRecord(object.metadata) ? object.metadata : {};
      items.push({ kind: object.kind, name: typeof metadata.name === "string" ? metadata.name : "(no name)", object });
    }
  }
  return items;
}

/** The Services of a manifest, all validated; another kind is refused naming it (nothing is applied then). */
export function manifestServices(items: readonly ManifestItem[], source: string, namespace?: string): ServiceSpec[] {
  for (const item of items) {
    if (item.kind !== "Service")
      throw new InvalidArgumentError(
        `${source}: ${item.kind}/${item.name}`,
        item.kind,
        "trellis-agent apply takes v1 Service objects only",
      );
  }
  return items.map((item) => {
    const metadata = isRecord(item.object.metadata) ? item.object.metadata : {};
    const object =
      namespace === undefined || metadata.namespace !== undefined
        ? item.object
        : { ...item.object, metadata: { ...metadata, namespace } };
    return parseService(object);
  });
}
