// Kubernetes label syntax, shared by the CNI plugin (args.cni.labels of a pod) and the agent (Service selectors).
import { InvalidArgumentError } from "./errors.js";
import { isRecord } from "./records.js";

const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$/;
const LABEL_PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?)$/;

/** [prefix/]name: a DNS subdomain prefix of at most 253 characters, a name of at most 63. */
export function isLabelKey(key: string): boolean {
  const slash = key.indexOf("/");
  if (slash < 0) return LABEL_NAME.test(key);
  const prefix = key.slice(0, slash);
  return prefix.length <= 253 && LABEL_PREFIX.test(prefix) && LABEL_NAME.test(key.slice(slash + 1));
}

export function isLabelValue(value: string): boolean {
  return value.length <= 63 && LABEL_VALUE.test(value);
}

/** A label map (a selector, or a pod's labels) checked as Kubernetes checks it. */
export function checkLabels(value: unknown, field: string): Record<string, string> {
  if (!isRecord(value))
    throw new InvalidArgumentError(field, value, 'must be an object of label keys to values, e.g. {"app":"nginx"}');
  const labels: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (!isLabelKey(key))
      throw new InvalidArgumentError(
        `${field} key`,
        key,
        "must be a label key: [prefix/]name, name of at most 63 letters, digits, '-', '_' and '.'",
      );
    if (typeof v !== "string" || !isLabelValue(v))
      throw new InvalidArgumentError(
        `${field}.${key}`,
        v,
        "must be a label value: at most 63 letters, digits, '-', '_' and '.'",
      );
    labels[key] = v;
  }
  return labels;
}

/** Whether labels satisfy an equality-based selector (every key present with that value). */
export function matchesSelector(
  selector: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>>,
): boolean {
  for (const [key, value] of Object.entries(selector)) if (labels[key] !== value) return false;
  return true;
}
