/* SPDX-License-Identifier: MIT (see LICENSE) */
/* server_fixture.h: the protocol servers of spec/servers (consul_server.py,
 * vault_server.py) as subprocesses of a C test: started on 127.0.0.1 at a free port (or
 * again at the port they had, to play a restart), killed on demand, and talked to with
 * a small blocking HTTP/1.1 client for writes and /_test/ controls. A server dies with
 * the test (PR_SET_PDEATHSIG) if the test crashes, and at exit otherwise. */
#ifndef RC_TEST_SERVER_FIXTURE_H
#define RC_TEST_SERVER_FIXTURE_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef RC_SOURCE_DIR
#define RC_SOURCE_DIR "."
#endif

typedef struct server_fixture {
  char script[64];   /* "consul_server.py" */
  char args[256];    /* extra arguments, split at spaces ("--token T") */
  int port;          /* 127.0.0.1 */
  char addr[64];     /* "http://127.0.0.1:PORT" */
  pid_t pid;         /* 0 when not running */
} server_fixture;

static server_fixture *server_running_[8];

static void server_sleep_ms_(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Whether python3 can be run at all (the servers need nothing but its stdlib). */
static bool server_python_available(void) {
  return system("command -v python3 >/dev/null 2>&1") == 0;
}

/* Ends the server with `sig` (SIGKILL plays a crash) and reaps it. Safe to call twice. */
static void server_kill(server_fixture *s, int sig) {
  if (s->pid <= 0) return;
  kill(s->pid, sig);
  int status;
  for (int i = 0; i < 500 && waitpid(s->pid, &status, WNOHANG) == 0; i++) {
    if (i == 499) {
      kill(s->pid, SIGKILL);
      waitpid(s->pid, &status, 0);
    }
    server_sleep_ms_(10);
  }
  s->pid = 0;
}

static void server_stop(server_fixture *s) {
  server_kill(s, SIGTERM);
  for (int i = 0; i < 8; i++)
    if (server_running_[i] == s) server_running_[i] = NULL;
}

static void server_stop_all_(void) {
  for (int i = 0; i < 8; i++)
    if (server_running_[i]) server_stop(server_running_[i]);
}

/* Reads the "LISTENING <port>" line from `fd` within `ms`; the port, or 0. */
static int server_read_port_(int fd, int ms) {
  char line[128];
  size_t n = 0;
  while (n + 1 < sizeof line) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0;
    ssize_t k = read(fd, line + n, 1);
    if (k <= 0) return 0;
    if (line[n] == '\n') break;
    n++;
  }
  line[n] = '\0';
  int port = 0;
  return sscanf(line, "LISTENING %d", &port) == 1 ? port : 0;
}

/* Starts `script` (a file of spec/servers) with `args` at `port` (0: a free one).
 * Returns 0 once it listens, or -1 after printing why. Call from the main thread: the
 * death signal follows the thread that forked. */
static int server_start_at(server_fixture *s, int port) {
  char path[1024], portstr[16], argbuf[256];
  snprintf(path, sizeof path, "%s/spec/servers/%s", RC_SOURCE_DIR, s->script);
  snprintf(portstr, sizeof portstr, "%d", port);
  snprintf(argbuf, sizeof argbuf, "%s", s->args);
  char *argv[32] = {"python3", "-u", path, "--port", portstr};
  int argc = 5;
  for (char *tok = strtok(argbuf, " "); tok && argc < 31; tok = strtok(NULL, " "))
    argv[argc++] = tok;
  argv[argc] = NULL;
  int fds[2];
  if (pipe(fds) != 0) {
    perror("pipe");
    return -1;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 2);
    execvp("python3", argv);
    _exit(127);
  }
  close(fds[1]);
  s->pid = pid;
  int got = server_read_port_(fds[0], 15000);
  close(fds[0]);  /* the servers print nothing after that line */
  if (!got) {
    fprintf(stderr, "%s did not start (port %d)\n", s->script, port);
    server_kill(s, SIGKILL);
    return -1;
  }
  s->port = got;
  snprintf(s->addr, sizeof s->addr, "http://127.0.0.1:%d", got);
  bool listed = false;
  for (int i = 0; i < 8; i++) listed = listed || server_running_[i] == s;
  for (int i = 0; i < 8 && !listed; i++)
    if (!server_running_[i]) {
      server_running_[i] = s;
      listed = true;
    }
  static bool registered;
  if (!registered) atexit(server_stop_all_);
  registered = true;
  return 0;
}

static int server_start(server_fixture *s, const char *script, const char *args) {
  memset(s, 0, sizeof *s);
  snprintf(s->script, sizeof s->script, "%s", script);
  snprintf(s->args, sizeof s->args, "%s", args ? args : "");
  return server_start_at(s, 0);
}

/* Starts the server again at the port it had (a restart; its state starts empty). The
 * port may be taken for a moment (TIME_WAIT is no obstacle: the servers reuse the
 * address), so a few attempts are made. */
static int server_restart(server_fixture *s) {
  int port = s->port;
  for (int attempt = 0; attempt < 20; attempt++) {
    if (server_start_at(s, port) == 0) return 0;
    server_sleep_ms_(250);
  }
  return -1;
}

/* One blocking HTTP/1.1 request to the server (Connection: close). `headers` is "" or
 * lines each ending in "\r\n". The response body goes to `out` (NUL-terminated,
 * truncated to `outn`; may be NULL). Returns the status, or -1 on a network failure. */
static int server_http(const server_fixture *s, const char *method, const char *target,
                       const char *headers, const char *body, char *out, size_t outn) {
  if (out && outn) out[0] = '\0';
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  size_t blen = body ? strlen(body) : 0;
  char head[2048];
  int hn = snprintf(head, sizeof head,
                    "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                    "Content-Length: %zu\r\n%s\r\n",
                    method, target, s->port, blen, headers ? headers : "");
  bool ok = hn > 0 && (size_t)hn < sizeof head &&
            send(fd, head, (size_t)hn, MSG_NOSIGNAL) == hn &&
            (blen == 0 || send(fd, body, blen, MSG_NOSIGNAL) == (ssize_t)blen);
  static char resp[1 << 16];
  size_t n = 0;
  while (ok && n + 1 < sizeof resp) {
    ssize_t k = recv(fd, resp + n, sizeof resp - 1 - n, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    n += (size_t)k;
  }
  close(fd);
  resp[n] = '\0';
  int status = -1;
  if (!ok || sscanf(resp, "HTTP/1.%*d %d", &status) != 1) return -1;
  const char *b = strstr(resp, "\r\n\r\n");
  if (out && outn && b) snprintf(out, outn, "%s", b + 4);
  return status;
}

/* How many of the last 200 requests the server saw start with `prefix` ("GET /v1/kv/a"),
 * or -1 when it cannot say. */
static int server_requests(const server_fixture *s, const char *prefix) {
  static char body[1 << 16];
  if (server_http(s, "GET", "/_test/requests", "", NULL, body, sizeof body) != 200)
    return -1;
  int n = 0;
  char needle[300];
  snprintf(needle, sizeof needle, "\"%s", prefix);
  for (const char *p = body; (p = strstr(p, needle)); p++) n++;
  return n;
}

#endif
