#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tetherd in plain WebSocket mode ("protocol": "websocket") against servers that
do not speak tether.v1: the Python websockets echo server, directly and behind
nginx (wss). Delivery guarantees under server restarts and kill -9, the
heartbeat against a server that stops answering, failover, status and metrics.

Every message is "m<N>": the N-th datagram tetherd accepted, which is also its
uplink seq on a fresh state directory, so tetherd's in-doubt ranges name them.

Usage: /usr/bin/python3 test_tetherd_plain.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
import unittest

ARGS = argparse.ArgumentParser(add_help=False)
ARGS.add_argument("--source-dir", required=True)
ARGS.add_argument("--build-dir", required=True)
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
sys.path.insert(0, os.path.join(OPTIONS.source_dir, "tests", "integration"))

import harness  # noqa: E402

TETHERD = os.path.join(OPTIONS.build_dir, "apps", "tetherd")
TETHERCTL = os.path.join(OPTIONS.build_dir, "apps", "tetherctl")
ECHO = os.path.join(OPTIONS.source_dir, "tests", "integration", "servers", "echo_server.py")


def start_echo(log, port=0, sink=False):
    """The echo server on `port` (0: any), logging to `log` (appended across restarts)."""
    return harness.start_process([harness.PYTHON, ECHO, "--port", str(port), "--log", log] +
                                 (["--sink"] if sink else []), name="echo_server")


def received(log):
    """The text messages the echo server logged, in order."""
    return [e["text"] for e in harness.read_jsonl(log) if e.get("event") == "message"]


def numbers(texts):
    return [int(t[1:]) for t in texts]


class Plain:
    def __init__(self, name, endpoints, delivery="at-least-once", spool=False, ca_file=None):
        self.tmp = harness.TempDir("tetherd-plain-%s-" % name)
        self.state_dir = self.tmp.path("state")
        self.run_dir = self.tmp.path("run")
        self.socket = os.path.join(self.run_dir, "in.sock")
        self.metrics = os.path.join(self.run_dir, "tether.prom")
        self.token = self.tmp.path("token")
        with open(self.token, "w") as f:
            f.write("t-plain\n")
        config = {
            "endpoints": endpoints,
            "protocol": "websocket",
            "plain": {"delivery": delivery},
            "credentials": {"token_file": self.token},
            "backoff": {"initial_ms": 100, "max_ms": 400, "jitter": "none"},
            "heartbeat": {"interval_ms": 500, "pong_timeout_ms": 500},
            "timeouts": {"handshake_ms": 1000},
            "state_dir": self.state_dir,
            "run_dir": self.run_dir,
            "inputs": {"socket": self.socket, "health": {"enabled": False}},
            "downlink": {"output": "stdout"},
            "spool": {"enabled": spool},
            "metrics": {"file": self.metrics, "interval_ms": 1000},
            "log": {"level": "debug"},
        }
        if ca_file:
            config["tls"] = {"ca_file": ca_file}
        self.config = self.tmp.path("tetherd.json")
        with open(self.config, "w") as f:
            json.dump(config, f)
        self.process = None
        self.logs = []  # stderr of earlier runs
        self.sent = 0

    def start(self):
        if os.path.exists(self.socket):
            os.unlink(self.socket)  # a killed run leaves it behind
        self.process = harness.start_process([TETHERD, "--config", self.config],
                                             expect_port=False, name="tetherd")
        harness.wait_for(lambda: os.path.exists(self.socket), timeout=10,
                         message="no input socket")
        return self.process

    def kill9(self):
        self.process.signal(signal.SIGKILL)
        self.process.wait(5)
        self.logs.append(self.process.stderr())

    def stop(self):
        if self.process is not None and self.process.alive():
            self.process.stop()
        if self.process is not None:
            self.logs.append(self.process.stderr())
            self.process = None

    def send(self, count, gap=0.0):
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            for _ in range(count):
                self.sent += 1
                sender.sendto(b"m%d" % self.sent, self.socket)
                if gap:
                    time.sleep(gap)
        finally:
            sender.close()

    def log(self):
        text = "\n".join(self.logs + ([self.process.stderr()] if self.process else []))
        return [harness.parse_logfmt(line) for line in text.splitlines()]

    def status(self):
        with open(os.path.join(self.run_dir, "status.json")) as f:
            return json.load(f)

    def metric(self, name):
        try:
            with open(self.metrics) as f:
                for line in f:
                    if line.startswith(name + " ") or line.startswith(name + "{"):
                        return line.rsplit(" ", 1)[1].strip(), line
        except FileNotFoundError:
            pass
        return None, None

    def in_doubt(self):
        """(first, last, count) of every in-doubt report in the log."""
        return [(int(e["first"]), int(e["last"]), int(e["count"]))
                for e in self.log() if e.get("event") == "in_doubt"]

    def wait_online(self, endpoint=None, timeout=10):
        def online():
            try:
                s = self.status()
            except (FileNotFoundError, ValueError):
                return False
            return s["state"] == "online" and (endpoint is None or s["endpoint"] == endpoint)
        harness.wait_for(online, timeout=timeout, message="tetherd never online at %s" % endpoint)


class Echo(unittest.TestCase):
    """Messages in order, the echo as downlink, the token, status and metrics."""

    def test_messages_arrive_in_order_and_the_echo_reaches_the_downlink(self):
        tmp = harness.TempDir("plain-echo-")
        echo_log = tmp.path("echo.jsonl")
        echo = start_echo(echo_log)
        plain = Plain("echo", ["ws://127.0.0.1:%d/ingest" % echo.port])
        try:
            plain.start()
            plain.wait_online()
            plain.send(200)
            harness.wait_for(lambda: len(received(echo_log)) >= 200, timeout=10,
                             message="the server did not get 200 messages")
            self.assertEqual(numbers(received(echo_log)), list(range(1, 201)))
            harness.wait_for(lambda: len(plain.process.stdout().splitlines()) >= 200, timeout=10,
                             message="the echo did not reach the downlink output")
            self.assertEqual(plain.process.stdout().splitlines()[:3], ["m1", "m2", "m3"])
            connect = [e for e in harness.read_jsonl(echo_log) if e.get("event") == "connect"][0]
            headers = {k.lower(): v for k, v in connect["headers"]}
            self.assertEqual(headers.get("authorization"), "Bearer t-plain")
            self.assertNotIn("sec-websocket-protocol", headers)
            harness.wait_for(lambda: plain.status()["uplink_confirmed"] == 200, timeout=5,
                             message="pongs did not confirm the 200 messages")
            status = plain.status()
            self.assertEqual(status["protocol"], "websocket")
            self.assertEqual(status["delivery"], "at-least-once")
            self.assertIsNone(status["session"])
            self.assertEqual(status["uplink_in_doubt"], 0)
            harness.wait_for(lambda: plain.metric("tether_messages_confirmed_total")[0] == "200",
                             timeout=5, message="metrics never showed 200 confirmed")
            self.assertIn('protocol="websocket",delivery="at-least-once"',
                          plain.metric("tether_link_info")[1])
            result = harness.run([TETHERCTL, "--run-dir", plain.run_dir, "flush",
                                  "--timeout=5000"])
            self.assertEqual(result.returncode, 0, result)
            result = harness.run([TETHERCTL, "--run-dir", plain.run_dir, "status"])
            self.assertIn(b"websocket, at-least-once: 200 confirmed by pong, 0 in doubt",
                          result.stdout)
        finally:
            plain.stop()
            echo.stop()

    def test_a_text_message_that_is_not_utf8_is_dropped_at_intake_and_counted(self):
        tmp = harness.TempDir("plain-utf8-")
        echo_log = tmp.path("echo.jsonl")
        echo = start_echo(echo_log)
        plain = Plain("utf8", ["ws://127.0.0.1:%d/" % echo.port])
        try:
            plain.start()
            plain.wait_online()
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.sendto(b"\xff\xfe", plain.socket)
            sender.sendto(b"after", plain.socket)
            sender.close()
            harness.wait_for(lambda: received(echo_log) == ["after"], timeout=5,
                             message="the valid message did not arrive alone")
            def counted():
                with open(plain.metrics) as f:
                    return 'reason="not_utf8"} 1' in f.read()
            harness.wait_for(counted, timeout=5,
                             message="not counted in tether_intake_dropped_total")
            self.assertEqual(sum(e.get("event") == "input" for e in plain.log()), 1)
        finally:
            plain.stop()
            echo.stop()


class ServerRestart(unittest.TestCase):
    """The server restarts (SIGTERM, then up again on its port) while messages flow."""

    def run_restart(self, delivery):
        # A sink: an echo handler stops at its first failed send and leaves
        # messages the library had read (and answered pings after) unlogged,
        # which is the loss behind a pong no protocol without acknowledgements
        # can see (docs/ARCHITECTURE.md, Plain WebSocket delivery).
        tmp = harness.TempDir("plain-restart-")
        echo_log = tmp.path("echo.jsonl")
        port = harness.free_port()
        servers = [start_echo(echo_log, port, sink=True)]
        plain = Plain("restart-" + delivery, ["ws://127.0.0.1:%d/" % port], delivery=delivery)
        try:
            plain.start()
            plain.wait_online()
            sender = threading.Thread(target=plain.send, args=(600, 0.001))
            sender.start()
            for _ in range(3):
                time.sleep(0.25)
                servers[-1].stop()  # SIGTERM while messages flow: it closes with 1001
                time.sleep(0.1)
                servers.append(start_echo(echo_log, port, sink=True))
            sender.join()
            # Then a server killed with 50 messages in its socket buffer,
            # unread: handed to the kernel, never confirmed, gone with it.
            # First one message on the live link, whose pong confirms all
            # before it that is not in doubt already.
            plain.wait_online()
            plain.send(1)
            harness.wait_for(lambda: plain.status()["acked"] == plain.sent, timeout=10,
                             message="tetherd did not get everything confirmed")
            servers[-1].signal(signal.SIGSTOP)
            plain.send(50)
            time.sleep(0.3)  # written at once on loopback; the heartbeat needs 1 s
            servers[-1].signal(signal.SIGKILL)
            servers[-1].wait(5)
            servers.append(start_echo(echo_log, port, sink=True))
            plain.send(50)
            harness.wait_for(lambda: plain.status()["state"] == "online" and
                             plain.status()["queued"] == 0 and
                             plain.status()["uplink_confirmed"] + plain.status()["uplink_in_doubt"]
                             >= plain.sent, timeout=10,
                             message="tetherd did not drain its outbox")
            time.sleep(0.3)
            return plain, numbers(received(echo_log))
        finally:
            plain.stop()
            servers[-1].stop()

    def test_at_least_once_every_message_arrives_duplicates_counted(self):
        plain, got = self.run_restart("at-least-once")
        missing = sorted(set(range(1, plain.sent + 1)) - set(got))
        duplicates = len(got) - len(set(got))
        in_doubt = sum(count for _, _, count in plain.in_doubt())
        print("\nat-least-once: sent=%d received=%d duplicates=%d in_doubt_reported=%d"
              % (plain.sent, len(got), duplicates, in_doubt), file=sys.stderr)
        self.assertEqual(missing, [])
        self.assertLessEqual(duplicates, in_doubt)
        self.assertGreaterEqual(in_doubt, 50)  # the killed server's unread ones, sent again
        self.assertEqual(in_doubt, plain.status()["uplink_in_doubt"])

    def test_at_most_once_nothing_twice_and_the_loss_is_what_was_reported(self):
        plain, got = self.run_restart("at-most-once")
        duplicates = len(got) - len(set(got))
        missing = sorted(set(range(1, plain.sent + 1)) - set(got))
        reports = plain.in_doubt()
        in_doubt = sum(count for _, _, count in reports)
        print("\nat-most-once: sent=%d received=%d lost=%d in_doubt_reported=%d ranges=%s"
              % (plain.sent, len(got), len(missing), in_doubt, reports), file=sys.stderr)
        self.assertEqual(duplicates, 0)
        for n in missing:
            self.assertTrue(any(first <= n <= last for first, last, _ in reports),
                            "m%d lost outside every in-doubt range %s" % (n, reports))
        self.assertLessEqual(len(missing), in_doubt)
        self.assertGreaterEqual(len(missing), 50)  # the killed server's unread ones
        self.assertEqual(in_doubt, plain.status()["uplink_in_doubt"])
        self.assertEqual(got, sorted(got))  # in order, too


class Kill9(unittest.TestCase):
    """kill -9 of tetherd with a spool, messages written but not confirmed."""

    def run_kill(self, delivery):
        tmp = harness.TempDir("plain-kill-")
        echo_log = tmp.path("echo.jsonl")
        echo = start_echo(echo_log)
        plain = Plain("kill-" + delivery, ["ws://127.0.0.1:%d/" % echo.port], delivery=delivery,
                      spool=True)
        try:
            plain.start()
            plain.wait_online()
            plain.send(50)
            harness.wait_for(lambda: plain.status()["uplink_confirmed"] == 50, timeout=5,
                             message="the first 50 were not confirmed")
            time.sleep(1.1)  # saved as settled (at most once a second)
            echo.signal(signal.SIGSTOP)  # it reads nothing more, answers no ping
            plain.send(50)
            time.sleep(0.3)  # written at once on loopback; the heartbeat needs 1 s
            plain.kill9()
            echo.signal(signal.SIGCONT)  # it reads what its kernel kept, if anything
            time.sleep(0.3)
            first_run = numbers(received(echo_log))
            plain.start()
            plain.wait_online()
            plain.send(10)
            harness.wait_for(lambda: 110 in numbers(received(echo_log)), timeout=10,
                             message="the restarted run's messages did not arrive")
            time.sleep(0.3)
            return plain, first_run, numbers(received(echo_log))[len(first_run):]
        finally:
            plain.stop()
            echo.stop()

    def test_at_least_once_the_restart_sends_the_unconfirmed_again(self):
        plain, first_run, second_run = self.run_kill("at-least-once")
        got = first_run + second_run
        duplicates = len(got) - len(set(got))
        print("\nkill -9, at-least-once: first run's server got %d, the restart sent %d, "
              "duplicates=%d" % (len(first_run), len(second_run), duplicates), file=sys.stderr)
        self.assertEqual(sorted(set(got)), list(range(1, 111)))
        # m51..m100 were written, never confirmed: the spool sends them again,
        # and the restart says they may arrive twice.
        self.assertEqual(second_run, list(range(51, 111)))
        self.assertLessEqual(duplicates, 50)
        self.assertEqual(plain.in_doubt(), [(51, 100, 50)])
        self.assertEqual(plain.status()["uplink_in_doubt"], 50)

    def test_at_most_once_the_restart_never_sends_again(self):
        plain, first_run, second_run = self.run_kill("at-most-once")
        got = first_run + second_run
        lost = sorted(set(range(1, 111)) - set(got))
        reports = plain.in_doubt()
        print("\nkill -9, at-most-once: first run's server got %d, the restart sent %d, "
              "lost=%d, the restart reported in doubt %s" % (len(first_run), len(second_run),
                                                            len(lost), reports), file=sys.stderr)
        self.assertEqual(len(got), len(set(got)))
        # m51..m100 were handed to the kernel: the restart never sends them,
        # and says they may be lost (m1..m50 were confirmed and saved as such).
        self.assertEqual(second_run, list(range(101, 111)))
        self.assertEqual(reports, [(51, 100, 50)])
        for n in lost:
            self.assertTrue(51 <= n <= 100, lost)
        self.assertEqual(plain.status()["uplink_in_doubt"], 50)


class Heartbeat(unittest.TestCase):
    """A server that stops answering is declared dead; the link fails over."""

    def test_a_silent_server_is_left_for_the_second_endpoint(self):
        tmp = harness.TempDir("plain-heartbeat-")
        log_a = tmp.path("a.jsonl")
        log_b = tmp.path("b.jsonl")
        a = start_echo(log_a)
        b = start_echo(log_b)
        url_a = "ws://127.0.0.1:%d/" % a.port
        url_b = "ws://127.0.0.1:%d/" % b.port
        plain = Plain("heartbeat", [url_a, url_b])
        try:
            plain.start()
            plain.wait_online(url_a)
            plain.send(10)
            harness.wait_for(lambda: len(received(log_a)) == 10, timeout=5)
            a.signal(signal.SIGSTOP)
            stopped = time.monotonic()
            harness.wait_for(lambda: any(e.get("reason") == "dead_link" for e in plain.log()),
                             timeout=5, message="the dead link was not detected")
            detected = time.monotonic() - stopped
            plain.wait_online(url_b, timeout=10)
            plain.send(10)
            harness.wait_for(lambda: 20 in numbers(received(log_b)), timeout=5,
                             message="messages did not reach the second endpoint")
            print("\ndead link detected after %.2f s (interval 0.5 s + pong timeout 0.5 s)"
                  % detected, file=sys.stderr)
            self.assertLess(detected, 3.0)
            self.assertEqual(numbers(received(log_a)) + numbers(received(log_b))[-10:],
                             list(range(1, 21)))
        finally:
            plain.stop()
            a.signal(signal.SIGCONT)
            a.stop()
            b.stop()


class Nginx(unittest.TestCase):
    """wss through nginx to the echo server: the same stream end to end."""

    def test_through_nginx_with_tls(self):
        tmp = harness.TempDir("plain-nginx-")
        certs = harness.make_certs(tmp.path("pki"))
        echo_log = tmp.path("echo.jsonl")
        echo = start_echo(echo_log)
        nginx = harness.start_nginx("normal", echo.port, certs, directory=tmp.path("nginx"))
        plain = Plain("nginx", ["wss://localhost:%d/ingest" % nginx.port], ca_file=certs.ca)
        try:
            plain.start()
            plain.wait_online()
            plain.send(100)
            harness.wait_for(lambda: len(received(echo_log)) >= 100, timeout=10,
                             message="the server did not get 100 messages through nginx")
            self.assertEqual(numbers(received(echo_log)), list(range(1, 101)))
            harness.wait_for(lambda: len(plain.process.stdout().splitlines()) >= 100, timeout=10,
                             message="the echo did not come back through nginx")
            harness.wait_for(lambda: plain.status()["uplink_confirmed"] == 100, timeout=5,
                             message="pongs through nginx did not confirm the messages")
            requests = [e for e in nginx.access_log_entries() if e.get("upgrade") == "websocket"]
            self.assertEqual(len(requests), 0)  # logged only when the connection ends
        finally:
            plain.stop()
            nginx.stop()
            echo.stop()
        requests = [e for e in nginx.access_log_entries() if e.get("upgrade") == "websocket"]
        self.assertEqual([e.get("status") for e in requests], ["101"])


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV, verbosity=2)
