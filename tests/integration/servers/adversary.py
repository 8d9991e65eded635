#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A scripted, misbehaving WebSocket server for tether's integration tests.

Raw asyncio TCP (no WebSocket library), so every byte it sends is chosen here.
One scenario per run; each breaks exactly one RFC 6455 rule or exercises one
behaviour. Listens on 127.0.0.1 (port 0 by default), prints `port=N` as its
first stdout line and runs until SIGTERM. With --tls-cert/--tls-key it speaks
TLS itself (nginx in front would rewrite the handshake headers under test).

Everything the client does is logged to --log as JSON lines, one per event,
each with `t_ms` (milliseconds since the server started), `conn` (1-based
connection number) and `event`:
  connect        peer address
  request        request_line, headers ([[name, value], ...] in wire order)
  sent           what the server wrote (`what`, and `hex` for frames)
  frame          a client frame: opcode, fin, rsv, masked, length, payload_hex,
                 text (when valid UTF-8), close_code/close_reason for close
  data           raw bytes received where no frame was expected
  protocol_error a client frame that could not be parsed (detail)
  eof            the client closed its side of TCP (read returned 0)
  reset          the client reset the connection
  server_close   the server closed TCP (reset=true for SO_LINGER 0)
"""

import argparse
import asyncio
import base64
import hashlib
import json
import signal
import socket
import ssl
import struct
import sys
import time

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_REQUEST_BYTES = 16384
MAX_FRAME_BYTES = 1 << 20

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def accept_for(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2)."""
    digest = hashlib.sha1(key.encode("ascii") + WS_GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def encode_frame(opcode, payload=b"", fin=True, rsv=0, mask=None, length_form=None):
    """One frame. length_form 16 or 64 forces the extended length encodings."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if mask is not None else 0
    n = len(payload)
    if length_form == 64 or (length_form is None and n > 0xFFFF):
        head = struct.pack("!BBQ", first, mask_bit | 127, n)
    elif length_form == 16 or (length_form is None and n >= 126):
        head = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        head = struct.pack("!BB", first, mask_bit | n)
    if mask is not None:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class EventLog:
    def __init__(self, path, start):
        self.start = start
        self.file = open(path, "a", encoding="utf-8") if path else None

    def write(self, conn, event, **fields):
        if self.file is None:
            return
        record = {"t_ms": round((time.monotonic() - self.start) * 1000.0, 3), "conn": conn, "event": event}
        record.update(fields)
        self.file.write(json.dumps(record, sort_keys=False) + "\n")
        self.file.flush()


class Connection:
    def __init__(self, server, reader, writer, number):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.number = number
        self.request = None
        self.closed = False

    def log(self, event, **fields):
        self.server.log.write(self.number, event, **fields)

    # --- reading -----------------------------------------------------------

    async def read_exactly(self, n):
        try:
            return await self.reader.readexactly(n)
        except asyncio.IncompleteReadError as e:
            if e.partial:
                self.log("data", hex=e.partial.hex(), note="truncated before end of frame")
            self.log("eof")
            return None
        except (ConnectionResetError, BrokenPipeError):
            self.log("reset")
            return None

    async def read_request(self):
        """Reads and logs the upgrade request; None if the client went away."""
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            if e.partial:
                self.log("data", hex=e.partial.hex(), note="incomplete request")
            self.log("eof")
            return None
        except asyncio.LimitOverrunError:
            self.log("protocol_error", detail="request head larger than %d bytes" % MAX_REQUEST_BYTES)
            return None
        except (ConnectionResetError, BrokenPipeError):
            self.log("reset")
            return None
        lines = raw.decode("latin-1").split("\r\n")
        request_line = lines[0]
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            headers.append([name.strip(), value.strip()])
        self.request = {"line": request_line, "headers": headers}
        self.log("request", request_line=request_line, headers=headers)
        return self.request

    def header(self, name):
        for key, value in (self.request or {}).get("headers", []):
            if key.lower() == name.lower():
                return value
        return None

    async def read_frame(self):
        """Reads, unmasks and logs one client frame; None on EOF, reset or a bad frame."""
        head = await self.read_exactly(2)
        if head is None:
            return None
        fin = bool(head[0] & 0x80)
        rsv = (head[0] >> 4) & 0x7
        opcode = head[0] & 0x0F
        masked = bool(head[1] & 0x80)
        length = head[1] & 0x7F
        if length == 126:
            ext = await self.read_exactly(2)
            if ext is None:
                return None
            length = struct.unpack("!H", ext)[0]
        elif length == 127:
            ext = await self.read_exactly(8)
            if ext is None:
                return None
            length = struct.unpack("!Q", ext)[0]
        if length > MAX_FRAME_BYTES:
            self.log("protocol_error", detail="frame length %d too large" % length)
            return None
        key = b""
        if masked:
            key = await self.read_exactly(4)
            if key is None:
                return None
        payload = await self.read_exactly(length) if length else b""
        if payload is None:
            return None
        if masked:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        record = {
            "opcode": opcode,
            "fin": fin,
            "rsv": rsv,
            "masked": masked,
            "length": length,
            "payload_hex": payload.hex(),
        }
        if opcode in (OP_TEXT, OP_CONT, OP_PING, OP_PONG):
            try:
                record["text"] = payload.decode("utf-8")
            except UnicodeDecodeError:
                pass
        if opcode == OP_CLOSE and len(payload) >= 2:
            record["close_code"] = struct.unpack("!H", payload[:2])[0]
            record["close_reason"] = payload[2:].decode("utf-8", "replace")
        elif opcode == OP_CLOSE:
            record["close_code"] = None
        self.log("frame", **record)
        record["payload"] = payload
        return record

    async def read_until_eof(self):
        """Logs whatever arrives as raw data until the client closes."""
        while True:
            try:
                chunk = await self.reader.read(4096)
            except (ConnectionResetError, BrokenPipeError):
                self.log("reset")
                return
            if not chunk:
                self.log("eof")
                return
            self.log("data", hex=chunk.hex())

    # --- writing -----------------------------------------------------------

    async def send(self, data, what):
        fields = {"what": what}
        if len(data) <= 512:
            fields["hex"] = data.hex()
        self.log("sent", **fields)
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionResetError, BrokenPipeError):
            self.log("reset")

    async def send_frame(self, what, opcode, payload=b"", **kw):
        await self.send(encode_frame(opcode, payload, **kw), what)

    async def send_response(self, status, headers, body=b""):
        head = "HTTP/1.1 %s\r\n" % status
        head += "".join("%s: %s\r\n" % (k, v) for k, v in headers)
        await self.send(head.encode("latin-1") + b"\r\n" + body, "response " + status)

    async def upgrade(self, accept=None, omit=(), extra=()):
        """Sends a 101; by default a correct one."""
        key = self.header("Sec-WebSocket-Key") or ""
        headers = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept if accept is not None else accept_for(key)),
        ]
        headers = [h for h in headers if h[0] not in omit]
        headers.extend(extra)
        await self.send_response("101 Switching Protocols", headers)

    async def close_tcp(self, reset=False):
        if self.closed:
            return
        self.closed = True
        if reset:
            sock = self.writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.log("server_close", reset=True)
            self.writer.transport.abort()
            return
        self.log("server_close", reset=False)
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionResetError, BrokenPipeError):
            pass

    # --- common behaviours ---------------------------------------------------

    async def echo(self, answer_pings=True):
        """A correct echo peer: reassembles messages, answers pings and closes."""
        message_opcode = None
        parts = []
        while True:
            frame = await self.read_frame()
            if frame is None:
                await self.close_tcp()
                return
            opcode, payload = frame["opcode"], frame["payload"]
            if opcode == OP_CLOSE:
                await self.send_frame("close echo", OP_CLOSE, payload[:2])
                await self.close_tcp()
                return
            if opcode == OP_PING:
                if answer_pings:
                    await self.send_frame("pong", OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode in (OP_TEXT, OP_BINARY):
                message_opcode, parts = opcode, [payload]
            elif opcode == OP_CONT and message_opcode is not None:
                parts.append(payload)
            if frame["fin"] and message_opcode is not None:
                await self.send_frame("echo", message_opcode, b"".join(parts))
                message_opcode, parts = None, []

    async def observe(self, answer_close=True):
        """Logs client frames without answering; completes the close handshake if asked."""
        while True:
            frame = await self.read_frame()
            if frame is None:
                await self.close_tcp()
                return
            if frame["opcode"] == OP_CLOSE:
                if answer_close:
                    await self.send_frame("close reply", OP_CLOSE, frame["payload"][:2])
                    await self.close_tcp()
                    return


# --- scenarios ---------------------------------------------------------------
# Each takes the connection after its request was read and logged.


async def ok_echo(c, args):
    await c.upgrade()
    await c.echo()


async def bad_accept(c, args):
    await c.upgrade(accept=accept_for("dGhpcyBpcyBub3QgdGhlIGtleQ=="))
    await c.observe()


async def missing_upgrade(c, args):
    await c.upgrade(omit=("Upgrade",))
    await c.observe()


async def missing_connection(c, args):
    await c.upgrade(omit=("Connection",))
    await c.observe()


async def unrequested_extension(c, args):
    await c.upgrade(extra=(("Sec-WebSocket-Extensions", "permessage-deflate"),))
    await c.observe()


async def unrequested_subprotocol(c, args):
    await c.upgrade(extra=(("Sec-WebSocket-Protocol", "tether-unrequested"),))
    await c.observe()


async def _status(c, status, headers):
    body = (status + "\n").encode("ascii")
    headers = list(headers) + [
        ("Content-Type", "text/plain"),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
    ]
    await c.send_response(status, headers, body)
    await c.close_tcp()


async def status_503(c, args):
    headers = [] if args.retry_after is None else [("Retry-After", str(args.retry_after))]
    await _status(c, "503 Service Unavailable", headers)


async def status_401(c, args):
    await _status(c, "401 Unauthorized", [("WWW-Authenticate", 'Bearer realm="tether"')])


async def status_429(c, args):
    headers = [] if args.retry_after is None else [("Retry-After", str(args.retry_after))]
    await _status(c, "429 Too Many Requests", headers)


async def handshake_never_completes(c, args):
    await c.read_until_eof()
    await c.close_tcp()


async def silent_after_handshake(c, args):
    await c.upgrade()
    await c.observe(answer_close=False)


async def reset_mid_stream(c, args):
    """Sends "first", then resets on the client's first data frame or after --reset-after-ms."""
    await c.upgrade()
    await c.send_frame("first message", OP_TEXT, b"first")
    deadline = time.monotonic() + args.reset_after_ms / 1000.0
    trigger = "timeout"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            frame = await asyncio.wait_for(c.read_frame(), remaining)
        except asyncio.TimeoutError:
            break
        if frame is None:
            trigger = "client_gone"
            break
        if frame["opcode"] in (OP_TEXT, OP_BINARY, OP_CONT):
            trigger = "client_message"
            break
    c.log("reset_trigger", trigger=trigger)
    await c.close_tcp(reset=True)


async def reserved_bits(c, args):
    await c.upgrade()
    await c.send_frame("text with RSV1", OP_TEXT, b"rsv", rsv=0b100)
    await c.observe()


async def unknown_opcode(c, args):
    await c.upgrade()
    await c.send_frame("opcode 0x3", 0x3, b"op3")
    await c.observe()


async def ping_echo(c, args):
    await c.upgrade()
    await c.send_frame("ping", OP_PING, b"tether-ping-1")
    await c.echo()


async def fragmented_with_ping(c, args):
    await c.upgrade()
    data = (
        encode_frame(OP_TEXT, b"Hel", fin=False)
        + encode_frame(OP_PING, b"p")
        + encode_frame(OP_CONT, b"lo", fin=True)
    )
    await c.send(data, "text 'Hel' fin=0, ping 'p', continuation 'lo' fin=1")
    await c.echo()


async def invalid_utf8(c, args):
    await c.upgrade()
    await c.send_frame("text with invalid UTF-8", OP_TEXT, b"\xc3\x28")
    await c.observe()


async def oversize_control(c, args):
    await c.upgrade()
    await c.send_frame("ping with 126-byte payload", OP_PING, b"x" * 126, length_form=16)
    await c.observe()


async def close_echo(c, args):
    await c.upgrade()
    await c.send_frame("close %d" % args.close_code, OP_CLOSE, close_payload(args.close_code, b"bye"))
    # The server initiated: it waits for the client's close, then closes TCP
    # first (RFC 6455 section 7.1.1). Data frames in flight are only logged.
    while True:
        frame = await c.read_frame()
        if frame is None or frame["opcode"] == OP_CLOSE:
            break
    await c.close_tcp()


async def masked_server_frame(c, args):
    await c.upgrade()
    await c.send_frame("masked text", OP_TEXT, b"masked", mask=b"\x01\x02\x03\x04")
    await c.observe()


async def close_1001_then_accept(c, args):
    await c.upgrade()
    if c.number > 1:
        await c.echo()
        return
    await c.send_frame("close 1001", OP_CLOSE, close_payload(1001, b"going away"))
    while True:
        frame = await c.read_frame()
        if frame is None or frame["opcode"] == OP_CLOSE:
            break
    await c.close_tcp()


async def binary_for_echo(c, args):
    """Sends a binary message that is not UTF-8 and one of exactly 65,536 bytes (the
    client's default limit), then logs what comes back: an echo must keep the opcode."""
    await c.upgrade()
    await c.send_frame("binary", OP_BINARY, b"\xff\xfe\x00\x80binary")
    await c.send_frame("binary at the limit", OP_BINARY, bytes(range(256)) * 256)
    await c.observe()


async def drop_after_handshake(c, args):
    await c.upgrade()
    c.log("attempt", count=c.number)
    await c.close_tcp()


SCENARIOS = {
    f.__name__: f
    for f in (
        ok_echo,
        bad_accept,
        missing_upgrade,
        missing_connection,
        unrequested_extension,
        unrequested_subprotocol,
        status_503,
        status_401,
        status_429,
        handshake_never_completes,
        silent_after_handshake,
        reset_mid_stream,
        reserved_bits,
        unknown_opcode,
        ping_echo,
        fragmented_with_ping,
        invalid_utf8,
        oversize_control,
        close_echo,
        masked_server_frame,
        close_1001_then_accept,
        drop_after_handshake,
        binary_for_echo,
    )
}


class Server:
    def __init__(self, args):
        self.args = args
        self.log = EventLog(args.log, time.monotonic())
        self.connections = 0
        self.tasks = set()

    async def handle(self, reader, writer):
        self.connections += 1
        conn = Connection(self, reader, writer, self.connections)
        peer = writer.get_extra_info("peername")
        conn.log("connect", peer="%s:%d" % (peer[0], peer[1]))
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            if await conn.read_request() is None:
                await conn.close_tcp()
                return
            await SCENARIOS[self.args.scenario](conn, self.args)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a scenario bug must show in the log, not vanish
            conn.log("server_error", detail=repr(e))
            await conn.close_tcp()
        finally:
            self.tasks.discard(task)


def server_tls_context(args):
    if not args.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    if args.tls_client_ca:
        context.load_verify_locations(args.tls_client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def main(args):
    server = Server(args)
    listener = await asyncio.start_server(
        server.handle,
        args.host,
        args.port,
        limit=MAX_REQUEST_BYTES,
        reuse_address=True,
        ssl=server_tls_context(args),
    )
    port = listener.sockets[0].getsockname()[1]
    print("port=%d" % port, flush=True)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await stop
    listener.close()
    for task in list(server.tasks):
        task.cancel()
    await asyncio.gather(*server.tasks, return_exceptions=True)
    server.log.write(0, "stopped", connections=server.connections)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--log", help="JSON-lines event log")
    p.add_argument("--retry-after", type=int, help="Retry-After seconds for status_503/status_429")
    p.add_argument("--close-code", type=int, default=4000, help="code for close_echo")
    p.add_argument(
        "--reset-after-ms",
        type=int,
        default=1000,
        help="reset_mid_stream: reset this long after 101 if the client sent no data",
    )
    p.add_argument("--tls-cert", help="serve TLS with this certificate (chain) file")
    p.add_argument("--tls-key", help="private key for --tls-cert")
    p.add_argument("--tls-client-ca", help="require client certificates signed by this CA")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args(sys.argv[1:])))
