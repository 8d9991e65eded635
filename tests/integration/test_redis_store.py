#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tether-server's Redis store against a real redis-server: the Lua function
library, RedisEngine and HiredisLink (through tests/integration/redis/
redis_engine_driver.cpp), the keys and streams read back with redis-py.

Usage: /usr/bin/python3 test_redis_store.py --source-dir ROOT --build-dir DIR [TestClass]

Every Redis here is started by redis_harness on 127.0.0.1 in a temporary
directory (AOF on, appendfsync always), never the system's.
"""

import argparse
import json
import os
import sys
import unittest
import uuid

ARGS = argparse.ArgumentParser(add_help=False)
ARGS.add_argument("--source-dir", required=True)
ARGS.add_argument("--build-dir", required=True)
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
sys.path.insert(0, os.path.join(OPTIONS.source_dir, "tests", "integration"))

import harness  # noqa: E402
import redis_harness  # noqa: E402

DRIVER = os.path.join(OPTIONS.build_dir, "tests", "integration", "tether-redis-driver")
TIMEOUT = 10.0
MAX_SEQ = (1 << 53) - 1


def new_session():
    return str(uuid.uuid4())


class Driver:
    """tether-redis-driver as a child: commands in, logfmt events out."""

    def __init__(self, redis_args, *extra):
        self.process = harness.Process([DRIVER] + list(redis_args) + list(extra),
                                       name="tether-redis-driver", stdin=harness.PIPE)

    def send(self, line):
        if not self.process.write_stdin((line + "\n").encode()):
            raise harness.HarnessError("the driver is gone: " + self.process.stderr())

    def expect(self, pattern, timeout=TIMEOUT):
        """The fields of the first line (not yet read) matching the regex `pattern`."""
        line = self.process.wait_for_line(pattern, timeout).string
        return harness.parse_logfmt(line)

    def ready(self, timeout=TIMEOUT):
        return self.expect(r"^event=ready", timeout)

    def call(self, line, answer):
        self.send(line)
        return self.expect(answer)

    def hello(self, ticket, session, version=1, device="pi", last_downlink=0, oldest_uplink=1,
              user="alice"):
        self.send("hello %d %s %d %s %d %d %s" % (
            ticket, session, version, device, last_downlink, oldest_uplink, user))
        return self.expect(r"^event=hello ticket=%d " % ticket)

    def data(self, session, seq, payload, age=None):
        line = "data %s %d %s" % (session, seq, payload.hex() or "-")
        if age is not None:
            line += " %d" % age
        return self.call(line, r"^uplink ")["result"]

    def flush_until_ack(self, session, last_uplink):
        self.send("flush")
        return self.expect(r"^event=ack session=%s last_uplink=%d$" % (session, last_uplink))

    def stop(self):
        self.process.close_stdin()
        code = self.process.wait(5.0)
        self.process.stop()
        return code


class RedisTest(unittest.TestCase):
    prefix = "tether"

    def setUp(self):
        self.tmp = harness.TempDir("tether-redis-")
        self.server = redis_harness.start_redis(self.tmp.path("primary"))
        self.addCleanup(self.server.stop)
        self.r = self.server.client()
        self.addCleanup(self.r.close)
        self.drivers = []

    def driver(self, *extra, instance="i1"):
        d = Driver(["--redis", "127.0.0.1:%d" % self.server.port], "--instance", instance,
                   "--prefix", self.prefix, *extra)
        self.drivers.append(d)
        self.addCleanup(d.stop)
        d.ready()
        return d

    def key(self, session, suffix):
        return "%s:{%s}:%s" % (self.prefix, session, suffix)

    def state(self, session):
        return {k.decode(): v.decode() for k, v in self.r.hgetall(self.key(session, "state")).items()}

    def stream(self, session, suffix):
        """[(id, {field: value})] with ids and field names as str, values as bytes."""
        return [(i.decode(), {k.decode(): v for k, v in fields.items()})
                for i, fields in self.r.xrange(self.key(session, suffix))]

    def fcall(self, name, session, *args):
        return self.r.fcall(name, 1, self.key(session, "state"), *args)


class Functions(RedisTest):
    """The Lua library called directly, as a backend or a misbehaving instance would."""

    def setUp(self):
        super().setUp()
        self.driver()  # loads the library with FUNCTION LOAD REPLACE
        self.assertIn(b"tether_push", repr(self.r.function_list("tether")).encode())

    def test_hello_records_the_hole_owner_and_instance(self):
        s = new_session()
        answer = self.fcall("tether_hello", s, 2, "pi", 0, 5, "alice", "iA")
        self.assertEqual(answer[:8], [b"accepted", 0, 4, 1, 0, 0, 0, 0])
        state = self.state(s)
        self.assertEqual((state["owner"], state["version"], state["instance"], state["next_expected"]),
                         ("alice", "2", "iA", "5"))
        self.assertEqual(self.stream(s, "gaps"),
                         [("1-0", {"first": b"1", "last": b"4", "reason": b"not_in_outbox"})])
        # Another user: refused, nothing changes.
        self.assertEqual(self.fcall("tether_hello", s, 3, "pi", 0, 9, "bob", "iB")[0], b"forbidden")
        # An older version: superseded, nothing changes.
        self.assertEqual(self.fcall("tether_hello", s, 1, "pi", 0, 9, "alice", "iB")[:3],
                         [b"superseded", 1, 4])
        self.assertEqual(self.state(s), state)

    def test_the_epoch_fence_writes_nothing(self):
        s = new_session()
        self.fcall("tether_hello", s, 5, "pi", 0, 1, "alice", "iA")  # epoch 1
        self.assertEqual(self.state(s)["epoch"], "1")
        before = self.state(s)
        for stale in (0, 2):
            self.assertEqual(self.fcall("tether_uplink", s, stale, 0, 1, 100, "", b"x"),
                             [b"superseded", 5])
            self.assertEqual(self.fcall("tether_gap", s, stale, 1, 3, "dropped"),
                             [b"superseded", 5])
            self.assertEqual(self.fcall("tether_ack_downlink", s, stale, 0), [b"superseded", 5])
        self.assertEqual(self.state(s), before)
        self.assertEqual(self.r.exists(self.key(s, "up"), self.key(s, "gaps")), 0)
        # The current epoch writes.
        self.assertEqual(self.fcall("tether_uplink", s, 1, 0, 1, 100, "", b"x")[:3], [b"ok", 1, 1])

    def test_the_same_version_reconnecting_elsewhere_fences_the_older_connection(self):
        # A device's connection on instance A is still sending when the same
        # process (same version) resumes through instance B: B's hello takes
        # epoch 2 and answers last_uplink 1; A's late batch (epoch 1) must not
        # store seq 2, or the device would renumber its next message 2 and have
        # it dropped as a duplicate.
        s = new_session()
        self.fcall("tether_hello", s, 3, "pi", 0, 1, "alice", "iA")
        self.assertEqual(self.fcall("tether_uplink", s, 1, 0, 1, 100, "", b"a1")[:2], [b"ok", 1])
        answer = self.fcall("tether_hello", s, 3, "pi", 0, 2, "alice", "iB")
        self.assertEqual(answer[:3], [b"accepted", 1, 1])
        self.assertEqual(self.fcall("tether_uplink", s, 1, 0, 2, 100, "", b"a2"),
                         [b"superseded", 3])
        self.assertEqual(self.fcall("tether_uplink", s, 2, 0, 2, 100, "", b"b2")[:2], [b"ok", 2])
        self.assertEqual([f[b"payload"] for _, f in self.r.xrange(self.key(s, "up"))],
                         [b"a1", b"b2"])

    def test_uplink_fields_and_exact_large_seqs(self):
        s = new_session()
        self.fcall("tether_hello", s, 1, "pi", 0, MAX_SEQ - 1, "alice", "iA")
        answer = self.fcall("tether_uplink", s, 1, 0, MAX_SEQ - 1, 1000, 900, b"\x00\xff",
                            MAX_SEQ, 1001, "", b"")
        self.assertEqual(answer[:6], [b"ok", MAX_SEQ, 2, 0, 0, 0])
        up = self.stream(s, "up")
        self.assertEqual([i for i, _ in up], ["%d-0" % (MAX_SEQ - 1), "%d-0" % MAX_SEQ])
        self.assertEqual(up[0][1], {"seq": b"%d" % (MAX_SEQ - 1), "device": b"pi",
                                    "session": s.encode(), "received_ms": b"1000",
                                    "captured_ms": b"900", "payload": b"\x00\xff"})
        self.assertNotIn("captured_ms", up[1][1])
        self.assertEqual(self.state(s)["next_expected"], str(MAX_SEQ + 1))
        with self.assertRaises(Exception):
            self.fcall("tether_uplink", s, 1, 0, MAX_SEQ + 1, 1, "", b"")

    def test_retention_is_counted_in_trimmed_through(self):
        s = new_session()
        self.fcall("tether_hello", s, 1, "pi", 0, 1, "alice", "iA")
        args = []
        for seq in range(1, 6):
            args += [seq, 100, "", b"m%d" % seq]
        self.fcall("tether_uplink", s, 1, 3, *args)
        self.assertEqual([i for i, _ in self.stream(s, "up")], ["3-0", "4-0", "5-0"])
        self.assertEqual(self.state(s)["trimmed_through"], "2")
        self.fcall("tether_uplink", s, 1, 3, 7, 100, "", b"m7")  # 6 is an unreported gap
        self.assertEqual([i for i, _ in self.stream(s, "up")], ["4-0", "5-0", "7-0"])
        self.assertEqual(self.state(s)["trimmed_through"], "3")
        self.assertEqual(self.state(s)["unreported_gaps"], "1")

    def test_push_numbers_trims_to_capacity_and_publishes(self):
        s = new_session()
        with self.assertRaises(Exception) as refused:
            self.fcall("tether_push", s, b"x", 1)
        self.assertIn("NOTFOUND", str(refused.exception))
        self.fcall("tether_hello", s, 1, "pi", 0, 1, "alice", "iA")
        listener = self.r.pubsub()
        listener.subscribe("%s:downlink" % self.prefix)
        listener.get_message(timeout=1.0)  # the subscribe confirmation
        seqs = [self.fcall("tether_push", s, b"m%d" % i, 5000 + i, 3) for i in range(1, 6)]
        self.assertEqual(seqs, [1, 2, 3, 4, 5])
        self.assertEqual([i for i, _ in self.stream(s, "down")], ["3-0", "4-0", "5-0"])
        self.assertEqual(self.stream(s, "down")[0][1], {"payload": b"m3", "queued_ms": b"5003"})
        message = listener.get_message(timeout=1.0)
        self.assertEqual(message["data"], s.encode())
        # A device that saw only 1 gets an "expired" gap for 2 at its next hello.
        answer = self.fcall("tether_hello", s, 1, "pi", 1, 1, "alice", "iA")
        self.assertEqual(answer[4:8], [1, 2, 2, 2])
        # The second hello took epoch 2: the device's writes carry it.
        self.assertEqual(self.fcall("tether_ack_downlink", s, 2, 4)[:2], [b"ok", 4])
        self.assertEqual([i for i, _ in self.stream(s, "down")], ["5-0"])
        self.assertEqual(self.fcall("tether_ack_downlink", s, 2, 9), [b"invalid", 5])
        # The default capacity applies when a backend passes none.
        self.assertEqual(self.fcall("tether_push", s, b"m6", 1), 6)


    def test_desired_put_is_a_compare_and_set_with_a_bounded_history(self):
        s = new_session()
        with self.assertRaises(Exception) as refused:
            self.fcall("tether_desired_put", s, 0, "{}", "{}", 64)
        self.assertIn("NOTFOUND", str(refused.exception))
        self.fcall("tether_hello", s, 1, "pi", 0, 1, "alice", "iA")
        listener = self.r.pubsub()
        listener.subscribe("%s:desired" % self.prefix)
        listener.get_message(timeout=1.0)  # the subscribe confirmation
        # The texts are stored as given: Lua never parses them ([] stays [],
        # 2^53 - 1 stays exact).
        doc = '{"n":9007199254740991,"list":[]}'
        self.assertEqual(self.fcall("tether_desired_put", s, 0, doc, doc, 3), [b"ok", 1])
        self.assertEqual(listener.get_message(timeout=1.0)["data"], ("%s 1" % s).encode())
        # A writer that read version 0 lost the race: nothing changes.
        self.assertEqual(self.fcall("tether_desired_put", s, 0, "{}", "{}", 3), [b"conflict", 1])
        for version in range(2, 6):
            patch = '{"v":%d}' % version
            self.assertEqual(self.fcall("tether_desired_put", s, version - 1, patch, patch, 3),
                             [b"ok", version])
        state = self.state(s)
        self.assertEqual((state["desired_version"], state["desired"]), ("5", '{"v":5}'))
        self.assertEqual(self.stream(s, "desired"),
                         [("%d-0" % v, {"patch": b'{"v":%d}' % v}) for v in (3, 4, 5)])
        self.assertEqual(self.fcall("tether_desired_put", s, 9, "{}", "{}", 3), [b"conflict", 5])
        # Increments newer than a restored hash belong to another history.
        self.r.hset(self.key(s, "state"), mapping={"desired_version": 1})
        self.assertEqual(self.fcall("tether_desired_put", s, 1, "{}", '{"w":1}', 3), [b"ok", 2])
        self.assertEqual(self.stream(s, "desired"), [("2-0", {"patch": b'{"w":1}'})])
        with self.assertRaises(Exception):
            self.fcall("tether_desired_put", s, 2, "{}", "{}", 0)

    def test_desired_applied_is_fenced_and_never_beyond_the_version(self):
        s = new_session()
        self.fcall("tether_hello", s, 1, "pi", 0, 1, "alice", "iA")  # epoch 1
        self.fcall("tether_desired_put", s, 0, "{}", "{}", 64)
        self.fcall("tether_desired_put", s, 1, "{}", "{}", 64)
        self.assertEqual(self.fcall("tether_desired_applied", s, 1, 2), [b"ok", 2])
        self.assertEqual(self.fcall("tether_desired_applied", s, 1, 1), [b"ok", 2])  # never lower
        self.assertEqual(self.fcall("tether_desired_applied", s, 1, 3), [b"invalid", 2])
        self.assertEqual(self.fcall("tether_desired_applied", s, 2, 2), [b"superseded", 1])
        self.assertEqual(self.state(s)["desired_applied"], "2")

    def test_report_is_a_compare_and_set_fenced_by_epoch(self):
        s = new_session()
        self.fcall("tether_hello", s, 1, "pi", 0, 1, "alice", "iA")  # epoch 1
        self.assertEqual(self.fcall("tether_report", s, 1, 0, "00000000000000a1", '{"t":[]}'),
                         [b"ok", 1])
        # The same id again (an answer lost in a reconnect): its version, no change.
        self.assertEqual(self.fcall("tether_report", s, 1, 0, "00000000000000a1", '{"t":2}'),
                         [b"repeated", 1])
        self.assertEqual(self.fcall("tether_report", s, 1, 0, "00000000000000a2", '{"t":2}'),
                         [b"stale", 1, b'{"t":[]}'])
        state = self.state(s)
        self.assertEqual((state["reported_version"], state["reported"], state["report_id"]),
                         ("1", '{"t":[]}', "00000000000000a1"))
        # A connection of an earlier hello cannot write.
        self.fcall("tether_hello", s, 1, "pi", 0, 1, "alice", "iB")  # epoch 2
        self.assertEqual(self.fcall("tether_report", s, 1, 1, "00000000000000a3", "{}"),
                         [b"superseded", 1])
        self.assertEqual(self.fcall("tether_report", s, 2, 1, "00000000000000a3", "{}"), [b"ok", 2])
        for bad_id in ("00000000000000A4", "a4", ""):
            with self.assertRaises(Exception):
                self.fcall("tether_report", s, 2, 2, bad_id, "{}")
        self.assertEqual(self.state(s)["reported_version"], "2")


class Engine(RedisTest):
    """RedisEngine over HiredisLink, as tether-server runs it."""

    def test_device_state_across_two_instances(self):
        one = self.driver(instance="one")
        two = self.driver(instance="two")
        s = new_session()
        one.hello(1, s)
        # A backend's change through the other instance reaches the serving one.
        # (A label long enough that two increments are smaller than the snapshot.)
        big = '{"n":9007199254740991,"sensors":[],"rate":10,"label":"%s"}' % ("l" * 300)
        two.send("set 1 %s %s" % (s, big.encode().hex()))
        self.assertEqual(two.expect(r"^event=desired_set ticket=1 ")["status"], "ok")
        one.expect(r"^event=desired_changed session=%s version=1$" % s)
        self.assertEqual(self.state(s)["desired"], big.replace(" ", ""))
        # Merged in C++: the array and the large number stay as they were.
        two.send("set 2 %s %s" % (s, b'{"rate":null,"on":true}'.hex()))
        self.assertEqual(two.expect(r"^event=desired_set ticket=2 ")["version"], "2")
        one.expect(r"^event=desired_changed session=%s version=2$" % s)
        self.assertEqual(json.loads(self.state(s)["desired"]),
                         {"n": 9007199254740991, "sensors": [], "label": "l" * 300, "on": True})
        self.assertIn('"sensors":[]', self.state(s)["desired"])
        # An expected version that is not current: conflict, nothing written.
        two.send("set 3 %s %s 1" % (s, b'{"x":1}'.hex()))
        answer = two.expect(r"^event=desired_set ticket=3 ")
        self.assertEqual((answer["status"], answer["version"]), ("conflict", "2"))
        two.send("set 4 %s %s 2" % (s, b'{"x":1}'.hex()))
        self.assertEqual(two.expect(r"^event=desired_set ticket=4 ")["version"], "3")
        # A device that applied 1 gets the increments 2 and 3; one that applied
        # nothing gets the snapshot.
        one.send("since 5 %s 1" % s)
        changes = one.expect(r"^event=desired_since ticket=5 ")["changes"].split(",")
        self.assertEqual([c.split(":")[:2] for c in changes], [["2", "p"], ["3", "p"]])
        self.assertEqual(bytes.fromhex(changes[1].split(":")[2]), b'{"x":1}')
        one.send("since 6 %s 0" % s)
        snapshot = one.expect(r"^event=desired_since ticket=6 ")["changes"].split(":")
        self.assertEqual(snapshot[:2], ["3", "s"])
        self.assertEqual(bytes.fromhex(snapshot[2]).decode(), self.state(s)["desired"])
        # Beyond the held window (64 increments): the snapshot.
        for i in range(70):
            self.fcall_put(s, '{"i":%d}' % i)
        self.assertEqual(self.r.xlen(self.key(s, "desired")), 64)
        one.send("since 7 %s 3" % s)
        self.assertEqual(one.expect(r"^event=desired_since ticket=7 ")["changes"].split(":")[:2],
                         ["73", "s"])
        self.assertEqual(one.call("applied %s 73" % s, r"^applied ")["status"], "ok")
        harness.wait_for(lambda: self.state(s).get("desired_applied") == "73", timeout=TIMEOUT)
        # Bad patches and unknown sessions.
        two.send("set 8 %s %s" % (s, b"[1]".hex()))
        self.assertEqual(two.expect(r"^event=desired_set ticket=8 ")["status"], "invalid_argument")
        two.send("set 9 %s %s" % (new_session(), b"{}".hex()))
        self.assertEqual(two.expect(r"^event=desired_set ticket=9 ")["status"], "not_found")

    def fcall_put(self, session, patch):
        """A backend writing the way the engine does (read, then compare-and-set)."""
        version = int(self.state(session).get("desired_version", "0"))
        self.assertEqual(self.fcall("tether_desired_put", session, version, patch, patch, 64)[0],
                         b"ok")

    def test_reports_through_the_engine(self):
        d = self.driver()
        s = new_session()
        d.hello(1, s)
        d.send("report 1 %s 00000000000000a1 0 patch %s" % (s, b'{"t":20,"fan":[1]}'.hex()))
        answer = d.expect(r"^event=reported ticket=1 ")
        self.assertEqual((answer["status"], answer["outcome"], answer["version"]),
                         ("ok", "applied", "1"))
        d.send("report 2 %s 00000000000000a2 1 patch %s" % (s, b'{"t":21,"fan":null}'.hex()))
        self.assertEqual(d.expect(r"^event=reported ticket=2 ")["version"], "2")
        self.assertEqual(self.state(s)["reported"], '{"t":21}')
        # Resent after a lost answer: the same version, nothing changes.
        d.send("report 3 %s 00000000000000a2 1 patch %s" % (s, b'{"t":99}'.hex()))
        answer = d.expect(r"^event=reported ticket=3 ")
        self.assertEqual((answer["outcome"], answer["version"]), ("repeated", "2"))
        # Another base: stale, with the current document.
        d.send("report 4 %s 00000000000000a3 1 whole %s" % (s, b'{"t":1}'.hex()))
        answer = d.expect(r"^event=reported ticket=4 ")
        self.assertEqual((answer["outcome"], answer["version"], bytes.fromhex(answer["document"])),
                         ("stale", "2", b'{"t":21}'))
        d.send("report 5 %s 00000000000000a3 2 whole %s" % (s, b'{"all":[]}'.hex()))
        self.assertEqual(d.expect(r"^event=reported ticket=5 ")["outcome"], "applied")
        # Not one JSON object: refused with the current version, nothing changes.
        d.send("report 9 %s 00000000000000a9 3 patch %s" % (s, b"[1]".hex()))
        answer = d.expect(r"^event=reported ticket=9 ")
        self.assertEqual((answer["status"], answer["version"]), ("invalid_argument", "3"))
        d.send("read 6 %s" % s)
        state = d.expect(r"^event=state ticket=6 ")
        self.assertEqual((state["status"], state["reported_version"], state["report_id"],
                          bytes.fromhex(state["reported"]), state["desired_version"]),
                         ("ok", "3", "00000000000000a3", b'{"all":[]}', "0"))
        d.send("read 7 %s" % new_session())
        self.assertEqual(d.expect(r"^event=state ticket=7 ")["status"], "not_found")
        # A connection superseded by a hello elsewhere cannot report.
        other = self.driver(instance="other")
        other.hello(1, s, version=2)
        d.expect(r"^event=superseded session=%s version=2$" % s)
        d.send("report 8 %s 00000000000000a4 3 patch %s" % (s, b"{}".hex()))
        self.assertEqual(d.expect(r"^event=reported ticket=8 ")["status"], "not_found")
        self.assertEqual(self.state(s)["reported_version"], "3")

    def test_exactly_once_under_duplicates_and_out_of_order(self):
        d = self.driver()
        s = new_session()
        hello = d.hello(1, s)
        self.assertEqual((hello["status"], hello["decision"], hello["resumed"], hello["last_uplink"]),
                         ("ok", "accepted", "0", "0"))
        self.assertIn(s.encode(), self.r.smembers("%s:sessions" % self.prefix))
        for seq in range(1, 6):
            self.assertEqual(d.data(s, seq, b"p%d" % seq, age=50), "queued")
        d.flush_until_ack(s, 5)
        # A reconnect that resends 3..5, then 6; then 8 before 7.
        for seq in (3, 4, 5, 6, 8, 7):
            d.data(s, seq, b"p%d" % seq)
        d.flush_until_ack(s, 8)
        up = self.stream(s, "up")
        self.assertEqual([i for i, _ in up], ["1-0", "2-0", "3-0", "4-0", "5-0", "6-0", "8-0"])
        self.assertEqual([f["payload"] for _, f in up][:3], [b"p1", b"p2", b"p3"])
        self.assertEqual(int(up[0][1]["received_ms"]) - int(up[0][1]["captured_ms"]), 50)
        self.assertEqual(self.stream(s, "gaps"),
                         [("7-0", {"first": b"7", "last": b"7", "reason": b"unreported"})])
        state = self.state(s)
        self.assertEqual((state["received"], state["duplicates"], state["next_expected"]),
                         ("7", "4", "9"))
        stats = d.call("stats %s" % s, r"^stats ")
        self.assertEqual((stats["received"], stats["acknowledgeable"]), ("7", "8"))

    def test_gaps_from_hello_and_gap_messages(self):
        d = self.driver()
        s = new_session()
        hello = d.hello(1, s, oldest_uplink=11)
        self.assertEqual((hello["last_uplink"], hello["recorded_hole"]), ("10", "1"))
        self.assertEqual(d.call("gap %s 5 20 dropped" % s, r"^gap ")["result"], "queued")
        d.flush_until_ack(s, 20)
        self.assertEqual(d.call("gap %s 25 30 unrecovered" % s, r"^gap ")["result"], "queued")
        d.flush_until_ack(s, 30)
        d.call("gap %s 1 3 dropped" % s, r"^gap ")  # entirely below: ignored
        d.flush_until_ack(s, 30)
        self.assertEqual([(i, f["last"], f["reason"]) for i, f in self.stream(s, "gaps")],
                         [("1-0", b"10", b"not_in_outbox"), ("11-0", b"20", b"dropped"),
                          ("21-0", b"24", b"unreported"), ("25-0", b"30", b"unrecovered")])
        self.assertEqual(self.state(s)["missing_seqs"], "30")

    def test_owner_refusal(self):
        d = self.driver()
        s = new_session()
        d.hello(1, s, user="alice")
        self.assertEqual(d.hello(2, s, version=2, user="bob")["decision"], "forbidden")
        self.assertEqual(self.state(s)["version"], "1")
        self.assertEqual(d.hello(3, s, version=2, user="alice")["decision"], "accepted")

    def test_supersede_across_instances_and_the_fence(self):
        one = self.driver(instance="one")
        two = self.driver(instance="two")
        s = new_session()
        one.hello(1, s, version=1)
        one.data(s, 1, b"a")
        one.flush_until_ack(s, 1)
        self.assertEqual(two.hello(1, s, version=2, oldest_uplink=2)["decision"], "accepted")
        one.expect(r"^event=superseded session=%s version=2$" % s)
        self.assertEqual(one.data(s, 2, b"late"), "unknown_session")
        # An instance that missed the message is stopped by the fence.
        three = self.driver(instance="three")
        t = new_session()
        three.hello(1, t, version=1)
        # Accepted elsewhere, unannounced: a later epoch and version.
        self.r.hset(self.key(t, "state"), mapping={"version": 7, "epoch": 9})
        three.data(t, 1, b"x")
        three.send("flush")
        three.expect(r"^event=superseded session=%s version=7$" % t)
        self.assertEqual(self.r.exists(self.key(t, "up")), 0)

    def test_push_notify_replay_and_ack(self):
        d = self.driver("--capacity", "4")
        s = new_session()
        d.hello(1, s)
        self.assertEqual(d.call("push 9 %s %s" % (s, b"cmd1".hex()), r"^push ")["status"], "ok")
        self.assertEqual(d.expect(r"^event=pushed ticket=9")["seq"], "1")
        d.expect(r"^event=downlink session=%s" % s)
        # A backend's push reaches the serving instance too.
        self.assertEqual(self.fcall("tether_push", s, b"cmd2", 123), 2)
        d.expect(r"^event=downlink session=%s" % s)
        self.assertEqual(d.call("next %s 0" % s, r"^next ")["payload"], b"cmd1".hex())
        self.assertEqual(d.call("next %s 1" % s, r"^next ")["payload"], b"cmd2".hex())
        self.assertEqual(d.call("ack %s 1" % s, r"^acked ")["status"], "ok")
        harness.wait_for(lambda: self.state(s)["downlink_acked"] == "1", timeout=TIMEOUT)
        self.assertEqual([i for i, _ in self.stream(s, "down")], ["2-0"])
        self.assertEqual(d.call("ack %s 5" % s, r"^acked ")["status"], "invalid_argument")
        unknown = new_session()
        d.send("push 10 %s -" % unknown)
        self.assertEqual(d.expect(r"^event=pushed ticket=10")["status"], "not_found")
        # The replay a new hello gets, after a trim beyond the capacity.
        for i in range(3, 9):
            self.fcall("tether_push", s, b"cmd%d" % i, 1, 4)
        hello = d.hello(2, s, last_downlink=1)
        self.assertEqual((hello["has_downlink_gap"], hello["gap_first"], hello["gap_last"],
                          hello["replay_after"]), ("1", "2", "4", "4"))
        self.assertEqual(d.call("next %s 4" % s, r"^next ")["seq"], "5")

    def test_replicas_durability_without_a_replica_acknowledges_nothing(self):
        d = self.driver("--durability", "replicas:1")
        s = new_session()
        d.send("hello 1 %s 1 pi 0 1 alice" % s)
        d.expect(r"^event=log line=event=redis_wait_shortfall wanted=1 confirmed=0")
        d.send("ping")
        d.process.wait_for_line(r"^pong$")
        self.assertNotIn("event=hello", d.process.stdout())
        # The hello's writes are in Redis all the same; only the answer waits.
        self.assertEqual(self.state(s)["version"], "1")
        # So does a desired change's answer.
        d.send("set 2 %s %s" % (s, b'{"a":1}'.hex()))
        harness.wait_for(lambda: self.state(s).get("desired_version") == "1", timeout=TIMEOUT)
        d.send("ping")
        d.process.wait_for_line(r"^pong$")
        self.assertNotIn("event=desired_set", d.process.stdout())


class Contract(RedisTest):
    """The engine contract (tests/support/engine_contract.h), which the file
    engine passes in the unit suite, against RedisEngine and this redis-server:
    one tether-redis-contract process per case, so each failure is named."""

    BINARY = os.path.join(OPTIONS.build_dir, "tests", "integration", "tether-redis-contract")
    # Where the Redis engine answers otherwise, on purpose (each documented in
    # include/tether/server/redis_engine.h):
    DIFFERENT = {
        # session_stats() lists no gaps: they are in P:{S}:gaps.
        "a_hole_in_the_hello_is_recorded",
    }

    def run_case(self, name):
        process = harness.Process([self.BINARY, "--redis", "127.0.0.1:%d" % self.server.port,
                                   "--case", name], name="tether-redis-contract")
        try:
            code = process.wait(60.0)
        finally:
            process.stop()
        return code, process.stdout() + process.stderr()

    def test_the_redis_engine_passes_the_engine_contract(self):
        listing = harness.Process([self.BINARY, "--list"], name="tether-redis-contract")
        self.assertEqual(listing.wait(10.0), 0)
        names = listing.stdout().split()
        listing.stop()
        self.assertGreater(len(names), 10)
        for name in names:
            code, output = self.run_case(name)
            if name in self.DIFFERENT:
                self.assertNotEqual(code, 0, "%s passes now: take it off DIFFERENT" % name)
                continue
            with self.subTest(case=name):
                self.assertEqual(code, 0, output)


class Restart(RedisTest):
    """Redis restarts under a running engine: sessions fail, the engine reconnects."""

    def check_restart(self, how):
        d = self.driver("--timeout-ms", "2000")
        s = new_session()
        d.hello(1, s)
        for seq in (1, 2, 3):
            d.data(s, seq, b"x%d" % seq)
        d.flush_until_ack(s, 3)
        how()
        d.expect(r"^event=failed session=%s status=unavailable$" % s)
        d.expect(r"^event=not_ready")
        self.server.start()
        d.ready(timeout=20.0)
        hello = d.hello(2, s)
        self.assertEqual((hello["decision"], hello["resumed"], hello["last_uplink"]),
                         ("accepted", "1", "3"))
        for seq in (2, 3, 4):
            d.data(s, seq, b"x%d" % seq)
        d.flush_until_ack(s, 4)
        self.assertEqual([i for i, _ in self.stream(s, "up")], ["1-0", "2-0", "3-0", "4-0"])
        self.assertEqual(self.state(s)["duplicates"], "2")

    def test_clean_restart(self):
        self.check_restart(self.server.stop)

    def test_kill_nine_keeps_what_was_acknowledged(self):
        self.check_restart(self.server.kill)


class Sentinel(RedisTest):
    """The primary found through Sentinel, and found again after a failover."""

    def test_discovery_failover_and_wait(self):
        replica = redis_harness.start_redis(self.tmp.path("replica"), replica_of=self.server.port)
        self.addCleanup(replica.stop)
        sentinel = redis_harness.start_sentinel(self.tmp.path("sentinel"), self.server.port,
                                                "tether", quorum=1)
        self.addCleanup(sentinel.stop)
        d = Driver(["--sentinel", "127.0.0.1:1,127.0.0.1:%d" % sentinel.port, "--master", "tether"],
                   "--instance", "i1", "--durability", "replicas:1", "--timeout-ms", "2000")
        self.addCleanup(d.stop)
        d.ready()
        s = new_session()
        self.assertEqual(d.hello(1, s)["decision"], "accepted")  # answered after WAIT 1
        d.data(s, 1, b"a")
        d.flush_until_ack(s, 1)
        self.server.kill()
        d.expect(r"^event=failed session=%s" % s)
        d.ready(timeout=60.0)  # Sentinel promoted the replica; the link found it
        self.assertEqual(replica.client().info("replication")["role"], "master")
        # No replica is left: the hello is recorded but not answered.
        d.send("hello 2 %s 2 pi 0 1 alice" % s)
        d.expect(r"^event=log line=event=redis_wait_shortfall")
        self.assertNotIn("event=hello ticket=2", d.process.stdout())
        # The old primary comes back; Sentinel makes it a replica; the next
        # flush's WAIT confirms and the answer goes out.
        self.server.start()
        harness.wait_for(lambda: replica.client().info("replication")["connected_slaves"] >= 1,
                         timeout=30.0, interval=0.2)

        def answered():
            d.send("flush")
            return "event=hello ticket=2 " in d.process.stdout()

        harness.wait_for(answered, timeout=30.0, interval=0.5)
        hello = d.expect(r"^event=hello ticket=2 ")
        self.assertEqual((hello["decision"], hello["last_uplink"]), ("accepted", "1"))
        d.data(s, 2, b"b")
        d.flush_until_ack(s, 2)
        self.assertEqual(replica.client().xlen(self.key(s, "up")), 2)

if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV)
