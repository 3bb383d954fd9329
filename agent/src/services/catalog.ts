// The service registry in memory: Services, explicit endpoints and pods, indexed so that a change tells which
// Services it touches (O(changes) work for the proxy) and a Service's backends are found without a scan (pure).
// Values that cannot be decoded are kept out, with the reason, so one bad key never stops the others.
import type { KvChange, KvEntry } from "../kv/kv-store.js";
import { parseEndpointsObject } from "./endpoints-spec.js";
import { matchesSelector } from "#lib/labels.js";
import { decodePodRecord, type PodRecord } from "#lib/pod-record.js";
import {
  defaultServiceNetworkConfig,
  validateServiceNetworkConfig,
  type RegistryLayout,
  type ServiceNetworkConfig,
} from "./registry-layout.js";
import { parseService, type ServicePort, type ServiceSpec } from "./service-spec.js";

export interface NodePod extends PodRecord {
  /** The node's lease key ("172.30.5.0-24"): its pods are endpoints only while it holds that lease. */
  readonly node: string;
}

export interface Backend {
  readonly ip: number;
  readonly port: number;
}

export interface ResolvedService {
  /** "namespace/name" */
  readonly key: string;
  readonly spec: ServiceSpec & { readonly clusterIP: number | "None" };
  /** Per Service port (same index as spec.ports), sorted by address. */
  readonly backends: readonly (readonly Backend[])[];
  /** Every distinct endpoint address, sorted (a headless Service's A records). */
  readonly endpointIps: readonly number[];
}

export const serviceKey = (namespace: string, name: string): string => `${namespace}/${name}`;
const term = (namespace: string, key: string, value: string): string => `${namespace}\0${key}=${value}`;

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key);
  if (set === undefined) map.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  set?.delete(value);
  if (set?.size === 0) map.delete(key);
}

export class ServiceCatalog {
  config: ServiceNetworkConfig = defaultServiceNetworkConfig();
  private readonly services = new Map<string, ServiceSpec & { clusterIP: number | "None" }>();
  private readonly explicit = new Map<string, unknown>();
  /** Service key → owner → Endpoints object (endpoint slices). */
  private readonly slices = new Map<string, Map<string, unknown>>();
  private readonly pods = new Map<string, NodePod>();
  /** "ns\0k=v" → registry keys of pods with that label. */
  private readonly podsByLabel = new Map<string, Set<string>>();
  /** "ns\0k=v" → Services whose selector has that term. */
  private readonly servicesByTerm = new Map<string, Set<string>>();
  /** Registry keys whose values were refused, with why. */
  readonly problems = new Map<string, string>();

  constructor(private readonly layout: RegistryLayout) {}

  get serviceCount(): number {
    return this.services.size;
  }

  get podCount(): number {
    return this.pods.size;
  }

  serviceKeys(): IterableIterator<string> {
    return this.services.keys();
  }

  allPods(): IterableIterator<NodePod> {
    return this.pods.values();
  }

  /** Applies one change; returns the Services it may have changed (by "namespace/name"), and "config" when that changed. */
  apply(change: KvChange): Set<string> {
    const key = change.type === "put" ? change.entry.key : change.key;
    const kind = this.layout.classify(key);
    const dirty = new Set<string>();
    if (kind === undefined || kind.kind === "clusterip") return dirty;
    this.problems.delete(key);
    const entry: KvEntry | undefined = change.type === "put" ? change.entry : undefined;
    try {
      switch (kind.kind) {
        case "config":
          this.config =
            entry === undefined
              ? defaultServiceNetworkConfig()
              : validateServiceNetworkConfig(JSON.parse(entry.value) as unknown);
          dirty.add("config");
          return dirty;
        case "service":
          this.setService(serviceKey(kind.namespace, kind.name), entry, kind.namespace, kind.name);
          dirty.add(serviceKey(kind.namespace, kind.name));
          return dirty;
        case "endpoints":
          if (entry === undefined) this.explicit.delete(serviceKey(kind.namespace, kind.name));
          else this.explicit.set(serviceKey(kind.namespace, kind.name), JSON.parse(entry.value) as unknown);
          dirty.add(serviceKey(kind.namespace, kind.name));
          return dirty;
        case "slice": {
          const service = serviceKey(kind.namespace, kind.name);
          const owners = this.slices.get(service) ?? new Map<string, unknown>();
          if (entry === undefined) owners.delete(kind.owner);
          else owners.set(kind.owner, JSON.parse(entry.value) as unknown);
          if (owners.size === 0) this.slices.delete(service);
          else this.slices.set(service, owners);
          dirty.add(service);
          return dirty;
        }
        case "pod":
          for (const service of this.setPod(key, entry, kind.node)) dirty.add(service);
          return dirty;
      }
    } catch (error) {
      this.problems.set(key, error instanceof Error ? error.message : String(error));
      // A Service turned malformed is no longer served: drop what it was.
      if (kind.kind === "service") {
        this.setService(serviceKey(kind.namespace, kind.name), undefined, kind.namespace, kind.name);
        dirty.add(serviceKey(kind.namespace, kind.name));
      } else if (kind.kind === "pod") {
        for (const service of this.setPod(key, undefined, kind.node)) dirty.add(service);
      }
      return dirty;
    }
  }

  private setService(key: string, entry: KvEntry | undefined, namespace: string, name: string): void {
    const previous = this.services.get(key);
    for (const [k, v] of Object.entries(previous?.selector ?? {}))
      removeFrom(this.servicesByTerm, term(previous?.namespace ?? "", k, v), key);
    this.services.delete(key);
    if (entry === undefined) return;
    const spec = parseService(JSON.parse(entry.value) as unknown);
    if (spec.namespace !== namespace || spec.name !== name)
      throw new Error(`the object names ${spec.namespace}/${spec.name}, its key ${namespace}/${name}`);
    if (spec.clusterIP === undefined)
      throw new Error("spec.clusterIP is missing (it is allocated when the Service is created)");
    this.services.set(key, { ...spec, clusterIP: spec.clusterIP });
    for (const [k, v] of Object.entries(spec.selector ?? {})) addTo(this.servicesByTerm, term(namespace, k, v), key);
  }

  /** Services whose selector the pod (before or after) matches. */
  private servicesOf(pod: NodePod | undefined): Set<string> {
    const found = new Set<string>();
    if (pod === undefined) return found;
    for (const [k, v] of Object.entries(pod.labels)) {
      for (const key of this.servicesByTerm.get(term(pod.namespace, k, v)) ?? []) {
        const selector = this.services.get(key)?.selector;
        if (selector !== undefined && matchesSelector(selector, pod.labels)) found.add(key);
      }
    }
    return found;
  }

  private setPod(key: string, entry: KvEntry | undefined, node: string): Set<string> {
    const previous = this.pods.get(key);
    const dirty = this.servicesOf(previous);
    if (previous !== undefined) {
      for (const [k, v] of Object.entries(previous.labels))
        removeFrom(this.podsByLabel, term(previous.namespace, k, v), key);
      this.pods.delete(key);
    }
    if (entry === undefined) return dirty;
    const pod: NodePod = { ...decodePodRecord(entry.value), node };
    this.pods.set(key, pod);
    for (const [k, v] of Object.entries(pod.labels)) addTo(this.podsByLabel, term(pod.namespace, k, v), key);
    for (const service of this.servicesOf(pod)) dirty.add(service);
    return dirty;
  }

  /** Services with a backend on a node: what a lease change of that node touches. */
  servicesOnNode(node: string): Set<string> {
    const found = new Set<string>();
    for (const pod of this.pods.values())
      if (pod.node === node) for (const service of this.servicesOf(pod)) found.add(service);
    return found;
  }

  /**
   * A Service with its backends: the pods of its namespace its selector matches, on nodes that hold a lease
   * (`leased`), or its explicit endpoints; undefined when there is no such Service.
   */
  resolve(key: string, leased: (node: string) => boolean): ResolvedService | undefined {
    const spec = this.services.get(key);
    if (spec === undefined) return undefined;
    const backends: Backend[][] = spec.ports.map(() => []);
    const ips = new Set<number>();
    if (spec.selector !== undefined) {
      for (const pod of this.selected(spec.namespace, spec.selector)) {
        if (!leased(pod.node)) continue;
        ips.add(pod.ip);
        for (const [n, port] of spec.ports.entries()) backends[n]?.push({ ip: pod.ip, port: port.targetPort });
      }
    } else {
      const sources: [string, unknown][] = [];
      const explicit = this.explicit.get(key);
      if (explicit !== undefined) sources.push([this.layout.endpoints(spec.namespace, spec.name), explicit]);
      for (const [owner, raw] of this.slices.get(key) ?? [])
        sources.push([this.layout.slice(spec.namespace, spec.name, owner), raw]);
      const seen = new Set<string>();
      for (const [source, raw] of sources) {
        try {
          for (const [n, list] of parseEndpointsObject(raw, spec).entries()) {
            for (const backend of list) {
              if (seen.has(`${n}/${backend.ip}/${backend.port}`)) continue;
              seen.add(`${n}/${backend.ip}/${backend.port}`);
              ips.add(backend.ip);
              backends[n]?.push(backend);
            }
          }
        } catch (error) {
          this.problems.set(source, error instanceof Error ? error.message : String(error));
        }
      }
    }
    for (const list of backends) list.sort((a, b) => a.ip - b.ip || a.port - b.port);
    return { key, spec, backends, endpointIps: [...ips].sort((a, b) => a - b) };
  }

  /** Pods of the namespace matching every term: the smallest posting list, filtered. */
  private selected(namespace: string, selector: Readonly<Record<string, string>>): NodePod[] {
    let smallest: Set<string> | undefined;
    for (const [k, v] of Object.entries(selector)) {
      const posting = this.podsByLabel.get(term(namespace, k, v));
      if (posting === undefined) return [];
      if (smallest === undefined || posting.size < smallest.size) smallest = posting;
    }
    const pods: NodePod[] = [];
    for (const key of smallest ?? []) {
      const pod = this.pods.get(key);
      if (pod !== undefined && matchesSelector(selector, pod.labels)) pods.push(pod);
    }
    return pods;
  }

  /** The ports a Service exposes, for status and listing. */
  ports(key: string): readonly ServicePort[] {
    return this.services.get(key)?.ports ?? [];
  }
}
