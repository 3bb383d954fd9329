// How the agent recognises its own kernel state, and never touches anyone else's (docs/decisions/0008): routes carry
// our protocol number; a backend's device (by name and kind) and everything on it are ours.

/** Route protocol number on every route we install (`ip route show proto 145`). */
export const TRELLIS_ROUTE_PROTOCOL = 145;

/** Routes are keyed by "dst/len" in the desired and the actual state alike. */
export function routeKey(route: { dst: string; prefixLen: number }): string {
  return `${route.dst}/${route.prefixLen}`;
}
