#!/usr/bin/env python3
# SPDX-License-Identifier: MIT (see LICENSE)
"""Start a throw-away local etcd cluster (1..N members) for tests.

Library:
    from etcd_cluster import EtcdCluster
    with EtcdCluster(members=3) as c:
        c.endpoints()            # ["http://127.0.0.1:p1", ...]
        c.call("/v3/kv/put", {"key": b64("a"), "value": b64("1")})
        c.leader()               # member index of the raft leader
        c.kill(i); c.restart(i)  # SIGKILL a member / start it again on the same ports + data
        c.compact(rev)
        c.enable_auth("root", "pw")
    # stop_all() runs on exit of the with block, at interpreter exit and on SIGTERM.

CLI:
    python3 etcd_cluster.py --members 3
    -> prints "ENDPOINTS http://127.0.0.1:p1,..." and runs until SIGTERM/SIGINT.

Only the Python 3 standard library and the `etcd` binary (Debian etcd-server) are needed.
"""
import argparse
import atexit
import base64
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ETCD_BIN = os.environ.get("ETCD_BIN", "etcd")

_live = set()  # clusters not yet stopped, for the atexit / SIGTERM cleanup
_live_lock = threading.Lock()


def b64(s):
    """str/bytes -> base64 text, as the gateway wants every `bytes` field."""
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def unb64(s):
    return base64.b64decode(s or "")


def prefix_end(prefix):
    """range_end for a prefix scan: drop trailing 0xff bytes, add 1 to the last byte."""
    p = bytearray(prefix.encode() if isinstance(prefix, str) else prefix)
    while p and p[-1] == 0xFF:
        p.pop()
    if not p:
        return b"\0"  # "every key >= key"
    p[-1] += 1
    return bytes(p)


def _free_ports(n):
    # Hold all sockets open until every port is chosen so the same port is not handed out twice.
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent():
    # Linux PR_SET_PDEATHSIG: if this Python process dies without cleanup (SIGKILL),
    # the kernel still SIGKILLs the etcd children. Best effort.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:
        pass


def http_json(url, body=None, token=None, timeout=5.0):
    """POST JSON (GET if body is None). Returns (status, parsed JSON or raw text)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", token)  # etcd wants the bare token, no "Bearer"
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


class Member:
    def __init__(self, name, client_port, peer_port, data_dir, log_path):
        self.name = name
        self.client_port = client_port
        self.peer_port = peer_port
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None
        self.member_id = None  # decimal string as in header.member_id, known once healthy

    @property
    def client_url(self):
        return "http://127.0.0.1:%d" % self.client_port

    @property
    def peer_url(self):
        return "http://127.0.0.1:%d" % self.peer_port

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class EtcdCluster:
    def __init__(self, members=3, etcd_bin=ETCD_BIN, fast_election=True, extra_args=()):
        self.n = members
        self.etcd_bin = etcd_bin
        self.extra_args = list(extra_args)
        # Short raft timers so a lost leader is replaced within about a second.
        self.timing = ["--heartbeat-interval", "50", "--election-timeout", "500"] if fast_election else []
        self.root = None
        self.members = []
        self.token = None  # set by enable_auth(); used by call() when no token is given

    # ---- lifecycle -------------------------------------------------------------------
    def start(self, timeout=20.0):
        with _live_lock:
            _live.add(self)
        try:
            self.root = tempfile.mkdtemp(prefix="etcd-test.")
            ports = _free_ports(2 * self.n)
            for i in range(self.n):
                d = os.path.join(self.root, "m%d" % i)
                self.members.append(Member("m%d" % i, ports[2 * i], ports[2 * i + 1],
                                           d + ".etcd", d + ".log"))
            for m in self.members:
                self._spawn(m)
            self.wait_healthy(timeout=timeout)
        except BaseException:
            self.stop_all()
            raise
        return self

    def _spawn(self, m):
        initial = ",".join("%s=%s" % (x.name, x.peer_url) for x in self.members)
        cmd = [self.etcd_bin, "--name", m.name, "--data-dir", m.data_dir,
               "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
               "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
               # Ignored by etcd when the data dir already exists (restart case).
               "--initial-cluster", initial, "--initial-cluster-state", "new",
               "--initial-cluster-token", os.path.basename(self.root),
               "--logger", "zap", "--log-outputs", "stderr"] + self.timing + self.extra_args
        log = open(m.log_path, "ab")
        try:
            m.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                      preexec_fn=_die_with_parent)
        finally:
            log.close()

    def wait_healthy(self, members=None, timeout=20.0):
        """Wait until each member (default: all live ones) answers a linearizable range
        through the gateway, which needs a leader. Learns each member's id on the way."""
        todo = list(members if members is not None else [m for m in self.members if m.alive()])
        deadline = time.time() + timeout
        while todo:
            m = todo[0]
            if not m.alive():
                raise RuntimeError("etcd %s exited (rc %s), log:\n%s" % (m.name, m.proc.poll(), self.log_tail(m)))
            try:
                st, body = http_json(m.client_url + "/v3/kv/range", {"key": b64("health")},
                                     token=self.token, timeout=1.0)
                if st == 200 and "header" in body:
                    m.member_id = body["header"]["member_id"]
                    todo.pop(0)
                    continue
            except (OSError, ValueError):
                pass
            if time.time() > deadline:
                raise TimeoutError("etcd %s not healthy after %.0fs, log:\n%s" % (m.name, timeout, self.log_tail(m)))
            time.sleep(0.05)

    def stop_all(self):
        """Kill every member and remove the temp dir. Idempotent, never raises."""
        for m in self.members:
            if m.alive():
                try:
                    m.proc.kill()
                    m.proc.wait(timeout=5)
                except Exception:
                    pass
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
        with _live_lock:
            _live.discard(self)

    def __enter__(self):
        return self.start() if not self.members else self

    def __exit__(self, *exc):
        self.stop_all()

    # ---- queries ---------------------------------------------------------------------
    def endpoints(self):
        return [m.client_url for m in self.members]

    def member(self, i):
        return self.members[i] if isinstance(i, int) else i

    def call(self, path, body=None, member=None, token=None, timeout=5.0):
        """POST `body` to `path` on `member` (default: the first live one)."""
        m = self.member(member) if member is not None else next(x for x in self.members if x.alive())
        return http_json(m.client_url + path, {} if body is None else body,
                         token=token or self.token, timeout=timeout)

    def leader(self, timeout=10.0):
        """Index of the current leader, from /v3/maintenance/status on a live member."""
        deadline = time.time() + timeout
        while True:
            for m in self.members:
                if not m.alive():
                    continue
                try:
                    st, body = self.call("/v3/maintenance/status", {}, member=m, timeout=1.0)
                except OSError:
                    continue
                lead = body.get("leader") if st == 200 else None
                for i, x in enumerate(self.members):
                    if lead and x.member_id == lead and x.alive():
                        return i
            if time.time() > deadline:
                raise TimeoutError("no leader among live members")
            time.sleep(0.05)

    def log_tail(self, member, n=20):
        try:
            with open(self.member(member).log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode(errors="replace")
        except OSError:
            return "(no log)"

    # ---- faults and admin ------------------------------------------------------------
    def kill(self, member):
        m = self.member(member)
        if m.alive():
            m.proc.send_signal(signal.SIGKILL)
            m.proc.wait()

    def restart(self, member, timeout=20.0):
        """Start a killed member again with the same ports and data dir; wait until it serves."""
        m = self.member(member)
        self.kill(m)
        self._spawn(m)
        self.wait_healthy([m], timeout=timeout)

    def compact(self, revision, physical=True):
        st, body = self.call("/v3/kv/compaction", {"revision": str(revision), "physical": physical})
        if st != 200:
            raise RuntimeError("compaction failed: %s %s" % (st, body))
        return body

    def enable_auth(self, user="root", password="root"):
        """Create `root` (and `user` with read-write on every key, if not root), enable
        auth, and keep a token for `user` in self.token so later call()s still work."""
        def ok(path, body):
            st, resp = self.call(path, body)
            if st != 200:
                raise RuntimeError("%s failed: %s %s" % (path, st, resp))
        ok("/v3/auth/user/add", {"name": "root", "password": password})
        ok("/v3/auth/role/add", {"name": "root"})  # auth/enable demands root has role root
        ok("/v3/auth/user/grant", {"user": "root", "role": "root"})
        if user != "root":
            ok("/v3/auth/user/add", {"name": user, "password": password})
            ok("/v3/auth/role/add", {"name": user})
            ok("/v3/auth/role/grant", {"name": user, "perm": {
                "permType": "READWRITE", "key": b64("\0"), "range_end": b64("\0")}})
            ok("/v3/auth/user/grant", {"user": user, "role": user})
        ok("/v3/auth/enable", {})
        st, resp = self.call("/v3/auth/authenticate", {"name": user, "password": password}, token=None)
        if st != 200:
            raise RuntimeError("authenticate failed: %s %s" % (st, resp))
        self.token = resp["token"]
        return self.token


def _cleanup_all():
    with _live_lock:
        clusters = list(_live)
    for c in clusters:
        c.stop_all()


def _on_sigterm(signum, frame):
    _cleanup_all()
    sys.exit(128 + signum)


atexit.register(_cleanup_all)
if threading.current_thread() is threading.main_thread():
    # Only install if nobody else did; a SIGTERM'd test run must not leak etcd processes.
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--auth", metavar="USER:PASSWORD", help="enable auth with this user")
    a = ap.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    c = EtcdCluster(members=a.members).start()
    try:
        if a.auth:
            user, _, pw = a.auth.partition(":")
            c.enable_auth(user, pw)
        print("ENDPOINTS " + ",".join(c.endpoints()), flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        c.stop_all()


if __name__ == "__main__":
    main()
