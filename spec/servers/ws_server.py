# SPDX-License-Identifier: MIT (see LICENSE)
"""A WebSocket configuration server for the rc.websocket specs, on Debian's
python3-websockets (10.4), with the protocol rc.websocket expects: every message is one
complete document, and the current document is sent first on every connection.

    python3 spec/servers/ws_server.py [--port 0] [--control-port 0] [--cert C --key K]
        [--token T] [--basic USER:PASSWORD] [--doc TEXT] [--parent PID]

Prints "LISTENING <port> CONTROL <control-port>" once both listen, then serves until
SIGTERM/SIGINT (exit 0), or until the process --parent is gone. --cert/--key serve wss://
with that certificate. --token T (or --basic) refuses a handshake without
"Authorization: Bearer T" (or Basic) with a 401.

The control port speaks plain HTTP/1.1 (one request per connection):
  POST /_test/set            body: the new current document, sent to every client
                             (?binary=1: as a binary message)
  POST /_test/oversized      {"bytes": N}: one text message of N bytes (a JSON string),
                             not the current document
  POST /_test/malformed      {"kind": "opcode" | "rsv" | "masked" | "utf8"}: one frame a
                             client must refuse (reserved opcode 3, RSV1 without an
                             extension, a masked server frame, a text frame that is not
                             UTF-8), written raw on each connection
  POST /_test/close          {"code": 1001, "reason": "..."}: a close frame to every client
  POST /_test/reject         {"status": 503, "count": 1, "retry_after": S}: the next
                             `count` handshakes get that HTTP status instead of 101;
                             {"clear": true} ends every rejection queued
  GET  /_test/stats          {"clients": N (open), "connects": N (accepted), "attempts": N
                             (handshakes, refused ones too), "last_headers": {...}}
"""

import argparse
import asyncio
import base64
import http
import json
import os
import signal
import ssl
import sys

import websockets

STATE = {"doc": None, "binary": False, "clients": set(), "connects": 0, "attempts": 0,
         "last_headers": {}, "reject": []}
ARGS = None


def auth_ok(headers):
    want = None
    if ARGS.token:
        want = "Bearer " + ARGS.token
    elif ARGS.basic:
        want = "Basic " + base64.b64encode(ARGS.basic.encode()).decode()
    return want is None or headers.get("Authorization") == want


async def process_request(path, headers):
    STATE["attempts"] += 1
    STATE["last_headers"] = {k: v for k, v in headers.raw_items()}
    if STATE["reject"]:
        spec = STATE["reject"][0]
        spec["count"] -= 1
        if spec["count"] <= 0:
            STATE["reject"].pop(0)
        extra = [("Retry-After", str(spec["retry_after"]))] if "retry_after" in spec else []
        return http.HTTPStatus(spec.get("status", 503)), extra, b"refused by the test\n"
    if not auth_ok(headers):
        return http.HTTPStatus.UNAUTHORIZED, [], b"unauthorized\n"
    return None


async def handler(ws, path=None):
    STATE["connects"] += 1
    STATE["clients"].add(ws)
    try:
        if STATE["doc"] is not None:
            await ws.send(current())
        async for _ in ws:  # clients send nothing; pings and pongs are answered below
            pass
    except websockets.ConnectionClosed:
        pass
    finally:
        STATE["clients"].discard(ws)


def current():
    doc = STATE["doc"]
    return doc.encode() if STATE["binary"] else doc


def frame(opcode, payload, fin=True, rsv1=False, mask=False):
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([m | 127]) + n.to_bytes(8, "big")
    if mask:
        key = b"\x01\x02\x03\x04"
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


MALFORMED = {
    "opcode": frame(0x3, b""),
    "rsv": frame(0x1, b'{"a": 1}', rsv1=True),
    "masked": frame(0x1, b'{"a": 1}', mask=True),
    "utf8": frame(0x1, b'"\xc3\x28"'),
}


async def send(ws, message):
    try:
        await ws.send(message)
    except websockets.ConnectionClosed:
        pass


async def broadcast(message):
    # Not awaited: the control request is answered at once, while a large message may
    # wait for a client that is not reading (the test's process runs its engine only
    # once curl has its answer). Tasks start in order, so messages keep theirs.
    for ws in list(STATE["clients"]):
        asyncio.ensure_future(send(ws, message))


async def control(reader, writer):
    try:
        line = (await reader.readline()).decode("latin-1").split()
        length = 0
        while True:
            h = (await reader.readline()).decode("latin-1").strip()
            if not h:
                break
            name, _, value = h.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        body = await reader.readexactly(length) if length else b""
        method, target = line[0], line[1]
        path, _, query = target.partition("?")
        status, out = 200, {"ok": True}
        if method == "GET" and path == "/_test/stats":
            out = {"clients": len(STATE["clients"]), "connects": STATE["connects"],
                   "attempts": STATE["attempts"], "last_headers": STATE["last_headers"]}
        elif method == "POST" and path == "/_test/set":
            STATE["doc"] = body.decode()
            STATE["binary"] = "binary=1" in query
            await broadcast(current())
        elif method == "POST" and path == "/_test/oversized":
            n = json.loads(body or b"{}").get("bytes", 2 * 1024 * 1024)
            await broadcast('"' + "x" * max(n - 2, 0) + '"')
        elif method == "POST" and path == "/_test/malformed":
            raw = MALFORMED[json.loads(body or b"{}").get("kind", "opcode")]
            for ws in list(STATE["clients"]):
                ws.transport.write(raw)
        elif method == "POST" and path == "/_test/close":
            spec = json.loads(body or b"{}")
            for ws in list(STATE["clients"]):
                asyncio.ensure_future(ws.close(spec.get("code", 1000), spec.get("reason", "")))
        elif method == "POST" and path == "/_test/reject":
            spec = json.loads(body or b"{}")
            if spec.get("clear"):
                STATE["reject"] = []
            else:
                spec.setdefault("count", 1)
                STATE["reject"].append(spec)
        else:
            status, out = 404, {"error": "no such control"}
        data = json.dumps(out).encode()
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (status, len(data))
                     + data)
        await writer.drain()
    except Exception as e:  # a bad control request must not stop the server
        print("control: %r" % e, file=sys.stderr)
    finally:
        writer.close()


async def watch_parent(stop):
    while not stop.done():
        try:
            os.kill(ARGS.parent, 0)
        except OSError:
            stop.set_result(None)
            return
        await asyncio.sleep(1)


async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
    ctx = None
    if ARGS.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.cert, ARGS.key)
    if ARGS.doc is not None:
        STATE["doc"] = ARGS.doc
    server = await websockets.serve(handler, "127.0.0.1", ARGS.port, ssl=ctx,
                                    process_request=process_request, ping_interval=None,
                                    max_size=None, close_timeout=1)
    ctl = await asyncio.start_server(control, "127.0.0.1", ARGS.control_port)
    port = server.sockets[0].getsockname()[1]
    cport = ctl.sockets[0].getsockname()[1]
    print("LISTENING %d CONTROL %d" % (port, cport), flush=True)
    if ARGS.parent:
        asyncio.ensure_future(watch_parent(stop))
    await stop
    ctl.close()
    server.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--control-port", type=int, default=0)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--token")
    p.add_argument("--basic")
    p.add_argument("--doc")
    p.add_argument("--parent", type=int, default=0)
    ARGS = p.parse_args()
    asyncio.run(main())
    sys.exit(0)
