// /etc/resolv.conf (pure): the node's upstream resolvers for the forwarder, and the stub resolver's search rule
// (glibc's, resolv.conf(5)) so tests and the benchmark can replay what a pod with ndots:5 sends.

import { isIP } from "node:net";

export interface Upstream {
  readonly address: string;
  readonly port: number;
}

export interface ResolvConf {
  /** In file order; glibc uses the first three (MAXNS), so does this parser. */
  readonly nameservers: readonly Upstream[];
  /** The last `search` or `domain` line wins, as in glibc. */
  readonly search: readonly string[];
  readonly ndots: number;
  readonly timeoutSeconds: number;
  readonly attempts: number;
  readonly rotate: boolean;
  /** Lines that were ignored and why (for the caller to log). */
  readonly warnings: readonly string[];
}

const MAX_NAMESERVERS = 3;
const MAX_NDOTS = 15;

export function parseResolvConf(text: string): ResolvConf {
  const nameservers: Upstream[] = [];
  let search: string[] = [];
  let ndots = 1;
  let timeoutSeconds = 5;
  let attempts = 2;
  let rotate = false;
  const warnings: string[] = [];

  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/[#;].*$/, "").trim();
    if (line === "") return;
    const [keyword, ...args] = line.split(/\s+/);
    const where = `line ${i + 1}`;
    switch (keyword) {
      case "nameserver": {
        const address = args[0] ?? "";
        // A link-local IPv6 address may carry its zone ("fe80::1%eth0"); node:dgram takes it as is.
        if (isIP(address.split("%")[0] ?? "") === 0)
          warnings.push(`${where}: nameserver ${JSON.stringify(address)} is not an IP address`);
        else if (nameservers.length >= MAX_NAMESERVERS)
          warnings.push(`${where}: more than ${MAX_NAMESERVERS} nameservers; ${address} is ignored`);
        else nameservers.push({ address, port: 53 });
        break;
      }
      case "search":
        search = args.map((d) => d.replace(/\.$/, "")).filter((d) => d !== "");
        break;
      case "domain":
        search = args[0] === undefined ? [] : [args[0].replace(/\.$/, "")];
        break;
      case "options":
        for (const option of args) {
          const [name, value] = option.split(":");
          const n = value === undefined ? Number.NaN : Number(value);
          if (name === "ndots" && Number.isInteger(n) && n >= 0) ndots = Math.min(n, MAX_NDOTS);
          else if (name === "timeout" && Number.isInteger(n) && n >= 1) timeoutSeconds = Math.min(n, 30);
          else if (name === "attempts" && Number.isInteger(n) && n >= 1) attempts = Math.min(n, 5);
          else if (name === "rotate") rotate = true;
          // Other options (edns0, single-request, use-vc, …) concern the stub, not the forwarder.
        }
        break;
      default:
        warnings.push(`${where}: unknown keyword ${JSON.stringify(keyword)}`);
    }
  });
  return { nameservers, search, ndots, timeoutSeconds, attempts, rotate, warnings };
}

/**
 * The names a stub resolver tries, in order (glibc): a name ending in "." as is; one with at least `ndots` dots as is
 * first, then with each search suffix; otherwise each search suffix first and the bare name last.
 */
export function searchCandidates(name: string, conf: Pick<ResolvConf, "search" | "ndots">): string[] {
  if (name.endsWith(".")) return [name.slice(0, -1)];
  const dots = name.split(".").length - 1;
  const expanded = conf.search.map((suffix) => `${name}.${suffix}`);
  return dots >= conf.ndots ? [name, ...expanded] : [...expanded, name];
}

/** The upstreams to forward to: the nameservers minus our own listeners (forwarding to ourselves would loop). */
export function upstreamsFrom(conf: Pick<ResolvConf, "nameservers">, ownListeners: readonly Upstream[]): Upstream[] {
  return conf.nameservers.filter(
    (ns) => !ownListeners.some((own) => own.port === ns.port && own.address === ns.address),
  );
}
