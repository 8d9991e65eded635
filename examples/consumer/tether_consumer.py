#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A telemetry consumer for tether-server's Redis store (docs/PROTOCOL.md,
"tether-server's Redis store: what backends read and write").

What it does, in order:

1. Finds the sessions in the set `P:sessions` and reads it again every
   `rescan_ms`, so a device that connects for the first time is picked up.
2. Creates the consumer group on each session's uplink stream `P:{S}:up`
   (`XGROUP CREATE P:{S}:up GROUP $ MKSTREAM`, or `0` to start with what the
   stream still holds); a group that exists already is kept as it is.
3. Before reading anything new, reads back its own pending entries
   (`XREADGROUP GROUP G C ... STREAMS ... 0`): the entries a previous run of
   the same consumer name was given but did not acknowledge, because it
   crashed. Nothing is lost across a crash.
4. Reads new entries of every session in one call
   (`XREADGROUP GROUP G C COUNT n BLOCK ms STREAMS k1 k2 ... > > ...`), hands
   each entry to the callback and acknowledges it (`XACK`) only after the
   callback returned. An entry is therefore handled at least once; the
   only entry handled twice is one whose callback returned just before the
   process died, before its XACK. Use (session, seq) as the idempotency key.
5. Checks that the seqs of each session follow each other. A hole is never
   silent: it is reported to `on_hole`, each part explained by an entry of
   `P:{S}:gaps` (a gap the device reported, or the server recorded, with its
   reason), by `trimmed_through` in `P:{S}:state` (removed by retention,
   `--redis-uplink-maxlen`), or, if neither covers it, as "unexplained"
   (which the store's invariant forbids: report it as a bug).

The hole check follows each session's seqs in stream order, so it needs
every entry of a session to come to this consumer: run one consumer per
group, or several with `--shard K/N` (each takes the sessions whose CRC-32
modulo N is K). The consumer name must stay the same across restarts, since
pending entries belong to a name.

Command line (one JSON line per entry and per hole on stdout, logs on stderr):

    tether_consumer.py --redis 127.0.0.1:6379 --group analytics --consumer host-1
    tether_consumer.py --sentinel s1:26379,s2:26379,s3:26379 --master tether \\
        --group analytics --consumer host-1 --start 0

As a library:

    import redis, tether_consumer
    def store(entry):              # tether_consumer.Entry
        database.insert(entry.session, entry.seq, entry.payload)
    consumer = tether_consumer.Consumer(redis.Redis(), group="analytics", name="host-1",
                                        on_entry=store, on_hole=print)
    consumer.run()                 # until consumer.stop() (or SIGTERM, from main())

Needs only Debian's python3-redis (redis-py 4.3 or later) and Redis 7.
"""

import argparse
import base64
import binascii
import collections
import json
import signal
import socket
import sys
import time

import redis

Entry = collections.namedtuple(
    "Entry", "session device seq received_ms captured_ms payload")
Entry.__doc__ = """One uplink message: payload is bytes (opaque); captured_ms is None
when the device did not send the message's age; times are Unix milliseconds."""

Part = collections.namedtuple("Part", "first last cause reason")
Part.__doc__ = """One explained piece of a hole: cause is "gap" (an entry of P:{S}:gaps;
reason is its reason), "trimmed" (at or below trimmed_through; reason is
"trimmed_through=T") or "unexplained" (reason None)."""

Hole = collections.namedtuple("Hole", "session first last parts")
Hole.__doc__ = """Seqs first..last of a session this consumer did not get; parts cover the
range in order."""

_RETRYABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
              redis.exceptions.ReadOnlyError)


def shard_of(session, shards):
    """The shard (0..shards-1) a session id belongs to."""
    return binascii.crc32(session.encode()) % shards


def _seq_of(entry_id):
    return int(entry_id.split(b"-", 1)[0])


class Consumer:
    """Reads every session's uplink stream through one consumer group.

    redis_client: a redis.Redis with decode_responses=False (payloads are bytes).
    group, name: the consumer group and this consumer's stable name.
    prefix: the server's --redis-prefix. start: "$" (only entries appended after
    the group is created) or "0" (everything the stream still holds).
    on_entry(Entry): called once per entry, in seq order per session; the entry
    is acknowledged when it returns. An exception stops the consumer with the
    entry unacknowledged (it comes back on the next start).
    on_hole(Hole): called for each hole before the entry that follows it.
    count, block_ms: XREADGROUP's COUNT and BLOCK. rescan_ms: how often
    P:sessions is read again. shard: (K, N) or None.
    """

    def __init__(self, redis_client, group, name, on_entry, on_hole, prefix="tether",
                 start="$", count=100, block_ms=2000, rescan_ms=5000, shard=None, log=None):
        if start not in ("$", "0"):
            raise ValueError("start must be '$' or '0'")
        self.redis = redis_client
        self.group = group
        self.name = name
        self.on_entry = on_entry
        self.on_hole = on_hole
        self.prefix = prefix
        self.start = start
        self.count = count
        self.block_ms = block_ms
        self.rescan_ms = rescan_ms
        self.shard = shard
        self.log = log or (lambda text: sys.stderr.write("tether_consumer: %s\n" % text))
        self._keys = {}          # stream key (bytes) -> session id (str)
        self._last_seq = {}      # session -> highest seq handled (or explained) by this process
        self._next_rescan = 0.0
        self._recovered = False  # pending entries read back since the last (re)connect
        self._stopping = False

    # --- keys of the documented layout ---------------------------------------

    def key(self, session, name):
        return "%s:{%s}:%s" % (self.prefix, session, name)

    # --- the loop -------------------------------------------------------------

    def stop(self):
        """Ends run() after the current call (at most block_ms)."""
        self._stopping = True

    def run(self):
        """Reads until stop(); reconnects (1 s, 2 s, ... 30 s apart) when Redis is
        unreachable or a failover is under way, then reads its pending entries again."""
        delay = 1.0
        while not self._stopping:
            try:
                self.poll()
                delay = 1.0
            except _RETRYABLE as error:
                self.log("redis unavailable (%s); retrying in %.0f s" % (error, delay))
                self._recovered = False
                self._next_rescan = 0.0
                self._pause(delay)
                delay = min(delay * 2, 30.0)

    def _pause(self, seconds):
        # Sleeps in short steps so that stop() (SIGTERM) is not kept waiting.
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(min(0.2, deadline - time.monotonic()))

    def drain(self):
        """Reads until a blocking read returns nothing; returns the entries handled."""
        handled = 0
        while True:
            got = self.poll()
            handled += got
            if got == 0:
                return handled

    def poll(self):
        """One step: rescan sessions when due, read back pending entries after a
        (re)connect, else one blocking XREADGROUP over every stream. Returns the
        number of entries handled."""
        if time.monotonic() >= self._next_rescan:
            self.refresh_sessions()
            self._next_rescan = time.monotonic() + self.rescan_ms / 1000.0
        if not self._keys:
            self._pause(min(self.block_ms, self.rescan_ms) / 1000.0)
            return 0
        handled = 0
        if not self._recovered:
            handled = self._read_pending(list(self._keys))
            self._recovered = True
        try:
            reply = self.redis.xreadgroup(self.group, self.name, {k: ">" for k in self._keys},
                                          count=self.count, block=self.block_ms)
        except redis.exceptions.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            # A stream or its group was deleted under us (by hand: the server never
            # deletes them). Create the groups again on the next step.
            self.log("%s; creating the groups again" % error)
            self._keys.clear()
            self._next_rescan = 0.0
            self._recovered = False
            reply = None
        return handled + self._handle_reply(reply)

    def refresh_sessions(self):
        """Reads P:sessions; creates the group on streams not seen before."""
        new = []
        for member in self.redis.smembers("%s:sessions" % self.prefix):
            session = member.decode()
            if self.shard is not None and shard_of(session, self.shard[1]) != self.shard[0]:
                continue
            stream = self.key(session, "up").encode()
            if stream in self._keys:
                continue
            try:
                self.redis.xgroup_create(stream, self.group, id=self.start, mkstream=True)
            except redis.exceptions.ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
            self._keys[stream] = session
            new.append(stream)
        if new and self._recovered:
            # A session new to this process may still hold entries a previous run
            # was given: read those back before its new ones.
            self._read_pending(new)
        return len(new)

    def _read_pending(self, streams):
        # XREADGROUP with an ID returns this consumer's pending entries after it;
        # page through them per stream until each returns none.
        cursors = {k: b"0" for k in streams}
        handled = 0
        while cursors:
            reply = self.redis.xreadgroup(self.group, self.name, cursors, count=self.count)
            done = set(cursors)
            for stream, entries in reply or []:
                if entries:
                    done.discard(stream)
                    cursors[stream] = entries[-1][0]
            handled += self._handle_reply(reply)
            for stream in done:
                del cursors[stream]
        return handled

    def _handle_reply(self, reply):
        handled = 0
        for stream, entries in reply or []:
            session = self._keys[stream]
            removed = None
            for entry_id, fields in entries:
                if fields:
                    handled += self._handle(stream, session, entry_id, fields)
                    removed = None
                elif self._removed(stream, session, entry_id):
                    removed = _seq_of(entry_id)
            if removed is not None:
                # The reply ended with removed entries: report them now, not only
                # when the next entry of the session comes.
                self._report_hole(session, self._last_seq[session] + 1, removed)
                self._last_seq[session] = removed
        return handled

    def _baseline(self, stream, session, entry_id):
        last = self._last_seq.get(session)
        if last is None:
            last = self._last_seq[session] = self._predecessor(stream, entry_id)
        return last

    def _removed(self, stream, session, entry_id):
        # A pending entry that retention removed before it was handled (XREADGROUP
        # gives it without fields): acknowledged here, reported as part of the
        # hole before the next entry handled.
        newer = _seq_of(entry_id) > self._baseline(stream, session, entry_id)
        self.redis.xack(stream, self.group, entry_id)
        return newer

    def _handle(self, stream, session, entry_id, fields):
        seq = _seq_of(entry_id)
        last = self._baseline(stream, session, entry_id)
        if seq <= last:
            # Handled by this process already; its XACK was lost with the connection.
            self.redis.xack(stream, self.group, entry_id)
            return 0
        if seq > last + 1:
            self._report_hole(session, last + 1, seq - 1)
        captured = fields.get(b"captured_ms")
        self.on_entry(Entry(
            session=session,
            device=fields.get(b"device", b"").decode("utf-8", "replace"),
            seq=seq,
            received_ms=int(fields.get(b"received_ms", 0)),
            captured_ms=int(captured) if captured is not None else None,
            payload=fields.get(b"payload", b"")))
        self._last_seq[session] = seq
        self.redis.xack(stream, self.group, entry_id)
        return 1

    def _predecessor(self, stream, entry_id):
        # The seq of the stream entry just before this one (0: none left). It was
        # handled before this process started (or skipped on purpose with "$").
        before = self.redis.xrevrange(stream, max=b"(" + entry_id, min="-", count=1)
        return _seq_of(before[0][0]) if before else 0

    # --- holes ----------------------------------------------------------------

    def explain(self, session, first, last):
        """The parts of seqs first..last: trimmed, recorded gaps, unexplained."""
        trimmed = int(self.redis.hget(self.key(session, "state"), "trimmed_through") or 0)
        parts = []
        cursor = first
        if trimmed >= first:
            end = min(last, trimmed)
            parts.append(Part(first, end, "trimmed", "trimmed_through=%d" % trimmed))
            cursor = end + 1
        if cursor <= last:
            for gap_first, gap_last, reason in self._gaps_overlapping(session, cursor, last):
                gap_first = max(gap_first, cursor)
                if gap_first > cursor:
                    parts.append(Part(cursor, gap_first - 1, "unexplained", None))
                end = min(gap_last, last)
                parts.append(Part(gap_first, end, "gap", reason))
                cursor = end + 1
            if cursor <= last:
                parts.append(Part(cursor, last, "unexplained", None))
        return parts

    def _gaps_overlapping(self, session, first, last):
        # Gap entries have the ID <first>-0 and do not overlap: walk back from
        # `last` until an entry ends before `first`.
        key = self.key(session, "gaps")
        found = []
        upper = "%d-0" % last
        while True:
            page = self.redis.xrevrange(key, max=upper, min="-", count=64)
            for entry_id, fields in page:
                gap_first = int(fields.get(b"first", _seq_of(entry_id)))
                gap_last = int(fields.get(b"last", gap_first))
                if gap_last < first:
                    return list(reversed(found))
                found.append((gap_first, gap_last,
                              fields.get(b"reason", b"").decode("utf-8", "replace")))
            if len(page) < 64:
                return list(reversed(found))
            upper = b"(" + page[-1][0]

    def _report_hole(self, session, first, last):
        parts = self.explain(session, first, last)
        for part in parts:
            if part.cause == "unexplained":
                self.log("session %s: seqs %d..%d missing and neither in %s nor trimmed "
                         "(a store invariant is broken)" % (
                             session, part.first, part.last, self.key(session, "gaps")))
        self.on_hole(Hole(session, first, last, parts))


# --- command line ---------------------------------------------------------------


def entry_json(entry):
    """An Entry as one JSON object: payload as text when it is UTF-8, else
    payload_base64."""
    out = {"event": "entry", "session": entry.session, "device": entry.device,
           "seq": entry.seq, "received_ms": entry.received_ms}
    if entry.captured_ms is not None:
        out["captured_ms"] = entry.captured_ms
    try:
        out["payload"] = entry.payload.decode("utf-8")
    except UnicodeDecodeError:
        out["payload_base64"] = base64.b64encode(entry.payload).decode()
    return json.dumps(out, sort_keys=True)


def hole_json(hole):
    return json.dumps({"event": "hole", "session": hole.session, "first": hole.first,
                       "last": hole.last,
                       "parts": [p._asdict() for p in hole.parts]}, sort_keys=True)


def _host_port(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % text)
    return host.strip("[]"), int(port)


def _shard(text):
    k, _, n = text.partition("/")
    if not (k.isdigit() and n.isdigit()) or int(n) == 0 or int(k) >= int(n):
        raise argparse.ArgumentTypeError("expected K/N with 0 <= K < N, got %r" % text)
    return int(k), int(n)


def connect(args):
    """A redis.Redis for --redis, or the current primary through --sentinel."""
    # The socket timeout must outlast a blocking read.
    timeout = args.block_ms / 1000.0 + 5.0
    if args.sentinel:
        from redis.sentinel import Sentinel
        sentinels = [_host_port(s) for s in args.sentinel.split(",")]
        return Sentinel(sentinels, socket_timeout=2.0).master_for(
            args.master, socket_timeout=timeout)
    host, port = _host_port(args.redis)
    return redis.Redis(host=host, port=port, socket_timeout=timeout)


def main(argv=None, on_entry=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--redis", default="127.0.0.1:6379", metavar="HOST:PORT")
    where.add_argument("--sentinel", metavar="HOST:PORT[,HOST:PORT...]")
    parser.add_argument("--master", default="tether", help="Sentinel's name of the primary")
    parser.add_argument("--prefix", default="tether", help="tether-server's --redis-prefix")
    parser.add_argument("--group", required=True)
    parser.add_argument("--consumer", default=socket.gethostname(),
                        help="this consumer's name, stable across restarts (default: host name)")
    parser.add_argument("--start", choices=("$", "0"), default="$",
                        help="where a new group starts: $ new entries only, 0 all still stored")
    parser.add_argument("--count", type=int, default=100, help="entries per stream per read")
    parser.add_argument("--block-ms", type=int, default=2000)
    parser.add_argument("--rescan-ms", type=int, default=5000,
                        help="how often P:sessions is read again")
    parser.add_argument("--shard", type=_shard, metavar="K/N")
    parser.add_argument("--drain", action="store_true",
                        help="exit 0 once a blocking read returns nothing")
    args = parser.parse_args(argv)

    def print_entry(entry):
        print(entry_json(entry), flush=True)

    def print_hole(hole):
        print(hole_json(hole), flush=True)

    consumer = Consumer(connect(args), group=args.group, name=args.consumer,
                        on_entry=on_entry or print_entry, on_hole=print_hole,
                        prefix=args.prefix, start=args.start, count=args.count,
                        block_ms=args.block_ms, rescan_ms=args.rescan_ms, shard=args.shard)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: consumer.stop())
    if args.drain:
        consumer.drain()
    else:
        consumer.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
