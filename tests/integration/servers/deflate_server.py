#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A python3-websockets (10.x) server with permessage-deflate, for the
compression interop tests: echoes every message, logs what was negotiated.

Prints "port=N" first. --log FILE gets one JSON line per connection
({"event": "connected", "extensions": [...]} with the agreed parameters) and
per message ({"event": "message", "size": N}). --bomb BYTES sends one message
of BYTES zero bytes (a few hundred bytes compressed) right after the upgrade.
"""

import argparse
import asyncio
import json
import sys

import websockets
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

ARGS = argparse.ArgumentParser()
ARGS.add_argument("--log")
ARGS.add_argument("--no-compression", action="store_true")
ARGS.add_argument("--server-no-context-takeover", action="store_true")
ARGS.add_argument("--client-no-context-takeover", action="store_true")
ARGS.add_argument("--server-max-window-bits", type=int)
ARGS.add_argument("--client-max-window-bits", type=int)
ARGS.add_argument("--bomb", type=int, default=0)
OPTIONS = ARGS.parse_args()


def log(entry):
    if OPTIONS.log:
        with open(OPTIONS.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


async def handler(websocket, path=None):
    extensions = []
    for extension in websocket.extensions:
        extensions.append({
            "name": extension.name,
            "remote_no_context_takeover": extension.remote_no_context_takeover,
            "local_no_context_takeover": extension.local_no_context_takeover,
            "remote_max_window_bits": extension.remote_max_window_bits,
            "local_max_window_bits": extension.local_max_window_bits,
        })
    log({"event": "connected", "extensions": extensions,
         "request_extensions": websocket.request_headers.get("Sec-WebSocket-Extensions")})
    if OPTIONS.bomb:
        await websocket.send(bytes(OPTIONS.bomb))
    try:
        async for message in websocket:
            log({"event": "message", "size": len(message)})
            await websocket.send(message)
    except websockets.ConnectionClosed as closed:
        log({"event": "closed", "code": closed.code})
        return
    log({"event": "closed", "code": websocket.close_code})


async def main():
    extensions = None
    if not OPTIONS.no_compression:
        extensions = [ServerPerMessageDeflateFactory(
            server_no_context_takeover=OPTIONS.server_no_context_takeover,
            client_no_context_takeover=OPTIONS.client_no_context_takeover,
            server_max_window_bits=OPTIONS.server_max_window_bits,
            client_max_window_bits=OPTIONS.client_max_window_bits,
        )]
    async with websockets.serve(handler, "127.0.0.1", 0, extensions=extensions,
                                compression=None, max_size=16 * 1024 * 1024) as server:
        port = server.sockets[0].getsockname()[1]
        print("port=%d" % port, flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
