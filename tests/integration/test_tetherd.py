#!/usr/bin/python3
"""tetherd as a gateway runs it: real processes, kill -9, restarts.

Usage: /usr/bin/python3 test_tetherd.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import argparse
import json
import os
import socket
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

TETHERD = os.path.join(OPTIONS.build_dir, "apps", "tetherd")
DEVICE = "gw-1"


class Setup:
    def __init__(self, name, port, **overrides):
        self.tmp = harness.TempDir("tetherd-%s-" % name)
        self.state_dir = self.tmp.path("state")
        self.run_dir = self.tmp.path("run")
        self.socket = os.path.join(self.run_dir, "in.sock")
        self.token = self.tmp.path("token")
        with open(self.token, "w") as f:
            f.write("t-1\n")
        config = {
            "endpoints": ["ws://127.0.0.1:%d/v1" % port],
            "credentials": {"token_file": self.token},
            "session": {"user": "tether", "device_id": DEVICE},
            "backoff": {"initial_ms": 200, "max_ms": 3200, "jitter": "equal"},
            "heartbeat": {"interval_ms": 1000, "pong_timeout_ms": 1000},
            "state_dir": self.state_dir,
            "run_dir": self.run_dir,
            "inputs": {"socket": self.socket, "health": {"enabled": False}},
            "downlink": {"output": "stdout"},
            "metrics": {"file": os.path.join(self.run_dir, "tether.prom"), "interval_ms": 1000},
            "log": {"level": "debug"},
        }
        for key, value in overrides.items():
            config[key] = value
        self.config = self.tmp.path("tetherd.json")
        with open(self.config, "w") as f:
            json.dump(config, f)

    def start(self, env=None):
        return harness.start_process([TETHERD, "--config", self.config], expect_port=False,
                                     name="tetherd", env=env)

    def log(self, process):
        return [harness.parse_logfmt(line) for line in process.stderr().splitlines()]


class Config(unittest.TestCase):
    def test_a_bad_config_is_refused_before_anything_connects(self):
        tmp = harness.TempDir("tetherd-bad-")
        path = tmp.path("bad.json")
        with open(path, "w") as f:
            json.dump({"endpoints": ["ws://127.0.0.1:1/"], "backoff": {"jitter": "sometimes"}}, f)
        result = harness.run([TETHERD, "--check-config", path])
        self.assertEqual(result.returncode, 2)
        self.assertIn(b"backoff.jitter", result.stderr)
        result = harness.run([TETHERD, "--config", path])
        self.assertEqual(result.returncode, 2)
        with open(path, "w") as f:
            json.dump({"endpoints": ["ws://127.0.0.1:1/"], "surprise": 1}, f)
        result = harness.run([TETHERD, "--check-config", path])
        self.assertEqual(result.returncode, 2)
        self.assertIn(b"surprise", result.stderr)

    def test_the_packaged_example_is_valid(self):
        example = os.path.join(OPTIONS.source_dir, "packaging", "tetherd.example.json")
        result = harness.run([TETHERD, "--check-config", example])
        self.assertEqual(result.returncode, 0, result)

    def test_help_lists_the_overrides(self):
        result = harness.run([TETHERD, "--help"])
        self.assertEqual(result.returncode, 0)
        for flag in (b"--config", b"--check-config", b"--endpoint", b"--state-dir"):
            self.assertIn(flag, result.stdout)


class Backoff(unittest.TestCase):
    def test_the_backoff_keeps_growing_across_kill_9_restarts(self):
        port = harness.free_port()  # no server: every attempt is refused
        setup = Setup("backoff", port)
        waits = []
        for _ in range(6):
            process = setup.start()
            start = time.monotonic()
            harness.wait_for(lambda: any(e.get("event") == "attempt" for e in setup.log(process)),
                             timeout=10, message="no attempt")
            first = next(e for e in setup.log(process) if e.get("event") == "attempt")
            waits.append(float(first["t"]))
            # Let the attempt fail and be counted, then die without warning.
            harness.wait_for(lambda: any(e.get("state") == "waiting_to_retry" and
                                         e.get("reason") == "tcp_refused"
                                         for e in setup.log(process)), timeout=10)
            process.signal(9)
            process.wait(5)
            del start
        # Equal jitter: the wait after n failed attempts is in [d/2, d], d = 200 * 2^(n-1), cap 3200.
        self.assertLess(waits[0], 0.15, waits)
        for n, wait in enumerate(waits[1:], start=1):
            d = min(0.2 * 2 ** (n - 1), 3.2)
            self.assertGreaterEqual(wait, d / 2 - 0.01, waits)
            self.assertLess(wait, d + 0.25, waits)
        self.assertGreater(waits[4], waits[1], waits)


class Spool(unittest.TestCase):
    def test_kill_9_mid_stream_loses_nothing_accepted(self):
        tmp = harness.TempDir("tetherd-spool-srv-")
        store = tmp.path("store")
        os.makedirs(store)
        tokens = tmp.path("tokens")
        with open(tokens, "w") as f:
            f.write("t-1\n")
        server = rh.Server(OPTIONS.build_dir, store, tokens)
        setup = Setup("spool", server.port, spool={"enabled": True, "fsync_interval_ms": 200})
        session = rh.session_id("tether", DEVICE)
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sent = []
        try:
            process = setup.start()
            harness.wait_for(lambda: os.path.exists(setup.socket), timeout=10)
            # The server is down: everything accepted waits in the outbox and the spool.
            for k in range(1, 301):
                sender.sendto(b"m-%d" % k, setup.socket)
                sent.append("m-%d" % k)
                time.sleep(0.002)
            time.sleep(0.5)  # tetherd has read them all (and flushed the spool)
            process.signal(9)
            process.wait(5)
            server.start()
            again = setup.start()
            harness.wait_for(lambda: len(rh.uplink(store, session)) >= len(sent), timeout=20,
                             message="the spooled messages never arrived")
            again.signal(15)
            self.assertEqual(again.wait(10), 0)
            stored = [p.decode() for _, p in rh.uplink(store, session)]
            self.assertEqual(stored, sent)
            self.assertEqual(rh.gaps(store, session), [])
            recovered = [e for e in setup.log(again) if e.get("event") == "spool"]
            self.assertEqual(recovered[0]["recovered"], "300")
        finally:
            sender.close()
            server.stop()


class Notify(unittest.TestCase):
    def test_ready_status_and_watchdog_reach_the_notify_socket(self):
        port = harness.free_port()
        setup = Setup("notify", port)
        path = setup.tmp.path("notify.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(path)
        listener.settimeout(5)
        env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
        process = setup.start(env=env)
        try:
            got = []
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not (
                    "READY=1" in got and "WATCHDOG=1" in got
                    and any(m.startswith("STATUS=") for m in got)):
                got.append(listener.recv(4096).decode())
            self.assertIn("READY=1", got)
            self.assertIn("WATCHDOG=1", got)
            self.assertTrue(any(m.startswith("STATUS=") for m in got), got)
            process.signal(15)
            self.assertEqual(process.wait(10), 0)
            listener.settimeout(1)
            rest = []
            try:
                while True:
                    rest.append(listener.recv(4096).decode())
            except socket.timeout:
                pass
            self.assertIn("STOPPING=1", rest)
        finally:
            listener.close()
            process.stop()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV, verbosity=2)
