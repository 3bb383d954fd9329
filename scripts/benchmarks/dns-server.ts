// The DNS benchmark's server process: a DnsServer on 127.0.0.1:PORT with N synthetic Services (the view the
// benchmark's hosts file mirrors) and one upstream. Prints "ready <port>" once it answers; on SIGTERM prints its
// stats as one JSON line and exits.
//   node dns-server.js PORT UPSTREAM_PORT SERVICES
import { DnsServer } from "../../agent/src/dns/server.js";
import { benchView } from "./dns-workload.js";

const [port = "0", upstreamPort = "53", count = "10000"] = process.argv.slice(2);
const server = new DnsServer({
  listen: [{ address: "127.0.0.1", port: Number(port) }],
  upstreams: [{ address: "127.0.0.1", port: Number(upstreamPort) }],
  udpReceiveBufferBytes: 4 * 1024 * 1024,
});
server.events.on((event) => {
  if (event.type === "error") process.stderr.write(`dns-server: ${event.where}: ${event.message}\n`);
});
const [bound] = await server.start();
server.setView(benchView(Number(count)));
process.stdout.write(`ready ${bound?.port ?? 0}\n`);
process.on("SIGTERM", () => {
  process.stdout.write(`${JSON.stringify(server.stats())}\n`);
  void server.close().then(() => process.exit(0));
});
