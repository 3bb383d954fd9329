// A libcni-like runtime for tests, the lab and benchmarks: invokes a conflist's plugins exactly as containerd/CRI-O
// do through libcni — name/cniVersion injected into each plugin's config, runtimeConfig from the capabilities a
// plugin declares, prevResult chained through ADD and taken from the result cache for CHECK and DEL (0.4.0+), the
// result cached on disk after ADD and removed after DEL, DEL after a failed ADD (as the runtimes do), GC with
// cni.dev/valid-attachments, STATUS. Each plugin runs as `ip netns exec <node-ns> <binary>` when given a node.
import { mkdir, readFile, readdir, rm, stat, writeFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { runStatus } from "./exec.js";

export interface ConfList {
  cniVersion: string;
  name: string;
  plugins: Record<string, unknown>[];
  disableCheck?: boolean;
}

export interface Attachment {
  containerId: string;
  ifname: string;
}

export interface RuntimeConf extends Attachment {
  /** A path such as /run/netns/<pod>. */
  netns: string;
  /** Extra CNI_ARGS pairs (IgnoreUnknown=1 is always sent, as kubelet's runtimes do). */
  args?: readonly (readonly [string, string])[];
  /** Capability arguments, e.g. { portMappings: [{hostPort, containerPort, protocol}] }. */
  capabilityArgs?: Record<string, unknown>;
  /** The pod's labels, passed as the conventions' args.cni.labels (a Kubernetes runtime shim would). */
  labels?: Readonly<Record<string, string>>;
}

export interface CniRuntimeOptions {
  /** Where plugin binaries are looked up, in order (also passed as CNI_PATH). */
  binDirs: readonly string[];
  /** The result cache (libcni: /var/lib/cni). */
  cacheDir: string;
  /** Run plugins inside this network namespace (the node's), via `ip netns exec`. */
  nodeNetns?: string;
  timeoutMs?: number;
}

/** A plugin's failure: the spec's error object from its stdout, with the plugin and command that failed. */
export class CniPluginError extends Error {
  constructor(
    readonly plugin: string,
    readonly command: string,
    readonly code: number,
    readonly msg: string,
    readonly exitCode: number,
    readonly stderr: string,
  ) {
    super(
      `${plugin} ${command} failed with code ${code}: ${msg}${stderr.trim() === "" ? "" : ` (stderr: ${stderr.trim().slice(0, 500)})`}`,
    );
    this.name = "CniPluginError";
  }
}

type Json = Record<string, unknown>;

const versionAtLeast = (version: string, minimum: string): boolean => {
  const a = version.split(".").map(Number);
  const b = minimum.split(".").map(Number);
  for (let i = 0; i < 3; i += 1) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
};

export class CniRuntime {
  constructor(readonly options: CniRuntimeOptions) {}

  /** ADD through the chain; on failure DEL is run for the whole list (best effort) and the error rethrown. */
  async add(list: ConfList, rt: RuntimeConf): Promise<Json> {
    let prevResult: Json | undefined;
    try {
      for (const plugin of list.plugins) prevResult = await this.invoke("ADD", list, plugin, rt, prevResult);
    } catch (error) {
      await this.del(list, rt).catch(() => undefined);
      throw error;
    }
    const result = prevResult ?? {};
    await this.writeCache(list, rt, result);
    return result;
  }

  /** DEL in reverse order with the cached result as prevResult (0.4.0+); the cache entry is removed afterwards. */
  async del(
    list: ConfList,
    rt: Attachment & {
      netns?: string;
      args?: RuntimeConf["args"];
      capabilityArgs?: Json;
      labels?: RuntimeConf["labels"];
    },
  ): Promise<void> {
    const cached = await this.cachedResult(list, rt);
    const prev = versionAtLeast(list.cniVersion, "0.4.0") ? cached : undefined;
    for (const plugin of [...list.plugins].reverse()) await this.invoke("DEL", list, plugin, rt, prev);
    await rm(this.cachePath(list, rt), { force: true });
  }

  /** CHECK (0.4.0+) in order, each with the cached ADD result. */
  async check(list: ConfList, rt: RuntimeConf): Promise<void> {
    if (!versionAtLeast(list.cniVersion, "0.4.0"))
      throw new Error(`CHECK needs cniVersion 0.4.0+, the list has ${list.cniVersion}`);
    if (list.disableCheck === true) return;
    const cached = await this.cachedResult(list, rt);
    if (cached === undefined)
      throw new Error(`no cached result for ${rt.containerId}/${rt.ifname}: CHECK needs a prior ADD`);
    for (const plugin of list.plugins) await this.invoke("CHECK", list, plugin, rt, cached);
  }

  /** GC (1.1.0): every plugin gets the attachments to keep; cache entries of the others are dropped. */
  async gc(list: ConfList, valid: readonly Attachment[]): Promise<void> {
    const attachments = valid.map((a) => ({ containerID: a.containerId, ifname: a.ifname }));
    for (const plugin of list.plugins)
      await this.invoke("GC", list, { ...plugin, "cni.dev/valid-attachments": attachments }, undefined, undefined);
    const keep = new Set(valid.map((a) => this.cacheName(list, a)));
    for (const name of await readdir(this.resultsDir()).catch(() => [])) {
      if (name.startsWith(`${list.name}-`) && !keep.has(name)) await rm(join(this.resultsDir(), name), { force: true });
    }
  }

  /** STATUS (1.1.0) of every plugin; throws the first failure. */
  async status(list: ConfList): Promise<void> {
    for (const plugin of list.plugins) await this.invoke("STATUS", list, plugin, undefined, undefined);
  }

  async cachedResult(list: ConfList, a: Attachment): Promise<Json | undefined> {
    try {
      const entry = JSON.parse(await readFile(this.cachePath(list, a), "utf8")) as { result?: Json };
      return entry.result;
    } catch {
      return undefined;
    }
  }

  /** The attachments with a cached result for this network (what the runtime believes exists). */
  async cachedAttachments(list: ConfList): Promise<Attachment[]> {
    const out: Attachment[] = [];
    for (const name of await readdir(this.resultsDir()).catch(() => [])) {
      if (!name.startsWith(`${list.name}-`)) continue;
      try {
        const entry = JSON.parse(await readFile(join(this.resultsDir(), name), "utf8")) as {
          containerId: string;
          ifName: string;
        };
        out.push({ containerId: entry.containerId, ifname: entry.ifName });
      } catch {
        // a torn entry is not an attachment
      }
    }
    return out;
  }

  /** libcni's buildOneConfig: the plugin's own config plus name, cniVersion, runtimeConfig and prevResult. */
  static pluginConfig(
    list: ConfList,
    plugin: Json,
    rt: { capabilityArgs?: Json; labels?: Readonly<Record<string, string>> | undefined } | undefined,
    prevResult: Json | undefined,
  ): Json {
    const config: Json = { ...plugin, name: list.name, cniVersion: list.cniVersion };
    if (rt?.labels !== undefined)
      config.args = { cni: { labels: Object.entries(rt.labels).map(([key, value]) => ({ key, value })) } };
    const capabilities = plugin.capabilities as Record<string, boolean> | undefined;
    if (capabilities !== undefined && rt?.capabilityArgs !== undefined) {
      const runtimeConfig: Json = {};
      for (const [capability, enabled] of Object.entries(capabilities)) {
        if (enabled && rt.capabilityArgs[capability] !== undefined)
          runtimeConfig[capability] = rt.capabilityArgs[capability];
      }
      if (Object.keys(runtimeConfig).length > 0) config.runtimeConfig = runtimeConfig;
    }
    if (prevResult !== undefined) config.prevResult = prevResult;
    return config;
  }

  private async invoke(
    command: string,
    list: ConfList,
    plugin: Json,
    rt:
      | (Attachment & {
          netns?: string;
          args?: RuntimeConf["args"];
          capabilityArgs?: Json;
          labels?: RuntimeConf["labels"];
        })
      | undefined,
    prevResult: Json | undefined,
  ): Promise<Json | undefined> {
    const type = typeof plugin.type === "string" ? plugin.type : "";
    const binary = await this.findPlugin(type);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      CNI_COMMAND: command,
      CNI_PATH: this.options.binDirs.join(":"),
    };
    if (rt !== undefined) {
      env.CNI_CONTAINERID = rt.containerId;
      env.CNI_IFNAME = rt.ifname;
      if (rt.netns !== undefined) env.CNI_NETNS = rt.netns;
      env.CNI_ARGS = [["IgnoreUnknown", "1"] as const, ...(rt.args ?? [])].map(([k, v]) => `${k}=${v}`).join(";");
    }
    const stdin = JSON.stringify(CniRuntime.pluginConfig(list, plugin, rt, prevResult));
    const [file, args] =
      this.options.nodeNetns === undefined ? [binary, []] : ["ip", ["netns", "exec", this.options.nodeNetns, binary]];
    const out = await runStatus(file, args, { input: stdin, env, timeoutMs: this.options.timeoutMs ?? 60_000 });
    if (out.code !== 0) {
      let parsed: { code?: unknown; msg?: unknown } = {};
      try {
        parsed = JSON.parse(out.stdout) as typeof parsed;
      } catch {
        // not the spec's error object: report the raw output
      }
      const code = typeof parsed.code === "number" ? parsed.code : -1;
      const msg = typeof parsed.msg === "string" ? parsed.msg : out.stdout.trim().slice(0, 500);
      throw new CniPluginError(type, command, code, msg, out.code, out.stderr);
    }
    if (command !== "ADD") return undefined;
    try {
      return JSON.parse(out.stdout) as Json;
    } catch {
      throw new CniPluginError(type, command, -1, `the result is not JSON: ${out.stdout.slice(0, 300)}`, 0, out.stderr);
    }
  }

  private async findPlugin(type: string): Promise<string> {
    if (!/^[A-Za-z0-9_.-]+$/.test(type)) throw new Error(`plugin type ${JSON.stringify(type)} is not a file name`);
    for (const dir of this.options.binDirs) {
      const path = join(dir, type);
      if (
        await stat(path).then(
          (s) => s.isFile(),
          () => false,
        )
      )
        return path;
    }
    throw new Error(`plugin ${type} not found in ${this.options.binDirs.join(":")}`);
  }

  private resultsDir(): string {
    return join(this.options.cacheDir, "results");
  }

  private cacheName(list: ConfList, a: Attachment): string {
    return `${list.name}-${a.containerId}-${a.ifname}`;
  }

  private cachePath(list: ConfList, a: Attachment): string {
    return join(this.resultsDir(), this.cacheName(list, a));
  }

  private async writeCache(list: ConfList, rt: RuntimeConf, result: Json): Promise<void> {
    await mkdir(this.resultsDir(), { recursive: true });
    const entry = {
      kind: "cniCacheV1",
      containerId: rt.containerId,
      ifName: rt.ifname,
      networkName: list.name,
      result,
    };
    const path = this.cachePath(list, rt);
    await writeFile(`${path}.tmp`, JSON.stringify(entry));
    await rename(`${path}.tmp`, path);
  }
}
