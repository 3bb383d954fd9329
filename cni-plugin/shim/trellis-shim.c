/*
 * The trellis CNI plugin's front: hands the runtime's request to the CNI service of the node's agent over a unix
 * socket, so that a pod operation costs no Node start-up (docs/decisions/0011). Whenever the service cannot
 * answer (no agent, another namespace, a broken connection, no READY within the bound), it runs the standalone
 * plugin instead:
 *   trellis-shim <fallback command> [args...]     e.g. trellis-shim node .../launcher.cjs
 * The fallback gets the same environment and the same stdin. The wire format is in src/service/protocol.ts.
 * The socket is the config's top-level "agentSocket" (default TRELLIS_DEFAULT_SOCKET); "" means always standalone.
 * CNI_NETNS is opened here and passed as a descriptor: the agent enters what this caller sees, whatever its mount
 * namespace. The build defines the TRELLIS_* constants from the TypeScript sources (scripts/build/bundle.ts).
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#if !defined(TRELLIS_DEFAULT_SOCKET) || !defined(TRELLIS_MAX_STDIN_BYTES) || !defined(TRELLIS_LATEST_CNI_VERSION) || !defined(TRELLIS_READY_TIMEOUT_MS)
#error "build with -DTRELLIS_DEFAULT_SOCKET, -DTRELLIS_MAX_STDIN_BYTES, -DTRELLIS_LATEST_CNI_VERSION and -DTRELLIS_READY_TIMEOUT_MS (scripts/build/bundle.ts)"
#endif
/* Once the service said READY and got GO, it does the work: as long as the standalone plugin may take. */
#define REPLY_TIMEOUT_MS 60000
#define MAX_REPLY (16 * 1024 * 1024)
#define MAX_JSON_DEPTH 512

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

/* Reads fd to EOF: 0, or 1 when more than limit bytes came (reading stops there), -1 on error. */
static int read_all(int fd, struct buf *b, size_t limit) {
  for (;;) {
    if (grow(b, 16384)) return -1;
    ssize_t n = read(fd, b->data + b->len, b->cap - b->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) return 0;
    b->len += (size_t)n;
    if (b->len > limit) return 1;
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

/* The first byte, with the namespace descriptor attached (SCM_RIGHTS). */
static int send_with_fd(int s, const char *p, int fd) {
  char control[CMSG_SPACE(sizeof(int))];
  memset(control, 0, sizeof control);
  struct iovec iov = {.iov_base = (void *)p, .iov_len = 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t w;
  do w = sendmsg(s, &msg, MSG_NOSIGNAL); while (w < 0 && errno == EINTR);
  return w == 1 ? 0 : -1;
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Reads into b until it holds `want` bytes (or a newline when want is 0), before the deadline: 0, or -1. */
static int read_until(int s, struct buf *b, size_t want, long long deadline) {
  for (;;) {
    if (want ? b->len >= want : (b->len && memchr(b->data, '\n', b->len))) return 0;
    long long left = deadline - now_ms();
    if (left <= 0) return -1;
    struct pollfd p = {.fd = s, .events = POLLIN};
    int r = poll(&p, 1, (int)left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    if (grow(b, 4096)) return -1;
    ssize_t n = read(s, b->data + b->len, b->cap - b->len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || b->len + (size_t)n > MAX_REPLY) return -1;
    b->len += (size_t)n;
  }
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
  static const char msg[] = "{\"cniVersion\":\"" TRELLIS_LATEST_CNI_VERSION "\",\"code\":999,\"msg\":\"trellis: cannot run the standalone plugin\",\"details\":\"\"}\n";
  write_all(1, msg, sizeof msg - 1);
  _exit(1);
}

/* --- just enough JSON to find a top-level key, as JSON.parse reads it (the last duplicate wins) ------------- */

static const char *ws(const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* p at '"': past the closing quote, or NULL. *escaped tells whether a backslash occurred. */
static const char *skip_string(const char *p, const char *e, int *escaped) {
  *escaped = 0;
  for (p++; p < e; p++) {
    if (*p == '"') return p + 1;
    if (*p == '\\') {
      *escaped = 1;
      if (++p >= e) return NULL;
    } else if ((unsigned char)*p < 0x20) {
      return NULL;
    }
  }
  return NULL;
}

static const char *skip_value(const char *p, const char *e, int depth) {
  int escaped;
  p = ws(p, e);
  if (p >= e || depth > MAX_JSON_DEPTH) return NULL;
  if (*p == '"') return skip_string(p, e, &escaped);
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    p = ws(p + 1, e);
    if (p < e && *p == close) return p + 1;
    for (;;) {
      if (close == '}') {
        if (p >= e || *p != '"' || !(p = skip_string(p, e, &escaped))) return NULL;
        p = ws(p, e);
        if (p >= e || *p++ != ':') return NULL;
      }
      if (!(p = skip_value(p, e, depth + 1))) return NULL;
      p = ws(p, e);
      if (p < e && *p == ',') { p = ws(p + 1, e); continue; }
      if (p < e && *p == close) return p + 1;
      return NULL;
    }
  }
  const char *start = p;
  while (p < e && *p && strchr("abcdefghijklmnopqrstuvwxyz0123456789+-.ABCDEFGHIJKLMNOPQRSTUVWXYZ", *p)) p++;
  return p > start ? p : NULL;
}

/*
 * The top-level "agentSocket" string of the config: 1 found (into out), 0 absent, -1 unusable (not a JSON object,
 * escapes in it or in a key, too long): the standalone plugin then reads the config itself.
 */
static int agent_socket(const struct buf *in, char *out, size_t size) {
  static const char key[] = "agentSocket";
  if (!in->data) return 0;
  const char *p = ws(in->data, in->data + in->len), *e = in->data + in->len;
  int found = 0, escaped;
  if (p >= e || *p++ != '{') return -1;
  p = ws(p, e);
  if (p < e && *p == '}') p++;
  else {
    for (;;) {
      const char *k = p;
      if (p >= e || *p != '"' || !(p = skip_string(p, e, &escaped)) || escaped) return -1;
      int is_key = (size_t)(p - k) == sizeof key + 1 && memcmp(k + 1, key, sizeof key - 1) == 0;
      p = ws(p, e);
      if (p >= e || *p++ != ':') return -1;
      p = ws(p, e);
      const char *v = p;
      if (!(p = skip_value(p, e, 1))) return -1;
      if (is_key) {
        size_t n = (size_t)(p - v);
        if (*v != '"' || skip_string(v, e, &escaped) != p || escaped || n - 2 >= size) return -1;
        memcpy(out, v + 1, n - 2);
        out[n - 2] = 0;
        found = 1;
      }
      p = ws(p, e);
      if (p < e && *p == ',') { p = ws(p + 1, e); continue; }
      if (p < e && *p == '}') { p++; break; }
      return -1;
    }
  }
  return ws(p, e) == e ? found : -1;
}

int main(int argc, char **argv) {
  struct buf in = {0}, req = {0}, reply = {0};
  if (argc < 2) {
    static const char usage[] = "usage: trellis-shim <standalone plugin command> [args...]\n";
    write_all(2, usage, sizeof usage - 1);
    return 2;
  }
  char **standalone = argv + 1;
  int got = read_all(0, &in, TRELLIS_MAX_STDIN_BYTES);
  if (got < 0) fallback(standalone, &in);
  if (got > 0) {
    /* What the standalone plugin answers for the same stdin; it is never handed a config cut short. */
    printf("{\"cniVersion\":\"" TRELLIS_LATEST_CNI_VERSION "\",\"code\":6,\"msg\":\"the network config on stdin is larger than %d bytes\",\"details\":\"\"}\n", TRELLIS_MAX_STDIN_BYTES);
    return 1;
  }

  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  int found = agent_socket(&in, addr.sun_path, sizeof addr.sun_path);
  if (found < 0 || (found == 1 && addr.sun_path[0] == 0)) fallback(standalone, &in);
  if (found == 0) strcpy(addr.sun_path, TRELLIS_DEFAULT_SOCKET);

  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) fallback(standalone, &in);
  struct timeval send_timeout = {.tv_sec = TRELLIS_READY_TIMEOUT_MS / 1000, .tv_usec = (TRELLIS_READY_TIMEOUT_MS % 1000) * 1000};
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  long long ready_deadline = now_ms() + TRELLIS_READY_TIMEOUT_MS;

  char netns[128];
  ssize_t nl = readlink("/proc/self/ns/net", netns, sizeof netns - 1);
  if (nl <= 0) fallback(standalone, &in);
  netns[nl] = 0;
  if (append(&req, "TRELLIS-CNI/2\nN ", 16) || append(&req, netns, (size_t)nl) || append(&req, "\n", 1)) fallback(standalone, &in);

  /* The pod's namespace as this caller sees it: opened here, entered there. */
  int target = -1;
  const char *target_path = getenv("CNI_NETNS");
  if (target_path && *target_path) {
    target = open(target_path, O_RDONLY | O_CLOEXEC);
    char line[32];
    int n = target >= 0 ? snprintf(line, sizeof line, "F\n") : snprintf(line, sizeof line, "F! %d\n", errno);
    if (append(&req, line, (size_t)n)) fallback(standalone, &in);
  }
  for (char **e = environ; *e; e++) {
    if (strncmp(*e, "CNI_", 4) != 0) continue;
    if (strchr(*e, '\n')) fallback(standalone, &in);
    if (append(&req, "E ", 2) || append(&req, *e, strlen(*e)) || append(&req, "\n", 1)) fallback(standalone, &in);
  }
  char length[32];
  int ln = snprintf(length, sizeof length, "L %zu\n\n", in.len);
  if (append(&req, length, (size_t)ln) || (in.len && append(&req, in.data, in.len))) fallback(standalone, &in);
  int sent = target >= 0 ? send_with_fd(s, req.data, target) || send_all(s, req.data + 1, req.len - 1) : send_all(s, req.data, req.len);
  if (target >= 0) close(target);
  if (sent) fallback(standalone, &in);

  /* READY within the bound, or the service is stalled: give up (closing, never saying GO) and go standalone. */
  if (read_until(s, &reply, 0, ready_deadline)) fallback(standalone, &in);
  if (reply.len != 6 || memcmp(reply.data, "READY\n", 6) != 0) fallback(standalone, &in);
  if (send_all(s, "GO\n", 3)) fallback(standalone, &in);
  reply.len = 0;

  /* "<exit code> <stdout bytes>\n" then exactly that many bytes: a reply cut short is not passed on. */
  long long deadline = now_ms() + REPLY_TIMEOUT_MS;
  if (read_until(s, &reply, 0, deadline)) fallback(standalone, &in);
  char *nlp = memchr(reply.data, '\n', reply.len), *after, *after_len;
  long code = strtol(reply.data, &after, 10);
  if (after == reply.data || *after != ' ' || code < 0 || code > 255) fallback(standalone, &in);
  long len = strtol(after + 1, &after_len, 10);
  if (after_len != nlp || len < 0 || len > MAX_REPLY) fallback(standalone, &in);
  size_t head = (size_t)(nlp + 1 - reply.data);
  if (read_until(s, &reply, head + (size_t)len, deadline) || reply.len != head + (size_t)len) fallback(standalone, &in);
  if (write_all(1, reply.data + head, (size_t)len)) return 1;
  return (int)code;
}
