// Readiness as a pure function of what the daemon knows: a node is ready for pods only when every part of the
// datapath is in place and it is still hearing about peers. /readyz answers with it; `trellis-agent status` shows it.
// Reasons come in dependency order (config → lease → dataplane → masquerade → subnet file → watch → services), so the first
// names the root cause; what only follows from an earlier failure is not listed as a cause of its own.

export interface ReadinessInput {
  /** Why the network config could not be loaded at start (missing, invalid, etcd unreachable); undefined once loaded. */
  readonly configProblem: string | undefined;
  /** The config in etcd now differs from the one this agent runs with (a restart moves the node). */
  readonly configChanged: string | undefined;
  readonly leaseHeld: boolean;
  /** Why the last attempt to acquire or renew the lease failed. */
  readonly leaseProblem: string | undefined;
  readonly dataplaneConverged: boolean;
  /** The last pass's first error. */
  readonly dataplaneProblem: string | undefined;
  readonly watchLive: boolean;
  /** undefined when masquerading is off. */
  readonly masqueradeInstalled: boolean | undefined;
  readonly masqueradeProblem: string | undefined;
  /** "written" when the file equals the lease; else why not. */
  readonly subnetFile:
    | { readonly state: "written" }
    | { readonly state: "pending" }
    | { readonly state: "failed"; readonly reason: string };
  /** Why Services (cluster IPs) are not served as the registry says; undefined when they are, or the proxy is off. */
  readonly servicesProblem: string | undefined;
  /** Worth knowing, not a reason to refuse pods (peer leases skipped, a store reset in its grace period, …). */
  readonly warnings: readonly string[];
}

export interface Readiness {
  readonly ready: boolean;
  /** Why not, one short sentence per missing piece, the root cause first. */
  readonly reasons: readonly string[];
  readonly warnings: readonly string[];
}

const withDetail = (text: string, detail: string | undefined): string =>
  detail === undefined ? text : `${text}: ${detail}`;

export function readiness(input: ReadinessInput): Readiness {
  const warnings = [...input.warnings];
  // Without a config nothing else can start: everything else would only be a symptom.
  if (input.configProblem !== undefined) return { ready: false, reasons: [input.configProblem], warnings };
  const reasons: string[] = [];
  if (input.configChanged !== undefined) reasons.push(input.configChanged);
  if (!input.leaseHeld) {
    reasons.push(withDetail("no subnet lease held", input.leaseProblem));
    return { ready: false, reasons, warnings };
  }
  if (!input.dataplaneConverged)
    reasons.push(
      withDetail("dataplane not converged", input.dataplaneProblem ?? "see the agent log for the failing entries"),
    );
  if (input.masqueradeInstalled === false)
    reasons.push(withDetail("masquerade rules not installed", input.masqueradeProblem));
  if (input.subnetFile.state === "pending") reasons.push("subnet file not written yet");
  else if (input.subnetFile.state === "failed") reasons.push(input.subnetFile.reason);
  if (!input.watchLive) reasons.push("etcd watch is down: peer changes are not being seen");
  if (input.servicesProblem !== undefined) reasons.push(input.servicesProblem);
  return { ready: reasons.length === 0, reasons, warnings };
}
