/* SPDX-License-Identifier: MIT (see LICENSE) */
/* tcp.c: how the network sources notice a peer gone without a word (internal.h). */
#include "internal.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

void rc__tcp_dead_peer(int fd) {
  if (fd < 0) return;
  int on = 1, idle = RC__TCP_IDLE_S, intvl = RC__TCP_INTVL_S, probes = RC__TCP_PROBES;
  unsigned user_timeout = RC__TCP_USER_TIMEOUT_MS;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
}
