// What the runtime asked for a pod — static IPs and a MAC — from every place the CNI conventions define (pure).
//   IP:  CNI_ARGS IP= (one address or a comma-separated one per family, as podman sends them), args.cni.ips,
//        runtimeConfig.ips (the "ips" capability): all of them, as host-local reads them; those of one family must
//        agree, since a pod gets one address per family here.
//   MAC: CNI_ARGS MAC=, overridden by args.cni.mac, overridden by runtimeConfig.mac (the "mac" capability), as the
//        reference bridge plugin does.
// Checking an IP against the node's lease happens at allocation (ipam.ts), which knows what is taken.
import { parseIpv4 } from "#lib/ipv4.js";
import { formatIpv6, parseIpv6 } from "#lib/ipv6.js";
import { isUnicastMac } from "#lib/names.js";
import { familyOf, type IpFamily } from "#lib/netlink/kernel.js";
import { CniCode, CniError, invalidConfig, invalidEnv } from "./cni-error.js";
import type { PluginConfig, Requested } from "./config.js";
import type { Invocation } from "./env.js";
import type { Address } from "./ipam/store.js";

export interface RequestedIp {
  /** IPv6 when the text has a ":". */
  readonly family: IpFamily;
  /** The address as the store keys it (IPv6 in RFC 5952 form), or undefined for text that is no address of its family. */
  readonly ip: Address | undefined;
  readonly text: string;
  readonly from: string;
}

export interface Requests {
  /** At most one per family. */
  readonly ips: readonly RequestedIp[];
  /** Lowercase. */
  readonly mac?: string;
}

/** "172.30.5.9" or "172.30.5.9/24": the prefix, as host-local treats it, is not part of the request. */
function requestedIp(request: Requested): RequestedIp {
  const address = request.value.split("/")[0] ?? "";
  const prefix = request.value.slice(address.length + 1);
  const looksLikeIp = /^[0-9a-fA-F:.]+$/.test(address) && (prefix === "" || /^\d{1,3}$/.test(prefix));
  if (!looksLikeIp) {
    const allowed = 'an IP address such as "172.30.5.9" (a "/prefix" is ignored)';
    throw request.from.startsWith("CNI_ARGS")
      ? invalidEnv("CNI_ARGS IP", request.value, allowed)
      : invalidConfig(request.from, request.value, allowed);
  }
  const family = familyOf(address);
  if (family === 4) return { family, ip: parseIpv4(address), text: address, from: request.from };
  const ip = parseIpv6(address);
  return { family, ip: ip === undefined ? undefined : formatIpv6(ip), text: address, from: request.from };
}

function checkedMac(request: Requested): string {
  const mac = request.value.toLowerCase();
  if (isUnicastMac(mac) && mac !== "00:00:00:00:00:00") return mac;
  const allowed = 'a unicast MAC address such as "02:00:00:00:00:42"';
  throw request.from.startsWith("CNI_ARGS")
    ? invalidEnv("CNI_ARGS MAC", request.value, allowed)
    : invalidConfig(request.from, request.value, allowed);
}

export function requestsOf(invocation: Invocation, config: PluginConfig): Requests {
  const envIp = invocation.args.get("IP");
  const envMac = invocation.args.get("MAC");
  const ips = [
    ...(envIp === undefined || envIp === "" ? [] : envIp.split(",").map((value) => ({ value, from: "CNI_ARGS IP" }))),
    ...config.requestedIps,
  ].map(requestedIp);
  const chosen: RequestedIp[] = [];
  for (const family of [4, 6] as const) {
    const same = ips.filter((r) => r.family === family);
    // Equal addresses agree however they are written (fd30::5 and FD30:0::5); text that is no address by its text.
    const distinct = [...new Map(same.map((r) => [r.ip ?? r.text, r])).values()];
    if (distinct.length > 1) {
      throw new CniError(
        CniCode.INVALID_CONFIG,
        `requested IPs disagree: ${distinct.map((r) => `${r.text} (${r.from})`).join(", ")}; a pod gets one IPv${family} address on this network`,
      );
    }
    chosen.push(...distinct);
  }
  const macRequest =
    config.requestedMac ??
    (envMac === undefined || envMac === "" ? undefined : { value: envMac, from: "CNI_ARGS MAC" });
  return { ips: chosen, ...(macRequest === undefined ? {} : { mac: checkedMac(macRequest) }) };
}
