#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The log lines of every program share their keys (t=, level=, endpoint=),
and one trace id joins a connection on both sides: tetherd logs the trace id
of each attempt's traceparent, tether-server logs it with every event of that
connection after the upgrade request (the accept line, before the request,
shares its conn= and endpoint=).

Usage: /usr/bin/python3 test_log_keys.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import argparse
import json
import os
import re
import sys
import unittest

ARGS = argparse.ArgumentParser(add_help=False)
ARGS.add_argument("--source-dir", required=True)
ARGS.add_argument("--build-dir", required=True)
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
sys.path.insert(0, os.path.join(OPTIONS.source_dir, "tests", "integration"))

import harness  # noqa: E402
import resume_harness as rh  # noqa: E402

TETHERD = os.path.join(OPTIONS.build_dir, "apps", "tetherd")
TETHER_CAT = os.path.join(OPTIONS.build_dir, "apps", "tether-cat")
TIME = re.compile(r"^t=\d+\.\d{3} level=(debug|info|warn|error) ")


def parsed(text):
    return [harness.parse_logfmt(line) for line in text.splitlines() if line]


class Rig:
    def __init__(self, name):
        self.tmp = harness.TempDir("log-keys-%s-" % name)
        tokens = self.tmp.path("tokens")
        with open(tokens, "w") as f:
            f.write("t-1 tether gw-trace\n")
        self.token = self.tmp.path("token")
        with open(self.token, "w") as f:
            f.write("t-1\n")
        self.server = rh.Server(OPTIONS.build_dir, self.tmp.path("data"), tokens).start()

    def tetherd(self):
        config = {
            "endpoints": ["ws://127.0.0.1:%d/v1" % self.server.port],
            "credentials": {"token_file": self.token},
            "session": {"user": "tether", "device_id": "gw-trace"},
            "backoff": {"initial_ms": 200, "max_ms": 400, "jitter": "none"},
            "state_dir": self.tmp.path("state"),
            "run_dir": self.tmp.path("run"),
            "inputs": {"health": {"enabled": False}},
            "downlink": {"output": "stdout"},
            "log": {"level": "info"},
        }
        path = self.tmp.path("tetherd.json")
        with open(path, "w") as f:
            json.dump(config, f)
        return harness.start_process([TETHERD, "--config", path], expect_port=False,
                                     name="tetherd")


class TraceIds(unittest.TestCase):
    def test_one_trace_id_joins_the_device_and_the_server_logs(self):
        rig = Rig("trace")
        try:
            tetherd = rig.tetherd()
            with tetherd:
                harness.wait_for(lambda: "state=online" in tetherd.stderr(), timeout=15,
                                 message="tetherd did not go online")
                attempts = [e for e in parsed(tetherd.stderr()) if e.get("event") == "attempt"]
                self.assertEqual(len(attempts), 1, attempts)
                self.assertEqual(attempts[0]["level"], "info")
                trace = attempts[0]["trace_id"]
                self.assertRegex(trace, r"^[0-9a-f]{32}$")
                harness.wait_for(lambda: any(e.get("event") == "welcome"
                                             for e in parsed(rig.server.process.stderr())),
                                 timeout=5)
            # SIGTERM: tetherd closes with 1001; the server logs the device's close.
            harness.wait_for(lambda: any(e.get("event") == "close" and e.get("by") == "device"
                                         for e in parsed(rig.server.process.stderr())),
                             timeout=5, message="the server logged no close by the device")
            events = parsed(rig.server.process.stderr())
            traced = {e["event"] for e in events if e.get("trace_id") == trace}
            for event in ("upgraded", "welcome", "close", "disconnect"):
                self.assertIn(event, traced, events)
            upgraded = next(e for e in events if e.get("event") == "upgraded")
            accept = [e for e in events if e.get("event") == "accept"
                      and e.get("conn") == upgraded["conn"]]
            self.assertEqual(len(accept), 1, events)
            self.assertEqual(accept[0]["endpoint"], upgraded["endpoint"])
            # No other connection carries that trace id.
            self.assertEqual({e["conn"] for e in events if e.get("trace_id") == trace},
                             {upgraded["conn"]})
        finally:
            rig.server.stop()

    def test_each_attempt_has_its_own_trace_id(self):
        rig = Rig("retry")
        try:
            tetherd = rig.tetherd()
            with tetherd:
                harness.wait_for(lambda: "state=online" in tetherd.stderr(), timeout=15)
                rig.server.admin("POST", "/faults/close?code=1011&reason=test")
                harness.wait_for(lambda: tetherd.stderr().count("state=online") >= 2,
                                 timeout=15, message="tetherd did not reconnect")
                traces = [e["trace_id"] for e in parsed(tetherd.stderr())
                          if e.get("event") == "attempt"]
            self.assertGreaterEqual(len(traces), 2)
            self.assertEqual(len(set(traces)), len(traces))
            server = parsed(rig.server.process.stderr())
            for trace in traces[:2]:
                self.assertTrue(any(e.get("event") == "welcome" and e.get("trace_id") == trace
                                    for e in server), (trace, server))
        finally:
            rig.server.stop()


class LogKeys(unittest.TestCase):
    def test_every_line_of_every_program_begins_with_t_and_level(self):
        rig = Rig("keys")
        try:
            tetherd = rig.tetherd()
            with tetherd:
                harness.wait_for(lambda: "state=online" in tetherd.stderr(), timeout=15)
            cat = harness.run([TETHER_CAT, "--once", "--verbose", "--tether-v1",
                               "--state-dir", rig.tmp.path("cat-state"), "--device-id", "cat-1",
                               "--token-file", rig.token,
                               "ws://127.0.0.1:%d/v1" % rig.server.port], stdin_bytes=b"x\n",
                              timeout=20)
            rig.server.stop()
            server_text = rig.server.process.stderr()
            for name, text in (("tether-server", server_text), ("tetherd", tetherd.stderr()),
                               ("tether-cat", cat.stderr.decode())):
                lines = [line for line in text.splitlines() if line]
                self.assertTrue(lines, name)
                for line in lines:
                    self.assertRegex(line, TIME, name)
            # A device connection's lines name its peer, as IP:PORT.
            for event in parsed(server_text):
                if "conn" in event:
                    self.assertRegex(event.get("endpoint", ""), r"^127\.0\.0\.1:\d+$", event)
            # tetherd and tether-cat name the endpoint they dial with the same key.
            url = "ws://127.0.0.1:%d/v1" % rig.server.port
            attempts = [e for e in parsed(tetherd.stderr()) if e.get("event") == "attempt"]
            self.assertEqual(attempts[0]["endpoint"], url)
            states = [e for e in parsed(cat.stderr.decode()) if e.get("event") == "state"]
            self.assertTrue(states)
            for state in states:
                self.assertEqual(state.get("endpoint"), url, state)
        finally:
            rig.server.stop()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV)
