#!/usr/bin/python3
# SPDX-License-Identifier: MIT
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

    def test_a_clean_restart_connects_at_once(self):
        # Attempts pile up against a server that is down, then tetherd is
        # stopped cleanly (SIGTERM) and the server comes up: the next run's
        # first attempt goes out at once and is online, not after the
        # persisted backoff (kill -9 keeps it: the test above).
        tmp = harness.TempDir("tetherd-clean-restart-srv-")
        store = tmp.path("store")
        os.makedirs(store)
        tokens = tmp.path("tokens")
        with open(tokens, "w") as f:
            f.write("t-1\n")
        server = rh.Server(OPTIONS.build_dir, store, tokens)
        setup = Setup("clean-restart", server.port)
        try:
            process = setup.start()
            harness.wait_for(lambda: sum(e.get("event") == "attempt"
                                         for e in setup.log(process)) >= 5,
                             timeout=20, message="fewer than 5 attempts")
            process.signal(15)
            self.assertEqual(process.wait(10), 0)
            server.start()
            again = setup.start()
            harness.wait_for(lambda: any(e.get("state") == "online" for e in setup.log(again)),
                             timeout=10, message="never online")
            log = setup.log(again)
            recovered = next(e for e in log if e.get("event") == "state_record")
            self.assertEqual(recovered["attempts"], "0", recovered)
            first = next(e for e in log if e.get("event") == "attempt")
            online = next(e for e in log if e.get("state") == "online")
            self.assertLess(float(first["t"]), 0.15, first)
            self.assertLess(float(online["t"]), 1.0, online)
            again.signal(15)
            self.assertEqual(again.wait(10), 0)
        finally:
            server.stop()


def read_status(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class NothingSilent(unittest.TestCase):
    """Each failure is logged once, with its reason, and shows in status.json."""

    def test_an_unwritable_metrics_file_is_logged_once_and_in_the_status(self):
        port = harness.free_port()
        setup = Setup("metrics-unwritable", port, metrics={
            "file": "/nonexistent-dir/tether.prom", "interval_ms": 1000})
        status = os.path.join(setup.run_dir, "status.json")
        process = setup.start()
        try:
            harness.wait_for(lambda: read_status(status).get("metrics_error"), timeout=10,
                             message="no metrics_error in status.json")
            self.assertIn("cannot write /nonexistent-dir/tether.prom: No such file or directory",
                          read_status(status)["metrics_error"])
            time.sleep(2.2)  # two more failed writes
            errors = [e for e in setup.log(process) if e.get("event") == "metrics"]
            self.assertEqual(len(errors), 1, errors)
            self.assertIn("No such file or directory", errors[0]["error"])
        finally:
            process.stop()

    def test_an_unwritable_status_file_is_logged_once(self):
        port = harness.free_port()
        setup = Setup("status-unwritable", port, status={"file": "/nonexistent-dir/s.json"})
        process = setup.start()
        try:
            harness.wait_for(lambda: sum(e.get("event") == "state" for e in setup.log(process))
                             >= 3, timeout=10, message="fewer than 3 state changes")
            errors = [e for e in setup.log(process) if e.get("event") == "status"]
            self.assertEqual(len(errors), 1, errors)
            self.assertIn("cannot write /nonexistent-dir/s.json: No such file or directory",
                          errors[0]["error"])
        finally:
            process.stop()

    def test_an_oversize_datagram_is_logged_once_with_its_size_and_counted(self):
        port = harness.free_port()
        setup = Setup("oversize", port)
        status = os.path.join(setup.run_dir, "status.json")
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        process = setup.start()
        try:
            harness.wait_for(lambda: os.path.exists(setup.socket), timeout=10)
            sender.sendto(b"x" * 70000, setup.socket)
            harness.wait_for(lambda: read_status(status).get("input_oversize") == 1, timeout=10,
                             message="input_oversize never 1: %s" % read_status(status))
            sender.sendto(b"y" * 80000, setup.socket)
            harness.wait_for(lambda: read_status(status).get("input_oversize") == 2, timeout=10,
                             message="input_oversize never 2: %s" % read_status(status))
            logged = [e for e in setup.log(process)
                      if e.get("event") == "input" and e.get("source") == "socket"]
            self.assertEqual(len(logged), 1, logged)
            self.assertEqual(logged[0]["size"], "70000")
            self.assertEqual(logged[0]["limit"], "65536")
        finally:
            sender.close()
            process.stop()

    def test_a_socket_path_longer_than_sun_path_is_refused_with_its_length(self):
        setup = Setup("long-socket", 1, inputs={"socket": "/tmp/" + "s" * 120,
                                                "health": {"enabled": False}})
        result = harness.run([TETHERD, "--config", setup.config])
        self.assertEqual(result.returncode, 2, result)
        self.assertIn(b"inputs.socket: ", result.stderr)
        self.assertIn(b"is 125 bytes; a UNIX socket path holds at most 107", result.stderr)

    def test_a_token_file_gone_at_runtime_is_logged_and_in_the_status(self):
        tmp = harness.TempDir("tetherd-token-gone-srv-")
        store = tmp.path("store")
        os.makedirs(store)
        tokens = tmp.path("tokens")
        with open(tokens, "w") as f:
            f.write("t-1\n")
        server = rh.Server(OPTIONS.build_dir, store, tokens).start()
        setup = Setup("token-gone", server.port)
        status = os.path.join(setup.run_dir, "status.json")
        process = setup.start()
        try:
            harness.wait_for(lambda: read_status(status).get("state") == "online", timeout=10)
            os.unlink(setup.token)
            server.admin("POST", "/tokens/expire?token=t-1")
            harness.wait_for(lambda: read_status(status).get("credentials_error"), timeout=15,
                             message="no credentials_error: %s" % read_status(status))
            self.assertIn("missing (No such file or directory)",
                          read_status(status)["credentials_error"])
            problems = [e for e in setup.log(process) if e.get("event") == "credentials"]
            self.assertEqual(len(problems), 1, problems)
            with open(setup.token, "w") as f:
                f.write("t-2\n")
            with open(tokens, "a") as f:
                f.write("t-2\n")
        finally:
            process.stop()
            server.stop()

    def test_the_unedited_packaged_default_stops_with_one_line(self):
        example = os.path.join(OPTIONS.source_dir, "packaging", "tetherd.example.json")
        env = dict(os.environ, CREDENTIALS_DIRECTORY=harness.TempDir("tetherd-creds-").path(""))
        result = harness.run([TETHERD, "--config", example], env=env)
        self.assertEqual(result.returncode, 2, result)
        lines = result.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("example placeholder", lines[0])
        self.assertIn("credentials.token_file", lines[0])


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


class Downlink:
    """tether-server and tetherd with downlink.output "command": messages
    pushed through the server's admin interface, the server's stats for what
    it holds as acknowledged."""

    def __init__(self, name, command, **downlink):
        self.tmp = harness.TempDir("tetherd-%s-srv-" % name)
        self.store = self.tmp.path("store")
        os.makedirs(self.store)
        tokens = self.tmp.path("tokens")
        with open(tokens, "w") as f:
            f.write("t-1\n")
        self.server = rh.Server(OPTIONS.build_dir, self.store, tokens).start()
        self.name = name
        self.downlink = dict({"output": "command", "command": command,
                              "command_timeout_ms": 5000, "retries": 1,
                              "retry_delay_ms": 200}, **downlink)
        self.setup = Setup(name, self.server.port, downlink=self.downlink)
        self.dead_letter_dir = os.path.join(self.setup.state_dir, "dead-letter")
        self.session = rh.session_id("tether", DEVICE)
        self.process = None

    def start(self):
        self.process = self.setup.start()
        harness.wait_for(lambda: any(e.get("state") == "online" for e in self.log()),
                         timeout=10, message="tetherd never came online")
        return self.process

    def restart_with(self, command):
        """The same state directory, another command."""
        self.downlink["command"] = command
        self.setup = Setup(self.name, self.server.port, downlink=self.downlink,
                           state_dir=self.setup.state_dir)
        return self.start()

    def log(self):
        return self.setup.log(self.process)

    def push(self, payload):
        """The seq the server gave it."""
        reply = self.server.admin("POST", "/sessions/%s/push" % self.session, payload)
        return json.loads(reply)["seq"]

    def acked(self):
        stats = self.server.session_stats(self.session)
        return stats["downlink_acked"] if stats else 0

    def dead_letter(self, seq):
        return os.path.join(self.dead_letter_dir, "%020d.msg" % seq)

    def metric(self, name):
        path = os.path.join(self.setup.run_dir, "tether.prom")
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(name + " "):
                        return int(float(line.split()[1]))
        except FileNotFoundError:
            pass
        return None

    def close(self):
        if self.process is not None:
            self.process.stop()
        self.server.stop()


def read(path):
    with open(path, "rb") as f:
        return f.read()


class DownlinkDeadLetter(unittest.TestCase):
    """Issue 12 fault 7: a command that fails or does not exist must not cost
    a message. Each one ends as a dead letter holding exactly its bytes, with
    a log line, and the server hears it acknowledged only once the file is
    there."""

    MESSAGES = [b'{"cmd":"open valve"}', b"two\nlines", b"\x00\xffbinary\x01", b""]

    def run_fault(self, name, command):
        """The failed attempts' log entries."""
        downlink = Downlink(name, command, command_timeout_ms=1000)
        self.addCleanup(downlink.close)
        downlink.start()
        seqs = [downlink.push(m) for m in self.MESSAGES]
        samples = []

        def settled():
            # The ack first, the files second: an ack the server had before
            # this look must be backed by files that already exist.
            acked = downlink.acked()
            samples.append(acked)
            for seq in seqs:
                if seq <= acked:
                    self.assertTrue(os.path.exists(downlink.dead_letter(seq)),
                                    "seq %d acknowledged with no dead letter" % seq)
            return acked >= seqs[-1]

        harness.wait_for(settled, timeout=20, interval=0.01,
                         message="the dead letters were never acknowledged")
        # Two failed runs 200 ms apart come before the first dead letter.
        self.assertLess(samples[0], seqs[0], samples)
        for seq, message in zip(seqs, self.MESSAGES):
            self.assertEqual(read(downlink.dead_letter(seq)), message)
        self.assertEqual(sorted(os.listdir(downlink.dead_letter_dir)),
                         ["%020d.msg" % seq for seq in seqs])
        log = downlink.log()
        dead = [e for e in log if e.get("event") == "downlink" and
                e.get("what") == "dead_lettered"]
        self.assertEqual([int(e["seq"]) for e in dead], seqs)
        for entry, seq in zip(dead, seqs):
            self.assertEqual(entry["path"], downlink.dead_letter(seq))
            self.assertEqual(entry["failure"], "exited")
            self.assertEqual(entry["attempts"], "2")
        failed = [e for e in log if e.get("what") == "attempt_failed"]
        self.assertEqual(sorted(int(e["seq"]) for e in failed), sorted(seqs * 2))
        harness.wait_for(lambda: downlink.metric("tether_downlink_dead_lettered_total")
                         == len(seqs), timeout=5, message="dead letters not counted")
        self.assertEqual(downlink.metric("tether_downlink_delivered_total"), 0)
        return failed

    def test_a_failing_command_dead_letters_each_message_before_it_is_acknowledged(self):
        script = harness.TempDir("tetherd-fail-cmd-").path("handle-downlink")
        with open(script, "w") as f:
            f.write("#!/bin/sh\nexit 1\n")
        os.chmod(script, 0o755)
        for entry in self.run_fault("dl-fail", script):
            self.assertEqual(entry["status"], str(1 << 8))  # waitpid(): exit 1

    def test_a_missing_command_dead_letters_each_message_before_it_is_acknowledged(self):
        missing = harness.TempDir("tetherd-no-cmd-").path("no", "handle-downlink")
        for entry in self.run_fault("dl-missing", missing):
            self.assertEqual(entry["status"], str(127 << 8))  # the shell: not found


class DownlinkCrash(unittest.TestCase):
    """Issue 12 fault 7, a crash between receiving and handing over: the
    server still holds the messages and sends them to the next run."""

    def test_kill_9_before_the_command_finishes_loses_no_message(self):
        tmp = harness.TempDir("tetherd-dl-crash-")
        out = tmp.path("out")
        pids = tmp.path("pids")
        slow = "echo $$ >> '%s'; sleep 30; cat >> '%s'" % (pids, out)
        downlink = Downlink("dl-crash", slow, command_timeout_ms=60000)
        self.addCleanup(downlink.close)
        process = downlink.start()
        seqs = [downlink.push(b"first"), downlink.push(b"second")]
        harness.wait_for(lambda: os.path.exists(pids) and read(pids).strip(), timeout=10,
                         message="the command never started")
        time.sleep(0.5)  # longer than ack_interval_ms: an early ack would have gone out
        self.assertLess(downlink.acked(), seqs[0])
        process.signal(9)
        process.wait(5)
        # The command has its own process group, which outlives the daemon.
        group = int(read(pids).split()[0])
        os.killpg(group, 9)
        harness.wait_for(lambda: not os.path.exists("/proc/%d" % group), timeout=5)
        self.assertFalse(os.path.exists(out))
        self.assertLess(downlink.acked(), seqs[0])

        downlink.restart_with("cat >> '%s'" % out)
        harness.wait_for(lambda: downlink.acked() >= seqs[-1], timeout=15,
                         message="the messages were never acknowledged after the restart")
        self.assertEqual(read(out), b"first\nsecond\n")
        self.assertFalse(os.path.exists(downlink.dead_letter_dir))


class DownlinkInOrder(unittest.TestCase):
    def test_a_working_command_gets_every_message_once_in_order(self):
        out = harness.TempDir("tetherd-dl-order-").path("out")
        downlink = Downlink("dl-order", "cat >> '%s'" % out)
        self.addCleanup(downlink.close)
        downlink.start()
        pushed = [b"m-%d" % k for k in range(1, 41)]
        seqs = [downlink.push(m) for m in pushed]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))))
        harness.wait_for(lambda: downlink.acked() >= seqs[-1], timeout=20,
                         message="not every message was acknowledged")
        # Acknowledged means handed over: the last command has exited.
        self.assertEqual(read(out).splitlines(), pushed)
        self.assertFalse(os.path.exists(downlink.dead_letter_dir))
        self.assertEqual([e for e in downlink.log() if e.get("event") == "downlink"], [])
        harness.wait_for(lambda: downlink.metric("tether_downlink_delivered_total")
                         == len(pushed), timeout=5, message="deliveries not counted")

if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV, verbosity=2)
