/* SPDX-License-Identifier: MIT (see LICENSE) */
/* nginx_fixture.h: a real nginx (Debian nginx-light) for the network and remote-source
 * tests, on 127.0.0.1 at a free port, in its own temporary directory with its own config
 * (pid, logs and temp paths inside it; one process, no daemon), so it runs as root or
 * not.
 * The test writes files under `www` and may add locations; nginx_stop ends it, and it
 * also dies with the test process (PR_SET_PDEATHSIG) if the test crashes. */
#ifndef RC_TEST_NGINX_FIXTURE_H
#define RC_TEST_NGINX_FIXTURE_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NGINX_ECHO_MODULE "/usr/lib/nginx/modules/ngx_http_echo_module.so"

typedef struct nginx_fixture {
  char dir[512];   /* temporary directory: nginx.conf, logs, tmp/, www/ */
  char www[600];   /* document root */
  int port;        /* plain HTTP on 127.0.0.1 */
  int tls_port;    /* HTTPS on 127.0.0.1 when started with tls, else 0 */
  char cert[600];  /* the self-signed certificate (PEM; also the CA to trust), if tls */
  bool echo;       /* the echo module is loaded (echo, echo_flush, echo_sleep) */
  pid_t pid;
} nginx_fixture;

static nginx_fixture *nginx_running_[4];

static void nginx_sleep_ms_(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A TCP port on 127.0.0.1 that was free a moment ago (0 on failure). */
static int nginx_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static bool nginx_port_open_(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

static const char *nginx_binary_(void) {
  const char *env = getenv("RC_NGINX");
  if (env && *env) return env;
  if (access("/usr/sbin/nginx", X_OK) == 0) return "/usr/sbin/nginx";
  return NULL;
}

/* Writes `n` bytes to `rel` under the document root, creating parent directories. */
static int nginx_write(const nginx_fixture *f, const char *rel, const void *data,
                       size_t n) {
  char p[1200];
  snprintf(p, sizeof p, "%s/%s", f->www, rel);
  for (char *s = p + strlen(f->www) + 1; (s = strchr(s, '/')); s++) {
    *s = '\0';
    mkdir(p, 0755);
    *s = '/';
  }
  FILE *fp = fopen(p, "wb");
  if (!fp) return -1;
  size_t w = fwrite(data, 1, n, fp);
  return fclose(fp) == 0 && w == n ? 0 : -1;
}

/* Appends `s` to `out` replacing @DIR@, @PORT@ and @TLS_PORT@. */
static void nginx_subst_(const nginx_fixture *f, FILE *out, const char *s) {
  while (*s) {
    if (strncmp(s, "@DIR@", 5) == 0) {
      fputs(f->dir, out);
      s += 5;
    } else if (strncmp(s, "@PORT@", 6) == 0) {
      fprintf(out, "%d", f->port);
      s += 6;
    } else if (strncmp(s, "@TLS_PORT@", 10) == 0) {
      fprintf(out, "%d", f->tls_port);
      s += 10;
    } else {
      fputc(*s++, out);
    }
  }
}

static void nginx_print_log_(const nginx_fixture *f) {
  char p[700];
  const char *logs[] = {"error.log", "stderr.log"};
  for (int i = 0; i < 2; i++) {
    snprintf(p, sizeof p, "%s/%s", f->dir, logs[i]);
    FILE *fp = fopen(p, "r");
    if (!fp) continue;
    char line[512];
    while (fgets(line, sizeof line, fp)) fprintf(stderr, "nginx %s: %s", logs[i], line);
    fclose(fp);
  }
}

static int nginx_rm_(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  remove(p);
  return 0;
}

/* Ends nginx (SIGTERM, then SIGKILL after 5 s) and removes its directory unless
 * RC_KEEP_TMP is set. Safe to call twice. */
static void nginx_stop(nginx_fixture *f) {
  if (f->pid > 0) {
    kill(f->pid, SIGTERM);
    int status;
    for (int i = 0; i < 500 && waitpid(f->pid, &status, WNOHANG) == 0; i++) {
      if (i == 499) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, &status, 0);
      }
      nginx_sleep_ms_(10);
    }
    f->pid = 0;
  }
  for (int i = 0; i < 4; i++)
    if (nginx_running_[i] == f) nginx_running_[i] = NULL;
  if (f->dir[0] && !getenv("RC_KEEP_TMP"))
    nftw(f->dir, nginx_rm_, 16, FTW_DEPTH | FTW_PHYS);
  f->dir[0] = '\0';
}

static void nginx_stop_all_(void) {
  for (int i = 0; i < 4; i++)
    if (nginx_running_[i]) nginx_stop(nginx_running_[i]);
}

static int nginx_make_cert_(nginx_fixture *f) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
           "-addext subjectAltName=IP:127.0.0.1 -keyout '%s/key.pem' -out '%s/cert.pem' "
           ">'%s/openssl.log' 2>&1",
           f->dir, f->dir, f->dir);
  if (system(cmd) != 0) return -1;
  snprintf(f->cert, sizeof f->cert, "%s/cert.pem", f->dir);
  return 0;
}

/* Starts nginx serving `www` at f->port (and HTTPS at f->tls_port when `tls`, with a
 * self-signed certificate for 127.0.0.1 made by the openssl CLI). `server_extra` goes
 * into the server block (locations; @DIR@ @PORT@ @TLS_PORT@ are replaced). Returns 0, or
 * -1 after printing why (no nginx, no openssl, nginx refused the config). */
static int nginx_start(nginx_fixture *f, const char *name, const char *server_extra,
                       bool tls) {
  memset(f, 0, sizeof *f);
  const char *bin = nginx_binary_();
  if (!bin) {
    fprintf(stderr, "nginx not found (install nginx-light: scripts/setup --test)\n");
    return -1;
  }
  const char *base = getenv("RC_TEST_TMP");
  if (!base || !*base) base = "/tmp";
  mkdir(base, 0755);
  snprintf(f->dir, sizeof f->dir, "%s/nginx-%s.XXXXXX", base, name);
  if (!mkdtemp(f->dir)) {
    perror("mkdtemp");
    f->dir[0] = '\0';
    return -1;
  }
  char p[700];
  snprintf(f->www, sizeof f->www, "%s/www", f->dir);
  mkdir(f->www, 0755);
  snprintf(p, sizeof p, "%s/tmp", f->dir);
  mkdir(p, 0755);
  f->echo = access(NGINX_ECHO_MODULE, R_OK) == 0;
  if (tls && nginx_make_cert_(f) != 0) {
    fprintf(stderr, "openssl could not make a test certificate\n");
    nginx_print_log_(f);
    nginx_stop(f);
    return -1;
  }
  for (int attempt = 0; attempt < 5; attempt++) {
    f->port = nginx_free_port();
    f->tls_port = tls ? nginx_free_port() : 0;
    snprintf(p, sizeof p, "%s/nginx.conf", f->dir);
    FILE *conf = fopen(p, "w");
    if (!conf) break;
    if (f->echo) fprintf(conf, "load_module %s;\n", NGINX_ECHO_MODULE);
    nginx_subst_(f, conf,
                 "daemon off;\n"
                 "master_process off;\n"
                 "worker_processes 1;\n"
                 "pid @DIR@/nginx.pid;\n"
                 "error_log @DIR@/error.log warn;\n"
                 "events { worker_connections 1024; }\n"
                 "http {\n"
                 "  access_log @DIR@/access.log;\n"
                 "  client_body_temp_path @DIR@/tmp/body;\n"
                 "  proxy_temp_path @DIR@/tmp/proxy;\n"
                 "  fastcgi_temp_path @DIR@/tmp/fastcgi;\n"
                 "  uwsgi_temp_path @DIR@/tmp/uwsgi;\n"
                 "  scgi_temp_path @DIR@/tmp/scgi;\n"
                 "  default_type application/octet-stream;\n"
                 "  types { text/plain txt; application/json json; "
                 "application/x-ndjson ndjson; }\n"
                 "  keepalive_requests 100000;\n"
                 "  keepalive_timeout 60s;\n"
                 "  server {\n"
                 "    listen 127.0.0.1:@PORT@;\n");
    if (tls)
      nginx_subst_(f, conf,
                   "    listen 127.0.0.1:@TLS_PORT@ ssl;\n"
                   "    ssl_certificate @DIR@/cert.pem;\n"
                   "    ssl_certificate_key @DIR@/key.pem;\n");
    nginx_subst_(f, conf, "    server_name localhost;\n    root @DIR@/www;\n");
    if (server_extra) nginx_subst_(f, conf, server_extra);
    fputs("\n  }\n}\n", conf);
    fclose(conf);

    char prefix[600], errlog[700], outlog[700];
    snprintf(prefix, sizeof prefix, "%s/", f->dir);
    snprintf(errlog, sizeof errlog, "%s/error.log", f->dir);
    snprintf(outlog, sizeof outlog, "%s/stderr.log", f->dir);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) break;
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      int fd = open(outlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
      execl(bin, bin, "-p", prefix, "-c", p, "-e", errlog, (char *)NULL);
      _exit(127);
    }
    f->pid = pid;
    for (int i = 0; i < 1000; i++) {  /* up to 10 s */
      int status;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        f->pid = 0;
        break;
      }
      if (nginx_port_open_(f->port) && (!tls || nginx_port_open_(f->tls_port))) {
        for (int k = 0; k < 4; k++)
          if (!nginx_running_[k]) {
            nginx_running_[k] = f;
            break;
          }
        static bool registered;
        if (!registered) atexit(nginx_stop_all_);
        registered = true;
        return 0;
      }
      nginx_sleep_ms_(10);
    }
    if (f->pid > 0) {  /* never came up */
      kill(f->pid, SIGKILL);
      waitpid(f->pid, NULL, 0);
      f->pid = 0;
      break;
    }
    /* nginx exited: most likely a port taken in between; try other ports. */
    snprintf(p, sizeof p, "%s/error.log", f->dir);
    FILE *fp = fopen(p, "r");
    bool in_use = false;
    if (fp) {
      char line[512];
      while (fgets(line, sizeof line, fp))
        if (strstr(line, "Address already in use")) in_use = true;
      fclose(fp);
    }
    if (!in_use) break;
  }
  fprintf(stderr, "nginx did not start\n");
  nginx_print_log_(f);
  nginx_stop(f);
  return -1;
}

#endif
