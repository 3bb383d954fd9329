// Domain-name helpers (pure). Names are handled as dns-packet gives them: labels joined by ".", no trailing dot,
// "." for the root. Matching is ASCII case-insensitive (RFC 4343); anything else never matches a name of ours.

import { parseIpv4 } from "#lib/ipv4.js";

const PRINTABLE_ASCII = /^[\x21-\x7e]*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// IANA_SVC_NAME as Kubernetes validates port names: ≤ 15 characters, a letter, no leading/trailing/double hyphen.
const SVC_NAME = /^(?=.{1,15}$)(?=.*[a-z])[a-z0-9]+(-[a-z0-9]+)*$/;

/**
 * The lookup key of a name: ASCII lower case without a trailing dot; undefined for a name with a byte outside
 * printable ASCII (String.toLowerCase would fold e.g. the Kelvin sign into "k" and match a name it is not).
 */
export function lookupKey(name: string): string | undefined {
  if (!PRINTABLE_ASCII.test(name)) return undefined;
  const trimmed = name.length > 1 && name.endsWith(".") ? name.slice(0, -1) : name;
  return trimmed.toLowerCase();
}

/** True when `key` is `zone` or below it (both lookup keys). */
export function isInZone(key: string, zone: string): boolean {
  return (
    key === zone ||
    (key.length > zone.length && key.endsWith(zone) && key.charCodeAt(key.length - zone.length - 1) === 46)
  );
}

export function isDnsLabel(text: string): boolean {
  return DNS_LABEL.test(text);
}

export function isServicePortName(text: string): boolean {
  return SVC_NAME.test(text);
}

/** "10.1.2.3" → "10-1-2-3" (the pod and headless-endpoint label form of the specification). */
export function dashedIpv4(ip: string): string {
  return ip.replaceAll(".", "-");
}

/** "10.1.2.3" → "3.2.1.10.in-addr.arpa". */
export function reverseIpv4Name(ip: string): string {
  return `${ip.split(".").reverse().join(".")}.in-addr.arpa`;
}

export const REVERSE_V4_SUFFIX = ".in-addr.arpa";

/** A strict dotted quad in canonical form (no leading zeros), or undefined. */
export function canonicalIpv4(text: string): string | undefined {
  return parseIpv4(text) === undefined ? undefined : text;
}
