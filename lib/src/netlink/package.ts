// The `netlink` package's runtime modules, loaded with require(). It is CommonJS; importing it from ESM makes Node
// lex the source of every module for named exports: measured here 100 ms against 34 ms for require() (best of 15),
// and the CNI plugin pays this on every pod operation. Only the rtnetlink parts load (no genl/nl80211/wireguard).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

export const rtnetlink = require("netlink/dist/rt/rt.js") as typeof import("netlink/dist/rt/rt.js");
export const rt = require("netlink/dist/rt/structs.js") as typeof import("netlink/dist/rt/structs.js");
export const ifla = require("netlink/dist/rt/ifla.js") as typeof import("netlink/dist/rt/ifla.js");
export const attrs = require("netlink/dist/structs.js") as typeof import("netlink/dist/structs.js");
