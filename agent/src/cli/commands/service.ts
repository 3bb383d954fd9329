// `service create | list | show | delete | config`, and `apply -f`: the service registry, kubectl-like. Every write is
// one etcd transaction (services/service-admin.ts); bad input names the field, the value and what is allowed.
import { readFileSync } from "node:fs";
import { Option, type Command } from "commander";
import { stringify as toYaml } from "yaml";
import { InvalidArgumentError } from "#lib/errors.js";
import { formatCidr, formatIpv4 } from "#lib/ipv4.js";
import { endpointsObject, parseEndpointArg } from "../../services/endpoints-spec.js";
import { manifestServices, readManifest } from "../../services/manifest.js";
import { readRegistry } from "../../services/registry-reader.js";
import {
  applyService,
  createService,
  deleteService,
  getService,
  readServiceNetworkConfig,
  writeServiceNetworkConfig,
  type ServiceAdminDeps,
} from "../../services/service-admin.js";
import { formatServiceTable, serviceRow } from "../../services/service-listing.js";
import { checkNamespace, DEFAULT_NAMESPACE, parseService } from "../../services/service-spec.js";
import { withServiceRegistry, type ServiceRegistryHandle } from "../context.js";
import { addEtcdOptions, type EtcdFlags } from "../options.js";

interface CreateFlags extends EtcdFlags {
  namespace: string;
  port: string[];
  selector: string[];
  endpoint: string[];
  clusterIp?: string;
  sessionAffinity: "None" | "ClientIP";
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** "8000:80/udp", "53/udp", "8000" → a v1 ServicePort (name from --port name=8000:80). */
export function parsePortArg(text: string, count: number): Record<string, unknown> {
  const match = /^(?:([a-z0-9]([-a-z0-9]*[a-z0-9])?)=)?(\d{1,5})(?::(\d{1,5}))?(?:\/(tcp|udp|TCP|UDP))?$/.exec(text);
  if (match === null)
    throw new InvalidArgumentError(
      "--port",
      text,
      "must be [NAME=]PORT[:TARGETPORT][/tcp|udp], e.g. 8000:80 or dns=53/udp",
    );
  const [, name, , port = "", target, protocol] = match;
  if (name === undefined && count > 1)
    throw new InvalidArgumentError("--port", text, `needs a name when a Service has several ports, e.g. http=${port}`);
  return {
    ...(name === undefined ? {} : { name }),
    port: Number(port),
    targetPort: Number(target ?? port),
    protocol: (protocol ?? "tcp").toUpperCase(),
  };
}

function parseSelector(items: readonly string[]): Record<string, string> | undefined {
  if (items.length === 0) return undefined;
  const selector: Record<string, string> = {};
  for (const item of items.flatMap((i) => i.split(","))) {
    const eq = item.indexOf("=");
    if (eq <= 0)
      throw new InvalidArgumentError(
        "--selector",
        item,
        "must be KEY=VALUE, e.g. app=nginx (several: app=nginx,tier=web or repeated)",
      );
    selector[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return selector;
}

function adminDeps(handle: ServiceRegistryHandle): ServiceAdminDeps {
  return { kv: handle.kv, layout: handle.layout, now: () => new Date(), random: Math.random };
}

export function registerService(program: Command): void {
  const service = program
    .command("service")
    .description("Services: cluster IPs the kernel serves on every node (kubectl-like; the registry in etcd)")
    .addHelpText(
      "after",
      "\nExamples:\n  trellis-agent service create nginx-service --port 8000:80 --selector app=nginx\n  trellis-agent service list\n  trellis-agent apply -f lab/examples/nginx.yaml",
    );

  addEtcdOptions(
    service
      .command("create")
      .description("create a Service: a cluster IP (allocated, or --cluster-ip) whose ports lead to the selected pods")
      .argument("<name>", "the Service's name (a DNS-1035 label)")
      .option("-n, --namespace <ns>", "its namespace", DEFAULT_NAMESPACE)
      .option("--port <[name=]port[:target][/proto]>", "a port, e.g. 8000:80 or dns=53/udp (repeatable)", collect, [])
      .option(
        "--selector <key=value>",
        "pods whose labels match are its endpoints (repeatable or comma-separated)",
        collect,
        [],
      )
      .option(
        "--endpoint <ip[:port]>",
        "an explicit endpoint of a Service without --selector (repeatable)",
        collect,
        [],
      )
      .option(
        "--cluster-ip <ip|None>",
        "the address to use (inside the cluster IP range), or None for a headless Service",
      )
      .addOption(
        new Option("--session-affinity <kind>", "ClientIP sends a client to the same endpoint (3 h)")
          .choices(["None", "ClientIP"])
          .default("None"),
      ),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  trellis-agent service create nginx-service --port 8000:80 --selector app=nginx\n  trellis-agent service create db --port 5432 --endpoint 172.30.40.3:5432 --cluster-ip 10.254.0.50\n  trellis-agent service create web --port http=80 --port https=443 --selector app=web --session-affinity ClientIP",
    )
    .action(async (name: string, flags: CreateFlags) => {
      const ports = flags.port.map((p) => parsePortArg(p, flags.port.length));
      const selector = parseSelector(flags.selector);
      const raw = {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name, namespace: flags.namespace },
        spec: {
          ports,
          ...(selector === undefined ? {} : { selector }),
          ...(flags.clusterIp === undefined ? {} : { clusterIP: flags.clusterIp }),
          sessionAffinity: flags.sessionAffinity,
        },
      };
      const spec = parseService(raw);
      const endpoints =
        flags.endpoint.length === 0 ? undefined : endpointsObject(spec, flags.endpoint.map(parseEndpointArg));
      const created = await withServiceRegistry(flags, async (handle) =>
        createService(adminDeps(handle), spec, await readServiceNetworkConfig(handle), endpoints),
      );
      const address = created.clusterIP === "None" ? "None (headless)" : formatIpv4(created.clusterIP);
      process.stdout.write(`service/${spec.name} created in ${spec.namespace}: cluster IP ${address}\n`);
    });

  addEtcdOptions(
    service
      .command("list")
      .description("every Service with its cluster IP, ports and endpoints")
      .option("-n, --namespace <ns>", "only this namespace")
      .addOption(new Option("-o, --output <format>", "output format").choices(["table", "json"]).default("table")),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  trellis-agent service list\n  trellis-agent service list -n kube-system -o json",
    )
    .action(async (flags: EtcdFlags & { namespace?: string; output: "table" | "json" }) => {
      if (flags.namespace !== undefined) checkNamespace(flags.namespace, "--namespace");
      const view = await withServiceRegistry(flags, (handle) =>
        readRegistry(handle.kv, handle.layout, handle.registry),
      );
      const rows = [...view.catalog.serviceKeys()]
        .filter((key) => flags.namespace === undefined || key.startsWith(`${flags.namespace}/`))
        .sort()
        .flatMap((key) => {
          const resolved = view.catalog.resolve(key, (node) => view.leased.has(node));
          return resolved === undefined ? [] : [serviceRow(resolved, view.createdAt.get(key))];
        });
      if (flags.output === "json")
        process.stdout.write(
          `${JSON.stringify({ services: rows, invalid: Object.fromEntries(view.catalog.problems) }, null, 2)}\n`,
        );
      else process.stdout.write(formatServiceTable(rows, Date.now()));
      for (const [key, reason] of view.catalog.problems) process.stderr.write(`warning: ${key} skipped: ${reason}\n`);
    });

  addEtcdOptions(
    service
      .command("show")
      .description("a Service as stored (a v1 object), with its endpoints")
      .argument("<name>", "the Service")
      .option("-n, --namespace <ns>", "its namespace", DEFAULT_NAMESPACE)
      .addOption(new Option("-o, --output <format>", "output format").choices(["yaml", "json"]).default("yaml")),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  trellis-agent service show nginx-service\n  trellis-agent service show kube-dns -n kube-system -o json",
    )
    .action(async (name: string, flags: EtcdFlags & { namespace: string; output: "yaml" | "json" }) => {
      const shown = await withServiceRegistry(flags, async (handle) => {
        const stored = await getService(handle, checkNamespace(flags.namespace, "--namespace"), name);
        if (stored === undefined)
          throw new InvalidArgumentError(
            "<name>",
            `${flags.namespace}/${name}`,
            "names no Service (see `trellis-agent service list`)",
          );
        const view = await readRegistry(handle.kv, handle.layout, handle.registry);
        const resolved = view.catalog.resolve(`${flags.namespace}/${name}`, (node) => view.leased.has(node));
        return {
          ...stored.object,
          status: { endpoints: resolved === undefined ? [] : serviceRow(resolved, undefined).endpoints },
        };
      });
      process.stdout.write(flags.output === "json" ? `${JSON.stringify(shown, null, 2)}\n` : toYaml(shown));
    });

  addEtcdOptions(
    service
      .command("delete")
      .description("delete a Service (its rules go from every node within moments)")
      .argument("<name>", "the Service")
      .option("-n, --namespace <ns>", "its namespace", DEFAULT_NAMESPACE),
  )
    .addHelpText("after", "\nExamples:\n  trellis-agent service delete nginx-service")
    .action(async (name: string, flags: EtcdFlags & { namespace: string }) => {
      await withServiceRegistry(flags, (handle) =>
        deleteService(handle, checkNamespace(flags.namespace, "--namespace"), name),
      );
      process.stdout.write(`service/${name} deleted from ${flags.namespace}\n`);
    });

  const config = service
    .command("config")
    .description("the service network: cluster IP range, cluster domain, the DNS Service's address");
  addEtcdOptions(
    config
      .command("set")
      .option("--cluster-ip-range <cidr>", "cluster IPs are allocated from it", "10.254.0.0/16")
      .option("--cluster-domain <domain>", "the DNS zone of Services and pods", "cluster.local")
      .option("--dns-cluster-ip <ip>", "the cluster DNS Service's address (default: the range's tenth)"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  trellis-agent service config set --cluster-ip-range 10.254.0.0/16 --cluster-domain cluster.local",
    )
    .action(async (flags: EtcdFlags & { clusterIpRange: string; clusterDomain: string; dnsClusterIp?: string }) => {
      const raw = {
        clusterIPRange: flags.clusterIpRange,
        clusterDomain: flags.clusterDomain,
        ...(flags.dnsClusterIp === undefined ? {} : { dnsClusterIP: flags.dnsClusterIp }),
      };
      const written = await withServiceRegistry(flags, (handle) => writeServiceNetworkConfig(handle, raw));
      process.stdout.write(
        `${JSON.stringify({ clusterIPRange: formatCidr(written.clusterIPRange), clusterDomain: written.clusterDomain, dnsClusterIP: formatIpv4(written.dnsClusterIP) }, null, 2)}\n`,
      );
    });
  addEtcdOptions(config.command("show").description("print the service network config (defaults filled in)")).action(
    async (flags: EtcdFlags) => {
      const current = await withServiceRegistry(flags, (handle) => readServiceNetworkConfig(handle));
      process.stdout.write(
        `${JSON.stringify({ clusterIPRange: formatCidr(current.clusterIPRange), clusterDomain: current.clusterDomain, dnsClusterIP: formatIpv4(current.dnsClusterIP) }, null, 2)}\n`,
      );
    },
  );
}

export function registerApply(program: Command): void {
  addEtcdOptions(
    program
      .command("apply")
      .description(
        "create or update the v1 Services of a manifest (YAML or JSON, several documents); other kinds are refused",
      )
      .requiredOption("-f, --filename <file>", "the manifest (- for stdin)")
      .option("-n, --namespace <ns>", "for objects that name none"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  trellis-agent apply -f nginx-service.yaml\n  kubectl create service clusterip web --tcp=80 --dry-run=client -o yaml | trellis-agent apply -f -",
    )
    .action(async (flags: EtcdFlags & { filename: string; namespace?: string }) => {
      let text: string;
      try {
        text = readFileSync(flags.filename === "-" ? 0 : flags.filename, "utf8");
      } catch (error) {
        throw new InvalidArgumentError(
          "--filename",
          flags.filename,
          `must be a readable file (${(error as NodeJS.ErrnoException).code ?? "unreadable"})`,
        );
      }
      const namespace = flags.namespace === undefined ? undefined : checkNamespace(flags.namespace, "--namespace");
      // Every document is validated before the first is written.
      const specs = manifestServices(readManifest(text, flags.filename), flags.filename, namespace);
      await withServiceRegistry(flags, async (handle) => {
        const network = await readServiceNetworkConfig(handle);
        for (const spec of specs) {
          const { outcome, service } = await applyService(adminDeps(handle), spec, network);
          const address = service.clusterIP === "None" ? "None" : formatIpv4(service.clusterIP);
          process.stdout.write(`service/${spec.name} ${outcome} (${spec.namespace}, cluster IP ${address})\n`);
        }
      });
    });
}
