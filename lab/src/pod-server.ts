// The lab's stand-in for the example's nginx: a tiny HTTP server inside a pod namespace that answers with who it
// is, and the same answer over UDP on the same port (for UDP Services). Started as
// `ip netns exec POD node pod-server.js IP PORT NAME` (detached, stopped by PID or with the pod).
import { createSocket } from "node:dgram";
import { createServer } from "node:http";

const [ip = "0.0.0.0", port = "80", name = "pod"] = process.argv.slice(2);
createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain" });
  res.end(`hello from ${name} (${ip}), you are ${req.socket.remoteAddress ?? "?"}\n`);
}).listen(Number(port), ip);
const udp = createSocket("udp4");
udp.on("message", (_message, from) => {
  udp.send(`hello from ${name} (${ip}), you are ${from.address}\n`, from.port, from.address);
});
udp.bind(Number(port), ip);
