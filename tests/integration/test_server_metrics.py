#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tether-server's GET /metrics against a real server: values move as a device
connects, sends and is refused; the text passes `promtool check metrics`; the
names are exactly docs/METRICS.md's tether-server table.

Usage: /usr/bin/python3 test_server_metrics.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import asyncio
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import unittest

import test_tether_server as ts  # parses --source-dir/--build-dir, finds harness

harness = ts.harness
OPTIONS = ts.OPTIONS
UNITTEST_ARGV = ts.UNITTEST_ARGV

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def scrape_text(server, path="/metrics", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.admin_port, timeout=ts.TIMEOUT)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    body = response.read().decode("utf-8")
    content_type = response.getheader("Content-Type")
    conn.close()
    return response.status, content_type, body


def parse(text):
    """{(name, labels-text): float} of every sample."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, "not a sample line: %r" % line
        samples[(match.group(1), match.group(2) or "")] = float(match.group(3))
    return samples


def value(samples, name, labels=""):
    return samples[(name, labels)]


def scrape(server):
    status, _, body = scrape_text(server)
    assert status == 200, status
    return parse(body)


def documented(section):
    path = os.path.join(OPTIONS.source_dir, "docs", "METRICS.md")
    with open(path, encoding="utf-8") as f:
        doc = f.read()
    body = doc.split("<!-- %s:begin -->" % section)[1].split("<!-- %s:end -->" % section)[0]
    return set(re.findall(r"^\| `([a-z_:]+)`", body, re.M))


def wait_for(predicate, timeout=ts.TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class ServerMetrics(unittest.TestCase):
    def setUp(self):
        self.tmp = harness.TempDir("tether-server-metrics-")
        self.server = ts.Server(self.tmp, extra=["--ack-every", "4", "--ack-interval-ms", "50"])

    def tearDown(self):
        self.server.stop()

    def test_needs_no_token_and_is_the_text_format(self):
        status, content_type, body = scrape_text(self.server)
        self.assertEqual(status, 200)
        self.assertTrue(content_type.startswith("text/plain; version=0.0.4"), content_type)
        self.assertIn('tether_server_build_info{version="', body)
        self.assertIn('engine="file"} 1\n', body)
        conn = http.client.HTTPConnection("127.0.0.1", self.server.admin_port, timeout=5)
        conn.request("POST", "/metrics", headers=harness.admin_headers(self.server.data_dir))
        self.assertEqual(conn.getresponse().status, 405)
        conn.close()

    def test_a_device_that_connects_and_sends_moves_the_counters(self):
        before = scrape(self.server)
        self.assertEqual(value(before, "tether_server_connections"), 0)
        self.assertEqual(value(before, "tether_server_sessions"), 0)
        self.assertEqual(value(before, "tether_server_messages_stored_total"), 0)
        self.assertEqual(value(before, "tether_server_store_seconds_count", '{engine="file"}'), 0)
        session = ts.new_session()
        during = {}

        async def scenario():
            ws, _ = await ts.open_session(self.server, session)
            for seq in range(1, 21):
                await ws.send(ts.data(seq, b"m%d" % seq))
            await ts.until_ack(ws, 20)
            during.update(scrape(self.server))
            await ws.send(ts.data(20, b"m20"))  # a resend after a lost ack
            await ts.until_ack(ws, 20)
            await ws.close()

        ts.run(scenario())
        self.assertEqual(value(during, "tether_server_connections"), 1)
        self.assertEqual(value(during, "tether_server_sessions"), 1)
        self.assertEqual(value(during, "tether_server_connections_accepted_total"), 1)
        self.assertEqual(value(during, "tether_server_upgrades_total"), 1)
        self.assertEqual(value(during, "tether_server_sessions_started_total"), 1)
        self.assertEqual(value(during, "tether_server_store_sessions"), 1)
        self.assertEqual(value(during, "tether_server_messages_stored_total"), 20)
        self.assertGreaterEqual(value(during, "tether_server_acks_sent_total"), 1)
        count = value(during, "tether_server_store_seconds_count", '{engine="file"}')
        self.assertGreaterEqual(count, 1)
        self.assertEqual(
            value(during, "tether_server_store_seconds_bucket", '{engine="file",le="+Inf"}'), count)
        # Samples have 1 ms resolution and a file store on loopback often acks
        # within it, so the sum may be 0; it is never negative or missing.
        self.assertGreaterEqual(value(during, "tether_server_store_seconds_sum", '{engine="file"}'), 0)
        self.assertTrue(wait_for(
            lambda: value(scrape(self.server), "tether_server_connections") == 0))
        after = scrape(self.server)
        self.assertEqual(value(after, "tether_server_sessions"), 0)
        self.assertEqual(value(after, "tether_server_messages_duplicate_total"), 1)
        self.assertEqual(value(after, "tether_server_store_errors_total"), 0)
        self.assertEqual(value(after, "tether_server_store_ready"), 1)

    def test_each_rejected_upgrade_counts_under_its_reason(self):
        def rejected(reason):
            return value(scrape(self.server), "tether_server_upgrades_rejected_total",
                         '{reason="%s"}' % reason)

        async def refused(**kw):
            try:
                ws = await ts.connect(self.server, **kw)
            except ts.InvalidStatusCode as error:
                return error.status_code
            await ws.close()
            return 101

        for reason in ("bad_token", "bad_subprotocol", "malformed", "fault_injected", "throttled",
                       "too_many", "store_unavailable"):
            self.assertEqual(rejected(reason), 0, reason)
        self.assertEqual(ts.run(refused(token="nope")), 401)
        self.assertEqual(ts.run(refused(token=None)), 401)
        self.assertEqual(rejected("bad_token"), 2)
        self.assertEqual(ts.run(refused(subprotocols=("chat",))), 400)
        self.assertEqual(rejected("bad_subprotocol"), 1)
        for request, answer in ((b"GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n", b" 426 "),  # no Upgrade
                                (b"garbage\r\n\r\n", b" 400 ")):
            with socket.create_connection(("127.0.0.1", self.server.port), timeout=5) as raw:
                raw.sendall(request)
                self.assertIn(answer, raw.recv(4096))
        self.assertEqual(rejected("malformed"), 2)
        status, _ = self.server.admin("POST", "/faults/reject?status=503&ms=60000")
        self.assertEqual(status, 200)
        self.assertEqual(ts.run(refused()), 503)
        self.assertEqual(rejected("fault_injected"), 1)
        self.assertEqual(rejected("bad_token"), 2)  # the others did not move
        samples = scrape(self.server)
        self.assertEqual(value(samples, "tether_server_upgrades_total"), 0)
        self.assertEqual(value(samples, "tether_server_connections_accepted_total"), 6)

    def test_promtool_accepts_the_text_and_the_names_are_the_documented_ones(self):
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool missing: tools/install-deps integration")

        async def traffic():
            ws, _ = await ts.open_session(self.server, ts.new_session())
            await ws.send(ts.data(1, b"x"))
            await ts.until_ack(ws, 1)
            await ws.close()

        ts.run(traffic())
        _, _, body = scrape_text(self.server)
        check = subprocess.run([promtool, "check", "metrics"], input=body, text=True,
                               capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertEqual(check.stdout + check.stderr, "")  # no lint warning either
        emitted = set(re.findall(r"^# TYPE (\S+) ", body, re.M))
        self.assertEqual(emitted, documented("tether-server-metrics"))


class Limits(unittest.TestCase):
    def test_a_connection_beyond_max_connections_counts_as_too_many(self):
        tmp = harness.TempDir("tether-server-metrics-")
        server = ts.Server(tmp, extra=["--max-connections", "1"])
        self.addCleanup(server.stop)

        async def scenario():
            ws, _ = await ts.open_session(server, ts.new_session())
            try:
                await ts.connect(server)
                return 101
            except ts.InvalidStatusCode as error:
                return error.status_code
            finally:
                await ws.close()

        self.assertEqual(ts.run(scenario()), 503)
        samples = scrape(server)
        self.assertEqual(value(samples, "tether_server_upgrades_rejected_total",
                               '{reason="too_many"}'), 1)
        self.assertEqual(value(samples, "tether_server_connections_accepted_total"), 2)


class RedisMetrics(unittest.TestCase):
    """The same histogram and readiness with the Redis engine."""

    def test_store_latency_and_readiness_with_the_redis_engine(self):
        import redis_harness  # noqa: E402 - needs harness's path first
        tmp = harness.TempDir("tether-server-metrics-redis-")
        redis = redis_harness.start_redis(tmp.path("redis"))
        self.addCleanup(redis.stop)
        os.makedirs(tmp.path("data"), mode=0o700)  # the admin token's home; Redis keeps the rest
        server = ts.Server(tmp, extra=["--store", "redis", "--redis", "127.0.0.1:%d" % redis.port,
                                       "--instance-id", "m1", "--ack-every", "4",
                                       "--ack-interval-ms", "50"])
        self.addCleanup(server.stop)
        self.assertTrue(wait_for(
            lambda: value(scrape(server), "tether_server_store_ready") == 1))

        async def scenario():
            ws, _ = await ts.open_session(server, ts.new_session())
            for seq in range(1, 11):
                await ws.send(ts.data(seq, b"r%d" % seq))
            await ts.until_ack(ws, 10)
            await ws.close()

        ts.run(scenario())
        samples = scrape(server)
        self.assertIn('engine="redis"', "".join(labels for _, labels in samples))
        self.assertEqual(value(samples, "tether_server_messages_stored_total"), 10)
        self.assertGreaterEqual(
            value(samples, "tether_server_store_seconds_count", '{engine="redis"}'), 1)
        redis.stop()
        self.assertTrue(wait_for(
            lambda: value(scrape(server), "tether_server_store_ready") == 0))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV)
