#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tetherctl against a real tetherd and tether-server: status and its exit
codes, reconnect cutting a long backoff short, flush waiting for the server's
acknowledgement, the control socket's permissions and limits, and
status --watch in a real terminal (tmux).

Usage: /usr/bin/python3 test_tetherctl.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import argparse
import json
import os
import shutil
import socket
import stat
import subprocess
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
TETHERCTL = os.path.join(OPTIONS.build_dir, "apps", "tetherctl")
DEVICE = "gw-ctl"


class Rig:
    """A tether-server (not started) and a tetherd configured for it."""

    def __init__(self, name, initial_ms=200, max_ms=3200, spool=False, state=None,
                 max_attempts=0):
        self.tmp = harness.TempDir("tetherctl-%s-" % name)
        self.store = self.tmp.path("store")
        os.makedirs(self.store)
        tokens = self.tmp.path("tokens")
        with open(tokens, "w") as f:
            f.write("t-1\n")
        self.server = rh.Server(OPTIONS.build_dir, self.store, tokens)
        self.run_dir = self.tmp.path("run")
        self.input = os.path.join(self.run_dir, "in.sock")
        self.control = os.path.join(self.run_dir, "control.sock")
        config = {
            "endpoints": ["ws://127.0.0.1:%d/v1" % self.server.port],
            "credentials": {"token_file": tokens},
            "session": {"user": "tether", "device_id": DEVICE},
            "backoff": {"initial_ms": initial_ms, "max_ms": max_ms, "jitter": "none",
                        "max_attempts": max_attempts},
            "heartbeat": {"interval_ms": 1000, "pong_timeout_ms": 1000},
            "state_dir": self.tmp.path("state"),
            "run_dir": self.run_dir,
            "inputs": {"socket": self.input, "health": {"enabled": False}},
            "downlink": {"output": "stdout"},
            "log": {"level": "debug"},
        }
        if state is not None:
            config["state"] = state
        if spool:
            config["spool"] = {"enabled": True, "fsync_interval_ms": 200}
        self.config = self.tmp.path("tetherd.json")
        with open(self.config, "w") as f:
            json.dump(config, f)
        self.daemon = None
        self.session = rh.session_id("tether", DEVICE)

    def start_daemon(self):
        self.daemon = harness.start_process([TETHERD, "--config", self.config],
                                            expect_port=False, name="tetherd")
        harness.wait_for(lambda: os.path.exists(self.control), timeout=10,
                         message="no control socket")
        return self.daemon

    def ctl(self, *args, timeout=20.0, env=None):
        return harness.run([TETHERCTL, "--run-dir", self.run_dir] + list(args), timeout=timeout,
                           env=env)

    def state(self):
        result = self.ctl("status", "--json")
        return json.loads(result.stdout)["state"] if result.stdout else None

    def wait_state(self, state, timeout=10):
        harness.wait_for(lambda: self.state() == state, timeout=timeout, interval=0.05,
                         message="never %s" % state)

    def send(self, count, prefix="m"):
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            for k in range(1, count + 1):
                sender.sendto(b"%s-%d" % (prefix.encode(), k), self.input)
        finally:
            sender.close()

    def log(self):
        return [harness.parse_logfmt(line) for line in self.daemon.stderr().splitlines()]

    def close(self):
        if self.daemon is not None and self.daemon.alive():
            self.daemon.stop()
        self.server.stop()


def raw_request(path, data, read_timeout=5.0):
    """Sends data as is and returns everything the daemon answers before it closes."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(read_timeout)
    try:
        client.connect(path)
        if data:
            client.sendall(data)
        answer = b""
        while True:
            chunk = client.recv(4096)
            if not chunk:
                return answer
            answer += chunk
    finally:
        client.close()


class Usage(unittest.TestCase):
    def test_usage_errors_use_the_common_wording_and_exit_2(self):
        result = harness.run([TETHERCTL, "status", "--bogus"])
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr, b"tetherctl: unknown option '--bogus' (see --help)\n")
        result = harness.run([TETHERCTL, "flush", "--timeout"])
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr,
                         b"tetherctl: option '--timeout' needs a value (see --help)\n")
        self.assertEqual(harness.run([TETHERCTL]).returncode, 2)
        self.assertEqual(harness.run([TETHERCTL, "frobnicate"]).returncode, 2)
        self.assertEqual(harness.run([TETHERCTL, "reconnect", "--json"]).returncode, 2)

    def test_help_and_version(self):
        result = harness.run([TETHERCTL, "--help"])
        self.assertEqual(result.returncode, 0)
        for text in (b"Usage: tetherctl", b"Exit status:", b"--run-dir=DIR", b"--watch",
                     b"--timeout=MS", b"  4  tetherd not reachable"):
            self.assertIn(text, result.stdout)
        self.assertTrue(result.stdout.startswith(b"tetherctl - "), result.stdout[:40])
        result = harness.run([TETHERCTL, "--version"])
        self.assertEqual(result.returncode, 0)
        self.assertRegex(result.stdout.decode(), r"^tetherctl \d+\.\d+\.\d+\n$")

    def test_a_daemon_that_is_not_there_exits_4_with_the_reason(self):
        tmp = harness.TempDir("tetherctl-none-")
        result = harness.run([TETHERCTL, "--run-dir=" + tmp.dir, "status"])
        self.assertEqual(result.returncode, 4)
        self.assertIn(b"No such file or directory", result.stderr)
        env = dict(os.environ, TETHER_RUN_DIR=tmp.dir)
        result = harness.run([TETHERCTL, "status"], env=env)
        self.assertEqual(result.returncode, 4)
        self.assertIn(tmp.dir.encode(), result.stderr)


class Status(unittest.TestCase):
    def setUp(self):
        self.rig = Rig("status")

    def tearDown(self):
        self.rig.close()

    def test_exit_codes_follow_the_link(self):
        self.rig.start_daemon()
        self.rig.wait_state("waiting_to_retry")
        result = self.rig.ctl("status")
        self.assertEqual(result.returncode, 1, result)
        text = result.stdout.decode()
        self.assertRegex(text, r"(?m)^state +waiting_to_retry since ")
        self.assertRegex(text, r"(?m)^retry +in \d+\.\d s \(attempt \d+")
        self.assertRegex(text, r"(?m)^last error +tcp_refused")
        self.assertRegex(text, r"(?m)^endpoint +ws://127\.0\.0\.1:%d/v1$" % self.rig.server.port)
        self.rig.server.start()
        self.rig.wait_state("online", timeout=15)
        result = self.rig.ctl("status")
        self.assertEqual(result.returncode, 0, result)
        text = result.stdout.decode()
        for label in ("state", "endpoint", "retry", "rtt", "outbox", "spool", "last error",
                      "acked", "downlink", "session"):
            self.assertRegex(text, r"(?m)^%s +\S" % label)
        status = json.loads(self.rig.ctl("status", "--json").stdout)
        self.assertEqual(status["state"], "online")
        self.assertEqual(status["session"], self.rig.session)
        self.assertEqual(status["control"]["refused"], 0)
        self.assertNotIn("desired", text)  # no state sync: no versions to show
        self.assertIn("spool_records", status)
        self.assertIn("downlink", status)


class StateStatus(unittest.TestCase):
    def test_status_shows_desired_and_reported_versions_with_state_sync(self):
        tmp = harness.TempDir("tetherctl-desired-")
        rig = Rig("state", state={"enabled": True, "desired_file": tmp.path("desired.json")})
        try:
            rig.server.start()
            rig.start_daemon()
            rig.wait_state("online", timeout=15)
            text = rig.ctl("status").stdout.decode()
            self.assertRegex(text, r"(?m)^desired +received \d+, applied \d+")
            self.assertRegex(text, r"(?m)^reported +version \d+")
        finally:
            rig.close()


class Reconnect(unittest.TestCase):
    def test_reconnect_skips_a_long_backoff(self):
        rig = Rig("reconnect", initial_ms=30000, max_ms=60000)
        try:
            rig.start_daemon()
            rig.wait_state("waiting_to_retry")
            rig.server.start()
            time.sleep(1.0)
            # Without the request the link waits out its 30 s.
            self.assertEqual(rig.state(), "waiting_to_retry")
            started = time.monotonic()
            result = rig.ctl("reconnect")
            self.assertEqual(result.returncode, 0, result)
            self.assertEqual(result.stdout, b"ok reconnecting\n")
            rig.wait_state("online", timeout=5)
            elapsed = time.monotonic() - started
            print("reconnect to online: %.3f s (backoff was 30 s)" % elapsed, file=sys.stderr)
            self.assertLess(elapsed, 1.5)
            self.assertTrue(any(e.get("event") == "control" and e.get("request") == "reconnect"
                                for e in rig.log()))
            # Online: nothing to hurry.
            result = rig.ctl("reconnect")
            self.assertEqual(result.returncode, 0)
            self.assertEqual(result.stdout, b"ok nothing to do: online\n")
        finally:
            rig.close()


    def test_a_link_that_gave_up_exits_3_and_reconnect_tries_again(self):
        rig = Rig("gaveup", max_attempts=2)
        try:
            rig.start_daemon()
            rig.wait_state("given_up", timeout=10)
            result = rig.ctl("status")
            self.assertEqual(result.returncode, 3, result)
            self.assertRegex(result.stdout.decode(), r"(?m)^retry +none: gave up after attempt 2")
            rig.server.start()
            result = rig.ctl("reconnect")
            self.assertEqual(result.stdout, b"ok reconnecting\n")
            rig.wait_state("online", timeout=5)
            self.assertEqual(rig.ctl("status").returncode, 0)
        finally:
            rig.close()


class Flush(unittest.TestCase):
    def test_flush_returns_once_acknowledged_and_times_out_without_a_server(self):
        rig = Rig("flush", spool=True)
        try:
            rig.server.start()
            rig.start_daemon()
            rig.wait_state("online", timeout=15)
            rig.send(200)
            started = time.monotonic()
            result = rig.ctl("flush", "--timeout=5000")
            elapsed = time.monotonic() - started
            self.assertEqual(result.returncode, 0, result)
            self.assertRegex(result.stdout.decode(), r"^ok flushed seq=\d+ acked=\d+\n$")
            seq = int(result.stdout.split(b"seq=")[1].split()[0])
            self.assertGreaterEqual(seq, 200)
            # Everything accepted before the request is at the server now.
            self.assertEqual(len(rh.uplink(rig.store, rig.session)), 200)
            print("flush of 200 messages: %.3f s" % elapsed, file=sys.stderr)

            rig.server.kill()
            rig.wait_state("waiting_to_retry", timeout=10)
            rig.send(5, prefix="late")
            time.sleep(0.3)
            started = time.monotonic()
            result = rig.ctl("flush", "--timeout", "1000")
            elapsed = time.monotonic() - started
            self.assertEqual(result.returncode, 5, result)
            self.assertRegex(result.stdout.decode(), r"^error flush_timeout seq=\d+ acked=\d+\n$")
            self.assertGreater(elapsed, 0.9)
            self.assertLess(elapsed, 3.0)
            status = json.loads(rig.ctl("status", "--json").stdout)
            self.assertEqual(status["control"]["flush_timeouts"], 1)
            self.assertEqual(status["spool_records"], 5)
        finally:
            rig.close()


class Socket(unittest.TestCase):
    def setUp(self):
        self.rig = Rig("socket")

    def tearDown(self):
        self.rig.close()

    def test_the_socket_is_0660_and_another_user_is_refused(self):
        self.rig.start_daemon()
        mode = stat.S_IMODE(os.stat(self.rig.control).st_mode)
        self.assertEqual(mode, 0o660)
        if os.geteuid() != 0 or shutil.which("setpriv") is None:
            self.skipTest("needs root and setpriv to act as another user")
        # The directories may be entered by anyone: only the socket's mode refuses.
        for path in (self.rig.tmp.dir, self.rig.run_dir):
            os.chmod(path, 0o755)
        ctl = os.path.join(self.rig.tmp.dir, "tetherctl")
        shutil.copy(TETHERCTL, ctl)
        os.chmod(ctl, 0o755)
        result = harness.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              ctl, "--run-dir", self.rig.run_dir, "status"])
        self.assertEqual(result.returncode, 4, result)
        self.assertIn(b"Permission denied", result.stderr)
        # The daemon's group may use it.
        os.chown(self.rig.control, 0, 65534)
        result = harness.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              ctl, "--run-dir", self.rig.run_dir, "status"])
        self.assertEqual(result.returncode, 1, result)

    def test_a_stale_socket_is_replaced_and_the_socket_removed_on_exit(self):
        os.makedirs(self.rig.run_dir)
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(self.rig.control)
        stale.close()  # the file stays, nobody listens: what a crash leaves
        self.rig.start_daemon()
        self.rig.wait_state("waiting_to_retry")
        self.rig.daemon.signal(15)
        self.assertEqual(self.rig.daemon.wait(15), 0)
        self.assertFalse(os.path.exists(self.rig.control))

    def test_a_second_daemon_on_the_same_run_dir_leaves_the_first_ones_socket(self):
        first = self.rig.start_daemon()
        second = harness.start_process([TETHERD, "--config", self.rig.config],
                                       expect_port=False, name="tetherd-2")
        try:
            harness.wait_for(lambda: "event=control" in second.stderr(), timeout=10)
            self.assertIn("another tetherd is listening there", second.stderr())
        finally:
            second.stop()
        self.assertTrue(first.alive())
        self.assertEqual(self.rig.ctl("status").returncode, 1)

    def test_a_run_dir_too_long_for_a_socket_is_said_in_one_line_and_the_link_runs(self):
        with open(self.rig.config) as f:
            config = json.load(f)
        deep = os.path.join(self.rig.tmp.dir, "d" * 60, "e" * 60)
        os.makedirs(os.path.dirname(deep))  # tetherd creates only the last level
        config["run_dir"] = deep
        config["status"] = {"file": self.rig.tmp.path("status.json")}
        config["inputs"]["socket"] = self.rig.tmp.path("in.sock")
        with open(self.rig.config, "w") as f:
            json.dump(config, f)
        daemon = harness.start_process([TETHERD, "--config", self.rig.config],
                                       expect_port=False, name="tetherd")
        self.rig.daemon = daemon
        line = harness.wait_for(
            lambda: next((l for l in daemon.stderr().splitlines() if "event=control" in l), None),
            timeout=10)
        self.assertIn("path longer than a UNIX socket address holds", line)
        self.assertIn(os.path.join(deep, "control.sock"), line)
        harness.wait_for(lambda: os.path.exists(self.rig.tmp.path("status.json")), timeout=10)
        self.assertTrue(daemon.alive())
        with open(self.rig.tmp.path("status.json")) as f:
            self.assertIsNone(json.load(f)["control"])

    def test_bad_requests_are_answered_counted_and_logged_once(self):
        self.rig.start_daemon()
        self.assertEqual(raw_request(self.rig.control, b"hello\n"), b"error bad_request\n")
        self.assertEqual(raw_request(self.rig.control, b"hello again\n"), b"error bad_request\n")
        self.assertEqual(raw_request(self.rig.control, b"s" * 200), b"error too_long\n")
        started = time.monotonic()
        self.assertEqual(raw_request(self.rig.control, b"", read_timeout=10), b"")
        waited = time.monotonic() - started
        self.assertGreater(waited, 1.5)
        self.assertLess(waited, 4.0)
        self.assertEqual(raw_request(self.rig.control, b"flush 0\n"), b"error bad_request\n")
        status = json.loads(raw_request(self.rig.control, b"status\n"))
        self.assertEqual(status["control"]["refused"], 5)
        problems = [e.get("problem") for e in self.rig.log() if e.get("event") == "control"]
        self.assertEqual(sorted(problems), ["bad_request", "timeout", "too_long"])

    def test_a_silent_client_does_not_hold_up_the_others(self):
        self.rig.start_daemon()
        silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        silent.connect(self.rig.control)
        try:
            started = time.monotonic()
            self.assertEqual(self.rig.ctl("status").returncode, 1)
            self.assertLess(time.monotonic() - started, 1.0)
        finally:
            silent.close()


@unittest.skipIf(shutil.which("tmux") is None, "tmux is not installed (tools/install-deps)")
class Watch(unittest.TestCase):
    """status --watch in a real terminal: tmux runs it in a 100x30 pane."""

    def setUp(self):
        self.rig = Rig("watch")
        self.tmux = ["tmux", "-L", "tether-test-%d" % os.getpid(), "-f", "/dev/null"]
        self.pane = "watch"

    def tearDown(self):
        subprocess.run(self.tmux + ["kill-server"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        self.rig.close()

    def screen(self):
        result = subprocess.run(self.tmux + ["capture-pane", "-p", "-t", self.pane],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return result.stdout.decode()

    def alive(self):
        return subprocess.run(self.tmux + ["has-session", "-t", self.pane],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0

    def assert_one_screen(self, text):
        lines = [line for line in text.splitlines() if line.strip()]
        labels = [line.split("  ")[0] for line in lines]
        self.assertEqual(len(labels), len(set(labels)), text)  # nothing scrolled or repeated
        self.assertTrue(lines[0].startswith("state "), text)

    def test_watch_redraws_in_place_and_ends_on_ctrl_c(self):
        self.rig.server.start()
        self.rig.start_daemon()
        self.rig.wait_state("online", timeout=15)
        command = "TERM=xterm %s --run-dir=%s status --watch --interval=200" % (
            TETHERCTL, self.rig.run_dir)
        subprocess.run(self.tmux + ["new-session", "-d", "-s", self.pane, "-x", "100", "-y", "30",
                                    command], check=True)
        online = harness.wait_for(lambda: "state        online" in self.screen() and self.screen(),
                                  timeout=5, message="the watch never showed online")
        self.assert_one_screen(online)
        self.assertRegex(online, r"(?m)^endpoint +ws://127\.0\.0\.1:%d/v1" % self.rig.server.port)
        self.assertRegex(online, r"(?m)^rtt +(\d+ ms|-)")
        self.rig.server.kill()
        changed = harness.wait_for(
            lambda: "state        waiting_to_retry" in self.screen() and self.screen(),
            timeout=10, message="the watch never showed the link going down")
        self.assert_one_screen(changed)
        self.assertNotIn("state        online", changed)
        self.assertRegex(changed, r"(?m)^retry +in \d")
        # The daemon gone: the screen says so, in place.
        self.rig.daemon.stop()
        gone = harness.wait_for(lambda: "not reachable" in self.screen() and self.screen(),
                                timeout=10)
        self.assertNotIn("state ", gone)
        subprocess.run(self.tmux + ["send-keys", "-t", self.pane, "C-c"], check=True)
        harness.wait_for(lambda: not self.alive(), timeout=5,
                         message="tetherctl --watch did not end on Ctrl-C")

    def test_q_ends_the_watch_and_gives_the_terminal_back(self):
        self.rig.start_daemon()
        after = self.rig.tmp.path("stty.txt")
        command = "%s --run-dir=%s status --watch; stty -a > %s; sleep 60" % (
            TETHERCTL, self.rig.run_dir, after)
        subprocess.run(self.tmux + ["new-session", "-d", "-s", self.pane, "-x", "100", "-y", "30",
                                    command], check=True)
        harness.wait_for(lambda: "state" in self.screen(), timeout=5)
        cursor = subprocess.run(self.tmux + ["display", "-p", "-t", self.pane, "#{cursor_flag}"],
                                stdout=subprocess.PIPE).stdout.strip()
        self.assertEqual(cursor, b"0")  # hidden while it draws
        subprocess.run(self.tmux + ["send-keys", "-t", self.pane, "q"], check=True)
        harness.wait_for(lambda: os.path.exists(after) and os.path.getsize(after) > 0, timeout=5,
                         message="tetherctl --watch did not end on q")
        with open(after) as f:
            modes = f.read().split()
        self.assertIn("icanon", modes)  # line editing and echo are back
        self.assertIn("echo", modes)
        cursor = subprocess.run(self.tmux + ["display", "-p", "-t", self.pane, "#{cursor_flag}"],
                                stdout=subprocess.PIPE).stdout.strip()
        self.assertEqual(cursor, b"1")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV, verbosity=2)
