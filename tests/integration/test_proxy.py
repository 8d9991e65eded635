#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tether-cat and tetherd through a real HTTP CONNECT proxy (Debian's tinyproxy)
on 127.0.0.1, and through a proxy that accepts and never answers.

What tinyproxy 1.11.1 answers to CONNECT, checked by hand and asserted below:
  good credentials, allowed port, origin up    200 Connection established
  no Proxy-Authorization                       407 Proxy Authentication Required
  wrong credentials                            401 Unauthorized (sic)
  a port not listed in ConnectPort             403 Access violation
  origin down (refused) or name unknown        500 Unable to connect

Usage: /usr/bin/python3 test_proxy.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import argparse
import base64
import json
import os
import shutil
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
import resume_harness as rh  # noqa: E402

CAT = os.path.join(OPTIONS.build_dir, "apps", "tether-cat")
TETHERD = os.path.join(OPTIONS.build_dir, "apps", "tetherd")
EXIT_OK, EXIT_USAGE, EXIT_TLS, EXIT_CONNECT = 0, 2, 4, 5

USER = "gw-user"
PASSWORD = "Pr0xyS3cretXq7"  # distinctive (tinyproxy takes only [-a-z0-9._] in BasicAuth)
SECRETS = [PASSWORD.encode(), base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode())]

_CERTS = None


def certs():
    global _CERTS
    if _CERTS is None:
        _CERTS = harness.make_certs(harness.TempDir("proxy-pki-").path("certs"))
    return _CERTS


def tinyproxy_binary():
    return shutil.which("tinyproxy") or "/usr/bin/tinyproxy"


class Tinyproxy:
    """tinyproxy in the foreground on a free loopback port, with Basic
    authentication and CONNECT allowed only to `ports`."""

    def __init__(self, ports, auth=True):
        self.tmp = harness.TempDir("tinyproxy-")
        self.log_file = self.tmp.path("tinyproxy.log")
        self.ports = list(ports)
        self.auth = auth
        self.port = None
        self.process = None

    def _write_config(self):
        lines = ["Port %d" % self.port, "Listen 127.0.0.1", "Timeout 30",
                 'LogFile "%s"' % self.log_file, "LogLevel Info", "MaxClients 50",
                 "Allow 127.0.0.1", "DisableViaHeader Yes"]
        if self.auth:
            lines.append("BasicAuth %s %s" % (USER, PASSWORD))
        lines += ["ConnectPort %d" % p for p in self.ports]
        path = self.tmp.path("tinyproxy.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def start(self, port=None):
        # A restart keeps its port; a first start retries on a taken one.
        for attempt in range(5):
            self.port = port or self.port or harness.free_port()
            config = self._write_config()
            self.process = harness.start_process([tinyproxy_binary(), "-d", "-c", config],
                                                 expect_port=False, name="tinyproxy")
            try:
                harness.wait_for(self._accepting, timeout=5, message="tinyproxy not listening")
                return self
            except harness.HarnessError:
                self.process.stop()
                if port is not None or attempt == 4:
                    raise
                self.port = None
        return self

    def _accepting(self):
        if not self.process.alive():
            raise harness.HarnessError("tinyproxy exited: %s" % self.process.stderr())
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self):
        if self.process is not None:
            self.process.stop()
            self.process = None

    def connects(self):
        """CONNECT requests tinyproxy logged."""
        return self.log().count("): CONNECT ")

    def log(self):
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def url(self, user=USER, password=PASSWORD):
        if user is None:
            return "http://127.0.0.1:%d" % self.port
        return "http://%s:%s@127.0.0.1:%d" % (user, password, self.port)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class SilentProxy:
    """Accepts connections and never answers (a proxy that hangs)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.requests = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(2)
            try:
                self.requests.append(conn.recv(4096))
            except OSError:
                pass
            self.held.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def env_without_proxies(**extra):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "no_proxy", "all_proxy")}
    env.update(extra)
    return env


def cat(*args, stdin=b"", timeout=15.0, env=None):
    return harness.run([CAT] + [str(a) for a in args], stdin_bytes=stdin, timeout=timeout,
                       env=env if env is not None else env_without_proxies())


def states(result):
    return [f for f in map(harness.parse_logfmt, result.stderr_lines()) if f.get("event") == "state"]


def last_failure(result):
    failed = [s for s in states(result) if s.get("reason")]
    return failed[-1] if failed else {}


class ProxyTestCase(unittest.TestCase):
    def assertNoSecrets(self, *outputs):
        for output in outputs:
            data = output if isinstance(output, bytes) else output.encode()
            for secret in SECRETS:
                self.assertNotIn(secret, data)


class CatThroughTinyproxy(ProxyTestCase):
    def test_ws_messages_both_ways_through_the_tunnel(self):
        log = harness.TempDir("proxy-echo-").path("echo.jsonl")
        with harness.start_echo_server(log=log) as echo, Tinyproxy([echo.port]) as proxy:
            lines = [b"through the proxy %d" % i for i in range(20)]
            result = cat("--verbose", "--linger", "300", "--proxy", proxy.url(),
                         "ws://127.0.0.1:%d/t" % echo.port, stdin=b"\n".join(lines) + b"\n")
            self.assertEqual(result.returncode, EXIT_OK, result)
            self.assertEqual(result.stdout.splitlines(), lines)
            received = [e["text"].encode() for e in harness.read_jsonl(log)
                        if e["event"] == "message"]
            self.assertEqual(received, lines)
            self.assertIn("CONNECT", proxy.log())
            self.assertIn("proxy_connect", result.stderr.decode())
            self.assertIn(b"event=proxy proxy=127.0.0.1:%d source=--proxy credentials=yes"
                          % proxy.port, result.stderr)
            self.assertNoSecrets(result.stdout, result.stderr)

    def test_wss_through_the_tunnel_verifies_the_servers_name(self):
        with harness.start_echo_server() as echo, \
                harness.start_nginx("normal", echo.port, certs()) as nginx, \
                Tinyproxy([nginx.port]) as proxy:
            result = cat("--linger", "300", "--ca-file", certs().ca, "--proxy", proxy.url(),
                         "wss://localhost:%d/" % nginx.port, stdin=b"secret\n")
            self.assertEqual(result.returncode, EXIT_OK, result)
            self.assertEqual(result.stdout, b"secret\n")
            self.assertIn("localhost:%d" % nginx.port, proxy.log())

    def test_a_wrong_name_or_ca_is_a_certificate_failure_not_a_proxy_failure(self):
        cases = [("wrong_name", certs().ca, "name_mismatch"),
                 ("normal", certs().other_ca, "unknown_ca")]
        for variant, ca, problem in cases:
            with harness.start_echo_server() as echo, \
                    harness.start_nginx(variant, echo.port, certs()) as nginx, \
                    Tinyproxy([nginx.port]) as proxy:
                result = cat("--once", "--ca-file", ca, "--proxy", proxy.url(),
                             "wss://localhost:%d/" % nginx.port, stdin=b"x\n")
                self.assertEqual(result.returncode, EXIT_TLS, result)
                failure = last_failure(result)
                self.assertEqual(failure["reason"], "tls_certificate_invalid", result)
                self.assertEqual(failure["detail"],
                                 "tls=certificate_invalid certificate=%s" % problem)

    def test_missing_and_wrong_credentials_are_proxy_auth_required(self):
        with harness.start_echo_server() as echo, Tinyproxy([echo.port]) as proxy:
            url = "ws://127.0.0.1:%d/" % echo.port
            none = cat("--once", "--proxy", proxy.url(user=None), url, stdin=b"x\n")
            wrong = cat("--once", "--proxy", proxy.url(password="not-" + PASSWORD), url,
                        stdin=b"x\n")
        self.assertEqual(none.returncode, EXIT_CONNECT, none)
        self.assertEqual(last_failure(none)["reason"], "proxy_auth_required")
        self.assertEqual(last_failure(none)["detail"], "proxy_status=407 credentials=none")
        self.assertEqual(wrong.returncode, EXIT_CONNECT, wrong)
        self.assertEqual(last_failure(wrong)["reason"], "proxy_auth_required")
        # tinyproxy 1.11 answers a wrong password with 401, not 407.
        self.assertEqual(last_failure(wrong)["detail"], "proxy_status=401")
        self.assertNoSecrets(none.stderr, wrong.stderr, wrong.stdout)
        self.assertNotIn(b"not-" + PASSWORD.encode(), wrong.stderr)

    def test_a_port_the_proxy_does_not_allow_is_proxy_forbidden(self):
        with harness.start_echo_server() as echo, Tinyproxy([echo.port + 1]) as proxy:
            result = cat("--once", "--proxy", proxy.url(), "ws://127.0.0.1:%d/" % echo.port,
                         stdin=b"x\n")
        self.assertEqual(result.returncode, EXIT_CONNECT, result)
        self.assertEqual(last_failure(result)["reason"], "proxy_forbidden")
        self.assertEqual(last_failure(result)["detail"], "proxy_status=403")

    def test_an_origin_that_is_down_is_proxy_bad_gateway(self):
        down = harness.free_port()
        with Tinyproxy([down]) as proxy:
            result = cat("--once", "--proxy", proxy.url(), "ws://127.0.0.1:%d/" % down,
                         stdin=b"x\n")
        self.assertEqual(result.returncode, EXIT_CONNECT, result)
        self.assertEqual(last_failure(result)["reason"], "proxy_bad_gateway")
        # tinyproxy 1.11: "500 Unable to connect" (squid would say 503).
        self.assertEqual(last_failure(result)["detail"], "proxy_status=500")

    def test_a_proxy_that_is_not_there_is_proxy_refused(self):
        port = harness.free_port()
        result = cat("--once", "--proxy", "http://127.0.0.1:%d" % port, "ws://127.0.0.1:1/",
                     stdin=b"x\n")
        self.assertEqual(result.returncode, EXIT_CONNECT, result)
        self.assertEqual(last_failure(result)["reason"], "proxy_refused")


class CatSilentProxy(ProxyTestCase):
    def test_a_proxy_that_never_answers_times_out(self):
        with SilentProxy() as proxy:
            start = time.monotonic()
            result = cat("--once", "--proxy-timeout", "500",
                         "--proxy", "http://%s:%s@127.0.0.1:%d" % (USER, "x%21y", proxy.port),
                         "wss://gw.test:8443/", stdin=b"x\n")
            elapsed = time.monotonic() - start
            self.assertEqual(result.returncode, EXIT_CONNECT, result)
            self.assertEqual(last_failure(result)["reason"], "proxy_timeout")
            self.assertLess(elapsed, 5.0)
            # The request it got: CONNECT for the endpoint, with the credentials.
            request = harness.wait_for(lambda: proxy.requests and proxy.requests[0], timeout=2)
            self.assertTrue(request.startswith(b"CONNECT gw.test:8443 HTTP/1.1\r\n"), request)
            self.assertIn(b"Proxy-Authorization: Basic " +
                          base64.b64encode(("%s:x!y" % USER).encode()), request)


class CatEnvironment(ProxyTestCase):
    def test_https_proxy_for_wss_and_http_proxy_for_ws(self):
        with harness.start_echo_server() as echo, \
                harness.start_nginx("normal", echo.port, certs()) as nginx, \
                Tinyproxy([echo.port, nginx.port]) as proxy:
            wss = cat("--linger", "200", "--ca-file", certs().ca,
                      "wss://localhost:%d/" % nginx.port, stdin=b"s\n",
                      env=env_without_proxies(HTTPS_PROXY=proxy.url(), http_proxy="http://127.0.0.1:1"))
            self.assertEqual(wss.returncode, EXIT_OK, wss)
            self.assertIn(b"source=HTTPS_PROXY", wss.stderr)
            ws = cat("--linger", "200", "ws://127.0.0.1:%d/" % echo.port, stdin=b"p\n",
                     env=env_without_proxies(http_proxy=proxy.url(), https_proxy="http://127.0.0.1:1"))
            self.assertEqual(ws.returncode, EXIT_OK, ws)
            self.assertIn(b"source=http_proxy", ws.stderr)
            self.assertEqual(proxy.connects(), 2, proxy.log())
            self.assertNoSecrets(wss.stderr, ws.stderr)

    def test_explicit_options_beat_the_environment(self):
        with harness.start_echo_server() as echo, Tinyproxy([echo.port]) as proxy:
            url = "ws://127.0.0.1:%d/" % echo.port
            dead = "http://127.0.0.1:%d" % harness.free_port()
            env = env_without_proxies(http_proxy=dead)
            via = cat("--linger", "200", "--proxy", proxy.url(), url, stdin=b"a\n", env=env)
            self.assertEqual(via.returncode, EXIT_OK, via)
            self.assertIn(b"source=--proxy", via.stderr)
            direct = cat("--linger", "200", "--no-proxy", url, stdin=b"b\n", env=env)
            self.assertEqual(direct.returncode, EXIT_OK, direct)
            self.assertNotIn(b"event=proxy", direct.stderr)
            bypass = cat("--linger", "200", "--no-proxy-for", "127.0.0.1", url, stdin=b"c\n",
                         env=env_without_proxies(http_proxy=dead, no_proxy="nothing.lan"))
            self.assertEqual(bypass.returncode, EXIT_OK, bypass)
            self.assertEqual(proxy.connects(), 1, proxy.log())

    def test_no_proxy_bypasses_the_proxy_for_matching_hosts(self):
        with harness.start_echo_server() as echo:
            dead = "http://127.0.0.1:%d" % harness.free_port()
            url = "ws://localhost:%d/" % echo.port
            for no_proxy in ("localhost", ".localhost", "example.org, localhost:%d" % echo.port,
                             "*"):
                result = cat("--linger", "200", url, stdin=b"n\n",
                             env=env_without_proxies(http_proxy=dead, no_proxy=no_proxy))
                self.assertEqual(result.returncode, EXIT_OK, (no_proxy, result))
            # Not matching: the dead proxy is used, and refuses.
            result = cat("--once", url, stdin=b"n\n",
                         env=env_without_proxies(http_proxy=dead,
                                                 NO_PROXY="localhost:%d" % (echo.port + 1)))
            self.assertEqual(last_failure(result)["reason"], "proxy_refused", result)

    def test_a_bad_proxy_variable_is_named_but_not_repeated(self):
        result = cat("ws://127.0.0.1:1/", env=env_without_proxies(
            http_proxy="socks5://%s:%s@proxy:1080" % (USER, PASSWORD)))
        self.assertEqual(result.returncode, EXIT_USAGE, result)
        self.assertIn(b"http_proxy: expected http://", result.stderr)
        self.assertNoSecrets(result.stderr)

    def test_help_names_the_proxy_options_and_variables(self):
        result = cat("--help")
        for text in (b"--proxy", b"--no-proxy", b"--no-proxy-for", b"--proxy-timeout",
                     b"https_proxy", b"http_proxy", b"no_proxy"):
            self.assertIn(text, result.stdout)


class TetherdThroughTinyproxy(ProxyTestCase):
    def test_online_through_the_proxy_and_back_after_the_proxy_restarts(self):
        tmp = harness.TempDir("tetherd-proxy-")
        store = tmp.path("store")
        os.makedirs(store)
        tokens = tmp.path("tokens")
        with open(tokens, "w") as f:
            f.write("t-1\n")
        token = tmp.path("token")
        with open(token, "w") as f:
            f.write("t-1\n")
        password_file = tmp.path("proxy-password")
        with open(password_file, "w") as f:
            f.write(PASSWORD + "\n")
        run_dir = tmp.path("run")
        server = rh.Server(OPTIONS.build_dir, store, tokens).start()
        proxy = Tinyproxy([server.port]).start()
        process = None
        try:
            config = {
                "endpoints": ["ws://127.0.0.1:%d/v1" % server.port],
                "credentials": {"token_file": token},
                "session": {"user": "tether", "device_id": "gw-proxy"},
                "backoff": {"initial_ms": 200, "max_ms": 1000, "jitter": "equal"},
                "heartbeat": {"interval_ms": 1000, "pong_timeout_ms": 1000},
                "state_dir": tmp.path("state"),
                "run_dir": run_dir,
                "inputs": {"health": {"enabled": False}},
                "metrics": {"file": os.path.join(run_dir, "tether.prom"), "interval_ms": 1000},
                "log": {"level": "debug"},
                "proxy": {"url": "http://127.0.0.1:%d" % proxy.port, "username": USER,
                          "password_file": password_file, "timeout_ms": 2000},
            }
            path = tmp.path("tetherd.json")
            with open(path, "w") as f:
                json.dump(config, f)
            process = harness.start_process([TETHERD, "--config", path], expect_port=False,
                                            name="tetherd")

            def log():
                return [harness.parse_logfmt(line) for line in process.stderr().splitlines()]

            def online_count():
                return sum(1 for e in log() if e.get("state") == "online")

            harness.wait_for(lambda: online_count() >= 1, timeout=15,
                             message="tetherd never came online through the proxy")
            self.assertIn("CONNECT", proxy.log())
            proxy.stop()  # the tunnel dies with the proxy
            harness.wait_for(lambda: any(e.get("reason") in ("proxy_refused", "connection_lost",
                                                             "dead_link")
                                         for e in log()), timeout=15, message="no failure seen")
            status_path = os.path.join(run_dir, "status.json")
            harness.wait_for(lambda: any(e.get("reason") == "proxy_refused" for e in log()),
                             timeout=15, message="no proxy_refused while the proxy is down")
            with open(status_path) as f:
                status_text = f.read()
            proxy.start(port=proxy.port)
            harness.wait_for(lambda: online_count() >= 2, timeout=20,
                             message="tetherd did not come back through the restarted proxy")
            with open(status_path) as f:
                status = json.load(f)
            self.assertEqual(status.get("state"), "online", status)
            self.assertGreaterEqual(proxy.connects(), 1)
            prom = os.path.join(run_dir, "tether.prom")
            metrics = harness.wait_for(
                lambda: 'outcome="proxy_refused"' in open(prom).read() and open(prom).read(),
                timeout=5, message="no proxy_refused outcome in the metrics")
            process.signal(15)
            self.assertEqual(process.wait(10), 0)
            self.assertIn("proxy=127.0.0.1:%d,user:%s,password_file:" % (proxy.port, USER),
                          process.stderr())
            self.assertNoSecrets(process.stderr(), process.stdout(), status_text, metrics,
                                 json.dumps(status))
        finally:
            if process is not None:
                process.stop()
            proxy.stop()
            server.stop()

    def test_a_wrong_proxy_password_is_its_own_reason_and_never_shown(self):
        tmp = harness.TempDir("tetherd-proxy-auth-")
        password_file = tmp.path("proxy-password")
        with open(password_file, "w") as f:
            f.write("wrong-" + PASSWORD + "\n")
        run_dir = tmp.path("run")
        target = harness.free_port()
        with Tinyproxy([target]) as proxy:
            config = {
                "endpoints": ["ws://127.0.0.1:%d/v1" % target],
                "state_dir": tmp.path("state"), "run_dir": run_dir,
                "inputs": {"health": {"enabled": False}},
                "backoff": {"initial_ms": 200, "max_ms": 400},
                "proxy": {"url": "http://127.0.0.1:%d" % proxy.port, "username": USER,
                          "password_file": password_file},
            }
            path = tmp.path("tetherd.json")
            with open(path, "w") as f:
                json.dump(config, f)
            process = harness.start_process([TETHERD, "--config", path], expect_port=False,
                                            name="tetherd")
            try:
                status_path = os.path.join(run_dir, "status.json")

                harness.wait_for(lambda: "proxy_auth_required" in process.stderr(), timeout=10,
                                 message="no proxy_auth_required in the log")
                harness.wait_for(lambda: os.path.exists(status_path) and
                                 "proxy_auth_required" in open(status_path).read(), timeout=10,
                                 message="no proxy_auth_required in status.json")
                status_text = open(status_path).read()
            finally:
                process.stop()
            self.assertNoSecrets(process.stderr(), process.stdout(), status_text)
            self.assertNotIn(("wrong-" + PASSWORD).encode(), process.stderr().encode())


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV, verbosity=2)
