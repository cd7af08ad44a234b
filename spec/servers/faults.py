# SPDX-License-Identifier: MIT (see LICENSE)
"""Shared scaffolding for the fake Consul and Vault servers used by the test suite.

One copy of: the fault queue behind the /_test/ control endpoints, the request
handler that applies those faults around a server's own routes, Go-style
duration parsing (both real servers take Go durations), and the start-up /
shutdown code that prints "LISTENING <port>" and exits 0 on SIGTERM/SIGINT.
"""

import argparse
import json
import re
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_REQUEST_BODY = 64 * 1024 * 1024  # refuse anything bigger instead of buffering it
DEFAULT_OVERSIZED = 16 * 1024 * 1024
RECENT_REQUESTS = 200

_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|ms|s|m|h)")


def parse_go_duration(text):
    """Seconds in a Go time.ParseDuration string such as "1m30s" or "250ms".

    Raises ValueError like Go does for a bare number other than "0" ("10" has no unit).
    """
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    for match in _GO_PART.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(body):
        raise ValueError("invalid duration %r" % text)
    return -total if text.startswith("-") else total


class Response:
    """What a route returns; the handler turns it into bytes on the wire."""

    def __init__(self, status, body=b"", content_type="application/json", headers=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode()
        self.content_type = content_type
        self.headers = dict(headers or {})


def json_response(status, value, headers=None, indent=None):
    separators = None if indent else (",", ":")
    text = json.dumps(value, indent=indent, separators=separators)
    return Response(status, text, "application/json", headers)


class Faults:
    """A queue of injected faults, each consumed by the requests it matches.

    Kinds are independent: one request can take a delay and a failure at once,
    but two queued failures apply to two successive requests.
    """

    KINDS = ("drop", "fail", "malformed", "oversized", "delay")

    def __init__(self):
        self._lock = threading.Lock()
        self._queue = []
        self._recent = []
        self._total = 0

    def add(self, kind, spec):
        count = spec.get("count", 0 if kind == "delay" else 1)
        if not isinstance(count, int) or count < 0:
            raise ValueError("count must be an integer >= 0 (0 = until cleared)")
        if kind == "fail" and not isinstance(spec.get("status"), int):
            raise ValueError("fail needs an integer status")
        if kind == "delay" and not isinstance(spec.get("ms"), (int, float)):
            raise ValueError("delay needs ms")
        entry = dict(spec, kind=kind, count=count or None)
        with self._lock:
            self._queue.append(entry)

    def clear(self):
        with self._lock:
            self._queue.clear()

    def take(self, method, path):
        """The faults this request gets, one per kind, consuming their counts."""
        taken = {}
        with self._lock:
            for entry in list(self._queue):
                if entry["kind"] in taken or not _matches(entry, method, path):
                    continue
                taken[entry["kind"]] = entry
                if entry["count"] is not None:
                    entry["count"] -= 1
                    if entry["count"] == 0:
                        self._queue.remove(entry)
        return taken

    def record(self, method, target):
        with self._lock:
            self._total += 1
            self._recent.append("%s %s" % (method, target))
            del self._recent[:-RECENT_REQUESTS]

    def report(self):
        with self._lock:
            return {"count": self._total, "recent": list(self._recent),
                    "pending_faults": [dict(e) for e in self._queue]}


def _matches(entry, method, path):
    if entry.get("method") and entry["method"].upper() != method:
        return False
    return path.startswith(entry.get("path") or "/")


class FaultyHandler(BaseHTTPRequestHandler):
    """Reads a request, applies the queued faults and otherwise calls self.route().

    Subclasses implement route(method, path, query, body) -> Response,
    error_response(status, message) -> Response (the server's own error format)
    and optionally control(name, spec) for server-specific /_test/ endpoints.
    """

    protocol_version = "HTTP/1.1"  # keep-alive, like the real Go servers
    # Go's net package sets TCP_NODELAY on every connection; without it a response
    # written in two parts waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    default_messages = {}

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s\n" % (fmt % args))

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up; nothing to answer

    def _serve(self):
        body = self._read_body()
        if body is None:
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        if url.path.startswith("/_test/"):
            self._send(self._control(url.path[len("/_test/"):], body))
            return
        self.server.faults.record(self.command, self.path)
        faults = self.server.faults.take(self.command, url.path)
        if "delay" in faults:
            time.sleep(faults["delay"]["ms"] / 1000.0)
        if "drop" in faults:
            self._drop(faults["drop"].get("reset", False))
            return
        if "fail" in faults:
            response = self._injected_failure(faults["fail"])
        else:
            response = self.route(self.command, url.path, query, body)
        if "malformed" in faults:
            response.body = _truncate(response.body)
        if "oversized" in faults:
            response.body = _pad(response.body, faults["oversized"].get("bytes", DEFAULT_OVERSIZED))
        self._send(response)

    # Every method goes through one path; the routes reject what they don't serve.
    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_LIST = _serve

    def _read_body(self):
        """The request body, or None after answering a request we cannot read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_REQUEST_BODY:
            self.close_connection = True
            self._send(self.error_response(400 if length < 0 else 413, "invalid request body length"))
            return None
        return self.rfile.read(length)

    def _read_chunked(self):
        chunks, size = [], 0
        while True:
            line = self.rfile.readline(1024)
            try:
                length = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                self.close_connection = True
                self._send(self.error_response(400, "malformed chunked encoding"))
                return None
            if length == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            size += length
            if size > MAX_REQUEST_BODY:
                self.close_connection = True
                self._send(self.error_response(413, "request body too large"))
                return None
            chunks.append(self.rfile.read(length))
            self.rfile.readline(1024)

    def _control(self, name, body):
        faults = self.server.faults
        if name == "requests" and self.command == "GET":
            return json_response(200, faults.report())
        if self.command != "POST":
            return json_response(405, {"error": "control endpoints take POST"})
        try:
            spec = json.loads(body or b"{}")
            if not isinstance(spec, dict):
                raise ValueError("body must be a JSON object")
            if name == "clear":
                faults.clear()
                self.control("clear", spec)
            elif name in Faults.KINDS:
                faults.add(name, spec)
            elif not self.control(name, spec):
                return json_response(404, {"error": "unknown control endpoint %r" % name})
        except (ValueError, TypeError, KeyError) as err:
            return json_response(400, {"error": str(err)})
        return json_response(200, {"ok": True})

    def control(self, name, spec):
        """Server-specific /_test/<name>; returns True when handled."""
        return name == "clear"

    def _injected_failure(self, spec):
        status = spec["status"]
        message = spec.get("message") or self.default_messages.get(status, "injected failure")
        response = self.error_response(status, message)
        if "body" in spec:
            response.body = spec["body"].encode()
        if "retry_after" in spec:
            response.headers["Retry-After"] = str(spec["retry_after"])
        for name, value in spec.get("headers", {}).items():
            response.headers[name] = str(value)
        return response

    def _drop(self, reset):
        """Close the connection without a single byte of response."""
        self.close_connection = True
        if reset:  # RST instead of FIN: linger on, timeout 0
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, response):
        self.send_response(response.status)
        no_body = response.status in (204, 304)
        if not no_body:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if not no_body:  # a 204 carries no Content-Length at all (RFC 9110)
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if not no_body:
            self.wfile.write(response.body)

    def version_string(self):
        return self.server_version


def _truncate(body):
    """A complete response (Content-Length matches) whose JSON is cut in half."""
    return body[: len(body) // 2] if len(body) > 2 else b'{"'


def _pad(body, size):
    """The same document padded with trailing whitespace: still valid JSON, only too big."""
    return body + b" " * max(0, size - len(body))


def base_arguments(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    return parser


def serve(handler_class, port, state, verbose=False):
    """Bind, print LISTENING <port>, serve until SIGTERM/SIGINT, then exit 0."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler_class)
    server.daemon_threads = True  # blocked long-polls must not hold up exit
    server.faults = Faults()
    server.state = state
    server.verbose = verbose
    return run_until_signal(server, state.stop)


def run_until_signal(server, before_shutdown=None):
    """Serve `server` on a thread, print LISTENING <port>, and on SIGTERM/SIGINT run
    `before_shutdown` (wakes blocked handlers), shut down and return 0."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    print("LISTENING %d" % server.server_address[1], flush=True)
    while not stop.wait(0.2):
        pass
    if before_shutdown:
        before_shutdown()
    server.shutdown()
    server.server_close()
    return 0
