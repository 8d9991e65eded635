#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Sends one downlink message to a device through tether-server's Redis store
(docs/PROTOCOL.md, "tether-server's Redis store: what backends read and write").

    push_downlink.py --redis 127.0.0.1:6379 SESSION 'reboot at 02:00'
    push_downlink.py --sentinel s1:26379,s2:26379 --master tether SESSION - < message.bin

It calls the server's Redis function

    FCALL tether_push 1 P:{S}:state <payload> <now_ms>

which appends the message to the session's replay buffer P:{S}:down, assigns
it the next downlink seq and publishes S on P:downlink, so the instance that
serves the device sends it at once (or on the device's next hello). It prints
`seq=N`. With --wait-acked T it then watches `downlink_acked` in P:{S}:state
for up to T seconds and prints `downlink_acked=M` each time it moves; it exits
0 once M >= N, 3 if the time ran out first (the message stays queued: the
device gets it when it comes back). Exit 1: Redis refused the call (for
example, no such session, or the function library is not loaded: tether-server
loads it when it starts with --store redis); 2: usage.
"""

import argparse
import os
import sys
import time

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tether_consumer import _host_port  # noqa: E402


def push(client, prefix, session, payload, now_ms=None):
    """Queues payload (bytes) for the session; returns its downlink seq."""
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    state = "%s:{%s}:state" % (prefix, session.lower())
    return int(client.fcall("tether_push", 1, state, payload, now_ms))


def downlink_acked(client, prefix, session):
    value = client.hget("%s:{%s}:state" % (prefix, session.lower()), "downlink_acked")
    return int(value or 0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--redis", default="127.0.0.1:6379", metavar="HOST:PORT")
    where.add_argument("--sentinel", metavar="HOST:PORT[,HOST:PORT...]")
    parser.add_argument("--master", default="tether", help="Sentinel's name of the primary")
    parser.add_argument("--prefix", default="tether", help="tether-server's --redis-prefix")
    parser.add_argument("--wait-acked", type=float, default=0, metavar="SECONDS",
                        help="then watch downlink_acked until it reaches the seq")
    parser.add_argument("session")
    parser.add_argument("payload", help="the message; - reads it from standard input")
    args = parser.parse_args(argv)

    if args.sentinel:
        from redis.sentinel import Sentinel
        client = Sentinel([_host_port(s) for s in args.sentinel.split(",")],
                          socket_timeout=2.0).master_for(args.master, socket_timeout=5.0)
    else:
        host, port = _host_port(args.redis)
        client = redis.Redis(host=host, port=port, socket_timeout=5.0)
    payload = sys.stdin.buffer.read() if args.payload == "-" else args.payload.encode()

    try:
        seq = push(client, args.prefix, args.session, payload)
    except redis.exceptions.RedisError as error:
        print("push_downlink: %s" % error, file=sys.stderr)
        return 1
    print("seq=%d" % seq, flush=True)
    if args.wait_acked <= 0:
        return 0

    deadline = time.monotonic() + args.wait_acked
    shown = None
    while True:
        acked = downlink_acked(client, args.prefix, args.session)
        if acked != shown:
            print("downlink_acked=%d" % acked, flush=True)
            shown = acked
        if acked >= seq:
            return 0
        if time.monotonic() >= deadline:
            print("push_downlink: seq %d not acknowledged by the device within %g s "
                  "(it stays queued)" % (seq, args.wait_acked), file=sys.stderr)
            return 3
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
