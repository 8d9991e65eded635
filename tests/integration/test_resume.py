#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tether.v1 end to end: tether-cat as the device, tether-server as the cloud,
faults in between, and the server's store as the ground truth.

For each fault a producer feeds numbered messages through the device while
the fault happens; the verdict is read from the server's store on disk:
every message stored exactly once and in order, or a dropped range recorded
as a gap with its exact seqs. Downlink messages pushed during the fault must
reach the device once, in order.

Usage: /usr/bin/python3 test_resume.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import argparse
import os
import sys
import time
import unittest

ARGS = argparse.ArgumentParser(add_help=False)
ARGS.add_argument("--source-dir", required=True)
ARGS.add_argument("--build-dir", required=True)
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
sys.path.insert(0, os.path.join(OPTIONS.source_dir, "tests", "integration"))

import harness  # noqa: E402
import resume_harness as rh  # noqa: E402

BUILD = OPTIONS.build_dir
USER = "tether"


class Scenario:
    """One server, one device, a token file for each, in a fresh directory."""

    def __init__(self, name, device="pi-1", device_extra=(), server_extra=(),
                 token_command=False, tokens="token-old\ntoken-new\n"):
        self.token_command = token_command
        self.tmp = harness.TempDir("resume-%s-" % name)
        self.data_dir = self.tmp.path("store")
        os.makedirs(self.data_dir)
        self.tokens = self.tmp.path("tokens")
        with open(self.tokens, "w") as f:
            f.write(tokens)
        self.token_file = self.tmp.path("device-token")
        self.write_token("token-old")
        self.server = rh.Server(BUILD, self.data_dir, self.tokens, server_extra).start()
        self.device_name = device
        self.session = rh.session_id(USER, device)
        self.device = self.new_device("state", device_extra).start()

    def new_device(self, state, extra=(), device=None):
        return rh.Device(BUILD, self.server, self.tmp.path(state), self.token_file,
                         device=device or self.device_name, extra=extra,
                         token_command=self.token_command)

    def write_token(self, token):
        with open(self.token_file, "w") as f:
            f.write(token + "\n")

    def push(self, count, prefix="down"):
        pushed = []
        for k in range(1, count + 1):
            text = "%s-%d" % (prefix, k)
            self.server.admin("POST", "/sessions/%s/push" % self.session, text.encode())
            pushed.append(text)
        return pushed

    def wait_online(self, device=None, timeout=10):
        device = device or self.device
        harness.wait_for(lambda: sum(1 for e in device.log() if e.get("state") == "online") >= 1,
                         timeout=timeout, message="device never came online")

    def close(self):
        self.server.stop()
        if self.device.process is not None:
            self.device.process.stop()


class ResumeTestCase(unittest.TestCase):
    def assert_uplink_exactly_once_in_order(self, scenario, produced, allow_gaps=False):
        records = rh.uplink(scenario.data_dir, scenario.session)
        seqs = [seq for seq, _ in records]
        self.assertEqual(seqs, sorted(set(seqs)), "uplink seqs stored twice or out of order")
        payloads = [payload.decode() for _, payload in records]
        self.assertEqual(len(payloads), len(set(payloads)), "a message was stored twice")
        recorded_gaps = rh.gaps(scenario.data_dir, scenario.session)
        if not allow_gaps:
            self.assertEqual(recorded_gaps, [])
            self.assertEqual(payloads, produced)
        else:
            # Every seq is stored or inside exactly one recorded gap.
            covered = set(seqs)
            for first, last, _ in recorded_gaps:
                span = set(range(first, last + 1))
                self.assertFalse(span & covered, "a gap covers a stored seq")
                covered |= span
            self.assertEqual(covered, set(range(1, max(covered) + 1)))
            # What arrived keeps the producer's order.
            positions = [produced.index(p) for p in payloads]
            self.assertEqual(positions, sorted(positions))
        return records, recorded_gaps

    def assert_downlink_once_in_order(self, device, pushed):
        lines = device.downlink()
        self.assertEqual(lines, pushed)


class ServerFaults(ResumeTestCase):
    def run_with_fault(self, name, fault, downlink=10, token_command=False):
        scenario = Scenario(name, token_command=token_command)
        try:
            scenario.wait_online()
            scenario.device.produce("up")
            time.sleep(0.5)
            pushed = scenario.push(downlink // 2, "down")
            fault(scenario)
            time.sleep(0.5)
            pushed += scenario.push(downlink - downlink // 2, "late")
            time.sleep(0.5)
            self.assertEqual(scenario.device.finish(timeout=30), 0, scenario.device.process.stderr())
            self.assert_uplink_exactly_once_in_order(scenario, scenario.device.produced)
            self.assert_downlink_once_in_order(scenario.device, pushed)
            self.assertGreaterEqual(len(scenario.device.produced), 100)
            return scenario
        finally:
            scenario.close()

    def test_server_killed_and_restarted(self):
        def fault(s):
            s.server.kill()
            time.sleep(1.0)
            s.server.start()
        self.run_with_fault("sigkill", fault)

    def test_abrupt_resets(self):
        def fault(s):
            for _ in range(3):
                s.server.admin("POST", "/faults/reset")
                time.sleep(0.4)
        self.run_with_fault("reset", fault)

    def test_a_silent_server_is_a_dead_link(self):
        def fault(s):
            s.server.admin("POST", "/faults/silence?ms=2000")
            time.sleep(2.5)
        scenario = self.run_with_fault("silence", fault)
        reasons = [e.get("reason") for e in scenario.device.log()]
        self.assertIn("dead_link", reasons)

    def test_a_503_storm_with_retry_after(self):
        def fault(s):
            s.server.admin("POST", "/faults/reject?status=503&retry_after=1&ms=2500")
            s.server.admin("POST", "/faults/reset")
            time.sleep(3.0)
        scenario = self.run_with_fault("503", fault)
        waits = [e for e in scenario.device.log() if e.get("reason") == "http_overloaded"]
        self.assertTrue(waits)
        self.assertTrue(all(int(e["delay_ms"]) >= 1000 for e in waits))

    def test_service_restart_close_with_retry_after(self):
        def fault(s):
            s.server.admin("POST", "/faults/close?code=1012&reason=retry_after%3D1")
            time.sleep(1.5)
        scenario = self.run_with_fault("1012", fault)
        waits = [e for e in scenario.device.log() if e.get("reason") == "close_service_restart"]
        self.assertTrue(waits)
        self.assertGreaterEqual(int(waits[0]["delay_ms"]), 1000)

    def test_an_expired_token_is_refreshed(self):
        def fault(s):
            s.write_token("token-new")
            s.server.admin("POST", "/tokens/expire?token=token-old")
            time.sleep(1.0)
        scenario = self.run_with_fault("4001", fault)
        reasons = [e.get("reason") for e in scenario.device.log()]
        self.assertIn("close_unauthorized", reasons)

    def test_an_expired_token_is_refreshed_by_the_token_command(self):
        def fault(s):
            s.write_token("token-new")
            s.server.admin("POST", "/tokens/expire?token=token-old")
            time.sleep(1.0)
        scenario = self.run_with_fault("4001-command", fault, token_command=True)
        reasons = [e.get("reason") for e in scenario.device.log()]
        self.assertIn("close_unauthorized", reasons)


class DeviceFaults(ResumeTestCase):
    def test_outbox_overflow_while_offline_is_a_recorded_gap(self):
        scenario = Scenario("overflow", device_extra=["--outbox-size", "4096",
                                                      "--max-message-size", "512",
                                                      "--overflow", "drop_oldest"])
        try:
            scenario.wait_online()
            scenario.device.produce("up", rate_per_s=400)
            time.sleep(0.5)
            scenario.server.kill()
            time.sleep(1.5)  # far more than 4 KiB of messages pile up
            scenario.server.start()
            time.sleep(1.0)
            self.assertEqual(scenario.device.finish(timeout=30), 0)
            records, recorded = self.assert_uplink_exactly_once_in_order(
                scenario, scenario.device.produced, allow_gaps=True)
            client_gaps = [(int(e["first"]), int(e["last"])) for e in scenario.device.log()
                           if e.get("event") == "gap" and e.get("direction") == "uplink"]
            self.assertTrue(client_gaps, "nothing was dropped: the test did not overflow")
            # Every seq the server records as missing was dropped by the client
            # (named in a gap message, or revealed by the hello). The client may
            # also have dropped sent messages the server had already stored.
            seqs = lambda ranges: set(q for f, l in ranges for q in range(f, l + 1))
            self.assertTrue(recorded)
            self.assertLessEqual(seqs([(f, l) for f, l, _ in recorded]), seqs(client_gaps))
            self.assertTrue(all(reason in ("dropped", "not_in_outbox")
                                for _, _, reason in recorded))
            # Every message produced is stored or inside a recorded gap.
            missing = sum(l - f + 1 for f, l, _ in recorded)
            self.assertEqual(len(records) + missing, len(scenario.device.produced))
        finally:
            scenario.close()

    def test_a_second_instance_supersedes_the_first(self):
        scenario = Scenario("4009")
        try:
            scenario.wait_online()
            scenario.device.produce("first")
            time.sleep(0.5)
            second = scenario.new_device("state-2").start()
            self.assertEqual(scenario.device.process.wait(10), 3)
            log = scenario.device.log()
            self.assertEqual(log[-1].get("reason"), "close_superseded")
            scenario.device.stop_producing()
            second.produce("second")
            time.sleep(0.5)
            self.assertEqual(second.finish(timeout=30), 0)
            records = rh.uplink(scenario.data_dir, scenario.session)
            seqs = [seq for seq, _ in records]
            self.assertEqual(seqs, sorted(set(seqs)))
            stored = [p.decode() for _, p in records]
            self.assertEqual([p for p in stored if p.startswith("second-")], second.produced)
        finally:
            scenario.close()

    def test_a_device_its_token_is_not_for_backs_off_to_the_cap(self):
        # token-old is pi-9's: every hello of pi-1 is closed with 4003.
        scenario = Scenario("4003", tokens="token-old %s pi-9\ntoken-new\n" % USER)
        try:
            def forbidden():
                return [e for e in scenario.device.log()
                        if e.get("state") == "waiting_to_retry"
                        and e.get("reason") == "close_forbidden"]

            harness.wait_for(lambda: len(forbidden()) >= 4, timeout=15,
                             message="no 4003 closes seen")
            delays = [int(e["delay_ms"]) for e in forbidden()]
            self.assertEqual(delays[0], 0)  # one fresh token, at once
            self.assertTrue(all(d >= 800 for d in delays[1:]), delays)  # then the cap only
            self.assertTrue(scenario.device.process.alive())  # slowly, but it keeps trying
            self.assertIsNone(scenario.server.session_stats(scenario.session))
            self.assertGreaterEqual(scenario.server.stats()["hellos_forbidden"], 4)
        finally:
            scenario.close()

    def test_a_restarted_device_resumes_its_session(self):
        scenario = Scenario("restart")
        try:
            scenario.wait_online()
            scenario.device.produce("before")
            time.sleep(1.0)
            scenario.device.kill()
            before = list(scenario.device.produced)
            pushed = scenario.push(5, "while-down")
            again = scenario.new_device("state").start()
            again.produce("after")
            time.sleep(1.0)
            self.assertEqual(again.finish(timeout=30), 0, again.process.stderr())
            records, recorded = self.assert_uplink_exactly_once_in_order(
                scenario, before + again.produced, allow_gaps=True)
            stored = [p.decode() for _, p in records]
            self.assertEqual([p for p in stored if p.startswith("after-")], again.produced)
            # Messages lost with the killed process are accounted for, never silent.
            self.assertTrue(all(reason in ("not_in_outbox", "unreported")
                                for _, _, reason in recorded))
            stats = scenario.server.session_stats(scenario.session)
            self.assertEqual(stats["version"], 2)
            self.assertEqual(again.downlink(), pushed)
        finally:
            scenario.close()


class MessageAge(ResumeTestCase):
    """The age extension (PROTOCOL.md 3.6) between the real client and server:
    a message that waited on the device while the server was gone is dated by
    the server at least that far back, with no wall clock on the device."""

    def test_a_message_that_waited_offline_carries_at_least_the_wait(self):
        scenario = Scenario("age")
        try:
            scenario.wait_online()
            self.assertTrue(scenario.device.process.write_stdin(b"online-1\n"))
            harness.wait_for(lambda: len(rh.uplink(scenario.data_dir, scenario.session)) == 1,
                             message="the first message was never stored")
            time.sleep(0.5)  # its ACK (200 ms batching) reaches the device
            scenario.server.kill()
            wait_s = 1.5
            handed_over_ms = int(time.time() * 1000)
            self.assertTrue(scenario.device.process.write_stdin(b"waited-1\n"))
            time.sleep(wait_s)
            scenario.server.start()

            def stored():
                return [p for _, p in rh.uplink(scenario.data_dir, scenario.session)]
            harness.wait_for(lambda: b"waited-1" in stored(), timeout=10,
                             message="the message that waited was never stored")
            self.assertEqual(scenario.device.finish(timeout=30), 0,
                             scenario.device.process.stderr())
            received_by_ms = int(time.time() * 1000)
            self.assertEqual(stored(), [b"online-1", b"waited-1"])

            lines = [harness.parse_logfmt(line)
                     for line in scenario.server.process.stderr().splitlines()]
            aged = [e for e in lines if e.get("event") == "uplink_age"]
            self.assertEqual(len(aged), 1, lines)
            self.assertEqual(int(aged[0]["seq"]), rh.uplink(scenario.data_dir,
                                                            scenario.session)[1][0])
            age_ms = int(aged[0]["age_ms"])
            self.assertGreaterEqual(age_ms, int(wait_s * 1000))
            self.assertLessEqual(age_ms, received_by_ms - handed_over_ms)
            # received - age: when tether-cat was handed the line (the two
            # processes share this host's clock; up to 500 ms for tether-cat to read it and
            # the DATA to arrive, on a slow or emulated machine).
            captured_ms = int(aged[0]["captured_ms"])
            self.assertGreaterEqual(captured_ms, handed_over_ms - 5)
            self.assertLessEqual(captured_ms, handed_over_ms + 500)
        finally:
            scenario.close()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV, verbosity=2)
