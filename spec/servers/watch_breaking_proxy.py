#!/usr/bin/env python3
# SPDX-License-Identifier: MIT (see LICENSE)
"""A TCP proxy in front of one etcd client URL that can break only the watch streams.

Unary calls (POST /v3/kv/range, /v3/kv/put, /v3/auth/...) always pass; requests to
/v3/watch pass, or break the way a proxy or load balancer that cannot carry long
streams breaks them. One request per connection: the proxy reads the request head and
body, forwards them with "Connection: close" and relays the answer until either side
closes, so it never has to parse responses.

Usage: watch_breaking_proxy.py --target http://127.0.0.1:2379 [--port 0]
Prints "LISTENING <port>", exits 0 on SIGTERM/SIGINT. Control, answered by the proxy
itself (never forwarded):
  POST /_proxy/break {"mode": M}   M = "cut": a watch request is closed at once, without
      an answer; "created": it is forwarded, and closed right after etcd's first
      message (the stream is established, then dies); "hang": it is held without an
      answer until the mode changes or the client gives up, then closed; "off": watches
      pass again (streams already open are left alone).
  GET /_proxy/stats  {"mode", "watch_forwarded", "watch_broken", "unary": {path: n}}
"""

import argparse
import json
import select
import socket
import socketserver
import sys
import threading
from urllib.parse import urlsplit

from faults import run_until_signal

MODES = ("off", "cut", "created", "hang")
MAX_HEAD = 64 * 1024


class State:
    def __init__(self, target):
        url = urlsplit(target)
        self.upstream = (url.hostname, url.port or 80)
        self.lock = threading.Lock()
        self.mode = "off"
        self.watch_forwarded = 0
        self.watch_broken = 0
        self.unary = {}

    def stats(self):
        with self.lock:
            return {"mode": self.mode, "watch_forwarded": self.watch_forwarded,
                    "watch_broken": self.watch_broken, "unary": dict(self.unary)}


def read_request(sock):
    """(head bytes, request line parts, headers dict lower-cased, body) or None at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > MAX_HEAD:
            return None
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        rest += chunk
    return lines, parts, headers, rest[:length]


def answer(sock, status, value):
    body = json.dumps(value).encode()
    sock.sendall(("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                  "Connection: close\r\n\r\n" % (status, "OK" if status == 200 else "Error",
                                                 len(body))).encode() + body)


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        state = self.server.state
        client = self.request
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            request = read_request(client)
            if request is None:
                return
            lines, parts, headers, body = request
            path = parts[1] if len(parts) > 1 else "/"
            if path.startswith("/_proxy/"):
                self.control(client, parts[0], path, body)
                return
            watch = path.startswith("/v3/watch")
            with state.lock:
                mode = state.mode if watch else "off"
                if watch and mode in ("cut", "hang"):
                    state.watch_broken += 1
                elif watch:
                    state.watch_forwarded += 1
                else:
                    state.unary[path] = state.unary.get(path, 0) + 1
            if mode == "cut":
                return
            if mode == "hang":
                self.hold(client)
                return
            self.forward(client, lines, body, cut_after_first=(mode == "created"))
        except OSError:
            pass
        finally:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def control(self, client, method, path, body):
        state = self.server.state
        if path == "/_proxy/stats" and method == "GET":
            answer(client, 200, state.stats())
            return
        if path == "/_proxy/break" and method == "POST":
            try:
                mode = json.loads(body or b"{}").get("mode", "off")
            except (ValueError, AttributeError):
                mode = None
            if mode not in MODES:
                answer(client, 400, {"error": "mode must be one of %s" % ", ".join(MODES)})
                return
            with state.lock:
                state.mode = mode
            answer(client, 200, {"ok": True})
            return
        answer(client, 404, {"error": "unknown control endpoint"})

    def hold(self, client):
        """No answer until the mode changes or the client hangs up."""
        state = self.server.state
        while True:
            with state.lock:
                if state.mode != "hang":
                    return
            readable, _, _ = select.select([client], [], [], 0.1)
            if readable and not client.recv(65536):
                return

    def forward(self, client, lines, body, cut_after_first):
        upstream = socket.create_connection(self.server.state.upstream, timeout=10)
        upstream.settimeout(None)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            kept = [l for l in lines[1:] if not l.lower().startswith(("connection:", "keep-alive:"))]
            head = "\r\n".join([lines[0]] + kept + ["Connection: close", "", ""])
            upstream.sendall(head.encode("latin-1") + body)
            seen = b""
            while True:
                readable, _, _ = select.select([client, upstream], [], [], 1.0)
                if client in readable:
                    data = client.recv(65536)
                    if not data:
                        return
                    upstream.sendall(data)
                if upstream in readable:
                    data = upstream.recv(65536)
                    if not data:
                        return
                    client.sendall(data)
                    if cut_after_first:
                        seen = (seen + data)[-4096:]
                        if b'"created":true' in seen:
                            return  # etcd's first message has passed: the stream dies
        finally:
            upstream.close()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="etcd client URL, http://HOST:PORT")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    server.state = State(args.target)
    return run_until_signal(server)


if __name__ == "__main__":
    sys.exit(main())
