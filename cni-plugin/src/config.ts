// The network config on stdin → typed options with documented defaults (pure). Unknown fields are ignored, as CNI
// plugins do; known fields of the wrong type or out of range are refused naming the field, the value and what is
// allowed (code 7). Field names follow the reference bridge plugin and flannel's delegate config.
import { isLabelKey, isLabelValue } from "#lib/labels.js";
import {
  CNI_SOCKET_PATH_RULE,
  DEFAULT_CNI_SOCKET,
  DEFAULT_POD_RECORD_DIR,
  DEFAULT_SUBNET_FILE,
  isAbsolutePath,
  isCniSocketPath,
  isInterfaceName,
  MAX_CNI_STDIN_BYTES,
} from "#lib/names.js";
import { isRecord } from "#lib/records.js";
import { CniCode, CniError, invalidConfig } from "./cni-error.js";
import type { Attachment } from "./env.js";
import type { Dns } from "./result.js";
import { isSupportedVersion, SUPPORTED_VERSIONS, type CniVersion } from "./versions.js";

export interface PluginConfig {
  cniVersion: CniVersion;
  /** The network name; also names the default data dir. */
  name: string;
  type: string;
  /** @default "/run/flannel/subnet.env" — written by the agent. */
  subnetFile: string;
  /** @default "/var/lib/cni/networks/<name>" — the IPAM store. */
  dataDir: string;
  /** @default "cni0" */
  bridge: string;
  /**
   * @default "/run/trellis/cni.sock" — the agent's CNI service, used by the plugin's native shim (decision 0011);
   * "" runs the plugin standalone always. Read by the shim; validated here so that a bad value is reported.
   */
  agentSocket: string;
  /** Overrides FLANNEL_MTU for the bridge and both veth ends. */
  mtu?: number;
  /** @default true — a pod can reach itself through a Service that lands on it. */
  hairpinMode: boolean;
  /** @default true — default route via the gateway; false: only a route to the whole network via the gateway. */
  isDefaultGateway: boolean;
  /** Passed through into the result. */
  dns: Dns;
  /** Present in CHECK/DEL (0.4.0+) and in ADD when chained after another plugin. */
  prevResult?: unknown;
  /**
   * GC: the attachments the runtime still knows; everything else is freed. libcni sends null when there are none
   * and `cnitool gc` sends no list at all: both mean the empty list, as for the reference plugins.
   */
  validAttachments: Attachment[];
  /** Static IPs asked for in the config: args.cni.ips, then runtimeConfig.ips (the "ips" capability). */
  requestedIps: Requested[];
  /** A MAC asked for in the config: runtimeConfig.mac (the "mac" capability) over args.cni.mac. */
  requestedMac?: Requested;
  /** The pod's labels from args.cni.labels (CNI conventions: [{key, value}]), for the pod record. */
  labels: Record<string, string>;
  /**
   * @default "/run/trellis/pods" — where ADD records the pod (namespace, name, labels, address) for the node's agent,
   * which publishes it as a Service endpoint (lib/src/pod-record.ts); "" records nothing.
   */
  podRecordDir: string;
}

/** A value the runtime asked for, with where it came from (named in errors). */
export interface Requested {
  readonly value: string;
  readonly from: string;
}

const DEFAULT_DATA_ROOT = "/var/lib/cni/networks";
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Parses stdin's JSON; decode failures are code 6, a missing or unknown version code 7 or 1. */
export function parseConfigJson(stdin: string): Record<string, unknown> {
  if (Buffer.byteLength(stdin) > MAX_CNI_STDIN_BYTES) {
    throw new CniError(
      CniCode.DECODE_FAILURE,
      `the network config on stdin is larger than ${MAX_CNI_STDIN_BYTES} bytes`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(stdin);
  } catch (error) {
    throw new CniError(
      CniCode.DECODE_FAILURE,
      `the network config on stdin is not JSON: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (!isRecord(value)) throw new CniError(CniCode.DECODE_FAILURE, "the network config on stdin must be a JSON object");
  return value;
}

/** The version the runtime asked for, checked before anything else so that errors can answer in it. */
export function configVersion(raw: Record<string, unknown>): CniVersion {
  const version = raw.cniVersion;
  if (version === undefined) throw invalidConfig("cniVersion", version, `one of ${SUPPORTED_VERSIONS.join(", ")}`);
  if (!isSupportedVersion(version)) {
    const shown = typeof version === "string" ? JSON.stringify(version.slice(0, 100)) : typeof version;
    throw new CniError(
      CniCode.INCOMPATIBLE_VERSION,
      `cniVersion ${shown} is not supported: one of ${SUPPORTED_VERSIONS.join(", ")}`,
    );
  }
  return version;
}

function stringField(
  raw: Record<string, unknown>,
  field: string,
  check: (v: string) => boolean,
  allowed: string,
): string | undefined {
  const value = raw[field];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !check(value)) throw invalidConfig(field, value, allowed);
  return value;
}

function booleanField(raw: Record<string, unknown>, field: string, fallback: boolean): boolean {
  const value = raw[field];
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw invalidConfig(field, value, "true or false");
  return value;
}

export function parseConfig(raw: Record<string, unknown>): PluginConfig {
  const cniVersion = configVersion(raw);
  const name = stringField(
    raw,
    "name",
    (v) => v.length <= 200 && NETWORK_NAME.test(v),
    'letters, digits, "_", "." and "-", at most 200',
  );
  if (name === undefined) throw invalidConfig("name", undefined, "the network name (a string)");
  const type = stringField(raw, "type", (v) => v.length > 0 && v.length <= 200, "the plugin type, a string");
  if (type === undefined) throw invalidConfig("type", undefined, 'the plugin type, "trellis"');
  const requests = parseRequests(raw);
  const config: PluginConfig = {
    cniVersion,
    name,
    type,
    subnetFile: stringField(raw, "subnetFile", isAbsolutePath, "an absolute path without '..'") ?? DEFAULT_SUBNET_FILE,
    dataDir:
      stringField(raw, "dataDir", isAbsolutePath, "an absolute path without '..'") ?? `${DEFAULT_DATA_ROOT}/${name}`,
    bridge:
      stringField(raw, "bridge", isInterfaceName, "an interface name of 1-15 bytes without '/', ':' or whitespace") ??
      "cni0",
    agentSocket:
      stringField(raw, "agentSocket", (v) => v === "" || isCniSocketPath(v), CNI_SOCKET_PATH_RULE) ??
      DEFAULT_CNI_SOCKET,
    hairpinMode: booleanField(raw, "hairpinMode", true),
    isDefaultGateway: booleanField(raw, "isDefaultGateway", true),
    dns: parseDns(raw.dns),
    validAttachments: parseAttachments(raw["cni.dev/valid-attachments"] ?? raw["cni.dev/attachments"] ?? null),
    requestedIps: requests.ips,
    labels: requests.labels,
    podRecordDir:
      stringField(
        raw,
        "podRecordDir",
        (v) => v === "" || isAbsolutePath(v),
        "an absolute path without '..', or \"\" (off)",
      ) ?? DEFAULT_POD_RECORD_DIR,
  };
  const mtu = raw.mtu;
  if (mtu !== undefined) {
    if (typeof mtu !== "number" || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535)
      throw invalidConfig("mtu", mtu, "an integer between 68 and 65535");
    config.mtu = mtu;
  }
  // flannel's delegate config: we always own the gateway and never masquerade per pod (the agent does, per node).
  if (!booleanField(raw, "isGateway", true)) {
    throw new CniError(
      CniCode.UNSUPPORTED_FIELD,
      "config field isGateway false is not supported: the bridge always carries the gateway",
      "isGateway",
    );
  }
  if (booleanField(raw, "ipMasq", false)) {
    throw new CniError(
      CniCode.UNSUPPORTED_FIELD,
      "config field ipMasq true is not supported: the agent masquerades per node",
      "ipMasq",
    );
  }
  if (raw.prevResult !== undefined) config.prevResult = raw.prevResult;
  if (requests.mac !== undefined) config.requestedMac = requests.mac;
  return config;
}

/** The one object field `key` of raw, or undefined; anything but an object there is refused. */
function objectField(raw: Record<string, unknown>, key: string, field: string): Record<string, unknown> | undefined {
  const value = raw[key];
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) throw invalidConfig(field, value, "an object");
  return value;
}

/** args.cni.labels as the conventions spell it, [{"key":"app","value":"web"}], into a label map. */
function parseLabels(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  const field = "args.cni.labels";
  if (!Array.isArray(value)) throw invalidConfig(field, value, 'an array of {"key", "value"} label pairs');
  const labels: Record<string, string> = {};
  for (const [n, item] of value.entries()) {
    if (
      !isRecord(item) ||
      typeof item.key !== "string" ||
      typeof item.value !== "string" ||
      !isLabelKey(item.key) ||
      !isLabelValue(item.value)
    ) {
      throw invalidConfig(`${field}[${n}]`, item, "a {key, value} pair of a Kubernetes label key and value");
    }
    labels[item.key] = item.value;
  }
  return labels;
}

function parseRequests(raw: Record<string, unknown>): {
  ips: Requested[];
  mac: Requested | undefined;
  labels: Record<string, string>;
} {
  const cniArgs = objectField(objectField(raw, "args", "args") ?? {}, "cni", "args.cni");
  const runtime = objectField(raw, "runtimeConfig", "runtimeConfig");
  const ips = (source: Record<string, unknown> | undefined, field: string): Requested[] => {
    const list = source?.ips;
    if (list === undefined || list === null) return [];
    if (!Array.isArray(list) || !list.every((ip) => typeof ip === "string" && ip.length <= 64))
      throw invalidConfig(field, list, 'an array of IP addresses such as ["172.30.5.9"]');
    return list.map((value: string, n) => ({ value, from: `${field}[${n}]` }));
  };
  const mac = (source: Record<string, unknown> | undefined, field: string): Requested | undefined => {
    const value = source?.mac;
    if (value === undefined || value === null || value === "") return undefined;
    if (typeof value !== "string") throw invalidConfig(field, value, 'a MAC address such as "02:00:00:00:00:42"');
    return { value, from: field };
  };
  return {
    ips: [...ips(cniArgs, "args.cni.ips"), ...ips(runtime, "runtimeConfig.ips")],
    mac: mac(runtime, "runtimeConfig.mac") ?? mac(cniArgs, "args.cni.mac"),
    labels: parseLabels(cniArgs?.labels),
  };
}

function parseDns(value: unknown): Dns {
  if (value === undefined) return {};
  const allowed = "an object with nameservers, domain, search, options";
  if (!isRecord(value)) throw invalidConfig("dns", value, allowed);
  const dns: Dns = {};
  const strings = (key: "nameservers" | "search" | "options"): void => {
    const list = value[key];
    if (list === undefined) return;
    if (!Array.isArray(list) || !list.every((s) => typeof s === "string"))
      throw invalidConfig(`dns.${key}`, list, "an array of strings");
    dns[key] = list.map(String);
  };
  strings("nameservers");
  strings("search");
  strings("options");
  if (value.domain !== undefined) {
    if (typeof value.domain !== "string") throw invalidConfig("dns.domain", value.domain, "a string");
    dns.domain = value.domain;
  }
  return dns;
}

function parseAttachments(value: unknown): Attachment[] {
  const field = "cni.dev/valid-attachments";
  if (value === null) return [];
  if (!Array.isArray(value)) throw invalidConfig(field, value, "an array of {containerID, ifname}");
  return value.map((item: unknown, n) => {
    if (!isRecord(item) || typeof item.containerID !== "string" || typeof item.ifname !== "string") {
      throw invalidConfig(`${field}[${n}]`, item, "an object {containerID, ifname} of strings");
    }
    // Only compared with reservations, never used as a path: any string of a sane length will do.
    if (item.containerID.length > 1024 || item.ifname.length > 64)
      throw invalidConfig(
        `${field}[${n}]`,
        item,
        "a container ID of at most 1024 and an ifname of at most 64 characters",
      );
    return { containerId: item.containerID, ifname: item.ifname };
  });
}
