#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Device state end to end (docs/PROTOCOL.md section 9): tether-cat as the
device (--desired-out, --report-file), tether-server as the cloud, its admin
interface as the backend, kills of either side in between.

Usage: /usr/bin/python3 test_device_state.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import argparse
import json
import os
import sys
import unittest

ARGS = argparse.ArgumentParser(add_help=False)
ARGS.add_argument("--source-dir", required=True)
ARGS.add_argument("--build-dir", required=True)
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
sys.path.insert(0, os.path.join(OPTIONS.source_dir, "tests", "integration"))

import harness  # noqa: E402
import resume_harness as rh  # noqa: E402

BUILD = OPTIONS.build_dir


class Scenario:
    """One tether-server, one tether-cat with device-state files, in a fresh directory."""

    def __init__(self, name, report=None):
        self.tmp = harness.TempDir("state-%s-" % name)
        self.data_dir = self.tmp.path("store")
        os.makedirs(self.data_dir)
        self.tokens = self.tmp.path("tokens")
        with open(self.tokens, "w") as f:
            f.write("token-1\n")
        self.token_file = self.tmp.path("device-token")
        with open(self.token_file, "w") as f:
            f.write("token-1\n")
        self.desired_file = self.tmp.path("desired.json")
        self.report_file = self.tmp.path("reported.json")
        if report is not None:
            self.write_report(report)
        self.server = rh.Server(BUILD, self.data_dir, self.tokens).start()
        self.session = rh.session_id("tether", "pi-state")
        self.device = None

    def start_device(self):
        self.device = rh.Device(BUILD, self.server, self.tmp.path("device"), self.token_file,
                                device="pi-state",
                                extra=["--desired-out", self.desired_file,
                                       "--report-file", self.report_file, "--verbose"]).start()
        harness.wait_for(lambda: any(e.get("state") == "online" for e in self.device.log()),
                         timeout=10, message="the device never came online")
        return self.device

    def write_report(self, document):
        temporary = self.report_file + ".new"
        with open(temporary, "w") as f:
            json.dump(document, f)
        os.rename(temporary, self.report_file)

    def set_desired(self, patch):
        answer = self.server.admin("POST", "/sessions/%s/desired" % self.session,
                                   json.dumps(patch).encode())
        return json.loads(answer)["version"]

    def state(self):
        return json.loads(self.server.admin("GET", "/sessions/%s/state" % self.session))

    def desired_file_contents(self):
        try:
            with open(self.desired_file) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def close(self):
        if self.device is not None and self.device.process is not None:
            self.device.process.stop()
        self.server.stop()


class EndToEnd(unittest.TestCase):
    def test_desired_reaches_the_file_and_is_applied_and_reports_reach_the_server(self):
        s = Scenario("online", report={"fw": "1.0"})
        try:
            s.start_device()
            harness.wait_for(lambda: s.state()["reported"] == {"fw": "1.0"}, timeout=10,
                             message="the report file never reached the server")
            v1 = s.set_desired({"rate": 5, "on": True})
            v2 = s.set_desired({"rate": 7})
            harness.wait_for(lambda: s.state()["desired_applied"] == v2, timeout=10,
                             message="the device never applied the desired document")
            self.assertEqual(s.desired_file_contents(),
                             {"version": v2, "desired": {"rate": 7, "on": True}})
            self.assertEqual(v1 + 1, v2)
            s.write_report({"fw": "1.1", "up": True})
            harness.wait_for(lambda: s.state()["reported"] == {"fw": "1.1", "up": True},
                             timeout=10, message="the changed report file never arrived")
        finally:
            s.close()

    def test_changes_made_while_the_device_was_killed_arrive_once_after_its_restart(self):
        s = Scenario("restart", report={"fw": "1.0"})
        try:
            s.start_device()
            first = s.set_desired({"rate": 1})
            harness.wait_for(lambda: s.state()["desired_applied"] == first, timeout=10,
                             message="the first change was never applied")
            s.device.kill()
            for k in range(2, 6):
                last = s.set_desired({"rate": k, "step%d" % k: True})
            s.write_report({"fw": "2.0"})
            device = s.start_device()
            harness.wait_for(lambda: s.state()["desired_applied"] == last, timeout=10,
                             message="the restarted device never caught up")
            harness.wait_for(lambda: s.state()["reported"] == {"fw": "2.0"}, timeout=10,
                             message="the restarted device never reported the new file")
            expected = {"rate": 5, "step2": True, "step3": True, "step4": True, "step5": True}
            self.assertEqual(s.desired_file_contents(), {"version": last, "desired": expected})
            # Each version was written to the file at most once by this run.
            applied = [int(e["version"]) for e in device.log() if e.get("event") == "desired"]
            self.assertEqual(applied, sorted(set(applied)))
            self.assertEqual(applied[-1], last)
        finally:
            s.close()

    def test_a_server_killed_and_restarted_keeps_both_documents(self):
        s = Scenario("server", report={"fw": "1.0"})
        try:
            s.start_device()
            version = s.set_desired({"rate": 3})
            harness.wait_for(lambda: s.state()["desired_applied"] == version, timeout=10,
                             message="never applied")
            harness.wait_for(lambda: s.state()["reported"] == {"fw": "1.0"}, timeout=10,
                             message="never reported")
            s.server.kill()
            s.write_report({"fw": "1.5"})
            s.server.start()
            harness.wait_for(lambda: s.state()["reported"] == {"fw": "1.5"}, timeout=15,
                             message="the report made while the server was down never arrived")
            state = s.state()
            self.assertEqual(state["desired_applied"], version)
            self.assertEqual(state["desired"], {"rate": 3})
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV, verbosity=2)
