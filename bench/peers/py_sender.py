# SPDX-License-Identifier: MIT
"""The Python websockets sender of make bench's throughput comparison.

Run by /usr/bin/python3 (Debian's python3-websockets). An asyncio client
written the way the library's documentation writes one: `await ws.send()` per
message (which waits for the transport's buffer to drain past its high-water
mark), then `await ws.close(1000)`, which returns once the server's close
frame has arrived. compression=None: permessage-deflate is not offered.

    py_sender.py --host H --port P --count N [--size 100]

Prints `sent=N elapsed_us=T` (T: from the connection being open to the
server's close frame) and exits 0; non-zero on any failure.
"""

import argparse
import asyncio
import sys
import time

import websockets


async def send_all(host, port, count, size):
    payload = "".join(chr(ord("a") + i % 26) for i in range(size))
    uri = "ws://%s:%d/" % (host, port)
    websocket = await websockets.connect(uri, compression=None)
    started = time.monotonic_ns()
    for _ in range(count):
        await websocket.send(payload)
    await websocket.close(code=1000)
    elapsed_us = (time.monotonic_ns() - started) // 1000
    # close_code is the code of the server's close frame (1006 if none came).
    if websocket.close_code != 1000:
        raise RuntimeError("server close code %s, expected 1000" % websocket.close_code)
    return elapsed_us


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()
    try:
        elapsed_us = asyncio.run(send_all(args.host, args.port, args.count, args.size))
    except Exception as error:  # any failure is the run's failure
        print("py_sender: %s: %s" % (type(error).__name__, error), file=sys.stderr)
        return 1
    print("sent=%d elapsed_us=%d" % (args.count, elapsed_us), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
