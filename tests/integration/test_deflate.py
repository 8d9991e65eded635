#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""permessage-deflate (RFC 7692) interop: tether-cat --compress against a
python3-websockets server with compression on (servers/deflate_server.py),
a Node ws 8.23.0 server (servers/deflate_server.js; npm ci in
bench/peers/node when node_modules is missing, a failure fails the test) and
nginx terminating wss in front of the Python one; with and without context
takeover, small windows, a threshold, and a decompression bomb that must end
the link with 1009. Messages are compared both ways; compression is checked
on the server's answer and on tether-cat's byte counters.

Usage: /usr/bin/python3 test_deflate.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import unittest

ARGS = argparse.ArgumentParser(add_help=False)
ARGS.add_argument("--source-dir", required=True)
ARGS.add_argument("--build-dir", required=True)
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
sys.path.insert(0, os.path.join(OPTIONS.source_dir, "tests", "integration"))

import harness  # noqa: E402

CAT = os.path.join(OPTIONS.build_dir, "apps", "tether-cat")
SERVER = os.path.join(OPTIONS.source_dir, "tests", "integration", "servers", "deflate_server.py")


def start_server(log, *args):
    return harness.start_process([harness.PYTHON, SERVER, "--log", log] + list(args),
                                 name="deflate_server")


def telemetry_lines(count, size):
    rng = random.Random(7)
    lines = []
    for i in range(count):
        line = '{"seq":%d,"temp":%.2f,"hum":%d,"pad":"' % (i, rng.uniform(15, 30), rng.randint(20, 80))
        line += "x" * max(0, size - len(line) - 2) + '"}'
        lines.append(line)
    return lines


def totals(result):
    for line in result.stderr_lines():
        entry = harness.parse_logfmt(line)
        if entry.get("event") == "compression_totals":
            return {k: int(v) for k, v in entry.items() if v.isdigit()}
    return None


NODE_SERVER = os.path.join(OPTIONS.source_dir, "tests", "integration", "servers",
                           "deflate_server.js")


NODE_DIR = os.path.join(OPTIONS.source_dir, "bench", "peers", "node")


def prepare_node():
    """ws 8.23.0 (bench/peers/node/package-lock.json): npm ci when node_modules is
    missing. A missing node or npm, or a failing npm ci, fails the test."""
    if os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ws")):
        return
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise AssertionError("%s is not installed: the Node ws interop test needs it" % tool)
    result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise AssertionError("npm ci failed in %s: %s" % (NODE_DIR, result.stderr[-500:]))


def start_node_server(log, *args):
    prepare_node()
    env = dict(os.environ)
    env["NODE_PATH"] = os.path.join(NODE_DIR, "node_modules")
    return harness.start_process(["node", NODE_SERVER, log] + list(args), name="node_ws", env=env)


class Exchange:
    def run_cat(self, url, lines, cat_args, extra=()):
        stdin = ("\n".join(lines) + "\n").encode()
        return harness.run([CAT, "--once", "--compress", "--linger", "500"] + list(cat_args) +
                           list(extra) + [url], stdin_bytes=stdin, timeout=15)

    def check(self, result, log, lines):
        self.assertEqual(0, result.returncode, result)
        self.assertEqual(lines, result.stdout.decode().splitlines(), result)
        self.assertIn("event=compression negotiated=yes", result.stderr.decode(), result)
        entries = harness.read_jsonl(log)
        connected = [e for e in entries if e["event"] == "connected"]
        self.assertEqual(1, len(connected), entries)
        sizes = [e["size"] for e in entries if e["event"] == "message"]
        self.assertEqual([len(line) for line in lines], sizes)
        counts = totals(result)
        self.assertIsNotNone(counts, result)
        self.assertEqual(len(lines), counts["sent_compressed"])
        self.assertEqual(len(lines), counts["received_compressed"])
        self.assertLess(counts["bytes_after"], counts["bytes_before"] / 4)
        return connected[0], counts


def default_lines():
    return telemetry_lines(20, 100) + ["a", telemetry_lines(1, 50000)[0]]


class Node(unittest.TestCase, Exchange):
    def exchange(self, server_args=(), cat_args=()):
        tmp = harness.TempDir("deflate-node")
        log = tmp.path("server.jsonl")
        lines = default_lines()
        with start_node_server(log, *server_args) as server:
            result = self.run_cat("ws://127.0.0.1:%d/" % server.port, lines, cat_args)
        return self.check(result, log, lines)

    def test_context_takeover(self):
        connected, _ = self.exchange()
        self.assertIn("permessage-deflate", connected["extensions"])

    def test_no_context_takeover_required_by_the_server(self):
        connected, _ = self.exchange(server_args=["--no-context-takeover"])
        self.assertIn("server_no_context_takeover", connected["extensions"])
        self.assertIn("client_no_context_takeover", connected["extensions"])

    def test_no_context_takeover_and_small_window_offered(self):
        connected, _ = self.exchange(cat_args=["--no-context-takeover", "--window-bits", "10"])
        self.assertIn("server_max_window_bits=10", connected["extensions"])


class Nginx(unittest.TestCase, Exchange):
    def test_python_behind_nginx(self):
        tmp = harness.TempDir("deflate-nginx")
        certs = harness.make_certs(tmp.path("certs"))
        log = tmp.path("server.jsonl")
        lines = default_lines()
        with start_server(log) as backend:
            with harness.start_nginx("normal", backend.port, certs,
                                     directory=tmp.path("nginx")) as proxy:
                result = self.run_cat("wss://localhost:%d/" % proxy.port, lines, [],
                                      ["--ca-file", certs.ca])
        connected, _ = self.check(result, log, lines)
        self.assertEqual(1, len(connected["extensions"]))


class Python(unittest.TestCase):
    def exchange(self, server_args=(), cat_args=(), lines=None):
        tmp = harness.TempDir("deflate")
        log = tmp.path("server.jsonl")
        if lines is None:
            lines = default_lines()
        stdin = ("\n".join(lines) + "\n").encode()
        with start_server(log, *server_args) as server:
            result = harness.run([CAT, "--once", "--compress", "--linger", "500"] + list(cat_args) +
                                 ["ws://127.0.0.1:%d/" % server.port], stdin_bytes=stdin, timeout=15)
        self.assertEqual(0, result.returncode, result)
        self.assertEqual(lines, result.stdout.decode().splitlines(), result)
        self.assertIn("event=compression negotiated=yes", result.stderr.decode(), result)
        entries = harness.read_jsonl(log)
        connected = [e for e in entries if e["event"] == "connected"]
        self.assertEqual(1, len(connected), entries)
        self.assertEqual(1, len(connected[0]["extensions"]), connected)
        sizes = [e["size"] for e in entries if e["event"] == "message"]
        self.assertEqual([len(line) for line in lines], sizes)
        counts = totals(result)
        self.assertIsNotNone(counts, result)
        return connected[0], counts

    def test_context_takeover(self):
        connected, counts = self.exchange()
        self.assertEqual(22, counts["sent_compressed"])
        self.assertEqual(22, counts["received_compressed"])
        self.assertLess(counts["bytes_after"], counts["bytes_before"] / 4)
        extension = connected["extensions"][0]
        self.assertFalse(extension["remote_no_context_takeover"])
        self.assertEqual("permessage-deflate; client_max_window_bits",
                         connected["request_extensions"])

    def test_no_context_takeover_offered_by_the_client(self):
        connected, counts = self.exchange(cat_args=["--no-context-takeover"])
        extension = connected["extensions"][0]
        self.assertTrue(extension["remote_no_context_takeover"])
        self.assertTrue(extension["local_no_context_takeover"])
        self.assertEqual(22, counts["sent_compressed"])

    def test_no_context_takeover_required_by_the_server(self):
        connected, counts = self.exchange(
            server_args=["--server-no-context-takeover", "--client-no-context-takeover"])
        extension = connected["extensions"][0]
        self.assertTrue(extension["remote_no_context_takeover"])
        self.assertTrue(extension["local_no_context_takeover"])
        self.assertEqual(22, counts["received_compressed"])

    def test_small_windows(self):
        connected, counts = self.exchange(cat_args=["--window-bits", "9"],
                                          server_args=["--client-max-window-bits", "9"])
        extension = connected["extensions"][0]
        self.assertEqual(9, extension["remote_max_window_bits"])
        self.assertEqual(9, extension["local_max_window_bits"])

    def test_threshold_sends_small_messages_plain(self):
        _, counts = self.exchange(cat_args=["--compress-threshold", "200"])
        self.assertEqual(1, counts["sent_compressed"])  # only the 50 KB line

    def test_server_without_compression(self):
        tmp = harness.TempDir("deflate")
        log = tmp.path("server.jsonl")
        with start_server(log, "--no-compression") as server:
            result = harness.run([CAT, "--once", "--compress", "--linger", "300",
                                  "ws://127.0.0.1:%d/" % server.port], stdin_bytes=b"hello\n",
                                 timeout=15)
        self.assertEqual(0, result.returncode, result)
        self.assertEqual(b"hello\n", result.stdout)
        self.assertIn("event=compression negotiated=no", result.stderr.decode())

    def test_bomb_is_closed_with_1009(self):
        tmp = harness.TempDir("deflate")
        log = tmp.path("server.jsonl")
        with start_server(log, "--bomb", str(8 * 1024 * 1024)) as server:
            result = harness.run([CAT, "--once", "--compress", "--keep-open",
                                  "--max-message-size", "65536",
                                  "ws://127.0.0.1:%d/" % server.port], timeout=15)
            harness.wait_for(lambda: any(e["event"] == "closed" for e in harness.read_jsonl(log)),
                             message="the server saw no close")
        self.assertFalse(result.timed_out, result)
        closed = [e for e in harness.read_jsonl(log) if e["event"] == "closed"]
        self.assertEqual(1009, closed[0]["code"], result)
        counts = totals(result)
        self.assertEqual(0, counts["received_compressed"])
        self.assertLessEqual(counts["received_bytes_after"], 65536)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV, verbosity=2)
