#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Self-tests of the integration-test peers, without tether.

Proves that the echo server, the adversary scenarios, the test PKI and the
nginx wss terminator behave as the tether-cat tests will assume.

Usage: /usr/bin/python3 test_infrastructure.py --source-dir ROOT [--build-dir DIR]
       [unittest arguments, e.g. AdversaryTests]
"""

import argparse
import asyncio
import base64
import hashlib
import os
import socket
import ssl
import struct
import sys
import time
import unittest

ARGS, UNITTEST_ARGV = argparse.ArgumentParser(add_help=False), None
ARGS.add_argument("--source-dir", required=True)
ARGS.add_argument("--build-dir")
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
sys.path.insert(0, os.path.join(OPTIONS.source_dir, "tests", "integration"))

import harness  # noqa: E402

try:
    import websockets  # noqa: E402
except ImportError:
    sys.exit("python3-websockets is missing for %s: run tools/install-deps integration" % sys.executable)

SHORT = 0.3  # how long "nothing arrives" is watched
TIMEOUT = 5.0
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def expected_accept(key):
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


class RawClient:
    """A minimal, byte-exact WebSocket client over a plain socket."""

    def __init__(self, port, timeout=TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.buffer = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("peer closed")
        self.buffer += chunk

    def read_exact(self, n):
        while len(self.buffer) < n:
            self._fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def send_request(self, extra_headers=()):
        lines = [
            "GET /telemetry HTTP/1.1",
            "Host: 127.0.0.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: " + self.key,
            "Sec-WebSocket-Version: 13",
        ] + ["%s: %s" % h for h in extra_headers]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def read_response(self):
        """(status code, {lower-case name: value}, body bytes already buffered)."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(lines[0].split()[1]), headers

    def handshake(self, extra_headers=()):
        self.send_request(extra_headers)
        return self.read_response()

    def send_frame(self, opcode, payload=b"", fin=True, mask=b"\x37\xfa\x21\x3d"):
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n <= 0xFFFF:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def read_frame(self):
        """{fin, rsv, opcode, masked, payload (unmasked), length_form}."""
        b0, b1 = self.read_exact(2)
        n = b1 & 0x7F
        length_form = 7
        if n == 126:
            n, length_form = struct.unpack("!H", self.read_exact(2))[0], 16
        elif n == 127:
            n, length_form = struct.unpack("!Q", self.read_exact(8))[0], 64
        mask = self.read_exact(4) if b1 & 0x80 else None
        payload = self.read_exact(n)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return {
            "fin": bool(b0 & 0x80),
            "rsv": (b0 >> 4) & 7,
            "opcode": b0 & 0x0F,
            "masked": mask is not None,
            "payload": payload,
            "length_form": length_form,
        }

    def nothing_arrives(self, seconds=SHORT):
        self.sock.settimeout(seconds)
        try:
            self._fill()
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(TIMEOUT)
        return False

    def at_eof(self):
        try:
            self._fill()
        except EOFError:
            return True
        return False


def events(log, name, **match):
    return [e for e in harness.read_jsonl(log) if e["event"] == name and
            all(e.get(k) == v for k, v in match.items())]


def wait_event(log, name, **match):
    return harness.wait_for(lambda: events(log, name, **match), timeout=TIMEOUT,
                            message="no %s %r in %s: %r" % (name, match, log, harness.read_jsonl(log)))


TMP = harness.TempDir("tether-infra-")


class EchoServerTests(unittest.TestCase):
    def test_round_trip_logs_connect_messages_and_close(self):
        log = TMP.path("echo-roundtrip.jsonl")

        async def client(port):
            async with websockets.connect("ws://127.0.0.1:%d/t" % port, open_timeout=TIMEOUT) as ws:
                await ws.send("hello")
                text = await asyncio.wait_for(ws.recv(), TIMEOUT)
                await ws.send(b"\x00\xff")
                data = await asyncio.wait_for(ws.recv(), TIMEOUT)
                await ws.close(code=4321)
                # The client offered permessage-deflate; the server declines by default.
                return text, data, ws.response_headers.get("Sec-WebSocket-Extensions")

        with harness.start_echo_server(log=log) as echo:
            self.assertEqual(("hello", b"\x00\xff", None), asyncio.run(client(echo.port)))
            connect = wait_event(log, "connect")[0]
            self.assertEqual("/t", connect["path"])
            self.assertIn(["Upgrade", "websocket"], connect["headers"])
            self.assertEqual(["hello"], [e["text"] for e in events(log, "message", type="text")])
            self.assertEqual(["00ff"], [e["hex"] for e in events(log, "message", type="binary")])
            self.assertEqual(4321, wait_event(log, "close")[0]["code"])
            self.assertEqual(0, echo.stop())

    def test_subprotocol_is_required_and_selected(self):
        log = TMP.path("echo-subprotocol.jsonl")

        async def client(port, offer):
            try:
                async with websockets.connect("ws://127.0.0.1:%d/" % port, subprotocols=offer,
                                              open_timeout=TIMEOUT) as ws:
                    return ws.subprotocol
            except websockets.InvalidStatusCode as e:
                return e.status_code

        with harness.start_echo_server(log=log, subprotocol="tether.v1") as echo:
            self.assertEqual("tether.v1", asyncio.run(client(echo.port, ["other", "tether.v1"])))
            self.assertEqual(400, asyncio.run(client(echo.port, None)))
            self.assertEqual(1, len(wait_event(log, "rejected")))

    def test_message_above_max_size_closes_with_1009(self):
        async def client(port):
            async with websockets.connect("ws://127.0.0.1:%d/" % port, open_timeout=TIMEOUT) as ws:
                await ws.send("x" * 101)
                try:
                    await asyncio.wait_for(ws.recv(), TIMEOUT)
                except websockets.ConnectionClosed as e:
                    return e.rcvd.code if e.rcvd else None

        with harness.start_echo_server(max_size=100) as echo:
            self.assertEqual(1009, asyncio.run(client(echo.port)))


class NginxTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = harness.make_certs(TMP.path("certs"))
        cls.echo_log = TMP.path("nginx-echo.jsonl")
        cls.echo = harness.start_echo_server(log=cls.echo_log)

    @classmethod
    def tearDownClass(cls):
        cls.echo.stop()

    def client_context(self, ca=None, client_cert=False):
        ctx = ssl.create_default_context(cafile=ca or self.certs.ca)
        if client_cert:
            ctx.load_cert_chain(self.certs.client, self.certs.client_key)
        return ctx

    def echo_once(self, port, ctx, text="over wss"):
        async def client():
            async with websockets.connect("wss://127.0.0.1:%d/" % port, ssl=ctx,
                                          server_hostname="localhost", open_timeout=TIMEOUT) as ws:
                await ws.send(text)
                return await asyncio.wait_for(ws.recv(), TIMEOUT)

        return asyncio.run(client())

    def verify_failure(self, variant, ca=None):
        with harness.start_nginx(variant, self.echo.port, self.certs) as proxy:
            with self.assertRaises(ssl.SSLCertVerificationError) as caught:
                self.echo_once(proxy.port, self.client_context(ca))
            return caught.exception

    def test_wss_echo_through_nginx_and_session_resumption(self):
        with harness.start_nginx("normal", self.echo.port, self.certs) as proxy:
            self.assertEqual("over wss", self.echo_once(proxy.port, self.client_context()))
            entry = harness.wait_for(lambda: proxy.access_log_entries(), timeout=TIMEOUT)[0]
            self.assertEqual("101", entry["status"])
            self.assertEqual("TLSv1.3", entry["ssl_protocol"])
            self.assertEqual(".", entry["ssl_session_reused"])

            # Resumption, TLS 1.3 (ticket read with the 101) and TLS 1.2.
            for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
                ctx = self.client_context()
                ctx.maximum_version = version
                session = None
                for attempt in range(2):
                    with socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT) as raw, \
                            ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
                        client = RawClient.__new__(RawClient)
                        client.sock, client.key, client.buffer = tls, "dGhlIHNhbXBsZSBub25jZQ==", b""
                        status, _ = client.handshake()
                        self.assertEqual(101, status)
                        client.send_frame(0x8, struct.pack("!H", 1000))
                        self.assertEqual(0x8, client.read_frame()["opcode"])
                        self.assertEqual(attempt == 1, tls.session_reused, (version, attempt))
                        session = tls.session
            entries = harness.wait_for(lambda: proxy.access_log_entries()[4:] and proxy.access_log_entries(),
                                       timeout=TIMEOUT)
            self.assertEqual([".", "r", ".", "r"], [e["ssl_session_reused"] for e in entries[1:]])
            self.assertEqual(["TLSv1.3", "TLSv1.3", "TLSv1.2", "TLSv1.2"],
                             [e["ssl_protocol"] for e in entries[1:]])

            # The same observation with the openssl command line (TLS 1.2).
            result = harness.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % proxy.port,
                                  "-servername", "localhost", "-CAfile", self.certs.ca,
                                  "-tls1_2", "-reconnect"], stdin_bytes=b"", timeout=TIMEOUT)
            self.assertIn("Reused, TLSv1.2", result.stdout.decode(errors="replace"), result)

    def test_start_nginx_retries_when_its_port_was_taken(self):
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", 0))
            squatter.listen()
            ports = [squatter.getsockname()[1]]
            real_free_port = harness.free_port
            harness.free_port = lambda: ports.pop() if ports else real_free_port()
            try:
                with harness.start_nginx("normal", self.echo.port, self.certs) as proxy:
                    self.assertNotEqual(squatter.getsockname()[1], proxy.port)
                    self.assertEqual("retried", self.echo_once(proxy.port, self.client_context(), "retried"))
            finally:
                harness.free_port = real_free_port
            self.assertEqual([], ports)

    def test_presented_key_matches_the_pin(self):
        with harness.start_nginx("normal", self.echo.port, self.certs) as proxy:
            ctx = self.client_context()
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT) as raw, \
                    ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                der = tls.getpeercert(binary_form=True)
        pem = harness.run(["openssl", "x509", "-inform", "der", "-pubkey", "-noout"], der, TIMEOUT)
        spki = harness.run(["openssl", "pkey", "-pubin", "-outform", "der"], pem.stdout, TIMEOUT)
        digest = hashlib.sha256(spki.stdout).digest()
        self.assertEqual(self.certs.server_pin_hex, digest.hex())
        self.assertEqual(self.certs.server_pin_base64, base64.b64encode(digest).decode())

    def test_rsa_certificate_works(self):
        with harness.start_nginx("rsa", self.echo.port, self.certs) as proxy:
            self.assertEqual("rsa", self.echo_once(proxy.port, self.client_context(), "rsa"))

    def test_wrong_name_fails_verification(self):
        error = self.verify_failure("wrong_name")
        self.assertIn("Hostname mismatch", error.verify_message)

    def test_certificate_from_unknown_ca_fails_verification(self):
        error = self.verify_failure("unknown_ca")
        self.assertEqual(20, error.verify_code)  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY

    def test_trusting_only_the_unrelated_ca_fails_verification(self):
        error = self.verify_failure("normal", ca=self.certs.other_ca)
        self.assertEqual(19, error.verify_code)  # X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN (chain sent)

    def test_expired_certificate_fails_verification(self):
        error = self.verify_failure("expired")
        self.assertEqual(10, error.verify_code)  # X509_V_ERR_CERT_HAS_EXPIRED

    def test_mutual_tls_requires_a_client_certificate(self):
        with harness.start_nginx("mtls", self.echo.port, self.certs) as proxy:
            with self.assertRaises(websockets.InvalidStatusCode) as caught:
                self.echo_once(proxy.port, self.client_context())
            self.assertEqual(400, caught.exception.status_code)
            self.assertEqual("mtls", self.echo_once(proxy.port, self.client_context(client_cert=True), "mtls"))
            entries = harness.wait_for(lambda: proxy.access_log_entries()[1:] and proxy.access_log_entries(),
                                       timeout=TIMEOUT)
            self.assertEqual([("400", "NONE"), ("101", "SUCCESS")],
                             [(e["status"], e["ssl_client_verify"]) for e in entries])
            self.assertEqual("CN=tether-test-device", entries[1]["ssl_client_s_dn"])


class TlsPeerTests(unittest.TestCase):
    """The echo server and the adversary speaking TLS themselves."""

    @classmethod
    def setUpClass(cls):
        cls.certs = harness.make_certs(TMP.path("certs-direct"))

    def tls_client(self, port, client_cert=False):
        ctx = ssl.create_default_context(cafile=self.certs.ca)
        if client_cert:
            ctx.load_cert_chain(self.certs.client, self.certs.client_key)
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        client = RawClient.__new__(RawClient)
        client.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        client.key, client.buffer = base64.b64encode(os.urandom(16)).decode(), b""
        self.addCleanup(client.close)
        return client

    def test_echo_server_serves_wss(self):
        async def client(port):
            ctx = ssl.create_default_context(cafile=self.certs.ca)
            async with websockets.connect("wss://localhost:%d/" % port, ssl=ctx, open_timeout=TIMEOUT) as ws:
                await ws.send("direct")
                return await asyncio.wait_for(ws.recv(), TIMEOUT)

        with harness.start_echo_server(tls=self.certs) as echo:
            self.assertEqual("direct", asyncio.run(client(echo.port)))

    def test_adversary_keeps_its_handshake_headers_over_tls(self):
        with harness.start_adversary("missing_connection", tls=self.certs) as peer:
            client = self.tls_client(peer.port)
            status, headers = client.handshake()
            self.assertEqual((101, False), (status, "connection" in headers))

    def test_adversary_resets_over_tls(self):
        with harness.start_adversary("reset_mid_stream", tls=self.certs, reset_after_ms=0) as peer:
            client = self.tls_client(peer.port)
            self.assertEqual(101, client.handshake()[0])
            with self.assertRaises((ConnectionResetError, ssl.SSLError, EOFError)):
                while True:
                    client.read_frame()

    def test_adversary_mutual_tls_accepts_only_a_client_certificate(self):
        log = TMP.path("adversary-mtls.jsonl")
        with harness.start_adversary("ok_echo", log=log, tls=self.certs, mutual_tls=True) as peer:
            with self.assertRaises((ssl.SSLError, ConnectionResetError, EOFError)):
                # TLS 1.3 reports the missing certificate on the first read.
                self.tls_client(peer.port).handshake()
            client = self.tls_client(peer.port, client_cert=True)
            self.assertEqual(101, client.handshake()[0])
            self.assertEqual(1, len(events(log, "request")))


class AdversaryTests(unittest.TestCase):
    def start(self, scenario, **options):
        log = TMP.path("adversary-%s.jsonl" % scenario)
        peer = harness.start_adversary(scenario, log=log, **options)
        self.addCleanup(peer.stop)
        return peer, log

    def upgraded(self, port):
        client = RawClient(port)
        self.addCleanup(client.close)
        status, headers = client.handshake()
        self.assertEqual(101, status)
        return client, headers

    def test_ok_echo(self):
        peer, log = self.start("ok_echo")
        client, headers = self.upgraded(peer.port)
        self.assertEqual(expected_accept(client.key), headers["sec-websocket-accept"])
        self.assertEqual("websocket", headers["upgrade"])
        self.assertEqual("Upgrade", headers["connection"])
        client.send_frame(0x1, b"Hel", fin=False)
        client.send_frame(0x0, b"lo")
        self.assertEqual({"fin": True, "rsv": 0, "opcode": 1, "masked": False, "payload": b"Hello",
                          "length_form": 7}, client.read_frame())
        client.send_frame(0x9, b"pi")
        self.assertEqual((0xA, b"pi"), (lambda f: (f["opcode"], f["payload"]))(client.read_frame()))
        client.send_frame(0x8, struct.pack("!H", 1000) + b"done")
        self.assertEqual(struct.pack("!H", 1000), client.read_frame()["payload"])
        self.assertTrue(client.at_eof())
        request = wait_event(log, "request")[0]
        self.assertEqual("GET /telemetry HTTP/1.1", request["request_line"])
        self.assertIn(["Sec-WebSocket-Key", client.key], request["headers"])
        frames = wait_event(log, "frame", opcode=8)
        self.assertEqual((1000, "done", True), (frames[0]["close_code"], frames[0]["close_reason"],
                                                 frames[0]["masked"]))
        self.assertEqual("48656c", events(log, "frame", opcode=1)[0]["payload_hex"])

    def check_bad_101(self, scenario, absent=None, **present):
        peer, log = self.start(scenario)
        client, headers = self.upgraded(peer.port)
        if absent:
            self.assertNotIn(absent, headers)
        for name, value in present.items():
            self.assertEqual(value, headers[name.replace("_", "-")])
        client.send_frame(0x8, struct.pack("!H", 1002))
        self.assertEqual(0x8, client.read_frame()["opcode"])
        self.assertEqual(1002, wait_event(log, "frame", opcode=8)[0]["close_code"])
        return client, headers

    def test_bad_accept(self):
        client, headers = self.check_bad_101("bad_accept")
        self.assertNotEqual(expected_accept(client.key), headers["sec-websocket-accept"])

    def test_missing_upgrade(self):
        self.check_bad_101("missing_upgrade", absent="upgrade", connection="Upgrade")

    def test_missing_connection(self):
        self.check_bad_101("missing_connection", absent="connection", upgrade="websocket")

    def test_unrequested_extension(self):
        self.check_bad_101("unrequested_extension", sec_websocket_extensions="permessage-deflate")

    def test_unrequested_subprotocol(self):
        self.check_bad_101("unrequested_subprotocol", sec_websocket_protocol="tether-unrequested")

    def check_status(self, scenario, code, **options):
        peer, log = self.start(scenario, **options)
        with RawClient(peer.port) as client:
            status, headers = client.handshake()
            self.assertEqual(code, status)
            self.assertTrue(client.at_eof())
        wait_event(log, "server_close")
        return headers

    def test_status_503_with_retry_after(self):
        self.assertEqual("7", self.check_status("status_503", 503, retry_after=7)["retry-after"])

    def test_status_401(self):
        self.assertIn("Bearer", self.check_status("status_401", 401)["www-authenticate"])

    def test_status_429(self):
        self.assertEqual("3", self.check_status("status_429", 429, retry_after=3)["retry-after"])

    def test_handshake_never_completes(self):
        peer, log = self.start("handshake_never_completes")
        with RawClient(peer.port) as client:
            client.send_request()
            self.assertTrue(client.nothing_arrives())
        wait_event(log, "request")
        wait_event(log, "eof")

    def test_silent_after_handshake(self):
        peer, log = self.start("silent_after_handshake")
        client, _ = self.upgraded(peer.port)
        client.send_frame(0x9, b"anyone?")
        self.assertTrue(client.nothing_arrives())
        self.assertEqual("anyone?", wait_event(log, "frame", opcode=9)[0]["text"])

    def test_reset_mid_stream(self):
        peer, log = self.start("reset_mid_stream")
        client, _ = self.upgraded(peer.port)
        self.assertEqual(b"first", client.read_frame()["payload"])
        client.send_frame(0x1, b"then")
        with self.assertRaises(ConnectionResetError):
            client.read_frame()
        self.assertEqual("client_message", wait_event(log, "reset_trigger")[0]["trigger"])
        self.assertTrue(events(log, "server_close", reset=True))

    def check_one_frame(self, scenario, expected, **options):
        peer, log = self.start(scenario, **options)
        client, _ = self.upgraded(peer.port)
        frame = client.read_frame()
        for key, value in expected.items():
            self.assertEqual(value, frame[key], (scenario, key))
        return client, log

    def test_reserved_bits(self):
        self.check_one_frame("reserved_bits", {"rsv": 4, "opcode": 1, "payload": b"rsv"})

    def test_unknown_opcode(self):
        self.check_one_frame("unknown_opcode", {"opcode": 3, "fin": True})

    def test_invalid_utf8(self):
        self.check_one_frame("invalid_utf8", {"opcode": 1, "payload": b"\xc3\x28"})

    def test_oversize_control(self):
        self.check_one_frame("oversize_control", {"opcode": 9, "length_form": 16, "payload": b"x" * 126})

    def test_masked_server_frame(self):
        self.check_one_frame("masked_server_frame", {"masked": True, "payload": b"masked"})

    def test_ping_echo_logs_the_pong(self):
        client, log = self.check_one_frame("ping_echo", {"opcode": 9, "payload": b"tether-ping-1"})
        client.send_frame(0xA, b"tether-ping-1")
        self.assertTrue(wait_event(log, "frame", opcode=10, text="tether-ping-1"))

    def test_fragmented_with_ping(self):
        peer, log = self.start("fragmented_with_ping")
        client, _ = self.upgraded(peer.port)
        frames = [client.read_frame() for _ in range(3)]
        self.assertEqual([(False, 1, b"Hel"), (True, 9, b"p"), (True, 0, b"lo")],
                         [(f["fin"], f["opcode"], f["payload"]) for f in frames])
        client.send_frame(0xA, b"p")
        client.send_frame(0x1, b"Hello")
        self.assertEqual(b"Hello", client.read_frame()["payload"])
        self.assertTrue(wait_event(log, "frame", opcode=10, text="p"))

    def test_close_echo_with_custom_code(self):
        client, log = self.check_one_frame("close_echo", {"opcode": 8}, close_code=4001)
        client.send_frame(0x8, struct.pack("!H", 4001))
        self.assertTrue(client.at_eof())
        self.assertEqual(4001, wait_event(log, "frame", opcode=8)[0]["close_code"])

    def test_close_echo_payload(self):
        peer, _ = self.start("close_echo")
        client, _ = self.upgraded(peer.port)
        self.assertEqual(struct.pack("!H", 4000) + b"bye", client.read_frame()["payload"])

    def test_close_1001_then_accept(self):
        peer, log = self.start("close_1001_then_accept")
        first, _ = self.upgraded(peer.port)
        self.assertEqual(struct.pack("!H", 1001), first.read_frame()["payload"][:2])
        first.send_frame(0x8, struct.pack("!H", 1001))
        self.assertTrue(first.at_eof())
        second, _ = self.upgraded(peer.port)
        second.send_frame(0x1, b"again")
        self.assertEqual(b"again", second.read_frame()["payload"])

    def test_drop_after_handshake_counts_attempts(self):
        peer, log = self.start("drop_after_handshake")
        for _ in range(3):
            client, _ = self.upgraded(peer.port)
            self.assertTrue(client.at_eof())
        attempts = wait_event(log, "attempt", count=3) and events(log, "attempt")
        self.assertEqual([1, 2, 3], [a["count"] for a in attempts])
        times = [a["t_ms"] for a in attempts]
        self.assertEqual(sorted(times), times)

    def test_binary_for_echo_sends_non_utf8_then_one_at_the_limit(self):
        peer, _ = self.start("binary_for_echo")
        client, _ = self.upgraded(peer.port)
        first = client.read_frame()
        self.assertEqual((2, b"\xff\xfe\x00\x80binary"), (first["opcode"], first["payload"]))
        second = client.read_frame()
        self.assertEqual((2, 65536), (second["opcode"], len(second["payload"])))

    def test_every_scenario_is_covered(self):
        tested = {name[len("test_"):] for name in dir(self) if name.startswith("test_")}
        sys.path.insert(0, harness.SERVERS_DIR)
        import adversary

        missing = [s for s in adversary.SCENARIOS if not any(t.startswith(s) for t in tested)]
        self.assertEqual([], missing)


class HarnessTests(unittest.TestCase):
    def test_process_stdin_pipe_and_lines(self):
        script = "import sys\nfor line in sys.stdin: print('got', line.strip(), flush=True)"
        with harness.start_process([harness.PYTHON, "-c", script], expect_port=False,
                                   stdin=harness.PIPE) as process:
            self.assertTrue(process.write_stdin(b"one\n"))
            self.assertEqual("one", process.wait_for_line(r"got (\w+)").group(1))
            process.write_stdin(b"two\n")
            process.close_stdin()
            self.assertEqual("two", process.wait_for_line(r"got (\w+)").group(1))
            self.assertEqual(0, process.wait(TIMEOUT))

    def test_parse_logfmt(self):
        self.assertEqual({"a": "1", "b": 'two "words"', "c": "", "d": "x=y"},
                         harness.parse_logfmt('a=1 b="two \\"words\\"" c= d=x=y junk'))

    def test_run_kills_a_hung_command(self):
        start = time.monotonic()
        result = harness.run(["sleep", "30"], timeout=0.2)
        self.assertTrue(result.timed_out)
        self.assertLess(time.monotonic() - start, 5)

    def test_stop_kills_a_process_ignoring_sigterm(self):
        process = harness.start_process(
            [harness.PYTHON, "-c", "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
             "print('port=1', flush=True); time.sleep(30)"])
        self.assertEqual(1, process.port)
        self.assertEqual(-9, process.stop(grace=0.2))

    def test_start_process_reports_a_peer_that_exits_early(self):
        with self.assertRaises(harness.HarnessError) as caught:
            harness.start_process([harness.PYTHON, "-c", "import sys; sys.exit('no port for you')"])
        self.assertIn("no port for you", str(caught.exception))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV, verbosity=2)
