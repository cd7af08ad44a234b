#!/usr/bin/env python3
# SPDX-License-Identifier: MIT (see LICENSE)
"""Self-test for the fake Consul and Vault servers: starts each as a subprocess and
exercises every documented behaviour and fault over HTTP with urllib.

Prints one line per failure and "N passed, M failed"; exits 1 when anything failed.
"""

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "s3cr3t"
results = {"passed": 0, "failed": 0}
results_lock = threading.Lock()  # the Vault TTL tests run in a second thread


def check(name, condition, detail=""):
    with results_lock:
        results["passed" if condition else "failed"] += 1
    if not condition:
        print("FAIL %s %s" % (name, detail), flush=True)


class Server:
    """One fake server in a subprocess, and a urllib client for it."""

    def __init__(self, script, *args):
        command = [sys.executable, os.path.join(HERE, script), "--port", "0", *args]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("LISTENING "):
            raise RuntimeError("%s did not start: %r" % (script, line))
        self.base = "http://127.0.0.1:%d" % int(line.split()[1])

    def call(self, method, path, body=None, headers=None, timeout=10):
        """(status, headers, body bytes); status None when the connection died without a response."""
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()
        except (urllib.error.URLError, ConnectionError, OSError) as err:
            return None, {}, str(err).encode()

    def control(self, name, **spec):
        status, _, body = self.call("POST", "/_test/" + name, spec)
        if status != 200:
            raise RuntimeError("control %s: %s %s" % (name, status, body))

    def stop(self, signum=signal.SIGTERM):
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "hung"


def timed(function, *args, **kwargs):
    start = time.monotonic()
    result = function(*args, **kwargs)
    return time.monotonic() - start, result


def in_background(function, *args, **kwargs):
    """Start function in a thread; the returned callable joins it and gives (seconds, result)."""
    box = {}
    thread = threading.Thread(target=lambda: box.update(value=timed(function, *args, **kwargs)))
    thread.start()
    time.sleep(0.2)  # let the request reach the server and block
    return lambda: (thread.join(), box["value"])[1]


def index_of(headers):
    return int(headers.get("X-Consul-Index", "-1"))


# ---------------------------------------------------------------- Consul


def test_consul_kv(consul):
    status, headers, _ = consul.call("GET", "/v1/kv/missing")
    check("missing key is 404", status == 404)
    check("fresh store index is 1, never 0", headers.get("X-Consul-Index") == "1")
    check("meta headers", headers.get("X-Consul-KnownLeader") == "true"
          and headers.get("X-Consul-LastContact") == "0")

    status, _, body = consul.call("PUT", "/v1/kv/app/db/host", b"db1")
    check("PUT returns true", status == 200 and body == b"true", body)
    status, headers, body = consul.call("GET", "/v1/kv/app/db/host")
    entry = json.loads(body)[0] if status == 200 else {}
    fields = {"LockIndex", "Key", "Flags", "Value", "CreateIndex", "ModifyIndex"}
    check("GET entry shape", set(entry) == fields, entry)
    check("GET value is base64", base64.b64decode(entry.get("Value", "")) == b"db1")
    check("key index is its ModifyIndex", index_of(headers) == entry.get("ModifyIndex"))
    status, headers, body = consul.call("GET", "/v1/kv/app/db/host?raw")
    check("?raw gives the bytes", status == 200 and body == b"db1"
          and headers["Content-Type"] == "text/plain")

    consul.call("PUT", "/v1/kv/app/db/port?flags=42", b"5432")
    consul.call("PUT", "/v1/kv/app/name", b"")
    consul.call("PUT", "/v1/kv/other", b"x")
    status, headers, body = consul.call("GET", "/v1/kv/app/?recurse")
    entries = json.loads(body)
    check("?recurse lists the prefix in key order",
          [e["Key"] for e in entries] == ["app/db/host", "app/db/port", "app/name"])
    check("prefix index is its highest ModifyIndex",
          index_of(headers) == max(e["ModifyIndex"] for e in entries))
    check("flags kept", entries[1]["Flags"] == 42)
    check("empty value is null", entries[2]["Value"] is None)
    status, _, body = consul.call("GET", "/v1/kv/app/?keys")
    check("?keys", json.loads(body) == ["app/db/host", "app/db/port", "app/name"], body)
    status, _, body = consul.call("GET", "/v1/kv/app/?keys&separator=/")
    check("?keys&separator=/", json.loads(body) == ["app/db/", "app/name"], body)
    status, _, body = consul.call("GET", "/v1/kv/?keys&seperator=/")
    check("old 'seperator' spelling", json.loads(body) == ["app/", "other"], body)
    status, headers, _ = consul.call("GET", "/v1/kv/nothing/?recurse")
    check("empty prefix is 404 with an index", status == 404 and index_of(headers) >= 1)
    status, _, body = consul.call("GET", "/v1/kv/?keys")
    check("root ?keys never 404", status == 200 and len(json.loads(body)) == 4)


def test_consul_cas_delete(consul):
    consul.call("PUT", "/v1/kv/cas/k", b"1")
    _, headers, _ = consul.call("GET", "/v1/kv/cas/k")
    index = index_of(headers)
    def put_cas(cas):
        return consul.call("PUT", "/v1/kv/cas/k?cas=%d" % cas, b"2")[2]

    check("cas=0 on an existing key fails", put_cas(0) == b"false")
    check("cas with a stale index fails", put_cas(index - 1) == b"false")
    check("cas with the ModifyIndex wins", put_cas(index) == b"true")
    check("cas=0 creates a new key", consul.call("PUT", "/v1/kv/cas/new?cas=0", b"n")[2] == b"true")
    check("cas with acquire conflicts", consul.call("PUT", "/v1/kv/cas/k?cas=1&acquire=x", b"")[0] == 400)
    check("DELETE cas mismatch", consul.call("DELETE", "/v1/kv/cas/k?cas=1")[2] == b"false")
    check("DELETE", consul.call("DELETE", "/v1/kv/cas/new")[2] == b"true")
    check("deleted key is 404", consul.call("GET", "/v1/kv/cas/new")[0] == 404)
    check("DELETE recurse+cas conflicts", consul.call("DELETE", "/v1/kv/cas/?recurse&cas=1")[0] == 400)
    consul.call("DELETE", "/v1/kv/cas/?recurse")
    check("DELETE ?recurse empties the prefix", consul.call("GET", "/v1/kv/cas/?recurse")[0] == 404)


def test_consul_validation(consul):
    status, _, body = consul.call("GET", "/v1/kv/x?stale&consistent")
    check("stale+consistent is 400", status == 400 and b"conflicting semantics" in body, body)
    status, _, body = consul.call("GET", "/v1/kv/x?index=1&wait=10")
    check("wait without a unit is 400", status == 400 and body == b"Invalid wait time", body)
    status, _, body = consul.call("GET", "/v1/kv/x?index=abc")
    check("bad index is 400", status == 400 and body == b"Invalid index", body)
    status, _, body = consul.call("GET", "/v1/kv//x")
    check("leading '/' in key is 400", status == 400 and b"must not begin" in body, body)
    status, _, body = consul.call("GET", "/v1/kv/a/../b")
    check("path traversal is 400", status == 400 and b"traversal" in body, body)
    status, _, body = consul.call("GET", "/v1/kv/")
    check("GET without a key is 400", status == 400 and body == b"Missing key name", body)
    status, _, body = consul.call("PUT", "/v1/kv/big", b"x" * (512 * 1024 + 1))
    check("value over 512 KiB is 413", status == 413 and b"too large" in body, body[:80])
    check("value of exactly 512 KiB fits", consul.call("PUT", "/v1/kv/big", b"x" * 512 * 1024)[0] == 200)
    status, headers, _ = consul.call("GET", "/v1/kv/big?stale")
    check("?stale accepted", status == 200 and headers.get("X-Consul-Effective-Consistency") == "stale")
    status, headers, _ = consul.call("GET", "/v1/kv/big?consistent")
    check("?consistent accepted",
          status == 200 and headers.get("X-Consul-Effective-Consistency") == "consistent")
    check("PATCH is 405", consul.call("PATCH", "/v1/kv/big", b"")[0] == 405)
    check("unknown dc is 500", consul.call("GET", "/v1/kv/big?dc=elsewhere")[0] == 500)


def test_consul_blocking(consul):
    consul.call("PUT", "/v1/kv/watch/a", b"1")
    _, headers, _ = consul.call("GET", "/v1/kv/watch/a")
    index = index_of(headers)

    join = in_background(consul.call, "GET", "/v1/kv/watch/a?index=%d&wait=5s" % index)
    consul.call("PUT", "/v1/kv/watch/a", b"2")
    elapsed, (status, headers, body) = join()
    check("blocking query returns on change", elapsed < 1.5 and index_of(headers) > index, elapsed)
    check("... with the new data", base64.b64decode(json.loads(body)[0]["Value"]) == b"2")
    index = index_of(headers)

    elapsed, (status, headers, _) = timed(consul.call, "GET", "/v1/kv/watch/a?index=%d&wait=400ms" % index)
    check("blocking query times out after wait (+ jitter <= wait/16)", 0.39 <= elapsed < 0.525, elapsed)
    check("timed out query returns the same index", status == 200 and index_of(headers) == index)

    join = in_background(consul.call, "GET", "/v1/kv/watch/a?index=%d&wait=600ms" % index)
    consul.call("PUT", "/v1/kv/unrelated", b"u")
    elapsed, (_, headers, _) = join()
    check("a live key ignores writes elsewhere", elapsed >= 0.55 and index_of(headers) == index, elapsed)

    join = in_background(consul.call, "GET", "/v1/kv/watch/a?index=%d&wait=5s" % index)
    consul.call("PUT", "/v1/kv/watch/a", b"2")
    _, (_, headers, body) = join()
    check("rewriting the same value: new index, same data",
          index_of(headers) > index and base64.b64decode(json.loads(body)[0]["Value"]) == b"2")

    _, headers, _ = consul.call("GET", "/v1/kv/watch/missing")
    missing_index = index_of(headers)
    join = in_background(consul.call, "GET", "/v1/kv/watch/missing?index=%d&wait=5s" % missing_index)
    consul.call("PUT", "/v1/kv/elsewhere", b"e")
    elapsed, (status, headers, _) = join()
    check("a missing key wakes on any KV write: new index, still 404",
          elapsed < 1.5 and status == 404 and index_of(headers) > missing_index, (elapsed, status))

    _, headers, _ = consul.call("GET", "/v1/kv/watch/?recurse")
    prefix_index = index_of(headers)
    join = in_background(consul.call, "GET", "/v1/kv/watch/?recurse&index=%d&wait=5s" % prefix_index)
    consul.call("PUT", "/v1/kv/watch/b", b"b")
    elapsed, (_, headers, body) = join()
    check("prefix watch wakes on a new key", elapsed < 1.5 and len(json.loads(body)) == 2)

    future = "/v1/kv/watch/a?index=%d&wait=0s" % (index_of(headers) + 10)
    check("wait=0 means the default (blocks)", consul.call("GET", future, timeout=0.5)[0] is None)


def test_consul_index_rules(consul):
    consul.call("PUT", "/v1/kv/idx/a", b"a")
    consul.call("PUT", "/v1/kv/idx/z", b"z")
    _, headers, _ = consul.call("GET", "/v1/kv/idx/?recurse")
    before = index_of(headers)
    consul.call("DELETE", "/v1/kv/idx/z")
    _, headers, _ = consul.call("GET", "/v1/kv/idx/?recurse")
    after_delete = index_of(headers)
    check("deleting the newest key raises the prefix index (tombstone)", after_delete > before)
    consul.control("reap_tombstones")
    _, headers, body = consul.call("GET", "/v1/kv/idx/?recurse")
    check("tombstone GC makes the prefix index go backwards", index_of(headers) < after_delete)

    consul.control("raft_writes", count=5)
    _, headers, _ = consul.call("GET", "/v1/kv/idx/a")
    old = index_of(headers)
    consul.call("PUT", "/v1/kv/idx/a", b"a2")
    _, headers, _ = consul.call("GET", "/v1/kv/idx/a")
    check("other raft writes leave gaps in KV indexes", index_of(headers) >= old + 6)

    high = index_of(headers)
    consul.control("reset_index", index=3)
    _, headers, body = consul.call("GET", "/v1/kv/idx/a")
    check("reset_index: the index goes backwards, data kept", index_of(headers) <= 3
          and base64.b64decode(json.loads(body)[0]["Value"]) == b"a2", index_of(headers))
    elapsed, (_, headers, _) = timed(consul.call, "GET", "/v1/kv/idx/a?index=%d&wait=300ms" % high)
    check("a blocking query above a reset index waits out its time",
          elapsed >= 0.29 and index_of(headers) <= 3)
    consul.call("PUT", "/v1/kv/idx/a", b"a3")
    _, headers, _ = consul.call("GET", "/v1/kv/idx/a")
    check("writes after a reset continue from the low index", 3 < index_of(headers) < high)


def test_consul_broken_blocking(consul):
    """/_test/blocking: only requests carrying ?index break; plain GETs keep working."""
    consul.call("PUT", "/v1/kv/hy/a", b"1")
    status, headers, _ = consul.call("GET", "/v1/kv/hy/a")
    index = index_of(headers)
    blocking = "/v1/kv/hy/a?index=%d&wait=5s" % index

    consul.control("blocking", mode="cut")
    check("blocking cut: closed without an answer", consul.call("GET", blocking)[0] is None)
    check("blocking cut: also a stale index", consul.call("GET", "/v1/kv/hy/a?index=1")[0] is None)
    status, _, body = consul.call("GET", "/v1/kv/hy/a")
    check("blocking cut: a plain GET works", status == 200
          and base64.b64decode(json.loads(body)[0]["Value"]) == b"1", status)
    check("blocking cut: prefix plain GET works", consul.call("GET", "/v1/kv/hy/?recurse")[0] == 200)
    check("blocking cut: writes work", consul.call("PUT", "/v1/kv/hy/a", b"2")[0] == 200)

    consul.control("blocking", mode="hang", ms=5000)
    elapsed, (status, _, _) = timed(consul.call, "GET", blocking, timeout=0.5)
    check("blocking hang: past the client's timeout", status is None and elapsed >= 0.45, elapsed)
    elapsed, (status, _, _) = timed(consul.call, "GET", "/v1/kv/hy/a")
    check("blocking hang: a plain GET answers at once", status == 200 and elapsed < 0.4, elapsed)
    join = in_background(consul.call, "GET", blocking)
    consul.control("blocking", mode="off")
    elapsed, (status, _, _) = join()
    check("blocking hang: turning it off ends a held query (no answer)",
          status is None and elapsed < 2, (status, elapsed))

    consul.control("blocking", mode="fail", status=502)
    status, _, body = consul.call("GET", blocking)
    check("blocking fail: the status asked for", status == 502, status)
    check("blocking fail: plain GET fine", consul.call("GET", "/v1/kv/hy/a")[0] == 200)
    consul.control("blocking", mode="fail")
    check("blocking fail: 504 by default", consul.call("GET", blocking)[0] == 504)
    check("blocking: unknown mode is 400",
          consul.call("POST", "/_test/blocking", {"mode": "nope"})[0] == 400)

    consul.control("blocking", mode="cut_after", ms=300)
    _, headers, _ = consul.call("GET", "/v1/kv/hy/a")
    index = index_of(headers)
    blocking = "/v1/kv/hy/a?index=%d&wait=5s" % index
    elapsed, (status, _, _) = timed(consul.call, "GET", blocking)
    check("blocking cut_after: a query still open after ms is cut",
          status is None and 0.25 <= elapsed < 2, (status, elapsed))
    join = in_background(consul.call, "GET", blocking)
    consul.call("PUT", "/v1/kv/hy/a", b"4")
    elapsed, (status, headers, _) = join()
    check("blocking cut_after: one a change answers sooner gets through",
          status == 200 and index_of(headers) > index, (status, elapsed))

    consul.control("clear")
    _, headers, _ = consul.call("GET", "/v1/kv/hy/a")
    index = index_of(headers)
    join = in_background(consul.call, "GET", "/v1/kv/hy/a?index=%d&wait=5s" % index)
    consul.call("PUT", "/v1/kv/hy/a", b"3")
    elapsed, (status, headers, _) = join()
    check("blocking: clear makes blocking queries work again",
          status == 200 and index_of(headers) > index and elapsed < 1.5, (status, elapsed))


def test_consul_leader(consul):
    consul.control("leader", known_leader=False, last_contact_ms=7000)
    status, _, body = consul.call("GET", "/v1/kv/idx/a")
    check("no leader: default read is 500", status == 500 and body == b"No cluster leader", body)
    status, headers, _ = consul.call("GET", "/v1/kv/idx/a?stale")
    check("no leader: stale read served with KnownLeader false and LastContact",
          status == 200 and headers.get("X-Consul-KnownLeader") == "false"
          and headers.get("X-Consul-LastContact") == "7000")
    check("no leader: writes fail", consul.call("PUT", "/v1/kv/idx/a", b"x")[0] == 500)
    check("/v1/status/leader empty", consul.call("GET", "/v1/status/leader")[2] == b'""')
    consul.control("clear")
    check("clear restores the leader", consul.call("GET", "/v1/kv/idx/a")[0] == 200)


def test_consul_acl():
    consul = Server("consul_server.py", "--token", TOKEN)
    try:
        consul.call("PUT", "/v1/kv/acl/a", b"v", {"X-Consul-Token": TOKEN})
        status, _, body = consul.call("GET", "/v1/kv/acl/a")
        denial = b"Permission denied: anonymous token lacks permission 'key:read' on \"acl/a\""
        check("ACL: no token is 403 for the anonymous token",
              status == 403 and body.startswith(denial), body)
        status, _, body = consul.call("GET", "/v1/kv/acl/a", headers={"X-Consul-Token": "wrong"})
        check("ACL: unknown token is 403 ACL not found", status == 403 and body == b"ACL not found", body)
        check("ACL: X-Consul-Token",
              consul.call("GET", "/v1/kv/acl/a", headers={"X-Consul-Token": TOKEN})[0] == 200)
        check("ACL: ?token=", consul.call("GET", "/v1/kv/acl/a?token=" + TOKEN)[0] == 200)
        check("ACL: Authorization: Bearer",
              consul.call("GET", "/v1/kv/acl/a", headers={"Authorization": "Bearer " + TOKEN})[0] == 200)
        status, _, body = consul.call("PUT", "/v1/kv/acl/a", b"x")
        check("ACL: anonymous write is 403 key:write", status == 403 and b"'key:write'" in body, body)
        status, headers, _ = consul.call("GET", "/v1/kv/acl/?recurse")
        check("ACL: anonymous recurse is filtered to a 404, not refused",
              status == 404 and headers.get("X-Consul-Results-Filtered-By-ACLs") == "true")
        status, headers, body = consul.call("GET", "/v1/kv/?keys")
        check("ACL: anonymous root ?keys is 200 []", status == 200 and body == b"[]"
              and headers.get("X-Consul-Results-Filtered-By-ACLs") == "true")
    finally:
        check("Consul (ACL) exits 0 on SIGINT", consul.stop(signal.SIGINT) == 0)


# ---------------------------------------------------------------- faults (shared code, tried on both)


def test_faults(server, name, read_path, headers):
    def get():
        return server.call("GET", read_path, headers=headers)

    server.control("fail", status=500, count=2)
    statuses = [get()[0] for _ in range(3)]
    check(name + ": fail 500 x2 then recovers", statuses == [500, 500, 200], statuses)
    server.control("fail", status=429, retry_after=3)
    status, reply_headers, _ = get()
    check(name + ": 429 with Retry-After", status == 429 and reply_headers.get("Retry-After") == "3")
    server.control("fail", status=403, path="/v1/elsewhere")
    check(name + ": fail limited by path", get()[0] == 200)
    server.control("clear")
    server.control("delay", ms=300, count=1)
    elapsed, (status, _, _) = timed(get)
    check(name + ": delay", status == 200 and elapsed >= 0.29, elapsed)
    check(name + ": delay count consumed", timed(get)[0] < 0.25)

    status, _, good = get()
    server.control("malformed")
    status, reply_headers, body = get()
    try:
        json.loads(body)
        parsed = True
    except ValueError:
        parsed = False
    check(name + ": malformed body, complete Content-Length",
          not parsed and int(reply_headers["Content-Length"]) == len(body) and len(body) < len(good))
    server.control("oversized", bytes=3 * 1024 * 1024)
    status, _, body = get()
    check(name + ": oversized body is the same JSON, padded",
          len(body) == 3 * 1024 * 1024 and json.loads(body).__class__ == json.loads(good).__class__)
    server.control("drop")
    check(name + ": drop closes without a response", get()[0] is None)
    server.control("drop", reset=True)
    check(name + ": drop with RST", get()[0] is None)
    check(name + ": next request fine after drops", get()[0] == 200)
    server.control("fail", status=500, count=0)
    server.control("clear")
    check(name + ": clear removes unlimited faults", get()[0] == 200)
    status, _, body = server.call("GET", "/_test/requests")
    check(name + ": /_test/requests counts API calls", status == 200 and json.loads(body)["count"] > 10)
    check(name + ": bad control body is 400", server.call("POST", "/_test/fail", {"count": 1})[0] == 400)
    check(name + ": unknown control is 404", server.call("POST", "/_test/nope", {})[0] == 404)


def test_fault_blocks_write(consul):
    consul.call("PUT", "/v1/kv/f", b"before")
    consul.control("fail", status=500)
    check("a failed PUT is not applied", consul.call("PUT", "/v1/kv/f", b"after")[0] == 500
          and consul.call("GET", "/v1/kv/f?raw")[2] == b"before")


# ---------------------------------------------------------------- Vault


def vault_headers(token="root"):
    return {"X-Vault-Token": token}


def test_vault_auth_and_health(vault):
    status, _, body = vault.call("GET", "/v1/sys/health")
    check("health without a token", status == 200 and json.loads(body)["sealed"] is False)
    status, _, body = vault.call("GET", "/v1/secret/data/x")
    denied = {"errors": ["permission denied"]}
    check("no token is 403 permission denied", status == 403 and json.loads(body) == denied)
    check("bad token is 403",
          vault.call("GET", "/v1/secret/data/x", headers=vault_headers("bad"))[0] == 403)
    check("Authorization: Bearer accepted",
          vault.call("GET", "/v1/secret/data/x", headers={"Authorization": "Bearer root"})[0] == 404)
    status, _, body = vault.call("GET", "/v1/nowhere/x", headers=vault_headers())
    check("unknown route 404", status == 404 and b"no handler for route" in body)
    vault.control("seal")
    check("sealed: health 503", vault.call("GET", "/v1/sys/health")[0] == 503)
    status, _, body = vault.call("GET", "/v1/secret/data/x", headers=vault_headers())
    check("sealed: API 503 Vault is sealed", status == 503 and b"Vault is sealed" in body)
    vault.control("clear")
    check("clear unseals", vault.call("GET", "/v1/sys/health")[0] == 200)


def test_vault_kv(vault):
    h = vault_headers()

    def read(path):
        status, _, body = vault.call("GET", "/v1/secret/data/" + path, headers=h)
        return status, json.loads(body)

    def write(path, body, method="POST"):
        status, _, reply = vault.call(method, "/v1/secret/data/" + path, body, h)
        return status, json.loads(reply)

    status, reply = read("app/cfg")
    check("missing secret is 404 with empty errors", status == 404 and reply == {"errors": []})
    status, reply = write("app/cfg", {"data": {"a": "1"}})
    written = reply.get("data") or {}
    check("write returns version metadata", written.get("version") == 1
          and set(written) >= {"created_time", "deletion_time", "destroyed"}, reply)
    write("app/cfg", {"data": {"a": "2"}}, "PUT")
    status, reply = read("app/cfg")
    envelope_fields = {"request_id", "lease_id", "renewable", "lease_duration", "data",
                       "wrap_info", "warnings", "auth"}
    check("read envelope", set(reply) >= envelope_fields and reply["lease_duration"] == 0
          and reply["renewable"] is False and reply["lease_id"] == "")
    metadata = reply["data"]["metadata"]
    check("read latest", reply["data"]["data"] == {"a": "2"} and metadata["version"] == 2)
    check("metadata fields", set(metadata) == {"created_time", "custom_metadata", "deletion_time",
                                               "destroyed", "version"})
    check("read ?version=1", read("app/cfg?version=1")[1]["data"]["data"] == {"a": "1"})
    check("read a version that never was is 404", read("app/cfg?version=9")[0] == 404)

    status, reply = write("app/cfg", {"data": {"a": "3"}, "options": {"cas": 1}})
    mismatch = ["check-and-set parameter did not match the current version"]
    check("cas mismatch is 400", status == 400 and reply["errors"] == mismatch, reply)
    check("cas=0 on an existing secret is 400",
          write("app/cfg", {"data": {}, "options": {"cas": 0}})[0] == 400)
    check("cas with the current version",
          write("app/cfg", {"data": {"a": "3"}, "options": {"cas": 2}})[0] == 200)
    status, reply = write("app/cfg", {"nodata": 1})
    check("write without data is 400", status == 400 and reply["errors"] == ["no data provided"])

    check("DELETE is 204", vault.call("DELETE", "/v1/secret/data/app/cfg", headers=h)[0] == 204)
    status, reply = read("app/cfg")
    check("soft-deleted latest: 404 with data.data null and deletion_time", status == 404
          and reply["data"]["data"] is None and reply["data"]["metadata"]["deletion_time"] != "", reply)
    check("older version still readable", read("app/cfg?version=2")[0] == 200)
    status, _, body = vault.call("GET", "/v1/secret/metadata/app/cfg", headers=h)
    meta = json.loads(body)["data"]
    check("metadata", meta["current_version"] == 3 and meta["versions"]["3"]["deletion_time"] != ""
          and meta["max_versions"] == 0, meta)
    undelete = "/v1/secret/undelete/app/cfg"
    check("undelete is 204", vault.call("POST", undelete, {"versions": [3]}, h)[0] == 204)
    status, reply = read("app/cfg")
    check("undeleted version readable", status == 200 and reply["data"]["data"] == {"a": "3"})
    check("undelete without versions is 400", vault.call("POST", undelete, {}, h)[0] == 400)
    vault.call("POST", "/v1/secret/destroy/app/cfg", {"versions": [3]}, h)
    status, reply = read("app/cfg")
    check("destroyed: 404 with destroyed true", status == 404 and reply["data"]["metadata"]["destroyed"])

    write("app/other", {"data": {"b": 1}})
    write("top", {"data": {"c": 1}})
    status, _, body = vault.call("LIST", "/v1/secret/metadata/", headers=h)
    check("LIST metadata", json.loads(body)["data"]["keys"] == ["app/", "top"], body)
    status, _, body = vault.call("GET", "/v1/secret/metadata/app?list=true", headers=h)
    check("GET ?list=true", json.loads(body)["data"]["keys"] == ["cfg", "other"], body)
    check("LIST of nothing is 404", vault.call("LIST", "/v1/secret/metadata/none/", headers=h)[0] == 404)
    for n in range(12):
        write("many", {"data": {"n": n}})
    meta = json.loads(vault.call("GET", "/v1/secret/metadata/many", headers=h)[2])["data"]
    check("only 10 versions kept", len(meta["versions"]) == 10 and meta["oldest_version"] == 3)
    status = vault.call("DELETE", "/v1/secret/metadata/many", headers=h)[0]
    check("metadata DELETE removes all", status == 204 and read("many")[0] == 404)


def test_vault_tokens_and_leases(vault):
    h = vault_headers()
    body = {"ttl": "1s", "explicit_max_ttl": 1.5, "renewable": True, "policies": ["app"]}
    status, _, reply = vault.call("POST", "/v1/auth/token/create", body, h)
    auth = json.loads(reply)["auth"]
    check("token create", status == 200 and auth["lease_duration"] == 1 and auth["renewable"] is True
          and auth["policies"] == ["app"] and auth["client_token"], reply)
    child = vault_headers(auth["client_token"])
    status, _, reply = vault.call("GET", "/v1/auth/token/lookup-self", headers=child)
    data = json.loads(reply)["data"]
    check("lookup-self", status == 200 and data["ttl"] == 1 and data["explicit_max_ttl"] == 1
          and data["expire_time"] and data["renewable"] is True, data)
    status, _, reply = vault.call("POST", "/v1/auth/token/renew-self", {"increment": "10s"}, child)
    reply = json.loads(reply)
    check("renew-self is capped by explicit_max_ttl, with a warning",
          status == 200 and reply["auth"]["lease_duration"] <= 2 and reply["warnings"]
          and "capped" in reply["warnings"][0], reply)

    status, _, reply = vault.call("GET", "/v1/database/creds/readonly", headers=h)
    lease = json.loads(reply)
    check("dynamic creds", status == 200 and lease["renewable"] is True and lease["lease_duration"] == 1
          and lease["lease_id"].startswith("database/creds/readonly/")
          and set(lease["data"]) == {"username", "password"}, reply)
    renew = {"lease_id": lease["lease_id"], "increment": 60}
    status, _, reply = vault.call("PUT", "/v1/sys/leases/renew", renew, h)
    reply = json.loads(reply)
    check("lease renew capped at the max TTL", status == 200 and reply["lease_id"] == lease["lease_id"]
          and 1 <= reply["lease_duration"] <= 2 and reply["warnings"], reply)
    status, _, reply = vault.call("PUT", "/v1/sys/leases/lookup", {"lease_id": lease["lease_id"]}, h)
    check("lease lookup", status == 200 and json.loads(reply)["data"]["renewable"] is True)

    time.sleep(2.1)  # past both max TTLs (1.5 s)
    status, _, reply = vault.call("GET", "/v1/auth/token/lookup-self", headers=child)
    check("token past its max TTL is 403",
          status == 403 and json.loads(reply) == {"errors": ["permission denied"]})
    status, _, reply = vault.call("PUT", "/v1/sys/leases/renew", renew, h)
    check("expired lease renewal is 400", status == 400 and b"lease not found" in reply, reply)

    status, _, reply = vault.call("POST", "/v1/auth/token/renew-self", {}, h)
    check("root renew-self is 400", status == 400)
    status, _, reply = vault.call("POST", "/v1/auth/token/create", {"ttl": 60, "renewable": False}, h)
    fixed = vault_headers(json.loads(reply)["auth"]["client_token"])
    status, _, reply = vault.call("POST", "/v1/auth/token/renew-self", {"increment": "1m"}, fixed)
    check("non-renewable renew-self is 400", status == 400 and b"lease is not renewable" in reply, reply)
    status, _, reply = vault.call("POST", "/v1/auth/token/create", {"period": "30s"}, h)
    periodic = vault_headers(json.loads(reply)["auth"]["client_token"])
    status, _, reply = vault.call("POST", "/v1/auth/token/renew-self", {"increment": "1h"}, periodic)
    check("periodic token renews to its period", json.loads(reply)["auth"]["lease_duration"] == 30, reply)
    check("revoke-self 204", vault.call("POST", "/v1/auth/token/revoke-self", {}, periodic)[0] == 204)
    check("revoked token is 403",
          vault.call("GET", "/v1/auth/token/lookup-self", headers=periodic)[0] == 403)
    check("bad ttl is 400", vault.call("POST", "/v1/auth/token/create", {"ttl": "soon"}, h)[0] == 400)

    lease = json.loads(vault.call("GET", "/v1/database/creds/rw", headers=h)[2])
    vault.control("revoke_leases")
    status, _, _ = vault.call("PUT", "/v1/sys/leases/renew", {"lease_id": lease["lease_id"]}, h)
    check("revoked lease renewal is 400", status == 400)


# ---------------------------------------------------------------- main


def main():
    start = time.monotonic()
    consul = Server("consul_server.py")
    vault = Server("vault_server.py", "--lease-ttl", "1", "--lease-max-ttl", "1.5")
    try:
        # Vault's TTL tests sleep; run them beside the Consul tests.
        vault_thread = threading.Thread(target=test_vault_tokens_and_leases, args=(vault,))
        vault_thread.start()
        test_consul_kv(consul)
        test_consul_cas_delete(consul)
        test_consul_validation(consul)
        test_consul_blocking(consul)
        test_consul_index_rules(consul)
        test_consul_leader(consul)
        test_consul_broken_blocking(consul)
        test_consul_acl()
        test_fault_blocks_write(consul)
        test_faults(consul, "consul", "/v1/kv/f", {})
        vault_thread.join()
        test_vault_auth_and_health(vault)
        test_vault_kv(vault)
        vault.call("POST", "/v1/secret/data/f", {"data": {"k": "v"}}, vault_headers())
        test_faults(vault, "vault", "/v1/secret/data/f", vault_headers())
    finally:
        check("Consul exits 0 on SIGTERM", consul.stop() == 0)
        check("Vault exits 0 on SIGTERM", vault.stop() == 0)
    elapsed = time.monotonic() - start
    print("%d passed, %d failed (%.1f s)" % (results["passed"], results["failed"], elapsed))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
