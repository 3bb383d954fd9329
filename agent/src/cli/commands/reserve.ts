// `reserve`, `unreserve` and `leave`: administrator operations on leases.
import type { Command } from "commander";
import { InvalidArgumentError } from "#lib/errors.js";
import { formatCidr, isIpv4, type Cidr } from "#lib/ipv4.js";
import { leaveNetwork, readNetworkConfig, reserveSubnet, unreserveSubnet } from "../../lease/admin.js";
import { parseSubnetArg } from "../../lease/lease-codec.js";
import { withRegistry } from "../context.js";
import { detectPublicIp } from "../identity.js";
import { addEtcdOptions, addNodeOptions, type EtcdFlags, type NodeFlags } from "../options.js";

function subnetArg(text: string): Cidr {
  const subnet = parseSubnetArg(text);
  if (subnet === undefined) throw new InvalidArgumentError("<subnet>", text, "must be a subnet such as 172.30.5.0/24");
  return subnet;
}

export function registerLeaseAdmin(program: Command): void {
  addEtcdOptions(
    program
      .command("reserve")
      .description("reserve a subnet (a lease without TTL) for the node with the given public IP")
      .argument("<subnet>", "the subnet, e.g. 172.30.5.0/24")
      .requiredOption("--public-ip <ip>", "public IP of the node the subnet is reserved for"),
  )
    .addHelpText("after", "\nExamples:\n  trellis-agent reserve 172.30.5.0/24 --public-ip 10.0.0.12")
    .action(async (text: string, flags: EtcdFlags & { publicIp: string }) => {
      const subnet = subnetArg(text);
      if (!isIpv4(flags.publicIp))
        throw new InvalidArgumentError("--public-ip", flags.publicIp, "must be an IPv4 address");
      const outcome = await withRegistry(flags, async ({ registry, prefix }) =>
        reserveSubnet(registry, await readNetworkConfig(registry, prefix), subnet, flags.publicIp),
      );
      const verb = {
        created: "reserved",
        converted: "converted the node's lease into a reservation:",
        unchanged: "already reserved:",
      }[outcome];
      process.stdout.write(`${verb} ${formatCidr(subnet)} for ${flags.publicIp}\n`);
    });

  addEtcdOptions(
    program
      .command("unreserve")
      .description("remove a reservation (the subnet becomes free once no node holds it)")
      .argument("<subnet>", "the reserved subnet, e.g. 172.30.5.0/24"),
  )
    .addHelpText("after", "\nExamples:\n  trellis-agent unreserve 172.30.5.0/24")
    .action(async (text: string, flags: EtcdFlags) => {
      const subnet = subnetArg(text);
      await withRegistry(flags, ({ registry }) => unreserveSubnet(registry, subnet));
      process.stdout.write(`unreserved ${formatCidr(subnet)}\n`);
    });

  addNodeOptions(
    addEtcdOptions(
      program.command("leave").description("release this node's lease (decommission); reservations are kept"),
    ),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  trellis-agent leave\n  trellis-agent leave --public-ip 10.0.0.12   # on behalf of a dead node",
    )
    .action(async (flags: EtcdFlags & NodeFlags) => {
      const publicIp = await detectPublicIp(flags);
      const outcome = await withRegistry(flags, ({ registry }) => leaveNetwork(registry, publicIp));
      for (const subnet of outcome.released) process.stdout.write(`released ${formatCidr(subnet)} (${publicIp})\n`);
      for (const subnet of outcome.keptReservations) {
        process.stdout.write(
          `kept reservation ${formatCidr(subnet)} for ${publicIp} (remove it with \`trellis-agent unreserve ${formatCidr(subnet)}\`)\n`,
        );
      }
      if (outcome.released.length === 0 && outcome.keptReservations.length === 0)
        process.stdout.write(`no lease names ${publicIp}\n`);
    });
}
