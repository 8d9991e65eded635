#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tether-cat against real peers on 127.0.0.1.

Interop with independent servers (python3-websockets, nginx terminating wss
with a test PKI) and one scripted adversary per client-side rule of RFC 6455.

Usage: /usr/bin/python3 test_tether_cat.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import argparse
import base64
import json
import os
import shutil
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

CAT = os.path.join(OPTIONS.build_dir, "apps", "tether-cat")
EXIT_OK, EXIT_USAGE, EXIT_GAVE_UP, EXIT_TLS, EXIT_CONNECT = 0, 2, 3, 4, 5

_CERTS = None


def certs():
    """One test PKI for the whole run (generating it takes a moment)."""
    global _CERTS
    if _CERTS is None:
        _CERTS = harness.make_certs(harness.TempDir("tether-cat-pki-").path("certs"))
    return _CERTS


def cat(*args, stdin=b"", timeout=15.0):
    return harness.run([CAT] + [str(a) for a in args], stdin_bytes=stdin, timeout=timeout)


def states(result):
    """The logfmt state lines tether-cat wrote, parsed."""
    out = []
    for line in result.stderr_lines():
        fields = harness.parse_logfmt(line)
        if fields.get("event") == "state":
            out.append(fields)
    return out


def adversary_events(log, event):
    return [e for e in harness.read_jsonl(log) if e["event"] == event]


def client_close_codes(log):
    return [f.get("close_code") for f in adversary_events(log, "frame") if f.get("opcode") == 8]


class Usage(unittest.TestCase):
    def test_help_documents_every_option_and_exit_code(self):
        result = cat("--help")
        self.assertEqual(result.returncode, EXIT_OK)
        text = result.stdout.decode()
        for option in ("--once", "--ping-interval", "--pong-timeout", "--backoff-initial",
                       "--backoff-max", "--backoff-multiplier", "--jitter", "--max-retries",
                       "--handshake-timeout", "--max-message-size", "--ca-file", "--cert",
                       "--key", "--pin-sha256", "--insecure", "--header", "--subprotocol",
                       "--echo", "--desired-out", "--report-file", "Exit codes"):
            self.assertIn(option, text)

    def test_bad_usage_exits_2_with_a_message(self):
        for args in ([], ["--jitter", "sometimes", "ws://127.0.0.1:1/"], ["http://x/"],
                     ["--no-such-option", "ws://127.0.0.1:1/"], ["--cert", "c.pem", "wss://h/"],
                     ["--desired-out", "/tmp/d.json", "ws://127.0.0.1:1/"],
                     ["--tether-v1", "--report-file", "/tmp/r.json", "ws://127.0.0.1:1/"]):
            result = cat(*args)
            self.assertEqual(result.returncode, EXIT_USAGE, args)
            self.assertIn(b"tether-cat:", result.stderr)


class Interop(unittest.TestCase):
    def test_without_linger_the_close_follows_the_input_at_once(self):
        tmp = harness.TempDir("cat-close-")
        log = tmp.path("echo.jsonl")
        with harness.start_echo_server(log=log) as echo:
            result = cat("ws://127.0.0.1:%d/" % echo.port, stdin=b"only\n")
        self.assertEqual(result.returncode, EXIT_OK, result)
        self.assertLess(result.duration, 2.0)
        closes = [e for e in harness.read_jsonl(log) if e["event"] == "close"]
        self.assertEqual(closes[0]["code"], 1000)

    def test_lines_go_out_and_echoes_come_back_then_a_clean_close(self):
        tmp = harness.TempDir("cat-echo-")
        log = tmp.path("echo.jsonl")
        with harness.start_echo_server(log=log) as echo:
            lines = [b"line %d" % i for i in range(200)]
            result = cat("--linger", "300", "ws://127.0.0.1:%d/echo" % echo.port,
                         stdin=b"\n".join(lines) + b"\n")
        self.assertEqual(result.returncode, EXIT_OK, result)
        received = [e["text"].encode() for e in harness.read_jsonl(log) if e["event"] == "message"]
        self.assertEqual(received, lines)
        self.assertEqual(result.stdout.splitlines(), lines)
        closes = [e for e in harness.read_jsonl(log) if e["event"] == "close"]
        self.assertEqual(closes[0]["code"], 1000)

    def test_a_server_that_appears_late_gets_the_queued_lines_in_order(self):
        port = harness.free_port()
        with harness.start_process([CAT, "--backoff-initial", "100", "--backoff-max", "200",
                                    "ws://127.0.0.1:%d/" % port],
                                   expect_port=False, stdin=harness.PIPE) as proc:
            proc.write_stdin(b"early-1\nearly-2\n")
            time.sleep(0.5)  # several refused attempts
            with harness.start_echo_server(extra_args=["--port", str(port)]):
                proc.write_stdin(b"late-3\n")
                proc.wait_for_line(r"late-3", timeout=10)
                proc.close_stdin()
                code = proc.wait(10)
            out = proc.stdout()
        self.assertEqual(code, EXIT_OK)
        self.assertEqual(out.splitlines()[:3], ["early-1", "early-2", "late-3"])

    def test_reconnects_after_the_server_closes_and_resends_nothing_twice(self):
        tmp = harness.TempDir("cat-reconnect-")
        log = tmp.path("echo.jsonl")
        with harness.start_echo_server(log=log, extra_args=["--close-on", "bye"]) as echo:
            with harness.start_process([CAT, "--backoff-initial", "100",
                                        "ws://127.0.0.1:%d/" % echo.port],
                                       expect_port=False, stdin=harness.PIPE) as proc:
                proc.write_stdin(b"one\nbye\n")
                harness.wait_for(lambda: len([e for e in harness.read_jsonl(log)
                                              if e["event"] == "connect"]) >= 2, timeout=10)
                proc.write_stdin(b"two\n")
                proc.wait_for_line(r"two", timeout=10)
                proc.close_stdin()
                self.assertEqual(proc.wait(10), EXIT_OK)
        received = [e["text"] for e in harness.read_jsonl(log) if e["event"] == "message"]
        self.assertEqual(received, ["one", "bye", "two"])


class Tls(unittest.TestCase):
    def run_through_nginx(self, variant, *args, url_host="localhost", timeout=15.0):
        with harness.start_echo_server() as echo, \
                harness.start_nginx(variant, echo.port, certs()) as proxy:
            result = cat("--linger", "300", *args, "wss://%s:%d/" % (url_host, proxy.port),
                         stdin=b"secret\n", timeout=timeout)
            return result, proxy

    def test_verified_wss_through_nginx(self):
        result, _ = self.run_through_nginx("normal", "--ca-file", certs().ca)
        self.assertEqual(result.returncode, EXIT_OK, result)
        self.assertEqual(result.stdout, b"secret\n")

    def test_an_ip_address_url_verifies_against_the_ip_san(self):
        result, _ = self.run_through_nginx("normal", "--ca-file", certs().ca,
                                           url_host="127.0.0.1")
        self.assertEqual(result.returncode, EXIT_OK, result)

    def test_the_wrong_host_name_fails_verification(self):
        result, _ = self.run_through_nginx("wrong_name", "--once", "--ca-file", certs().ca)
        self.assertEqual(result.returncode, EXIT_TLS, result)
        self.assertEqual(states(result)[-1]["reason"], "tls_certificate_invalid")
        self.assertEqual(states(result)[-1]["detail"],
                         "tls=certificate_invalid certificate=name_mismatch")

    def test_an_unknown_ca_fails_verification(self):
        result, _ = self.run_through_nginx("normal", "--once", "--ca-file", certs().other_ca)
        self.assertEqual(result.returncode, EXIT_TLS, result)
        self.assertEqual(states(result)[-1]["detail"],
                         "tls=certificate_invalid certificate=unknown_ca")

    def test_the_system_bundle_does_not_trust_the_test_ca(self):
        result, _ = self.run_through_nginx("normal", "--once")
        self.assertEqual(result.returncode, EXIT_TLS, result)

    def test_insecure_connects_anyway_and_warns(self):
        result, _ = self.run_through_nginx("unknown_ca", "--insecure")
        self.assertEqual(result.returncode, EXIT_OK, result)
        self.assertIn(b"event=insecure", result.stderr)

    def test_a_matching_pin_passes_and_a_wrong_pin_fails(self):
        good, _ = self.run_through_nginx("normal", "--ca-file", certs().ca,
                                         "--pin-sha256", certs().server_pin_hex)
        self.assertEqual(good.returncode, EXIT_OK, good)
        wrong = "00" * 32
        bad, _ = self.run_through_nginx("normal", "--once", "--ca-file", certs().ca,
                                        "--pin-sha256", wrong)
        self.assertEqual(bad.returncode, EXIT_TLS, bad)

    def test_mutual_tls_with_and_without_a_client_certificate(self):
        good, _ = self.run_through_nginx("mtls", "--ca-file", certs().ca, "--cert",
                                         certs().client, "--key", certs().client_key)
        self.assertEqual(good.returncode, EXIT_OK, good)
        bad, _ = self.run_through_nginx("mtls", "--once", "--ca-file", certs().ca)
        self.assertNotEqual(bad.returncode, EXIT_OK, bad)

    def test_the_second_connection_resumes_the_tls_session(self):
        tmp = harness.TempDir("cat-resume-")
        log = tmp.path("echo.jsonl")
        with harness.start_echo_server(log=log, extra_args=["--close-on", "bye"]) as echo, \
                harness.start_nginx("normal", echo.port, certs(),
                                    protocols="TLSv1.2") as proxy:
            with harness.start_process([CAT, "--backoff-initial", "100", "--ca-file", certs().ca,
                                        "wss://localhost:%d/" % proxy.port],
                                       expect_port=False, stdin=harness.PIPE) as proc:
                proc.write_stdin(b"bye\n")
                harness.wait_for(lambda: len([e for e in harness.read_jsonl(log)
                                              if e["event"] == "connect"]) >= 2, timeout=10)
                proc.write_stdin(b"after\n")
                proc.wait_for_line(r"after", timeout=10)
                proc.close_stdin()
                self.assertEqual(proc.wait(10), EXIT_OK)
            entries = proxy.access_log_entries()
        self.assertGreaterEqual(len(entries), 2, entries)
        self.assertEqual(entries[0]["ssl_session_reused"], ".")
        self.assertEqual(entries[1]["ssl_session_reused"], "r")


def data_frames(log):
    """The frames tether-cat sent, without its control frames (pings confirm delivery)."""
    return [f for f in adversary_events(log, "frame") if f["opcode"] < 8]


class Adversary(unittest.TestCase):
    """One scripted misbehaviour per test; tether-cat must answer as RFC 6455 says."""

    def run_scenario(self, scenario, *args, stdin=b"", timeout=15.0, **server):
        tmp = harness.TempDir("cat-%s-" % scenario)
        log = tmp.path("adversary.jsonl")
        with harness.start_adversary(scenario, log=log, **server) as peer:
            result = cat("--keep-open", *args, "ws://127.0.0.1:%d/" % peer.port, stdin=stdin,
                         timeout=timeout)
        return result, log

    def test_echo_keeps_the_opcode_of_binary_messages_up_to_the_limit(self):
        tmp = harness.TempDir("cat-binary-echo-")
        log = tmp.path("adversary.jsonl")
        with harness.start_adversary("binary_for_echo", log=log) as peer:
            process = harness.start_process(
                [CAT, "--echo", "--binary-output", "base64", "ws://127.0.0.1:%d/" % peer.port],
                expect_port=False, name="tether-cat")
            try:
                harness.wait_for(lambda: len(data_frames(log)) >= 2, timeout=10,
                                 message="no echo came back")
            finally:
                process.stop()
        frames = data_frames(log)[:2]
        self.assertEqual([f["opcode"] for f in frames], [2, 2], frames)
        self.assertEqual(bytes.fromhex(frames[0]["payload_hex"]), b"\xff\xfe\x00\x80binary")
        self.assertEqual(frames[1]["length"], 65536)
        # Binary output in base64, one line per message.
        lines = process.stdout().splitlines()
        self.assertEqual(base64.b64decode(lines[0]), b"\xff\xfe\x00\x80binary")
        self.assertEqual(base64.b64decode(lines[1]), bytes(range(256)) * 256)

    def assert_handshake_rejected(self, scenario, detail):
        result, _ = self.run_scenario(scenario, "--once")
        self.assertEqual(result.returncode, EXIT_CONNECT, result)
        last = states(result)[-1]
        self.assertEqual(last["reason"], "handshake_invalid")
        self.assertEqual(last["detail"], "handshake=" + detail)

    def test_bad_accept(self):
        self.assert_handshake_rejected("bad_accept", "bad_accept")

    def test_missing_upgrade(self):
        self.assert_handshake_rejected("missing_upgrade", "missing_upgrade")

    def test_missing_connection(self):
        self.assert_handshake_rejected("missing_connection", "missing_connection")

    def test_unrequested_extension(self):
        self.assert_handshake_rejected("unrequested_extension", "unexpected_extension")

    def test_503_with_retry_after_is_honoured(self):
        result, log = self.run_scenario("status_503", "--max-retries", "2", "--backoff-initial",
                                        "10", retry_after=2)
        self.assertEqual(result.returncode, EXIT_GAVE_UP, result)
        requests = adversary_events(log, "request")
        self.assertEqual(len(requests), 2)
        # The client's clock counts whole milliseconds (see the backoff test).
        self.assertGreaterEqual(requests[1]["t_ms"] - requests[0]["t_ms"], 2000 - 1)
        waits = [s for s in states(result) if s["state"] == "waiting_to_retry"]
        self.assertEqual(waits[0]["reason"], "http_overloaded")
        self.assertEqual(waits[0]["delay_ms"], "2000")

    def test_a_handshake_that_never_completes_times_out(self):
        start = time.monotonic()
        result, _ = self.run_scenario("handshake_never_completes", "--once",
                                      "--handshake-timeout", "400")
        self.assertEqual(result.returncode, EXIT_CONNECT, result)
        self.assertEqual(states(result)[-1]["reason"], "handshake_timeout")
        self.assertLess(time.monotonic() - start, 5)

    def test_silence_after_the_handshake_is_a_dead_link_within_interval_plus_timeout(self):
        result, log = self.run_scenario("silent_after_handshake", "--once", "--ping-interval",
                                        "300", "--pong-timeout", "300")
        self.assertEqual(result.returncode, EXIT_CONNECT, result)
        lines = states(result)
        online = [s for s in lines if s["state"] == "online"][0]
        dead = lines[-1]
        self.assertEqual(dead["reason"], "dead_link")
        detected_after = float(dead["t"]) - float(online["t"])
        self.assertGreaterEqual(detected_after, 0.6 - 0.01)
        self.assertLess(detected_after, 0.6 + 0.5)
        pings = [f for f in adversary_events(log, "frame") if f.get("opcode") == 9]
        self.assertEqual(len(pings), 1)

    def test_a_reset_mid_stream_is_retried(self):
        result, log = self.run_scenario("reset_mid_stream", "--max-retries", "2",
                                        "--backoff-initial", "50", stdin=b"x\n",
                                        reset_after_ms=100)
        self.assertEqual(len(adversary_events(log, "connect")), 2, result)
        self.assertIn("connection_lost", [s.get("reason") for s in states(result)])

    def assert_closes_with(self, scenario, code, **server):
        result, log = self.run_scenario(scenario, "--once", **server)
        self.assertIn(code, client_close_codes(log), result)
        self.assertEqual(states(result)[-1]["reason"], "protocol_error")

    def test_reserved_bits_close_1002(self):
        self.assert_closes_with("reserved_bits", 1002)

    def test_unknown_opcode_closes_1002(self):
        self.assert_closes_with("unknown_opcode", 1002)

    def test_oversize_control_frame_closes_1002(self):
        self.assert_closes_with("oversize_control", 1002)

    def test_masked_server_frame_closes_1002(self):
        self.assert_closes_with("masked_server_frame", 1002)

    def test_invalid_utf8_closes_1007(self):
        self.assert_closes_with("invalid_utf8", 1007)

    def test_a_ping_is_answered_with_its_payload(self):
        result, log = self.run_scenario("ping_echo", "--once", timeout=5)
        pongs = [f for f in adversary_events(log, "frame") if f.get("opcode") == 10]
        self.assertEqual(bytes.fromhex(pongs[0]["payload_hex"]), b"tether-ping-1", result)

    def test_a_fragmented_message_with_an_interleaved_ping(self):
        result, log = self.run_scenario("fragmented_with_ping", "--once", timeout=5)
        self.assertIn(b"Hello\n", result.stdout, result)
        pongs = [f for f in adversary_events(log, "frame") if f.get("opcode") == 10]
        self.assertEqual(bytes.fromhex(pongs[0]["payload_hex"]), b"p")

    def test_the_peer_close_code_is_echoed(self):
        result, log = self.run_scenario("close_echo", "--once", close_code=4000)
        self.assertIn(4000, client_close_codes(log), result)

    def test_a_server_that_drops_every_connection_meets_a_growing_backoff(self):
        result, log = self.run_scenario("drop_after_handshake", "--max-retries", "5",
                                        "--jitter", "none", "--backoff-initial", "100",
                                        "--healthy-after", "10000", timeout=20)
        self.assertEqual(result.returncode, EXIT_GAVE_UP, result)
        times = [e["t_ms"] for e in adversary_events(log, "connect")]
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertEqual(len(gaps), 4)
        for gap, expected in zip(gaps, [100, 200, 400, 800]):
            # The client's clock counts whole milliseconds: a deadline set at
            # t ms may fire up to 1 ms before t + delay on the server's finer clock.
            self.assertGreaterEqual(gap, expected - 1)
            self.assertLess(gap, expected + 400)


class Fleet(unittest.TestCase):
    def test_hundreds_of_clients_on_one_loop_in_one_thread(self):
        fleet = os.path.join(OPTIONS.build_dir, "apps", "tether-fleet")
        with harness.start_echo_server() as echo:
            result = harness.run([fleet, "--clients", "300", "--messages", "20",
                                  "ws://127.0.0.1:%d/" % echo.port], timeout=60)
        self.assertEqual(result.returncode, 0, result)
        summary = harness.parse_logfmt(result.stdout_lines()[-1])
        self.assertEqual(summary["online"], "300")
        self.assertEqual(summary["received"], "6000")


class DeviceState(unittest.TestCase):
    """--desired-out and --report-file against a scripted server that keeps state."""

    SERVER = os.path.join(OPTIONS.source_dir, "tests", "integration", "servers", "state_server.py")

    def server(self, *args):
        return harness.start_process([sys.executable, self.SERVER] + list(args))

    @staticmethod
    def sent(server, kind):
        time.sleep(0.2)  # the server prints each message before it answers; let its reader catch up
        out = []
        for line in server.stdout().splitlines():
            if line.startswith("{"):
                message = json.loads(line)["message"]
                if message.get("type") == kind:
                    out.append(message)
        return out

    def run_cat(self, server, tmp, stdin=b"", extra=()):
        return cat("--tether-v1", "--state-dir", tmp.path("state"), "--device-id", "pi-state",
                   "--desired-out", tmp.path("desired.json"), "--report-file",
                   tmp.path("reported.json"), *extra, "ws://127.0.0.1:%d/v1" % server.port,
                   stdin=stdin)

    def test_desired_is_written_atomically_then_confirmed_and_the_file_is_reported(self):
        tmp = harness.TempDir("tether-cat-state-")
        with open(tmp.path("reported.json"), "w") as f:
            f.write('{"fw": "1.0", "temp": 21}\n')
        with self.server() as server:
            result = self.run_cat(server, tmp, extra=("--linger", "1500"))
            self.assertEqual(result.returncode, EXIT_OK, result.stderr[-2000:])
            with open(tmp.path("desired.json")) as f:
                self.assertEqual(json.loads(f.read()), {"version": 2, "desired": {"rate": 6}})
            self.assertFalse(os.path.exists(tmp.path("desired.json.tmp")))
            self.assertEqual([m["version"] for m in self.sent(server, "applied")], [1, 2])
            reports = self.sent(server, "report")
            self.assertEqual(len(reports), 1)
            self.assertEqual(reports[0]["state"], {"fw": "1.0", "temp": 21})
            self.assertEqual(reports[0]["base"], 0)
            # A restart names the applied version: nothing is sent again.
            result = self.run_cat(server, tmp, extra=("--linger", "1000"))
            self.assertEqual(result.returncode, EXIT_OK, result.stderr[-2000:])
            hellos = self.sent(server, "hello")
            self.assertEqual(hellos[-1]["desired_version"], 2)
            self.assertIn("state", hellos[-1]["features"])
            self.assertEqual(len(self.sent(server, "applied")), 2)

    def test_a_stale_refusal_is_logged_and_the_file_reported_again_on_the_new_version(self):
        tmp = harness.TempDir("tether-cat-state-")
        with open(tmp.path("reported.json"), "w") as f:
            f.write('{"fw":"1.0"}')
        with self.server("--stale-first") as server:
            result = self.run_cat(server, tmp, extra=("--linger", "2500"))
            self.assertEqual(result.returncode, EXIT_OK, result.stderr[-2000:])
            reports = self.sent(server, "report")
            self.assertEqual([r["base"] for r in reports], [0, 7])
            self.assertEqual(reports[1]["state"], {"fw": "1.0"})
            errors = [harness.parse_logfmt(l) for l in result.stderr_lines()]
            refused = [e for e in errors if e.get("event") == "report" and e.get("accepted") == "0"]
            self.assertEqual(len(refused), 1)
            self.assertEqual(refused[0]["reason"], "stale")

    def test_a_file_that_is_no_json_object_is_logged_and_not_reported(self):
        tmp = harness.TempDir("tether-cat-state-")
        with open(tmp.path("reported.json"), "w") as f:
            f.write("[1, 2]")
        with self.server() as server:
            result = self.run_cat(server, tmp, extra=("--linger", "1200"))
            self.assertEqual(result.returncode, EXIT_OK, result.stderr[-2000:])
            self.assertEqual(self.sent(server, "report"), [])
            self.assertIn(b"event=report", result.stderr)


class Resources(unittest.TestCase):
    def test_no_descriptor_or_memory_leak_across_1000_failed_connects(self):
        valgrind = shutil.which("valgrind")
        if valgrind is None:
            self.skipTest("valgrind is not installed")
        if os.environ.get("TETHER_SANITIZE"):
            self.skipTest("an ASan build cannot run under valgrind (LeakSanitizer checks leaks there)")
        port = harness.free_port()  # nothing listens: every connect is refused
        result = harness.run([valgrind, "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                              "--error-exitcode=99", "--track-fds=yes", CAT, "--keep-open", "--max-retries", "1000",
                              "--jitter", "none", "--backoff-initial", "1", "--backoff-max", "1",
                              "ws://127.0.0.1:%d/" % port], timeout=120)
        self.assertEqual(result.returncode, EXIT_GAVE_UP, result.stderr[-3000:])
        err = result.stderr.decode(errors="replace")
        self.assertIn("ERROR SUMMARY: 0 errors", err)
        # stdin, stdout, stderr and the signal pipe's two ends.
        open_fds = [l for l in err.splitlines() if "FILE DESCRIPTORS:" in l]
        self.assertTrue(open_fds, err[-2000:])
        self.assertIn("FILE DESCRIPTORS: 5 open", open_fds[0])


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV, verbosity=2)
