// Requests whose kernel work blocks the sending thread. rtnetlink runs a request inside the sender's sendmsg(); a
// link deletion there waits for RCU grace periods (~20 ms measured here), so on the event loop 50 deletions take a
// second, one after another. Sent from libuv's thread pool instead, on a socket of their own, they overlap as they
// do for separate processes (50 in ~80 ms). The socket is opened in the handle's namespace, like every other.
import { closeSync } from "node:fs";
import { constants } from "node:os";
import { checkIndex } from "./codec.js";
import { translateError } from "./errors.js";
import { withNetns, type NetnsHandle } from "./netns.js";
import { syscallAsync, syscallNumber, syscallSync } from "../syscall.js";

const AF_NETLINK = 16n;
const SOCK_RAW = 3n;
const SOCK_CLOEXEC = 0o2000000n;
const NETLINK_ROUTE = 0n;
const MSG_DONTWAIT = 0x40n;
const RTM_DELLINK = 17;
const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, number]) => [number, name]));

function syscall(name: "socket" | "sendto" | "recvfrom"): bigint {
  const nr = syscallNumber(name);
  if (nr === undefined)
    throw Object.assign(new Error(`${name} is not available on ${process.arch}`), { code: "ENOSYS" });
  return nr;
}

/** nlmsghdr + ifinfomsg of RTM_DELLINK for one ifindex, asking for an ACK. */
function delLinkMessage(index: number): Buffer {
  const message = Buffer.alloc(32);
  message.writeUInt32LE(32, 0); // nlmsg_len
  message.writeUInt16LE(RTM_DELLINK, 4);
  message.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK, 6);
  message.writeUInt32LE(1, 8); // seq: one request per socket
  message.writeInt32LE(checkIndex(index), 20); // ifi_index (family, type, flags, change stay 0)
  return message;
}

/** The errno an ACK carries (0 is success), or EPROTO for anything that is not an ACK. */
function ackErrno(reply: Buffer, length: number): number {
  if (length < 20 || reply.readUInt16LE(4) !== NLMSG_ERROR) return constants.errno.EPROTO;
  return -reply.readInt32LE(16);
}

/** Sends one request on a fresh socket from the thread pool and waits for its ACK; throws the kernel's errno. */
async function sendBlocking(netns: NetnsHandle | undefined, message: Buffer): Promise<void> {
  const open = (): number => Number(syscallSync(syscall("socket"), AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  const fd = netns === undefined ? open() : withNetns(netns, open);
  try {
    const kernel = Buffer.alloc(12); // sockaddr_nl of the kernel: family AF_NETLINK, pid 0, groups 0
    kernel.writeUInt16LE(Number(AF_NETLINK), 0);
    await syscallAsync(
      syscall("sendto"),
      BigInt(fd),
      message,
      BigInt(message.length),
      0n,
      kernel,
      BigInt(kernel.length),
    );
    // The kernel queued the ACK before sendto returned.
    const reply = Buffer.alloc(1024);
    const length = Number(
      syscallSync(syscall("recvfrom"), BigInt(fd), reply, BigInt(reply.length), MSG_DONTWAIT, 0n, 0n),
    );
    const errno = ackErrno(reply, length);
    if (errno !== 0)
      throw Object.assign(new Error(`Request rejected: ${ERRNO_NAMES.get(errno) ?? `errno ${errno}`}`), {
        code: ERRNO_NAMES.get(errno),
      });
  } finally {
    closeSync(fd);
  }
}

/** Deletes a link (by ifindex) of the namespace, off the event loop. */
export async function deleteLinkBlocking(netns: NetnsHandle | undefined, index: number): Promise<void> {
  try {
    await sendBlocking(netns, delLinkMessage(index));
  } catch (error) {
    throw translateError(error, "delete link", `#${index}`);
  }
}
