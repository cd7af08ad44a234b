#!/usr/bin/env python3
# SPDX-License-Identifier: MIT (see LICENSE)
"""A fake Consul agent serving the KV HTTP API (/v1/kv) with blocking queries.

Written from the Consul docs (api-docs/kv, features/blocking, features/consistency,
acl) and the behaviour of agent/kvs_endpoint.go; see README.md for what it leaves out.
Usage: consul_server.py --port 0 [--token T] [--max-value-size BYTES]

Besides the shared faults (faults.py), POST /_test/blocking {"mode": ...} breaks only
blocking queries (GETs carrying ?index), the way a proxy that cuts long requests does,
while plain GETs keep working: "cut" closes the connection without an answer, "hang"
holds the request without an answer for "ms" (default 10 min) or until the switch is
turned off and then closes it, "fail" answers "status" (default 504) after "ms"
(default 0); "off" (or /_test/clear) turns it off.
"""

import base64
import random
import sys
import threading
import time
from urllib.parse import unquote, urlencode

from faults import FaultyHandler, Response, base_arguments, json_response, parse_go_duration, serve

DEFAULT_WAIT = 300.0  # blocking.mdx: wait defaults to 5 minutes ...
MAX_WAIT = 600.0  # ... and is capped at 10 minutes
JITTER_FRACTION = 16  # ... plus up to wait/16 of random jitter
DATACENTER = "dc1"
BLOCKING_MODES = ("off", "cut", "hang", "fail", "cut_after")
ANONYMOUS_HINT = "The anonymous token is used implicitly when a request does not specify a token."


class KVStore:
    """The KV table, its tombstones, the raft index and the leader state, under one condition.

    Index rules follow Consul's state store: a live key reports its ModifyIndex; a
    missing key or an empty prefix reports the KV table index (so any KV write
    wakes it with unchanged data); a prefix reports the highest ModifyIndex of its
    keys and tombstones. Every write takes a raft index, even one that changes nothing.
    """

    def __init__(self, acl_token, max_value_size):
        self.acl_token = acl_token
        self.max_value_size = max_value_size
        self.cond = threading.Condition()
        self.raft_index = 1  # raft's first entry is always internal, never a KV write
        self.table_index = 0  # last raft index that changed the KV or tombstone tables
        self.entries = {}
        self.tombstones = {}  # deleted key -> raft index of the delete
        self.known_leader = True
        self.last_contact_ms = 0
        self.stopping = False
        self.blocking_fault = None  # /_test/blocking: how blocking queries break, or None
        self.blocking_healed = threading.Event()  # set when the switch goes off

    def _apply(self):
        self.raft_index += 1
        return self.raft_index

    def _changed(self, index):
        self.table_index = index
        self.cond.notify_all()

    def put(self, key, value, flags, cas):
        with self.cond:
            index = self._apply()
            old = self.entries.get(key)
            if cas is not None and (old["ModifyIndex"] if old else 0) != cas:
                return False
            self.entries[key] = {
                "LockIndex": old["LockIndex"] if old else 0,
                "Key": key,
                "Flags": flags,
                "Value": value,
                "CreateIndex": old["CreateIndex"] if old else index,
                "ModifyIndex": index,
            }
            self._changed(index)
            return True

    def delete(self, key, recurse, cas):
        with self.cond:
            index = self._apply()
            old = self.entries.get(key)
            if cas is not None and old is not None and old["ModifyIndex"] != cas:
                return False
            if recurse:
                doomed = [k for k in self.entries if k.startswith(key)]
            else:
                doomed = [key] if old is not None else []
            for name in doomed:
                del self.entries[name]
                self.tombstones[name] = index
            if doomed:
                self._changed(index)
            return True

    def read_key(self, key):
        entry = self.entries.get(key)
        if entry is not None:
            return entry["ModifyIndex"], [entry]
        return self.table_index, []

    def read_prefix(self, prefix):
        entries = [e for k, e in sorted(self.entries.items()) if k.startswith(prefix)]
        if prefix == "":
            return self.table_index, entries
        graves = [i for k, i in self.tombstones.items() if k.startswith(prefix)]
        index = max([e["ModifyIndex"] for e in entries] + graves, default=0)
        return index or self.table_index, entries

    def query(self, read, min_index, timeout):
        """Consul's blockingQuery: re-run read() until its index passes min_index or time is up."""
        deadline = time.monotonic() + timeout
        with self.cond:
            index, entries = read()
            while min_index and index <= min_index and not self.stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(remaining)
                index, entries = read()
            return max(index, 1), [dict(e) for e in entries]  # never 0: ?index=0 would not block

    def reset_index(self, index):
        """A snapshot restore: same data, every index lowered to at most `index`."""
        with self.cond:
            index = max(int(index), 1)
            self.raft_index = index
            self.table_index = min(self.table_index, index)
            for entry in self.entries.values():
                entry["CreateIndex"] = min(entry["CreateIndex"], index)
                entry["ModifyIndex"] = min(entry["ModifyIndex"], index)
            self.tombstones = {k: min(i, index) for k, i in self.tombstones.items()}
            self.cond.notify_all()

    def reap_tombstones(self):
        """Tombstone GC: a prefix whose highest index was a delete now reports a lower one."""
        with self.cond:
            self.tombstones.clear()
            self._changed(self._apply())

    def other_raft_writes(self, count):
        """Writes to other tables (catalog, sessions): KV indexes then jump, never +1."""
        with self.cond:
            self.raft_index += int(count)

    def set_leader(self, known, last_contact_ms):
        with self.cond:
            self.known_leader = bool(known)
            self.last_contact_ms = int(last_contact_ms)

    def break_blocking(self, spec):
        """The /_test/blocking switch: None or {"mode": "off"} turns it off."""
        spec = spec or {}
        mode = spec.get("mode", "off")
        if mode not in BLOCKING_MODES:
            raise ValueError("mode must be one of %s" % ", ".join(BLOCKING_MODES))
        for name in ("ms", "status"):
            if name in spec and not isinstance(spec[name], (int, float)):
                raise ValueError("%s must be a number" % name)
        with self.cond:
            if mode == "off":
                self.blocking_fault = None
                self.blocking_healed.set()
            else:
                self.blocking_fault = dict(spec)
                self.blocking_healed = threading.Event()

    def stop(self):
        with self.cond:
            self.stopping = True
            self.blocking_healed.set()
            self.cond.notify_all()


class Cut(Response):
    """Not an answer: the connection is closed without a byte (a proxy giving up)."""

    def __init__(self, reset=False):
        super().__init__(0)
        self.reset = reset


class ConsulHandler(FaultyHandler):
    server_version = "Consul-fake"
    default_messages = {
        500: "rpc error making call: injected failure",
        429: "Your IP is issuing too many concurrent connections, please rate limit your calls\n",
        403: "Permission denied",
    }

    @property
    def store(self):
        return self.server.state

    def error_response(self, status, message):
        return Response(status, message, "text/plain; charset=utf-8")

    def _send(self, response):
        if isinstance(response, Cut):
            self._drop(response.reset)
        else:
            super()._send(response)

    def _broken_blocking(self, fault):
        """What a blocking query gets while /_test/blocking is on."""
        mode = fault["mode"]
        if mode == "cut":
            return Cut(bool(fault.get("reset")))
        healed = self.store.blocking_healed
        if mode == "hang":
            healed.wait(fault.get("ms", MAX_WAIT * 1000) / 1000.0)
            return Cut()
        if fault.get("ms"):
            healed.wait(fault["ms"] / 1000.0)
        return self.error_response(int(fault.get("status", 504)), fault.get("message", "Gateway Timeout"))

    def route(self, method, path, query, body):
        if path == "/v1/status/leader" and method == "GET":
            return json_response(200, "127.0.0.1:8300" if self.store.known_leader else "")
        if not path.startswith("/v1/kv/"):
            return self.error_response(404, "404 page not found\n")  # Go's default mux answer
        options = self._parse_options(query)
        if isinstance(options, Response):
            return options
        key = unquote(path[len("/v1/kv/"):])
        problem = self._validate_key(key)
        if problem:
            return self.error_response(400, problem)
        if query.get("dc", [""])[0] not in ("", DATACENTER):
            return self.error_response(500, "No path to datacenter")
        handler = {"GET": self._get, "PUT": self._put, "DELETE": self._delete}.get(method)
        if handler is None:
            return self.error_response(405, "method %s not allowed" % method)
        return handler(key, query, body, options)

    def _parse_options(self, query):
        """The shared query options (http.go parse): consistency, wait and index."""
        stale, consistent = "stale" in query, "consistent" in query
        if stale and consistent:
            message = "Cannot specify ?stale with ?consistent, conflicting semantics."
            return self.error_response(400, message)
        try:
            wait = parse_go_duration(query["wait"][0]) if query.get("wait", [""])[0] else 0.0
        except ValueError:
            return self.error_response(400, "Invalid wait time")
        try:
            min_index = int(query.get("index", ["0"])[0] or 0)
            if min_index < 0:
                raise ValueError
        except ValueError:
            return self.error_response(400, "Invalid index")
        wait = DEFAULT_WAIT if wait <= 0 else min(wait, MAX_WAIT)
        return {
            "stale": stale,
            "consistency": "stale" if stale else "consistent" if consistent else "leader",
            "min_index": min_index,
            "timeout": wait + random.uniform(0, wait / JITTER_FRACTION),
        }

    def _validate_key(self, key):
        """Consul 1.21.5+ key validation, reduced to the rules that survived its relaxation."""
        raw = self.path.split("?", 1)[0]
        if "../" in raw or "..\\" in raw:
            return "URL path contains invalid traversal sequence"
        if any(s in raw.lower() for s in ("%2e%2e%2f", "%2e%2e/", "..%2f", "%2e%2e%5c")):
            return "URL path contains encoded traversal sequence"
        if key.startswith("/"):
            return "key must not begin with a '/'"
        if key != key.strip():
            return "key must not have leading or trailing whitespace"
        return None

    def _token(self, query):
        """?token, then X-Consul-Token, then Authorization: Bearer (http.go parseToken order)."""
        token = query.get("token", [""])[0] or self.headers.get("X-Consul-Token", "")
        if not token:
            scheme, _, value = self.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                token = value.split()[0]
        return token

    def _acl(self, query):
        """'allow', 'anonymous' (no token: default-deny applies) or 'unknown' (bad token)."""
        expected = self.store.acl_token
        token = self._token(query)
        if expected is None or token == expected:
            return "allow"
        return "anonymous" if token == "" else "unknown"

    def _denied(self, acl, access, key):
        if acl == "unknown":
            return self.error_response(403, "ACL not found")
        message = "Permission denied: anonymous token lacks permission 'key:%s' on \"%s\". %s"
        return self.error_response(403, message % (access, key, ANONYMOUS_HINT))

    def _meta(self, index, options):
        store = self.store
        return {
            "X-Consul-Index": str(index),
            "X-Consul-KnownLeader": "true" if store.known_leader else "false",
            "X-Consul-LastContact": str(store.last_contact_ms if options["stale"] else 0),
            "X-Consul-Effective-Consistency": options["consistency"],
        }

    def _get(self, key, query, body, options):
        fault = self.store.blocking_fault
        cut_after = None
        if fault and "index" in query:
            if fault["mode"] != "cut_after":
                return self._broken_blocking(fault)
            cut_after = fault.get("ms", 1000) / 1000.0
        listing = "keys" in query or "recurse" in query
        if not listing and key == "":
            return self.error_response(400, "Missing key name")
        acl = self._acl(query)
        if acl == "unknown" or (acl == "anonymous" and not listing):
            return self._denied(acl, "read", key)
        if not self.store.known_leader and not options["stale"]:
            return self.error_response(500, "No cluster leader")
        read = (lambda: self.store.read_prefix(key)) if listing else (lambda: self.store.read_key(key))
        timeout = options["timeout"] if cut_after is None else min(options["timeout"], cut_after)
        index, entries = self.store.query(read, options["min_index"], timeout)
        if cut_after is not None and index <= options["min_index"]:
            return Cut()  # a proxy that cuts a request still open after `ms`
        headers = self._meta(index, options)
        if acl == "anonymous" and entries:  # lists are filtered by ACLs, not refused
            entries = []
            headers["X-Consul-Results-Filtered-By-ACLs"] = "true"
        indent = 4 if "pretty" in query else None
        if "keys" in query:
            keys = _key_names(entries, key, query)
            if not keys and key != "":
                return Response(404, b"", "text/plain; charset=utf-8", headers)
            return json_response(200, keys, headers, indent)
        if not entries:
            return Response(404, b"", "text/plain; charset=utf-8", headers)
        if "raw" in query and "recurse" not in query:
            headers.update({"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"})
            return Response(200, entries[0]["Value"] or b"", "text/plain", headers)
        return json_response(200, [_render(e) for e in entries], headers, indent)

    def _put(self, key, query, body, options):
        if key == "":
            return self.error_response(400, "Missing key name")
        if sum(flag in query for flag in ("cas", "acquire", "release")) > 1:
            return self.error_response(400, "Conflicting flags: %s\n" % urlencode(query, doseq=True))
        if "acquire" in query or "release" in query:
            return self.error_response(400, "sessions are not implemented by this fake Consul")
        try:
            flags = _uint(query, "flags")
            cas = _uint(query, "cas")
        except ValueError as err:
            return self.error_response(500, str(err))
        if len(body) > self.store.max_value_size:
            message = "Request body(%d bytes) too large, max size: %d bytes. See %s."
            link = "https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size"
            return self.error_response(413, message % (len(body), self.store.max_value_size, link))
        refused = self._write_refusal(key, query)
        if refused:
            return refused
        return json_response(200, self.store.put(key, body, flags or 0, cas))

    def _delete(self, key, query, body, options):
        recurse = "recurse" in query
        if recurse and "cas" in query:
            return self.error_response(400, "Conflicting flags: %s\n" % urlencode(query, doseq=True))
        if not recurse and key == "":
            return self.error_response(400, "Missing key name")
        try:
            cas = _uint(query, "cas")
        except ValueError as err:
            return self.error_response(500, str(err))
        refused = self._write_refusal(key, query)
        if refused:
            return refused
        return json_response(200, self.store.delete(key, recurse, cas))

    def _write_refusal(self, key, query):
        acl = self._acl(query)
        if acl != "allow":
            return self._denied(acl, "write", key)
        if not self.store.known_leader:
            return self.error_response(500, "No cluster leader")
        return None

    def control(self, name, spec):
        store = self.store
        if name == "clear":
            store.set_leader(True, 0)
            store.break_blocking(None)
        elif name == "blocking":
            store.break_blocking(spec)
        elif name == "reset_index":
            store.reset_index(spec.get("index", 1))
        elif name == "reap_tombstones":
            store.reap_tombstones()
        elif name == "raft_writes":
            store.other_raft_writes(spec.get("count", 1))
        elif name == "leader":
            store.set_leader(spec.get("known_leader", True), spec.get("last_contact_ms", 0))
        else:
            return False
        return True


def _uint(query, name):
    """An optional unsigned query parameter; the error text is Go's strconv message."""
    if name not in query:
        return None
    text = query[name][0]
    if not text.isdigit():
        raise ValueError('strconv.ParseUint: parsing "%s": invalid syntax' % text)
    return int(text)


def _render(entry):
    value = entry["Value"]
    # An empty value is a nil []byte in Consul, so it is rendered as null, not "".
    encoded = base64.b64encode(value).decode() if value else None
    return {
        "LockIndex": entry["LockIndex"],
        "Key": entry["Key"],
        "Flags": entry["Flags"],
        "Value": encoded,
        "CreateIndex": entry["CreateIndex"],
        "ModifyIndex": entry["ModifyIndex"],
    }


def _key_names(entries, prefix, query):
    """?keys: names under prefix, cut after the first separator past the prefix."""
    separator = query.get("separator", query.get("seperator", [""]))[0]  # Consul accepts its old typo
    names = []
    for entry in entries:
        name = entry["Key"]
        cut = name.find(separator, len(prefix)) if separator else -1
        names.append(name[: cut + len(separator)] if cut >= 0 else name)
    return list(dict.fromkeys(names))


def main():
    parser = base_arguments(__doc__.splitlines()[0])
    parser.add_argument("--token", help="ACL token every request must carry (default policy: deny)")
    parser.add_argument("--max-value-size", type=int, default=512 * 1024, help="kv_max_value_size in bytes")
    args = parser.parse_args()
    return serve(ConsulHandler, args.port, KVStore(args.token, args.max_value_size), args.verbose)


if __name__ == "__main__":
    sys.exit(main())
