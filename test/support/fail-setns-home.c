/*
 * Fault injection for tests, loaded with LD_PRELOAD into a trellis process: setns(2) made through syscall(3) (as
 * syscall-napi makes it) fails with EPERM whenever it would take the thread back to the process's own network
 * namespace. Entering another namespace works, so the process gets stuck inside it: the case trellis must fail
 * closed on (lib/src/netlink/netns.ts).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static char home[64];

__attribute__((constructor)) static void remember_home(void) {
  ssize_t n = readlink("/proc/self/ns/net", home, sizeof home - 1);
  home[n > 0 ? n : 0] = 0;
}

long syscall(long number, ...) {
  static long (*real)(long, ...);
  va_list ap;
  long a[6];
  va_start(ap, number);
  for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
  va_end(ap);
  if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
  if (number == SYS_setns && home[0]) {
    char path[64], target[64];
    snprintf(path, sizeof path, "/proc/self/fd/%ld", a[0]);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n > 0) {
      target[n] = 0;
      if (strcmp(target, home) == 0) {
        errno = EPERM;
        return -1;
      }
    }
  }
  return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
