// Readiness as a pure function of what the daemon knows: a node is ready for pods only when every part of the
// datapath is in place and it is still hearing about peers. /readyz answers with it; `trellis-agent status` shows it.

export interface ReadinessInput {
  readonly leaseHeld: boolean;
  readonly subnetEnvWritten: boolean;
  readonly dataplaneConverged: boolean;
  readonly watchLive: boolean;
  /** undefined when masquerading is off. */
  readonly masqueradeInstalled: boolean | undefined;
}

export interface Readiness {
  readonly ready: boolean;
  /** Why not, one short sentence per missing piece. */
  readonly reasons: readonly string[];
}

export function readiness(input: ReadinessInput): Readiness {
  const reasons: string[] = [];
  if (!input.leaseHeld) reasons.push("no subnet lease held");
  if (!input.subnetEnvWritten) reasons.push("subnet file not written yet");
  if (!input.dataplaneConverged) reasons.push("dataplane not converged (see the agent log for the failing entries)");
  if (!input.watchLive) reasons.push("etcd watch is down: peer changes are not being seen");
  if (input.masqueradeInstalled === false) reasons.push("masquerade rules not installed");
  return { ready: reasons.length === 0, reasons };
}
