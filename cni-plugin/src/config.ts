// The network config on stdin → typed options with documented defaults (pure). Unknown fields are ignored, as CNI
// plugins do; known fields of the wrong type or out of range are refused naming the field, the value and what is
// allowed (code 7). Field names follow the reference bridge plugin and flannel's delegate config.
import { CniCode, CniError, invalidConfig } from "./cni-error.js";
import { isValidIfname, type Attachment } from "./env.js";
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
  /** GC: the attachments the runtime still knows; everything else is freed. */
  validAttachments?: Attachment[];
}

export const DEFAULT_SUBNET_FILE = "/run/flannel/subnet.env";
export const DEFAULT_DATA_ROOT = "/var/lib/cni/networks";
export const DEFAULT_AGENT_SOCKET = "/run/trellis/cni.sock";
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** stdin beyond this is refused before parsing (a GC list of 10,000 attachments is ~1 MiB). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Parses stdin's JSON; decode failures are code 6, a missing or unknown version code 7 or 1. */
export function parseConfigJson(stdin: string): Record<string, unknown> {
  if (Buffer.byteLength(stdin) > MAX_CONFIG_BYTES) {
    throw new CniError(CniCode.DECODE_FAILURE, `the network config on stdin is larger than ${MAX_CONFIG_BYTES} bytes`);
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

const isAbsolutePath = (p: string): boolean =>
  p.startsWith("/") && p.length < 4096 && !p.includes("\0") && !p.split("/").includes("..");

/**
 * A path the shim can use as it reads it — without a JSON decoder, so no quotes, backslashes or newlines — and that
 * fits sockaddr_un (107 bytes and a NUL). Shared with the agent's --cni-socket, which must name the same socket.
 */
export const isAgentSocketPath = (p: string): boolean =>
  isAbsolutePath(p) && Buffer.byteLength(p) <= 107 && !/["\\\n]/.test(p);
export const AGENT_SOCKET_ALLOWED =
  'an absolute path of at most 107 bytes without quotes, backslashes or newlines, or "" (off)';

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
  const config: PluginConfig = {
    cniVersion,
    name,
    type,
    subnetFile: stringField(raw, "subnetFile", isAbsolutePath, "an absolute path without '..'") ?? DEFAULT_SUBNET_FILE,
    dataDir:
      stringField(raw, "dataDir", isAbsolutePath, "an absolute path without '..'") ?? `${DEFAULT_DATA_ROOT}/${name}`,
    bridge:
      stringField(raw, "bridge", isValidIfname, "an interface name of 1-15 bytes without '/', ':' or whitespace") ??
      "cni0",
    agentSocket:
      stringField(raw, "agentSocket", (v) => v === "" || isAgentSocketPath(v), AGENT_SOCKET_ALLOWED) ??
      DEFAULT_AGENT_SOCKET,
    hairpinMode: booleanField(raw, "hairpinMode", true),
    isDefaultGateway: booleanField(raw, "isDefaultGateway", true),
    dns: parseDns(raw.dns),
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
  const attachments = raw["cni.dev/valid-attachments"] ?? raw["cni.dev/attachments"];
  if (attachments !== undefined) config.validAttachments = parseAttachments(attachments);
  return config;
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
