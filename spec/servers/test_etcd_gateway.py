#!/usr/bin/env python3
# SPDX-License-Identifier: MIT (see LICENSE)
"""Executable record of the etcd v3 JSON gateway behaviour the C etcd source relies on.

Run: python3 spec/servers/test_etcd_gateway.py [-v]
  -v prints every observed JSON body (the samples quoted in ETCD-GATEWAY.md).
Needs the `etcd` binary (Debian etcd-server, 3.4.x). Prints "N passed, M failed"; exit 1 on failure.
"""
import http.client
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from etcd_cluster import EtcdCluster, b64, unb64, prefix_end, http_json  # noqa: E402

VERBOSE = "-v" in sys.argv
passed = failed = 0


def check(name, cond, observed=None):
    global passed, failed
    if cond:
        passed += 1
        print("ok   - " + name)
    else:
        failed += 1
        print("FAIL - %s: observed %s" % (name, json.dumps(observed)))
    if VERBOSE and observed is not None:
        print("       " + json.dumps(observed))
    return cond


def show(label, obj):
    if VERBOSE:
        print("  ## %s: %s" % (label, json.dumps(obj)))


class Watch:
    """One /v3/watch HTTP request = one watcher; the answer is a chunked stream of
    newline-terminated JSON objects. Closing the connection cancels the watcher."""

    def __init__(self, endpoint, create, token=None, headers=None, timeout=5.0):
        host, port = endpoint.split("//")[1].split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = token
        h.update(headers or {})
        self.conn.request("POST", "/v3/watch", json.dumps({"create_request": create}), h)
        self.sock = self.conn.sock
        self.resp = self.conn.getresponse()
        self.raw = []  # every line received, for the record

    def next(self, timeout=5.0):
        """Next message as a dict; None at EOF; raises socket.timeout when idle;
        ('broken', exc) if the connection dies mid-chunk."""
        self.sock.settimeout(timeout)
        try:
            line = self.resp.readline()
        except (http.client.IncompleteRead, ConnectionError) as e:
            return ("broken", repr(e))
        if not line:
            return None
        self.raw.append(line)
        return json.loads(line)

    def idle(self, seconds):
        """True if nothing arrives (and the stream stays open) for `seconds`."""
        try:
            self.next(seconds)
            return False
        except socket.timeout:
            return True

    def close(self):
        self.conn.close()


def kv_put(c, key, value, member=None, token=None):
    return c.call("/v3/kv/put", {"key": b64(key), "value": b64(value)}, member=member, token=token)


# ------------------------------------------------------------------------------------
def single_member_tests():
    # Short token TTL and progress interval so expiry and progress notifications are observable.
    c = EtcdCluster(members=1, extra_args=["--auth-token-ttl", "2",
                                           "--experimental-watch-progress-notify-interval", "1s"])
    with c.start():
        ep = c.endpoints()[0]

        # --- put / range -------------------------------------------------------------
        st, r = kv_put(c, "app/a", "1")
        check("put -> 200, header.revision is a string", st == 200 and r["header"]["revision"] == "2", r)
        kv_put(c, "app/b", "2")
        kv_put(c, "app0", "outside")  # just past the prefix: must not be in the prefix range
        st, r = c.call("/v3/kv/put", {"key": b64("app/a"), "value": b64("1b"), "prev_kv": True})
        check("put prev_kv:true returns the old kv", r.get("prev_kv", {}).get("value") == b64("1"), r)
        rev = int(r["header"]["revision"])

        st, r = c.call("/v3/kv/range", {"key": b64("app/a")})
        kv = r["kvs"][0]
        check("range one key: kvs[0] key/value base64, int64 as strings, count",
              st == 200 and unb64(kv["key"]) == b"app/a" and unb64(kv["value"]) == b"1b"
              and kv["mod_revision"] == str(rev) and kv["version"] == "2" and r["count"] == "1", r)

        check("prefix_end('app/') == 'app0', prefix_end(b'a\\xff') == b'b'",
              prefix_end("app/") == b"app0" and prefix_end(b"a\xff") == b"b" and prefix_end(b"\xff") == b"\0")
        st, r = c.call("/v3/kv/range", {"key": b64("app/"), "range_end": b64(prefix_end("app/"))})
        keys = [unb64(k["key"]) for k in r.get("kvs", [])]
        check("prefix range [app/, app0) returns app/a, app/b only, sorted",
              keys == [b"app/a", b"app/b"] and r["header"]["revision"] == str(rev), r)

        st, r = c.call("/v3/kv/range", {"key": b64("app/"), "range_end": b64(prefix_end("app/")), "limit": "1"})
        check("range limit:1 -> one kv, more:true, count = total", len(r["kvs"]) == 1 and r.get("more") is True
              and r["count"] == "2", r)

        st, r = c.call("/v3/kv/range", {"key": b64("nope")})
        check("range of a missing key: 200, no kvs and no count field", st == 200 and "kvs" not in r
              and "count" not in r, r)

        st, r = c.call("/v3/kv/range", {"key": b64("app/a"), "revision": "2"})
        check("range at an old revision (not compacted) returns the old value",
              unb64(r["kvs"][0]["value"]) == b"1", r)

        st, r = c.call("/v3/kv/range", {"key": "!!!"})
        check("invalid base64 -> 400 {error,message,code:3}", st == 400 and r.get("code") == 3, r)
        st, r = http_json(ep + "/v3/kv/nosuch", {})
        check("unknown path -> 404 text/plain 'Not Found'", st == 404, r)
        st, r = c.call("/v3/kv/range", {"key": b64("app/a"), "revision": "999"})
        check("range at a future revision -> 400 code 11 'required revision is a future revision'",
              st == 400 and r.get("code") == 11 and "future revision" in r.get("message", ""), r)

        # --- watch -------------------------------------------------------------------
        w = Watch(ep, {"key": b64("app/"), "range_end": b64(prefix_end("app/")),
                       "start_revision": "2", "prev_kv": True})
        check("watch response: 200, chunked, application/json",
              w.resp.status == 200 and w.resp.getheader("Transfer-Encoding") == "chunked"
              and w.resp.getheader("Content-Type") == "application/json")
        m = w.next()
        check("first message: result.created:true, no watch_id (0 omitted), header.revision = current",
              m["result"].get("created") is True and "watch_id" not in m["result"]
              and m["result"]["header"]["revision"] == str(rev), m)
        # History since start_revision comes next, possibly several events per message.
        events = []
        while len(events) < 3:
            events += w.next()["result"]["events"]
        revs = [e["kv"]["mod_revision"] for e in events]
        check("history replay from start_revision (app0 filtered out), ordered, PUT has no 'type'",
              revs == ["2", "3", str(rev)] and all("type" not in e for e in events), events)
        kv_put(c, "app/c", "3")
        m = w.next()
        e = m["result"]["events"][0]
        check("live put -> one event, header.revision = its mod_revision",
              unb64(e["kv"]["key"]) == b"app/c" and e["kv"]["mod_revision"] == m["result"]["header"]["revision"], m)
        st, r = c.call("/v3/kv/deleterange", {"key": b64("app/c")})
        show("deleterange", r)
        m = w.next()
        e = m["result"]["events"][0]
        check("delete -> type:DELETE, kv has key+mod_revision only, prev_kv when asked",
              e.get("type") == "DELETE" and set(e["kv"]) == {"key", "mod_revision"}
              and unb64(e["prev_kv"]["value"]) == b"3", m)
        # Progress notify (interval 1 s here, 10 min by default): empty result, header.revision only.
        w2 = Watch(ep, {"key": b64("quiet/"), "range_end": b64(prefix_end("quiet/")), "progress_notify": True})
        w2.next()  # created
        m = w2.next(timeout=4)
        check("progress_notify: a message with header.revision and no events",
              "events" not in m["result"] and int(m["result"]["header"]["revision"]) >= rev, m)
        w2.close()

        # Watch with no start_revision starts after the current revision.
        w3 = Watch(ep, {"key": b64("app/a")})
        w3.next()
        kv_put(c, "app/a", "new")
        m = w3.next()
        check("watch without start_revision: only new events", len(m["result"]["events"]) == 1
              and unb64(m["result"]["events"][0]["kv"]["value"]) == b"new", m)
        w3.close()
        w.close()

        # --- compaction --------------------------------------------------------------
        st, r = c.call("/v3/kv/range", {"key": b64("x")})
        head = int(r["header"]["revision"])
        st, r = c.call("/v3/kv/compaction", {"revision": str(head - 1), "physical": True})
        check("compaction -> 200 {header}", st == 200 and set(r) == {"header"}, r)
        st, r = c.call("/v3/kv/compaction", {"revision": "2"})
        check("compacting an already compacted revision -> 400 code 11 'required revision has been compacted'",
              st == 400 and r.get("code") == 11 and "compacted" in r.get("message", ""), r)
        st, r = c.call("/v3/kv/compaction", {"revision": str(head + 100)})
        check("compacting a future revision -> 400 code 11", st == 400 and r.get("code") == 11, r)
        st, r = c.call("/v3/kv/range", {"key": b64("app/a"), "revision": "2"})
        check("range at a compacted revision -> 400 code 11", st == 400 and r.get("code") == 11, r)

        w = Watch(ep, {"key": b64("app/"), "range_end": b64(prefix_end("app/")), "start_revision": "2"})
        m1, m2 = w.next(), w.next()
        check("watch from a compacted revision: 200, 'created' first", m1["result"].get("created") is True, m1)
        check("... then canceled:true + compact_revision = compaction rev, header without revision",
              m2["result"].get("canceled") is True and m2["result"].get("compact_revision") == str(head - 1)
              and "revision" not in m2["result"]["header"], m2)
        check("... and the server keeps the HTTP stream open (client must close it)", w.idle(1.0))
        w.close()
        w = Watch(ep, {"key": b64("app/"), "range_end": b64(prefix_end("app/")), "start_revision": str(head - 1)})
        w.next()
        m = w.next()
        check("watch from compact_revision itself works", "events" in m["result"], m)
        w.close()

        # --- auth --------------------------------------------------------------------
        tok = c.enable_auth("alice", "secret")
        check("authenticate -> token '<16 chars>.<raft index>'", "." in tok, tok)
        st, r = http_json(ep + "/v3/auth/authenticate", {"name": "alice", "password": "secret"})
        show("authenticate", r)
        st, r = http_json(ep + "/v3/auth/authenticate", {"name": "alice", "password": "bad"})
        check("wrong password -> 400 code 3 'authentication failed, invalid user ID or password'",
              st == 400 and r.get("code") == 3 and "authentication failed" in r["message"], r)
        st, r = http_json(ep + "/v3/kv/range", {"key": b64("app/a")}, token=tok)
        check("range with 'Authorization: <token>' -> 200", st == 200 and "kvs" in r, r)
        st, r = http_json(ep + "/v3/kv/put", {"key": b64("app/a"), "value": b64("auth")}, token=tok)
        check("put with token -> 200", st == 200, r)
        st, r = http_json(ep + "/v3/kv/range", {"key": b64("app/a")})
        check("no token -> 400 code 3 'etcdserver: user name is empty'",
              st == 400 and r.get("code") == 3 and r["message"] == "etcdserver: user name is empty", r)
        st, r = http_json(ep + "/v3/kv/range", {"key": b64("app/a")}, token="bogus.1")
        check("invalid token -> 401 code 16 'etcdserver: invalid auth token'",
              st == 401 and r.get("code") == 16 and r["message"] == "etcdserver: invalid auth token", r)
        st, r = http_json(ep + "/v3/kv/range", {"key": b64("app/a")}, token="Bearer " + tok)
        check("'Bearer <token>' is an invalid token (401)", st == 401, r)
        try:
            st, r = http_json(ep + "/v3/kv/range", {"key": b64("app/a")}, token="bogus.99999", timeout=1.0)
            hung = False
        except socket.timeout:
            hung = True
        check("token '<x>.<index ahead of raft>' blocks until that index: needs a client timeout", hung)
        st, r = http_json(ep + "/v3/auth/user/list", {}, token=tok)
        check("non-root user on an admin call -> 403 code 7 'etcdserver: permission denied'",
              st == 403 and r.get("code") == 7, r)

        w = Watch(ep, {"key": b64("app/a")}, token="bogus.1")
        m = w.next()
        check("watch with invalid token: HTTP 200, then created+canceled, watch_id '-1', cancel_reason",
              w.resp.status == 200 and m["result"].get("canceled") is True and m["result"].get("watch_id") == "-1"
              and "invalid auth token" in m["result"].get("cancel_reason", ""), m)
        w.close()
        w = Watch(ep, {"key": b64("app/a")})
        m = w.next()
        check("watch without token: canceled, cancel_reason '... user name is empty'",
              m["result"].get("canceled") is True and "user name is empty" in m["result"].get("cancel_reason", ""), m)
        w.close()

        w = Watch(ep, {"key": b64("app/a")}, token=tok)
        w.next()
        time.sleep(3.5)  # token TTL is 2 s here (300 s by default), unused meanwhile
        st, r = http_json(ep + "/v3/kv/range", {"key": b64("app/a")}, token=tok)
        check("token unused for > TTL -> 401 invalid auth token", st == 401 and r.get("code") == 16, r)
        st, r = http_json(ep + "/v3/auth/authenticate", {"name": "alice", "password": "secret"})
        tok2 = r["token"]
        http_json(ep + "/v3/kv/put", {"key": b64("app/a"), "value": b64("after-expiry")}, token=tok2)
        m = w.next()
        check("an open watch keeps delivering after its token expired",
              unb64(m["result"]["events"][0]["kv"]["value"]) == b"after-expiry", m)
        w.close()


def cluster_tests():
    c = EtcdCluster(members=3)
    with c.start():
        eps = c.endpoints()
        L = c.leader()
        F, G = (L + 1) % 3, (L + 2) % 3
        st, r = c.call("/v3/maintenance/status", {}, member=L)
        check("status: leader == header.member_id on the leader (decimal strings)",
              r["leader"] == r["header"]["member_id"], r)
        st, r = kv_put(c, "k", "1", member=F)
        check("put through a follower works", st == 200, r)
        rev = int(r["header"]["revision"])

        wl = Watch(eps[L], {"key": b64("k"), "start_revision": str(rev + 1)})
        wf = Watch(eps[F], {"key": b64("k"), "start_revision": str(rev + 1)})
        wh = Watch(eps[F], {"key": b64("k"), "start_revision": str(rev + 1)},
                   headers={"Grpc-Metadata-hasleader": "true"})
        for w in (wl, wf, wh):
            w.next()  # created

        t0 = time.time()
        c.kill(L)
        m = wl.next(timeout=3)
        check("SIGKILL leader: its watch stream ends at once (EOF / broken chunked body)",
              m is None or m[0] == "broken", repr(m))
        st = None
        try:
            http_json(eps[L], {}, timeout=1)
        except OSError as e:
            st = repr(e)
        check("connecting to the dead member: connection refused", "refused" in (st or ""), st)
        nl = c.leader(timeout=10)
        check("a new leader is elected among the others (%.1fs)" % (time.time() - t0), nl in (F, G), nl)
        st, r = kv_put(c, "k", "2", member=G)
        check("put through another member after the election", st == 200, r)
        m = wf.next()
        check("follower's watch (no hasleader) survives the leader change and gets the event",
              unb64(m["result"]["events"][0]["kv"]["value"]) == b"2", m)
        wh.next()
        st, r = c.call("/v3/kv/range", {"key": b64("k")}, member=G)
        check("linearizable read through another member", unb64(r["kvs"][0]["value"]) == b"2", r)

        c.restart(L)
        st, r = c.call("/v3/kv/range", {"key": b64("k"), "serializable": True}, member=L)
        check("restarted member rejoins with the same data dir and has caught up",
              st == 200 and unb64(r["kvs"][0]["value"]) == b"2", r)
        w = Watch(eps[L], {"key": b64("k"), "start_revision": str(rev + 1)})
        w.next()
        m = w.next()
        check("watch on the restarted member replays what it missed", m["result"]["events"][0]["kv"]["mod_revision"]
              == str(rev + 1), m)
        w.close()

        # Lose quorum: F alone has no leader.
        c.kill(L)
        c.kill(G)
        t0 = time.time()
        m = wh.next(timeout=8)
        check("no quorum: watch with 'Grpc-Metadata-hasleader: true' gets in-band error 'no leader' (%.1fs)"
              % (time.time() - t0), isinstance(m, dict) and m.get("error", {}).get("http_code") == 503
              and m["error"]["message"] == "etcdserver: no leader", m)
        check("... which is the last line: the server then ends the stream", wh.next(timeout=2) is None)
        check("no quorum: plain watch just stays silent", wf.idle(0.5))
        st, r = c.call("/v3/kv/range", {"key": b64("k"), "serializable": True}, member=F)
        check("no quorum: serializable range still answers", st == 200 and "kvs" in r, r)
        st, r = c.call("/v3/maintenance/status", {}, member=F)
        check("no quorum: status has errors ['etcdserver: no leader'] and no leader field",
              r.get("errors") == ["etcdserver: no leader"] and "leader" not in r, r)
        for w in (wl, wf, wh):
            w.close()


def main():
    t0 = time.time()
    for part in (single_member_tests, cluster_tests):
        try:
            part()
        except Exception as e:  # a crash counts as a failure; cleanup already ran via `with`
            import traceback
            traceback.print_exc()
            check("%s ran to completion" % part.__name__, False, repr(e))
    print("%d passed, %d failed (%.1fs)" % (passed, failed, time.time() - t0))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
