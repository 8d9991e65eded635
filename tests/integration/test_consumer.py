#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""examples/consumer/ (tether_consumer.py, push_downlink.py and the redis-cli
commands of its README) against a real redis-server started here.

Redis is filled by hand in the layout of docs/PROTOCOL.md ("tether-server's
Redis store"): uplink entries with IDs <seq>-0, gap entries with IDs <first>-0,
trimmed_through in the state hash. tether_push comes from a stand-in function
library defined below (the real one is loaded by tether-server).

Each test gets its own redis-server on 127.0.0.1 (a free port, a temporary
directory, no persistence); the machine's own Redis is never touched.

Usage: /usr/bin/python3 test_consumer.py --source-dir ROOT --build-dir DIR [Example]
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import unittest

ARGS = argparse.ArgumentParser(add_help=False)
ARGS.add_argument("--source-dir", required=True)
ARGS.add_argument("--build-dir", required=True)
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
sys.path.insert(0, os.path.join(OPTIONS.source_dir, "tests", "integration"))
EXAMPLE_DIR = os.path.join(OPTIONS.source_dir, "examples", "consumer")
sys.path.insert(0, EXAMPLE_DIR)

import redis  # noqa: E402

import harness  # noqa: E402
import tether_consumer  # noqa: E402

PYTHON = "/usr/bin/python3"
CONSUMER = os.path.join(EXAMPLE_DIR, "tether_consumer.py")
PUSH = os.path.join(EXAMPLE_DIR, "push_downlink.py")
REDIS_SERVER = "/usr/bin/redis-server"
REDIS_SENTINEL = "/usr/bin/redis-sentinel"
REDIS_CLI = "/usr/bin/redis-cli"

S1 = "0a6c2f1e-5b7d-5c3a-9e4f-1d2c3b4a5f60"
S2 = "7f3e9a10-2b4c-5d6e-8f90-a1b2c3d4e5f6"
S3 = "c0ffee00-1111-5222-8333-444455556666"

# STAND-IN, for this test only: a minimal `tether` function library whose
# tether_push follows the contract of docs/PROTOCOL.md (append to P:{S}:down
# with the next seq, publish S on P:downlink, answer the seq), so that
# push_downlink.py and the README's FCALL have something to call. The real
# library, with every other function of a session, is tether-server's own
# (loaded with FUNCTION LOAD REPLACE when it starts with --store redis).
STAND_IN_TETHER_LIBRARY = r"""#!lua name=tether
-- Stand-in for tests/integration/test_consumer.py; not the server's library.
local function tether_push(keys, args)
    local state = keys[1]
    if redis.call('EXISTS', state) == 0 then
        return redis.error_reply('ERR no such session')
    end
    local base = string.sub(state, 1, -7)            -- P:{S}  (without ":state")
    local prefix, session = string.match(state, '^(.*):{(.-)}:state$')
    local seq = redis.call('HINCRBY', state, 'downlink_last', 1)
    redis.call('XADD', base .. ':down', seq .. '-0', 'payload', args[1], 'queued_ms', args[2])
    redis.call('PUBLISH', prefix .. ':downlink', session)
    return seq
end
redis.register_function('tether_push', tether_push)
"""


class RedisServer:
    """redis-server on 127.0.0.1, a free port, in a temporary directory."""

    def __init__(self, tmp):
        self.dir = tmp.path("redis")
        os.makedirs(self.dir)
        for _ in range(5):
            self.port = harness.free_port()
            self.process = harness.start_process(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--dir", self.dir, "--save", "", "--appendonly", "no",
                 "--protected-mode", "yes"], expect_port=False, name="redis-server")
            try:
                harness.wait_for(lambda: answers(self.process, self.port), timeout=10)
                return
            except harness.HarnessError:
                self.process.stop(grace=0.5)  # most likely the port was taken meanwhile
        raise harness.HarnessError("redis-server did not start on any free port")

    def client(self):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10)

    def stop(self):
        self.process.stop()


def answers(process, port):
    """True once a Redis (or Sentinel) on port answers PING; raises if it exited."""
    if not process.alive():
        raise harness.HarnessError("%s exited:\n%s" % (process.name, process.stdout()))
    try:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5).ping()
    except redis.exceptions.ConnectionError:
        return False


def fill(r, session, seqs, device="pi-17", gaps=(), trimmed_through=0, captured=None,
         payloads=None, prefix="tether"):
    """A session as tether-server stores it: P:sessions, the state hash, uplink entries
    <seq>-0 (payload "m<seq>" unless given), gap entries <first>-0."""
    captured = captured or {}
    payloads = payloads or {}
    base = "%s:{%s}" % (prefix, session)
    r.sadd(prefix + ":sessions", session)
    r.hset(base + ":state", mapping={
        "device": device, "owner": "fleet", "version": 1,
        "next_expected": max(list(seqs) + [g[1] for g in gaps] + [0]) + 1,
        "trimmed_through": trimmed_through, "downlink_last": 0, "downlink_acked": 0,
        "instance": "test"})
    for first, last, reason in gaps:
        r.xadd(base + ":gaps", {"first": first, "last": last, "reason": reason},
               id="%d-0" % first)
    append(r, session, seqs, device, captured, payloads, prefix)


def append(r, session, seqs, device="pi-17", captured=None, payloads=None, prefix="tether"):
    captured = captured or {}
    payloads = payloads or {}
    for seq in seqs:
        fields = {"seq": seq, "device": device, "session": session,
                  "received_ms": 1733520000000 + seq,
                  "payload": payloads.get(seq, ("m%d" % seq).encode())}
        if seq in captured:
            fields["captured_ms"] = captured[seq]
        r.xadd("%s:{%s}:up" % (prefix, session), fields, id="%d-0" % seq)


def pending(r, session, group="analytics", prefix="tether"):
    return r.xpending("%s:{%s}:up" % (prefix, session), group)["pending"]


class Recorder:
    """Collects what a Consumer hands over."""

    def __init__(self):
        self.entries = []
        self.holes = []

    def consumer(self, r, start="0", name="c1", **kw):
        return tether_consumer.Consumer(r, group="analytics", name=name, start=start,
                                        on_entry=self.entries.append,
                                        on_hole=self.holes.append, block_ms=100,
                                        log=lambda text: None, **kw)

    def seqs(self, session):
        return [e.seq for e in self.entries if e.session == session]


def parse_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# A consumer process whose handler prints the entry and then, at the chosen
# entry, kills its own process with SIGKILL: a crash with the callback done and
# the XACK not yet sent, in the middle of a batch of many entries.
CRASHING_DRIVER = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
import tether_consumer
kill_at = sys.argv[2]            # "SESSION:SEQ" or "-"
delay = float(sys.argv[3])       # seconds per entry, for kills from outside
def handle(entry):
    print(tether_consumer.entry_json(entry), flush=True)
    if delay:
        import time
        time.sleep(delay)
    if kill_at == "%s:%d" % (entry.session, entry.seq):
        os.kill(os.getpid(), signal.SIGKILL)
sys.exit(tether_consumer.main(sys.argv[4:], on_entry=handle))
"""


class Example(unittest.TestCase):
    def setUp(self):
        self.tmp = harness.TempDir("consumer-")
        self.redis = RedisServer(self.tmp)
        self.addCleanup(self.redis.stop)
        self.r = self.redis.client()

    def cli(self, *extra, timeout=30):
        result = harness.run([PYTHON, CONSUMER, "--redis", "127.0.0.1:%d" % self.redis.port,
                              "--group", "analytics", "--consumer", "c1", "--block-ms", "200"]
                             + list(extra), timeout=timeout)
        self.assertEqual(result.returncode, 0, result)
        return parse_lines(result.stdout.decode())

    def driver(self, kill_at="-", delay=0.0, count=100):
        return harness.Process(
            [PYTHON, "-c", CRASHING_DRIVER, EXAMPLE_DIR, kill_at, str(delay),
             "--redis", "127.0.0.1:%d" % self.redis.port, "--group", "analytics",
             "--consumer", "c1", "--block-ms", "200", "--start", "0", "--count", str(count),
             "--drain"], name="consumer-driver")

    # --- reading --------------------------------------------------------------

    def test_every_entry_of_every_session_in_order_with_its_fields_in_few_calls(self):
        fill(self.r, S1, range(1, 6), device="pi-17", captured={2: 1733519999000},
             payloads={3: b"\xff\x00binary"})
        fill(self.r, S2, range(1, 4), device="pi-18")
        fill(self.r, S3, range(1, 8), device="pi-19")
        self.r.config_resetstat()
        lines = self.cli("--start", "0", "--drain", "--count", "100")

        entries = [line for line in lines if line["event"] == "entry"]
        self.assertEqual([line for line in lines if line["event"] != "entry"], [])
        for session, count in ((S1, 5), (S2, 3), (S3, 7)):
            self.assertEqual([e["seq"] for e in entries if e["session"] == session],
                             list(range(1, count + 1)))
            self.assertEqual(pending(self.r, session), 0, "every entry acknowledged")
        first = next(e for e in entries if e["session"] == S1 and e["seq"] == 2)
        self.assertEqual(first, {"event": "entry", "session": S1, "device": "pi-17", "seq": 2,
                                 "received_ms": 1733520000002, "captured_ms": 1733519999000,
                                 "payload": "m2"})
        self.assertNotIn("captured_ms", entries[0], "absent when the device sent no age")
        binary = next(e for e in entries if e["session"] == S1 and e["seq"] == 3)
        self.assertEqual(binary["payload_base64"], "/wBiaW5hcnk=")
        self.assertEqual(next(e for e in entries if e["session"] == S3)["device"], "pi-19")
        # Many streams per call: the pending pass, one read over all three streams,
        # and the empty read that ends --drain.
        calls = self.r.info("commandstats")["cmdstat_xreadgroup"]["calls"]
        self.assertLessEqual(calls, 3)

    def test_start_dollar_skips_what_is_stored_and_reads_what_comes_after(self):
        fill(self.r, S1, range(1, 11))
        recorder = Recorder()
        consumer = recorder.consumer(self.r, start="$")
        self.assertEqual(consumer.drain(), 0)
        append(self.r, S1, range(11, 14))
        self.assertEqual(consumer.drain(), 3)
        self.assertEqual(recorder.seqs(S1), [11, 12, 13])
        self.assertEqual(recorder.holes, [], "the history skipped on purpose is no hole")
        # A restart keeps the group where it was (BUSYGROUP is not an error).
        append(self.r, S1, [14])
        again = Recorder()
        self.assertEqual(again.consumer(self.r, start="$").drain(), 1)
        self.assertEqual(again.seqs(S1), [14])
        self.assertEqual(again.holes, [])

    def test_a_session_that_appears_later_is_found_on_the_next_rescan(self):
        fill(self.r, S1, [1])
        process = harness.start_process(
            [PYTHON, CONSUMER, "--redis", "127.0.0.1:%d" % self.redis.port, "--group",
             "analytics", "--consumer", "c1", "--start", "0", "--block-ms", "100",
             "--rescan-ms", "200"], expect_port=False, name="consumer")
        with process:
            process.wait_for_line(r'.*"session": "%s"' % S1, timeout=10)
            fill(self.r, S2, [1, 2], device="late")
            line = process.wait_for_line(r'.*"device": "late"', timeout=10)
            self.assertEqual(json.loads(line.string)["seq"], 1)
            process.wait_for_line(r'.*"device": "late".*"seq": 2', timeout=10)
            self.assertEqual(process.stop(), 0, "SIGTERM ends it cleanly")
        self.assertEqual(pending(self.r, S2), 0)

    def test_reads_the_primary_named_by_sentinel(self):
        port = None
        for _ in range(5):
            port = harness.free_port()
            conf = self.tmp.path("sentinel-%d.conf" % port)
            with open(conf, "w") as f:
                f.write("port %d\nbind 127.0.0.1\ndir %s\n"
                        "sentinel monitor tether 127.0.0.1 %d 1\n" % (
                            port, self.tmp.dir, self.redis.port))
            sentinel = harness.start_process([REDIS_SENTINEL, conf], expect_port=False,
                                             name="redis-sentinel")
            try:
                harness.wait_for(lambda: answers(sentinel, port), timeout=10)
                break
            except harness.HarnessError:
                sentinel.stop(grace=0.5)
        self.addCleanup(sentinel.stop)
        fill(self.r, S1, range(1, 4))
        result = harness.run([PYTHON, CONSUMER, "--sentinel", "127.0.0.1:%d" % port,
                              "--master", "tether", "--group", "analytics", "--start", "0",
                              "--block-ms", "200", "--drain"], timeout=30)
        self.assertEqual(result.returncode, 0, result)
        self.assertEqual([e["seq"] for e in parse_lines(result.stdout.decode())], [1, 2, 3])

    def test_a_stream_deleted_by_hand_gets_its_group_again(self):
        fill(self.r, S1, [1, 2])
        recorder = Recorder()
        consumer = recorder.consumer(self.r, start="$")
        consumer.drain()
        self.r.delete("tether:{%s}:up" % S1)
        self.assertEqual(consumer.drain(), 0)  # NOGROUP: the groups are forgotten ...
        self.assertEqual(consumer.drain(), 0)  # ... and created again ($: from now on)
        self.assertTrue(self.r.xinfo_groups("tether:{%s}:up" % S1))
        append(self.r, S1, [3, 4])
        self.assertEqual(consumer.drain(), 2)
        self.assertEqual(recorder.seqs(S1), [3, 4])

    # --- crashes --------------------------------------------------------------

    def test_killed_mid_batch_then_restarted_loses_nothing_and_repeats_nothing_acknowledged(self):
        fill(self.r, S1, range(1, 41))
        fill(self.r, S2, range(1, 41))
        # One read hands over S1 1..40 and S2 1..40 (in either order); the handler of
        # S1 seq 15 returns, then the process dies before that XACK.
        crashed = self.driver(kill_at="%s:15" % S1)
        self.assertEqual(crashed.wait(30), -signal.SIGKILL)
        crashed.stop()
        first_run = [(e["session"], e["seq"]) for e in parse_lines(crashed.stdout())]
        self.assertEqual([h for h in first_run if h[0] == S1], [(S1, s) for s in range(1, 16)])
        s2_done = [h for h in first_run if h[0] == S2]
        self.assertIn(s2_done, ([], [(S2, s) for s in range(1, 41)]))
        # Delivered and not acknowledged: exactly the rest of the batch, from S1 15 on.
        s1_pending = self.r.xpending_range("tether:{%s}:up" % S1, "analytics", "-", "+", 100)
        self.assertEqual([int(p["message_id"].split(b"-")[0]) for p in s1_pending],
                         list(range(15, 41)))
        self.assertEqual(pending(self.r, S2), 40 - len(s2_done))
        append(self.r, S1, range(41, 46))  # arrives while the consumer is down

        restarted = self.driver()
        self.assertEqual(restarted.wait(30), 0, restarted.stderr())
        restarted.stop()
        lines = parse_lines(restarted.stdout())
        self.assertEqual([line for line in lines if line["event"] != "entry"], [], "no hole")
        second_run = [(e["session"], e["seq"]) for e in lines]
        # The pending entries come first (in seq order per session), then the new ones.
        redelivered = 26 + 40 - len(s2_done)
        self.assertEqual([h for h in second_run[:redelivered] if h[0] == S1],
                         [(S1, s) for s in range(15, 41)])
        self.assertEqual([h for h in second_run[:redelivered] if h[0] == S2],
                         [] if s2_done else [(S2, s) for s in range(1, 41)])
        self.assertEqual(second_run[redelivered:], [(S1, s) for s in range(41, 46)])
        # Nothing lost; the only entry handled twice is the one whose XACK died with it.
        handled = first_run + second_run
        self.assertEqual(sorted(set(handled)),
                         sorted([(S1, s) for s in range(1, 46)] + [(S2, s) for s in range(1, 41)]))
        self.assertEqual([h for h in set(handled) if handled.count(h) > 1], [(S1, 15)])
        self.assertEqual(pending(self.r, S1) + pending(self.r, S2), 0)

    def test_killed_from_outside_at_any_moment_repeats_only_what_was_not_acknowledged(self):
        fill(self.r, S1, range(1, 201))
        victim = self.driver(delay=0.005, count=50)
        harness.wait_for(lambda: len(parse_lines(victim.stdout())) >= 60, timeout=20)
        victim.signal(signal.SIGKILL)
        victim.wait(10)
        victim.stop()
        first_run = [e["seq"] for e in parse_lines(victim.stdout())]
        still_pending = {int(p["message_id"].split(b"-")[0]) for p in self.r.xpending_range(
            "tether:{%s}:up" % S1, "analytics", "-", "+", 1000)}

        restarted = self.driver()
        self.assertEqual(restarted.wait(30), 0, restarted.stderr())
        restarted.stop()
        second_run = [e["seq"] for e in parse_lines(restarted.stdout())]
        self.assertEqual(sorted(set(first_run + second_run)), list(range(1, 201)))
        repeated = set(first_run) & set(second_run)
        self.assertLessEqual(repeated, still_pending, "an acknowledged entry came back")
        self.assertLessEqual(len(repeated), 1)
        self.assertEqual(pending(self.r, S1), 0)

    # --- holes ----------------------------------------------------------------

    def test_a_device_reported_gap_is_reported_with_its_reason(self):
        fill(self.r, S1, [1, 2, 3, 4, 5, 9, 10, 12],
             gaps=[(6, 8, "dropped"), (11, 11, "not_in_outbox")])
        recorder = Recorder()
        recorder.consumer(self.r).drain()
        self.assertEqual(recorder.seqs(S1), [1, 2, 3, 4, 5, 9, 10, 12])
        self.assertEqual(recorder.holes, [
            tether_consumer.Hole(S1, 6, 8, [tether_consumer.Part(6, 8, "gap", "dropped")]),
            tether_consumer.Hole(S1, 11, 11,
                                 [tether_consumer.Part(11, 11, "gap", "not_in_outbox")]),
        ])
        # Reported before the entry after it, and on the command line as JSON.
        order = []
        recorder2 = tether_consumer.Consumer(
            self.r, group="other", name="c1", start="0", block_ms=100,
            on_entry=lambda e: order.append(e.seq), on_hole=lambda h: order.append(h.first))
        recorder2.drain()
        self.assertEqual(order, [1, 2, 3, 4, 5, 6, 9, 10, 11, 12])
        holes = [line for line in self.cli("--group", "cli", "--start", "0", "--drain")
                 if line["event"] == "hole"]
        self.assertEqual(holes[0], {"event": "hole", "session": S1, "first": 6, "last": 8,
                                    "parts": [{"first": 6, "last": 8, "cause": "gap",
                                               "reason": "dropped"}]})

    def test_a_range_removed_by_retention_is_reported_as_trimmed(self):
        fill(self.r, S1, range(1, 11), trimmed_through=4)
        self.r.xtrim("tether:{%s}:up" % S1, minid="5-0", approximate=False)
        # Retention and a recorded gap next to each other: one hole, two parts.
        fill(self.r, S2, [1, 2, 3, 4, 7, 8], gaps=[(5, 6, "unrecovered")], trimmed_through=3)
        self.r.xtrim("tether:{%s}:up" % S2, minid="4-0", approximate=False)
        recorder = Recorder()
        recorder.consumer(self.r).drain()
        self.assertEqual(recorder.seqs(S1), [5, 6, 7, 8, 9, 10])
        self.assertEqual(recorder.seqs(S2), [4, 7, 8])
        Hole, Part = tether_consumer.Hole, tether_consumer.Part
        self.assertEqual([h for h in recorder.holes if h.session == S1], [
            Hole(S1, 1, 4, [Part(1, 4, "trimmed", "trimmed_through=4")])])
        self.assertEqual([h for h in recorder.holes if h.session == S2], [
            Hole(S2, 1, 3, [Part(1, 3, "trimmed", "trimmed_through=3")]),
            Hole(S2, 5, 6, [Part(5, 6, "gap", "unrecovered")])])
        # A hole across both: the retention part first, then the recorded gap.
        fill(self.r, S3, [1, 2, 3, 4, 7], gaps=[(5, 6, "dropped")], trimmed_through=5)
        self.r.xtrim("tether:{%s}:up" % S3, minid="6-0", approximate=False)
        recorder = Recorder()
        recorder.consumer(self.r, name="c2").drain()
        self.assertEqual([h for h in recorder.holes if h.session == S3], [
            Hole(S3, 1, 6, [Part(1, 5, "trimmed", "trimmed_through=5"),
                            Part(6, 6, "gap", "dropped")])])

    def test_a_pending_entry_trimmed_before_it_was_handled_is_reported_and_acknowledged(self):
        fill(self.r, S1, range(1, 6))
        self.r.xgroup_create("tether:{%s}:up" % S1, "analytics", id="0")
        # A consumer c1 is given 1..5 and dies before handling any.
        self.r.xreadgroup("analytics", "c1", {"tether:{%s}:up" % S1: ">"}, count=10)
        self.r.xtrim("tether:{%s}:up" % S1, minid="4-0", approximate=False)
        self.r.hset("tether:{%s}:state" % S1, "trimmed_through", 3)
        recorder = Recorder()
        recorder.consumer(self.r, name="c1").drain()
        self.assertEqual(recorder.seqs(S1), [4, 5])
        self.assertEqual(recorder.holes, [tether_consumer.Hole(
            S1, 1, 3, [tether_consumer.Part(1, 3, "trimmed", "trimmed_through=3")])])
        self.assertEqual(pending(self.r, S1), 0)

    def test_an_unexplained_hole_is_reported_not_skipped(self):
        fill(self.r, S1, [1, 2, 3, 7, 8], gaps=[(5, 5, "dropped")])
        logged = []
        holes = []
        tether_consumer.Consumer(self.r, group="analytics", name="c1", start="0", block_ms=100,
                                 on_entry=lambda e: None, on_hole=holes.append,
                                 log=logged.append).drain()
        self.assertEqual(holes, [tether_consumer.Hole(S1, 4, 6, [
            tether_consumer.Part(4, 4, "unexplained", None),
            tether_consumer.Part(5, 5, "gap", "dropped"),
            tether_consumer.Part(6, 6, "unexplained", None)])])
        self.assertEqual(len(logged), 2)
        self.assertIn("invariant", logged[0])

    def test_shards_split_the_sessions_between_consumers(self):
        sessions = [S1, S2, S3]
        for session in sessions:
            fill(self.r, session, [1, 2])
        seen = []
        for k in range(2):
            recorder = Recorder()
            recorder.consumer(self.r, name="c%d" % k, shard=(k, 2)).drain()
            seen.append({e.session for e in recorder.entries})
        self.assertEqual(seen[0] | seen[1], set(sessions))
        self.assertEqual(seen[0] & seen[1], set())

    # --- downlink -------------------------------------------------------------

    def load_stand_in(self):
        self.assertEqual(self.r.function_load(STAND_IN_TETHER_LIBRARY, replace=True), b"tether")

    def push(self, *args, stdin_bytes=b""):
        return harness.run([PYTHON, PUSH, "--redis", "127.0.0.1:%d" % self.redis.port]
                           + list(args), stdin_bytes=stdin_bytes, timeout=20)

    def test_push_downlink_queues_the_message_and_shows_downlink_acked(self):
        fill(self.r, S1, [1])
        self.load_stand_in()
        subscriber = self.r.pubsub()
        subscriber.subscribe("tether:downlink")
        self.assertEqual(subscriber.get_message(timeout=5)["type"], "subscribe")

        first = self.push(S1, "reboot at 02:00")
        self.assertEqual((first.returncode, first.stdout), (0, b"seq=1\n"), first)
        second = self.push(S1, "-", stdin_bytes=b"\x00\x01 binary")
        self.assertEqual(second.stdout, b"seq=2\n", second)
        down = self.r.xrange("tether:{%s}:down" % S1)
        self.assertEqual([(i, f[b"payload"]) for i, f in down],
                         [(b"1-0", b"reboot at 02:00"), (b"2-0", b"\x00\x01 binary")])
        self.assertGreater(int(down[0][1][b"queued_ms"]), 1700000000000)
        message = subscriber.get_message(timeout=5)
        self.assertEqual((message["channel"], message["data"]), (b"tether:downlink", S1.encode()))

        # --wait-acked: shows downlink_acked until the device (here: by hand) takes it in.
        self.r.hset("tether:{%s}:state" % S1, "downlink_acked", 2)
        watcher = harness.start_process([PYTHON, PUSH, "--redis", "127.0.0.1:%d" % self.redis.port,
                                         "--wait-acked", "20", S1, "third"],
                                        expect_port=False, name="push_downlink")
        with watcher:
            watcher.wait_for_line(r"^seq=3$")
            watcher.wait_for_line(r"^downlink_acked=2$")
            self.r.hset("tether:{%s}:state" % S1, "downlink_acked", 3)
            watcher.wait_for_line(r"^downlink_acked=3$")
            self.assertEqual(watcher.wait(10), 0)

        late = self.push("--wait-acked", "0.5", S1, "fourth")
        self.assertEqual(late.returncode, 3, late)
        self.assertIn(b"seq=4\ndownlink_acked=3\n", late.stdout)

    def test_push_downlink_reports_a_refusal(self):
        self.load_stand_in()
        refused = self.push(S2, "nobody there")
        self.assertEqual(refused.returncode, 1, refused)
        self.assertIn(b"no such session", refused.stderr)
        self.r.function_delete("tether")
        fill(self.r, S1, [1])
        missing = self.push(S1, "no library")
        self.assertEqual(missing.returncode, 1, missing)
        self.assertIn(b"Function not found", missing.stderr)

    # --- the README's redis-cli commands -----------------------------------

    def test_the_readme_redis_cli_commands_run_as_written(self):
        with open(os.path.join(EXAMPLE_DIR, "README.md")) as f:
            readme = f.read()
        section = readme.split("## The same with redis-cli", 1)[1]
        script = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
        self.assertIn("S=%s" % S1, script)
        self.assertIn("S2=%s" % S2, script)
        fill(self.r, S1, [1, 2, 3], gaps=[(4, 4, "dropped")], trimmed_through=0)
        append(self.r, S1, [5])
        fill(self.r, S2, [1], device="pi-18")
        self.load_stand_in()
        # redis-cli on PATH pointing at this test's server.
        bin_dir = self.tmp.path("bin")
        os.makedirs(bin_dir)
        with open(os.path.join(bin_dir, "redis-cli"), "w") as f:
            f.write('#!/bin/sh\nexec %s -h 127.0.0.1 -p %d "$@"\n' % (REDIS_CLI, self.redis.port))
        os.chmod(os.path.join(bin_dir, "redis-cli"), 0o755)
        env = dict(os.environ, PATH=bin_dir + ":" + os.environ["PATH"])
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                timeout=30)
        self.assertEqual(result.returncode, 0, result.stdout)
        out = result.stdout
        self.assertNotIn("ERR", out)
        for expected in (S1, "m1", "m5", "pi-18", "dropped", "entries-read"):
            self.assertIn(expected, out)
        self.assertEqual(self.r.xrange("tether:{%s}:down" % S1)[0][1][b"payload"],
                         b"reboot at 02:00")
        # XACK of 1-0 went through: what is left pending is 2, 3 and 5.
        self.assertEqual(pending(self.r, S1), 3)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV, verbosity=2)
