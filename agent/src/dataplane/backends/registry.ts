// Every backend the agent knows, by the network config's Backend.Type. The config parser accepts exactly these
// names (config/network-config.ts); the reconciler and the agent get a Backend from here and never test its type.
import type { Backend, BackendSettings } from "./backend.js";
import { hostGwBackend } from "./host-gw.js";
import { vxlanBackend } from "./vxlan.js";

const BACKENDS = {
  vxlan: vxlanBackend,
  "host-gw": hostGwBackend,
} satisfies Record<string, (settings: BackendSettings) => Backend>;

export type BackendType = keyof typeof BACKENDS;
export const BACKEND_TYPES = Object.keys(BACKENDS) as readonly BackendType[];

/** The backend a network config names, with its settings. */
export function backendFor(config: BackendSettings & { readonly type: BackendType }): Backend {
  return BACKENDS[config.type](config);
}
