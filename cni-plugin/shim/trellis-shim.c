/*
 * The trellis CNI plugin's front: hands the runtime's request to the CNI service of the node's agent over a unix
 * socket, so that a pod operation costs no Node start-up (docs/decisions/0011). Whenever the service cannot
 * answer (no agent, another namespace, a broken connection, a timeout), it runs the standalone plugin instead:
 *   trellis-shim <fallback command> [args...]     e.g. trellis-shim node .../launcher.cjs
 * The fallback gets the same environment and the same stdin. The wire format is in src/service/protocol.ts.
 * The socket is the config's "agentSocket" (default /run/trellis/cni.sock); "" means always standalone.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/trellis/cni.sock"
#define MAX_STDIN (8 * 1024 * 1024)
#define REPLY_TIMEOUT_S 60

extern char **environ;

struct buf { char *data; size_t len, cap; };

static int grow(struct buf *b, size_t need) {
  if (b->len + need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 16384;
  while (cap < b->len + need) cap *= 2;
  char *data = realloc(b->data, cap);
  if (!data) return -1;
  b->data = data;
  b->cap = cap;
  return 0;
}

static int append(struct buf *b, const char *s, size_t n) {
  if (grow(b, n)) return -1;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  return 0;
}

/* Reads fd to EOF; -1 on error or beyond limit. */
static int read_all(int fd, struct buf *b, size_t limit) {
  for (;;) {
    if (grow(b, 16384)) return -1;
    ssize_t n = read(fd, b->data + b->len, b->cap - b->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) return 0;
    b->len += (size_t)n;
    if (b->len > limit) return -1;
  }
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* To the agent: MSG_NOSIGNAL, so an agent that hangs up early means a fallback, not a SIGPIPE death. */
static int send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Runs the standalone plugin with the stdin already read: through a pipe (a writer child when it may not fit). */
static void fallback(char **argv, const struct buf *in) {
  int p[2];
  if (pipe(p) == 0) {
    if (in->len <= 60000) {
      write_all(p[1], in->data ? in->data : "", in->len);
    } else if (fork() == 0) {
      close(p[0]);
      _exit(write_all(p[1], in->data, in->len) ? 1 : 0);
    }
    close(p[1]);
    dup2(p[0], 0);
    close(p[0]);
  }
  execvp(argv[0], argv);
  static const char msg[] = "{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":\"trellis: cannot run the standalone plugin\"}\n";
  write_all(1, msg, sizeof msg - 1);
  _exit(1);
}

/* The "agentSocket" string of the config: 1 found (into out), 0 absent, -1 unusable (escapes, too long). */
static int agent_socket(const struct buf *in, char *out, size_t size) {
  static const char key[] = "\"agentSocket\"";
  if (!in->data) return 0;
  const char *p = memmem(in->data, in->len, key, sizeof key - 1), *end = in->data + in->len;
  if (!p) return 0;
  p += sizeof key - 1;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  if (p >= end || *p++ != ':') return -1;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  if (p >= end || *p++ != '"') return -1;
  size_t n = 0;
  while (p < end && *p != '"') {
    if (*p == '\\' || n + 1 >= size) return -1;
    out[n++] = *p++;
  }
  if (p >= end) return -1;
  out[n] = 0;
  return 1;
}

int main(int argc, char **argv) {
  struct buf in = {0}, req = {0}, reply = {0};
  if (argc < 2) {
    static const char usage[] = "usage: trellis-shim <standalone plugin command> [args...]\n";
    write_all(2, usage, sizeof usage - 1);
    return 2;
  }
  char **standalone = argv + 1;
  if (read_all(0, &in, MAX_STDIN)) fallback(standalone, &in);

  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  int found = agent_socket(&in, addr.sun_path, sizeof addr.sun_path);
  if (found < 0 || (found == 1 && addr.sun_path[0] == 0)) fallback(standalone, &in);
  if (found == 0) strcpy(addr.sun_path, DEFAULT_SOCKET);

  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) fallback(standalone, &in);
  struct timeval timeout = {.tv_sec = REPLY_TIMEOUT_S};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);

  char netns[128];
  ssize_t nl = readlink("/proc/self/ns/net", netns, sizeof netns - 1);
  if (nl <= 0) fallback(standalone, &in);
  netns[nl] = 0;
  if (append(&req, "TRELLIS-CNI/1\nN ", 16) || append(&req, netns, (size_t)nl) || append(&req, "\n", 1)) fallback(standalone, &in);
  for (char **e = environ; *e; e++) {
    if (strncmp(*e, "CNI_", 4) != 0) continue;
    if (strchr(*e, '\n')) fallback(standalone, &in);
    if (append(&req, "E ", 2) || append(&req, *e, strlen(*e)) || append(&req, "\n", 1)) fallback(standalone, &in);
  }
  if (append(&req, "\n", 1) || (in.len && append(&req, in.data, in.len))) fallback(standalone, &in);
  if (send_all(s, req.data, req.len) || shutdown(s, SHUT_WR) || read_all(s, &reply, MAX_STDIN)) fallback(standalone, &in);

  char *nlp = reply.len ? memchr(reply.data, '\n', reply.len) : NULL;
  if (!nlp || (nlp - reply.data == 8 && memcmp(reply.data, "FALLBACK", 8) == 0)) fallback(standalone, &in);
  /* "<exit code> <stdout bytes>\n": a reply cut short (the agent died while writing) is not passed on. */
  char *after, *after_len;
  long code = strtol(reply.data, &after, 10);
  if (after == reply.data || *after != ' ' || code < 0 || code > 255) fallback(standalone, &in);
  long len = strtol(after + 1, &after_len, 10);
  nlp++;
  if (after_len != nlp - 1 || len < 0 || len != reply.data + reply.len - nlp) fallback(standalone, &in);
  if (write_all(1, nlp, (size_t)len)) return 1;
  return (int)code;
}
