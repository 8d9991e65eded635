#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A scripted tether.v1 server that keeps device state (docs/PROTOCOL.md section 9).

Plain sockets and the standard library only; one connection at a time, on
127.0.0.1. Prints `port=N` first, then one JSON line per message the client
sent: {"event": "message", "message": {...}}. Uplink DATA is acknowledged at
once. Per connection: the welcome accepts "state"; when the hello's
desired_version differs from the server's desired version, the snapshot goes;
after "applied" of the first version, one increment follows (version + 1,
--increment as its patch). Reports are applied when their base matches (else
refused as stale with the current document); with --stale-first the first
report is refused as stale against version 7 and --stale-document.
"""

import argparse
import base64
import hashlib
import json
import socket
import struct
import sys

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode, payload):
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_frame(conn):
    b0, b1 = recv_exact(conn, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(conn, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(conn, 8))[0]
    mask = recv_exact(conn, 4) if b1 & 0x80 else b"\0\0\0\0"
    data = bytes(c ^ mask[i % 4] for i, c in enumerate(recv_exact(conn, n)))
    return b0 & 0x0F, data


def merge(document, patch):
    for key, value in patch.items():
        if value is None:
            document.pop(key, None)
        elif isinstance(value, dict) and isinstance(document.get(key), dict):
            merge(document[key], value)
        else:
            document[key] = value
    return document


class State:
    def __init__(self, args):
        self.desired = json.loads(args.desired)
        self.desired_version = 1
        self.increment = json.loads(args.increment)
        self.incremented = False
        self.reported = {}
        self.reported_version = 0
        self.stale_first = args.stale_first
        self.stale_document = json.loads(args.stale_document)


def send_json(conn, message):
    conn.sendall(frame(1, json.dumps(message, separators=(",", ":")).encode()))


def serve(conn, state):
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = conn.recv(4096)
        if not chunk:
            return
        request += chunk
    key = b""
    for line in request.split(b"\r\n"):
        if line.lower().startswith(b"sec-websocket-key:"):
            key = line.split(b":", 1)[1].strip()
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
    conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Protocol: tether.v1\r\n"
                  "Sec-WebSocket-Accept: %s\r\n\r\n" % accept).encode())
    while True:
        opcode, data = read_frame(conn)
        if opcode == 8:
            conn.sendall(frame(8, data[:2]))
            return
        if opcode == 9:
            conn.sendall(frame(10, data))
            continue
        if opcode == 2:
            if data[:1] == b"D":
                conn.sendall(frame(2, b"A\0" + data[2:10]))
            continue
        message = json.loads(data)
        print(json.dumps({"event": "message", "message": message}), flush=True)
        kind = message.get("type")
        if kind == "hello":
            send_json(conn, {"type": "welcome", "session": message["session"], "resumed": False,
                             "last_uplink": 0, "ack_every": 64, "ack_interval_ms": 200,
                             "features": ["state"]})
            if message.get("desired_version", 0) != state.desired_version:
                send_json(conn, {"type": "desired", "version": state.desired_version,
                                 "snapshot": True, "state": state.desired})
        elif kind == "applied":
            if not state.incremented and message["version"] == state.desired_version:
                state.incremented = True
                state.desired_version += 1
                merge(state.desired, state.increment)
                send_json(conn, {"type": "desired", "version": state.desired_version,
                                 "snapshot": False, "patch": state.increment})
        elif kind == "report":
            if state.stale_first:
                state.stale_first = False
                state.reported, state.reported_version = dict(state.stale_document), 7
                send_json(conn, {"type": "report_refused", "id": message["id"],
                                 "reason": "stale", "version": 7, "state": state.reported})
            elif message["base"] != state.reported_version:
                send_json(conn, {"type": "report_refused", "id": message["id"],
                                 "reason": "stale", "version": state.reported_version,
                                 "state": state.reported})
            else:
                if "state" in message:
                    state.reported = message["state"]
                else:
                    merge(state.reported, message["patch"])
                state.reported_version += 1
                send_json(conn, {"type": "report_ok", "id": message["id"],
                                 "version": state.reported_version})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--desired", default='{"rate":5}')
    parser.add_argument("--increment", default='{"rate":6}')
    parser.add_argument("--stale-first", action="store_true")
    parser.add_argument("--stale-document", default='{"other":true}')
    args = parser.parse_args()
    state = State(args)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    print("port=%d" % listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        try:
            serve(conn, state)
        except (EOFError, ConnectionError):
            pass
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
