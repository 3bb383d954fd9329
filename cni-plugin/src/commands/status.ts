// STATUS (1.1.0): ready when the agent has written a valid subnet.env (code 50 otherwise), and warns (code 51)
// when reservations of an older lease remain: those pods' addresses are no longer routed to this node.
import { formatCidr } from "#lib/ipv4.js";
import { formatCidr6 } from "#lib/ipv6.js";
import { CniCode, CniError } from "../cni-error.js";
import { isCurrent } from "../ipam/ipam.js";
import { readLease } from "../subnet.js";
import type { CommandContext, CommandOutput } from "./context.js";

export function status({ config, deps }: CommandContext): Promise<CommandOutput> {
  let lease;
  try {
    lease = readLease(deps, config.subnetFile);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return Promise.reject(new CniError(CniCode.NOT_AVAILABLE, `not ready: ${reason}`));
  }
  const stale = deps
    .store(config.dataDir)
    .list()
    .filter((r) => !isCurrent(lease, r.ip));
  if (stale.length > 0) {
    const subnets = [
      ...(lease.ipv4 === undefined ? [] : [formatCidr(lease.ipv4.subnet)]),
      ...(lease.ipv6 === undefined ? [] : [formatCidr6(lease.ipv6.subnet)]),
    ];
    return Promise.reject(
      new CniError(
        CniCode.LIMITED_CONNECTIVITY,
        `the node's subnet is now ${subnets.join(" and ")}; ${stale.length} pod address(es) of an older lease remain`,
      ),
    );
  }
  return Promise.resolve("");
}
