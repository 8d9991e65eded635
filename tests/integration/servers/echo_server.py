#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A correct WebSocket echo server (python3-websockets, asyncio API).

Listens on 127.0.0.1 (port 0 by default), prints `port=N` as its first stdout
line and runs until SIGTERM. Every text or binary message is sent back as is.

--subprotocol NAME  accept only clients offering NAME (others get HTTP 400)
                    and select it
--max-size BYTES    largest accepted message; bigger ones close with 1009
--tls-cert/--tls-key serve wss directly (without nginx)
--sink              log every message and send nothing back (a stop with SIGTERM
                    then logs every message the library read)
--deflate           accept permessage-deflate when offered (off by default, so
                    frames on the wire are the messages as sent)
--log FILE          JSON lines, one per event, each with `t_ms` (since start),
                    `conn` and `event`:
                      connect  path, headers ([[name, value], ...]), subprotocol
                      rejected status, reason (before the upgrade)
                      message  type (text|binary), length, text or hex
                      close    code and reason the client sent (1006: none)
"""

import argparse
import asyncio
import http
import json
import signal
import ssl
import sys
import time

import websockets


class EventLog:
    def __init__(self, path):
        self.start = time.monotonic()
        self.file = open(path, "a", encoding="utf-8") if path else None

    def write(self, conn, event, **fields):
        if self.file is None:
            return
        record = {"t_ms": round((time.monotonic() - self.start) * 1000.0, 3), "conn": conn, "event": event}
        record.update(fields)
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()


def offered_subprotocols(headers):
    offered = []
    for value in headers.get_all("Sec-WebSocket-Protocol"):
        offered.extend(p.strip() for p in value.split(",") if p.strip())
    return offered


async def main(args):
    log = EventLog(args.log)
    counter = {"connections": 0, "rejected": 0}

    async def process_request(path, headers):
        if args.subprotocol and args.subprotocol not in offered_subprotocols(headers):
            counter["rejected"] += 1
            log.write(0, "rejected", status=400, reason="subprotocol %s not offered" % args.subprotocol)
            body = ("subprotocol %s required\n" % args.subprotocol).encode()
            return http.HTTPStatus.BAD_REQUEST, [("Content-Type", "text/plain")], body
        return None

    async def handler(ws):
        counter["connections"] += 1
        conn = counter["connections"]
        log.write(
            conn,
            "connect",
            path=ws.path,
            headers=[[k, v] for k, v in ws.request_headers.raw_items()],
            subprotocol=ws.subprotocol,
        )
        try:
            async for message in ws:
                if isinstance(message, str):
                    log.write(conn, "message", type="text", length=len(message.encode()), text=message)
                else:
                    log.write(conn, "message", type="binary", length=len(message), hex=message.hex())
                if args.close_on is not None and message == args.close_on:
                    # Lets a test end a connection on cue (close 1001, as a
                    # server restart would) to watch the client come back.
                    await ws.close(1001, "going away")
                    break
                if not args.sink:
                    await ws.send(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            # Wait for the closing handshake so close_code is the client's.
            await ws.wait_closed()
            log.write(conn, "close", code=ws.close_code, reason=ws.close_reason)

    tls_context = None
    if args.tls_cert:
        tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))

    async with websockets.serve(
        handler,
        args.host,
        args.port,
        subprotocols=[args.subprotocol] if args.subprotocol else None,
        max_size=args.max_size,
        ping_interval=args.ping_interval,
        process_request=process_request,
        ssl=tls_context,
        compression="deflate" if args.deflate else None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print("port=%d" % port, flush=True)
        await stop
    log.write(0, "stopped", connections=counter["connections"], rejected=counter["rejected"])


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--subprotocol")
    p.add_argument("--max-size", type=int, default=1 << 20)
    p.add_argument(
        "--ping-interval",
        type=float,
        default=None,
        help="seconds between server pings (default: never, so tests see only the client's pings)",
    )
    p.add_argument("--log")
    p.add_argument("--close-on", help="close with 1001 when this text message arrives")
    p.add_argument("--deflate", action="store_true")
    p.add_argument("--sink", action="store_true")
    p.add_argument("--tls-cert", help="serve wss with this certificate (chain) file")
    p.add_argument("--tls-key", help="private key for --tls-cert")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args(sys.argv[1:])))
