/* SPDX-License-Identifier: MIT (see LICENSE) */
/* fds.c: how many file descriptors are still free. libuv aborts the process when it
 * cannot make the pipe of its signal handling (the first loop of a process needs six
 * descriptors: epoll, two pipes, an eventfd), so before making a loop we make sure the
 * descriptors are there and report EMFILE ourselves otherwise. */
#include "internal.h"

#include <sys/eventfd.h>
#include <unistd.h>

int rc__fds_free(int want) {
  int fds[64], n = 0;
  if (want > 64) want = 64;
  while (n < want) {
    int fd = eventfd(0, EFD_CLOEXEC);
    if (fd < 0) break;
    fds[n++] = fd;
  }
  for (int i = 0; i < n; i++) close(fds[i]);
  return n;
}
