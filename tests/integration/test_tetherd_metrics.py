#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tetherd's metrics file against a real tether-server: the round-trip time
under steady traffic, the last-ack age, the spool, intake drops, build info;
the file passes `promtool check metrics` and holds exactly docs/METRICS.md's
tetherd names.

Usage: /usr/bin/python3 test_tetherd_metrics.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import unittest

import test_tetherd as td  # parses --source-dir/--build-dir, finds harness

harness = td.harness
rh = td.rh
OPTIONS = td.OPTIONS
UNITTEST_ARGV = td.UNITTEST_ARGV

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def parse(text):
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            match = SAMPLE.match(line)
            assert match, "not a sample line: %r" % line
            samples[(match.group(1), match.group(2) or "")] = float(match.group(3))
    return samples


def documented_tetherd():
    with open(os.path.join(OPTIONS.source_dir, "docs", "METRICS.md"), encoding="utf-8") as f:
        doc = f.read()
    body = doc.split("<!-- tetherd-metrics:begin -->")[1].split("<!-- tetherd-metrics:end -->")[0]
    return set(re.findall(r"^\| `([a-z_:]+)`", body, re.M))


class Metrics(unittest.TestCase):
    def setUp(self):
        tmp = harness.TempDir("tetherd-metrics-srv-")
        self.store = tmp.path("store")
        os.makedirs(self.store)
        tokens = tmp.path("tokens")
        with open(tokens, "w") as f:
            f.write("t-1\n")
        # Acks every 50 ms: under the traffic below a frame arrives far more
        # often than the 1 s heartbeat interval, so no idle ping is ever due.
        self.server = rh.Server(OPTIONS.build_dir, self.store, tokens,
                                extra=["--ack-every", "1", "--ack-interval-ms", "50"])
        self.addCleanup(self.server.stop)
        self.server.start()
        self.setup = td.Setup("metrics", self.server.port,
                              spool={"enabled": True, "fsync_interval_ms": 200},
                              outbox={"max_message_size": 1024})
        self.file = os.path.join(self.setup.run_dir, "tether.prom")
        self.sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(self.sender.close)

    def read(self):
        with open(self.file, encoding="utf-8") as f:
            return f.read()

    def samples(self):
        return parse(self.read())

    def test_under_traffic_the_rtt_is_measured_and_the_file_is_valid(self):
        process = self.setup.start()
        self.addCleanup(process.stop)
        harness.wait_for(lambda: os.path.exists(self.setup.socket), timeout=10)
        # Steady traffic from before the link is up, for 5 s: a datagram every
        # 20 ms, acked every 50 ms, so the link is never idle for a heartbeat
        # interval (1 s) and only a probe ping can measure the round trip.
        sent = 0
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            sent += 1
            self.sender.sendto(b"reading-%d" % sent, self.setup.socket)
            time.sleep(0.02)
        during = self.samples()  # written within the last second, traffic still flowing
        self.assertEqual(during[("tether_connected", "")], 1)
        rtt = during[("tether_rtt_seconds", "")]
        self.assertFalse(rtt != rtt, "tether_rtt_seconds is NaN under traffic")  # NaN != NaN
        self.assertLess(rtt, 1.0)
        self.sender.sendto(b"x" * 5000, self.setup.socket)  # larger than the buffer
        self.sender.sendto(b"", self.setup.socket)
        harness.wait_for(lambda: self.samples()[("tether_messages_acked_total", "")] >= sent,
                         timeout=10, message="not all acknowledged")
        time.sleep(1.2)  # one more metrics write
        samples = self.samples()
        self.assertLess(samples[("tether_last_ack_age_seconds", "")], 3.0)
        self.assertGreater(samples[("tether_uptime_seconds", "")], 4.0)
        self.assertGreater(samples[("tether_spool_capacity_bytes", "")], 0)
        self.assertGreater(samples[("tether_spool_bytes", "")], 0)
        self.assertEqual(samples[("tether_intake_dropped_total", '{reason="datagram_too_large"}')], 1)
        self.assertEqual(samples[("tether_intake_dropped_total", '{reason="datagram_empty"}')], 1)
        self.assertEqual(samples[("tether_intake_dropped_total", '{reason="too_large"}')], 0)
        text = self.read()
        self.assertRegex(text, r'\ntether_build_info\{version="[0-9.]+",tls="mbedtls [0-9.]+"\} 1\n')
        self.assertEqual(set(re.findall(r"^# TYPE (\S+) ", text, re.M)), documented_tetherd())
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool missing: tools/install-deps integration")
        check = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                               capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertEqual(check.stdout + check.stderr, "")  # no lint warning either

        # The server goes away: nothing is acknowledged any more, the age grows
        # while messages wait in the outbox and the spool.
        self.server.stop()
        for k in range(5):
            self.sender.sendto(b"offline-%d" % k, self.setup.socket)
        time.sleep(3.5)
        samples = self.samples()
        self.assertEqual(samples[("tether_connected", "")], 0)
        self.assertGreater(samples[("tether_last_ack_age_seconds", "")], 2.0)
        self.assertEqual(samples[("tether_spool_records", "")], 5)
        self.assertGreaterEqual(samples[("tether_messages_queued", "")], 5)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV)
