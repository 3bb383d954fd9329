// Checking untyped JSON: the one definition every parser of stdin, etcd values and manifests uses.

/** A plain JSON object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
