// `scripts/lab apply FILE` and `scripts/lab get pods|services`: what kubectl does with the chapter's manifest, as far
// as a lab without Kubernetes can. A Deployment becomes pods — namespaces ADDed through their node's CNI chain with
// the Kubernetes identity a runtime passes (namespace, name, the template's labels), spread over the nodes, each
// running the lab's HTTP server on its containerPort; Services go to `trellis-agent apply`. Other kinds are refused
// by name before anything is created.
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import type { Lab } from "./lab.js";
import { removePod, startPodServer, podNode } from "./lab-pods.js";
import { createPod } from "./pods.js";
import type { PodState } from "./state.js";

export interface DeploymentSpec {
  readonly namespace: string;
  readonly name: string;
  readonly replicas: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly port: number;
}

export interface LabManifest {
  readonly deployments: readonly DeploymentSpec[];
  /** v1 Service objects, as written: trellis-agent apply validates them. */
  readonly services: readonly unknown[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function labelsOf(value: unknown, field: string): Record<string, string> {
  if (!isObject(value)) throw new Error(`${field} must be a map of labels`);
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string") throw new Error(`${field}.${k} must be a string, not ${JSON.stringify(v)}`);
    labels[k] = v;
  }
  return labels;
}

function deployment(doc: Record<string, unknown>, where: string): DeploymentSpec {
  const metadata = isObject(doc.metadata) ? doc.metadata : {};
  const spec = isObject(doc.spec) ? doc.spec : {};
  const name = metadata.name;
  if (typeof name !== "string" || !DNS_LABEL.test(name) || name.length > 40)
    throw new Error(`${where}: metadata.name ${JSON.stringify(name)} must be a DNS label of at most 40 characters`);
  const namespace = typeof metadata.namespace === "string" ? metadata.namespace : "default";
  const replicas = spec.replicas ?? 1;
  if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0 || replicas > 20)
    throw new Error(`${where}: spec.replicas ${JSON.stringify(replicas)} must be an integer from 0 to 20`);
  const template = isObject(spec.template) ? spec.template : {};
  const labels = labelsOf(
    isObject(template.metadata) ? template.metadata.labels : undefined,
    `${where}: spec.template.metadata.labels`,
  );
  const selector = isObject(spec.selector) ? spec.selector.matchLabels : undefined;
  if (selector !== undefined) {
    for (const [k, v] of Object.entries(labelsOf(selector, `${where}: spec.selector.matchLabels`))) {
      if (labels[k] !== v)
        throw new Error(`${where}: spec.selector.matchLabels ${k}=${v} does not match the template's labels`);
    }
  }
  const containers = isObject(template.spec) && Array.isArray(template.spec.containers) ? template.spec.containers : [];
  const first: unknown = containers[0];
  const ports: unknown = isObject(first) ? first.ports : undefined;
  const firstPort: unknown = Array.isArray(ports) ? ports[0] : undefined;
  const port = isObject(firstPort) && typeof firstPort.containerPort === "number" ? firstPort.containerPort : 80;
  return { namespace, name, replicas, labels, port };
}

/** The Deployments and Services of a manifest (YAML or JSON, several documents); another kind is refused by name. */
export function parseLabManifest(text: string, source: string): LabManifest {
  const deployments: DeploymentSpec[] = [];
  const services: unknown[] = [];
  for (const [n, document] of parseAllDocuments(text).entries()) {
    if (document.errors.length > 0)
      throw new Error(`${source}: document ${n + 1}: ${document.errors[0]?.message ?? "invalid YAML"}`);
    const doc: unknown = document.toJS();
    if (doc === null || doc === undefined) continue;
    if (!isObject(doc)) throw new Error(`${source}: document ${n + 1} is not a Kubernetes object`);
    const where = `${source}: ${String(doc.kind)}/${isObject(doc.metadata) ? String(doc.metadata.name) : "?"}`;
    if (doc.kind === "Deployment" && doc.apiVersion === "apps/v1") deployments.push(deployment(doc, where));
    else if (doc.kind === "Service") services.push(doc);
    else throw new Error(`${where}: the lab applies apps/v1 Deployments and v1 Services only`);
  }
  return { deployments, services };
}

/** A pod name as a ReplicaSet gives it: <deployment>-<template hash>-<5 characters>. */
function podNameFor(deploymentName: string, templateHash: string): string {
  const alphabet = "bcdfghjklmnpqrstvwxz2456789";
  const suffix = [...randomBytes(5)].map((b) => alphabet[b % alphabet.length]).join("");
  return `${deploymentName}-${templateHash}-${suffix}`;
}

function templateHash(d: DeploymentSpec): string {
  let h = 2166136261;
  for (const c of JSON.stringify([d.labels, d.port])) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return h.toString(36).padStart(7, "0").slice(0, 7);
}

/** Pods go to the nodes with the fewest of this Deployment, then the fewest pods overall. */
function nextNode(lab: Lab, owner: string): number {
  const nodes = lab.current.nodes.map((n) => n.index);
  const count = (index: number, pred: (p: PodState) => boolean): number =>
    lab.current.pods.filter((p) => p.node === index && pred(p)).length;
  return (
    [...nodes].sort(
      (a, b) =>
        count(a, (p) => p.owner === owner) - count(b, (p) => p.owner === owner) ||
        count(a, () => true) - count(b, () => true) ||
        a - b,
    )[0] ?? 1
  );
}

/** Creates or scales each Deployment's pods, then hands the Services to trellis-agent apply; returns kubectl's lines. */
export async function applyManifest(lab: Lab, manifest: LabManifest): Promise<string[]> {
  const lines: string[] = [];
  for (const d of manifest.deployments) {
    const owner = `${d.namespace}/${d.name}`;
    const mine = lab.current.pods.filter((p) => p.owner === owner);
    for (const extra of mine.slice(d.replicas)) await removePod(lab, extra.name);
    const hash = templateHash(d);
    for (let i = mine.length; i < d.replicas; i++) {
      const index = nextNode(lab, owner);
      const kubeName = podNameFor(d.name, hash);
      const name = `${lab.layout.prefix}-${kubeName}`;
      const kube = { namespace: d.namespace, name: kubeName, labels: d.labels };
      const pod = await createPod(await podNode(lab, index), name, { kube });
      const entry: PodState = { name, node: index, ip: pod.ip, kube, owner, createdAt: new Date().toISOString() };
      lab.current.pods.push(entry);
      await lab.save();
      await startPodServer(lab, entry, d.port);
    }
    lines.push(
      `deployment.apps/${d.name} ${mine.length === 0 ? "created" : mine.length === d.replicas ? "unchanged" : "scaled"}`,
    );
  }
  if (manifest.services.length > 0) {
    const file = join(lab.layout.stateDir, "apply-services.yaml");
    await writeFile(file, manifest.services.map((s) => stringify(s)).join("---\n"));
    const result = await lab.agentCli(["apply", "-f", file]);
    if (result.code !== 0) throw new Error(`trellis-agent apply: ${result.stderr.trim()}`);
    lines.push(
      ...result.stdout
        .trim()
        .split("\n")
        .filter((l) => l !== ""),
    );
  }
  return lines;
}

function age(since: string | undefined): string {
  if (since === undefined) return "?";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(since)) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

/** `kubectl get pods -o wide`, for the lab's pods. */
export function formatPods(lab: Lab): string {
  const rows = [["NAMESPACE", "NAME", "READY", "STATUS", "AGE", "IP", "NODE"]];
  for (const p of lab.current.pods) {
    rows.push([
      p.kube?.namespace ?? "-",
      p.kube?.name ?? p.name,
      "1/1",
      "Running",
      age(p.createdAt),
      p.ip,
      `n${p.node}`,
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return `${rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join("   ")
        .trimEnd(),
    )
    .join("\n")}\n`;
}
