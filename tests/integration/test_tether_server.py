#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tether-server driven by an independent client: python3-websockets speaking
tether.v1 (docs/PROTOCOL.md) by hand, and the admin interface over HTTP.

Usage: /usr/bin/python3 test_tether_server.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import argparse
import asyncio
import http.client
import json
import os
import signal
import socket
import ssl
import struct
import sys
import time
import unittest
import uuid

ARGS = argparse.ArgumentParser(add_help=False)
ARGS.add_argument("--source-dir", required=True)
ARGS.add_argument("--build-dir", required=True)
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
sys.path.insert(0, os.path.join(OPTIONS.source_dir, "tests", "integration"))

import harness  # noqa: E402
import websockets  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatusCode  # noqa: E402

SERVER = os.path.join(OPTIONS.build_dir, "apps", "tether-server")
TOKEN = "t0k3n"
OTHER_TOKEN = "second-token"
TIMEOUT = 10.0

_CERTS = None


def certs():
    global _CERTS
    if _CERTS is None:
        _CERTS = harness.make_certs(harness.TempDir("tether-server-pki-").path("certs"))
    return _CERTS


# --- tether.v1 by hand ------------------------------------------------------------


def data(seq, payload=b""):
    return struct.pack(">BBQ", 0x44, 0, seq) + payload


def aged_data(seq, age_ms, payload=b""):
    """DATA with flag 0x01: the message's age follows the seq (PROTOCOL.md 3.6)."""
    return struct.pack(">BBQI", 0x44, 0x01, seq, age_ms) + payload


def ack(seq):
    return struct.pack(">BBQ", 0x41, 0, seq)


def decode(message):
    """('json', dict) for text, ('D'|'A', seq, payload) for binary."""
    if isinstance(message, str):
        return ("json", json.loads(message))
    kind, flags, seq = struct.unpack(">BBQ", message[:10])
    assert flags == 0
    return (chr(kind), seq, message[10:])


def hello(session, version=1, last_downlink=0, oldest_uplink=1, next_uplink=1, device="pi-17",
          features=None):
    fields = {"type": "hello", "session": session, "version": version, "device": device,
              "last_downlink": last_downlink, "oldest_uplink": oldest_uplink,
              "next_uplink": next_uplink}
    if features is not None:
        fields["features"] = features
    return json.dumps(fields)


def new_session():
    return str(uuid.uuid4())


SESSION_NAMESPACE = uuid.UUID("7ada0a06-5620-4a46-80ff-248e31991504")


def session_of(user, device):
    """The session id a client derives: anyone can compute anyone's."""
    return str(uuid.uuid5(SESSION_NAMESPACE, "%s\n%s" % (user, device)))


class Server:
    """tether-server with a fresh data directory, tokens file and admin port."""

    def __init__(self, tmp, extra=(), data_dir=None, tls=False, tokens=None, nofile=None):
        self.tmp = tmp
        self.data_dir = data_dir or tmp.path("data")
        self.tokens = tmp.path("tokens")
        with open(self.tokens, "w", encoding="ascii") as f:
            f.write(tokens or "# test tokens\n%s alice\n%s bob\n" % (TOKEN, OTHER_TOKEN))
        cmd = [SERVER, "--listen", "127.0.0.1:0", "--data-dir", self.data_dir,
               "--tokens", self.tokens, "--admin", "127.0.0.1:0"]
        if tls:
            c = certs()
            cmd += ["--tls-listen", "127.0.0.1:0", "--cert", c.server_chain, "--key", c.server_key]
        cmd += list(extra)
        if nofile is not None:
            cmd = with_descriptor_limit(nofile, cmd)
        self.process = harness.start_process(cmd, expect_port=False, name="tether-server")
        match = self.process.wait_for_line(r"^listen=(\d+) tls=(\d+) admin=(\d+)\s*$")
        self.port, self.tls_port, self.admin_port = (int(g) for g in match.groups())

    def url(self, path="/v1"):
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    def admin(self, method, path, body=None, headers=None):
        """One admin request, with the admin token unless `headers` is given."""
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=TIMEOUT)
        if headers is None:
            headers = harness.admin_headers(self.data_dir)
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        return response.status, json.loads(payload) if payload else None

    def stats(self):
        status, body = self.admin("GET", "/stats")
        assert status == 200, status
        return body

    def session_stats(self, session):
        for entry in self.stats()["sessions"]:
            if entry["session"] == session:
                return entry
        return None

    def stop(self):
        return self.process.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def with_descriptor_limit(nofile, cmd):
    """`cmd` run with RLIMIT_NOFILE lowered to `nofile` (soft and hard): the
    wrapper sets the limit and execs, so the pid is the server's."""
    script = ("import os, resource, sys; "
              "resource.setrlimit(resource.RLIMIT_NOFILE, (%d, %d)); "
              "os.execv(sys.argv[1], sys.argv[1:])" % (nofile, nofile))
    return [sys.executable, "-c", script] + list(cmd)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 2))


async def connect(server, token=TOKEN, subprotocols=("tether.v1",), url=None, ssl_context=None):
    headers = {"Authorization": "Bearer " + token} if token else {}
    return await websockets.connect(url or server.url(), subprotocols=list(subprotocols),
                                    extra_headers=headers, ssl=ssl_context, open_timeout=TIMEOUT,
                                    ping_interval=None, max_size=2 ** 20)


async def recv(ws):
    return decode(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def open_session(server, session, token=TOKEN, **hello_fields):
    ws = await connect(server, token=token)
    await ws.send(hello(session, **hello_fields))
    kind, welcome = await recv(ws)
    assert kind == "json" and welcome["type"] == "welcome", welcome
    return ws, welcome


async def close_code(ws):
    try:
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    except ConnectionClosed as closed:
        return closed.code, closed.reason
    return None


async def until_ack(ws, seq):
    while True:
        message = await recv(ws)
        if message[0] == "A" and message[1] >= seq:
            return message[1]


# --- Tests ------------------------------------------------------------------------


class Protocol(unittest.TestCase):
    def setUp(self):
        self.tmp = harness.TempDir("tether-server-")
        self.server = Server(self.tmp, extra=["--ack-every", "4", "--ack-interval-ms", "50"])

    def tearDown(self):
        self.server.stop()

    def test_hello_welcome_data_stored_and_acked(self):
        session = new_session()

        async def scenario():
            ws, welcome = await open_session(self.server, session)
            self.assertEqual(welcome["session"], session)
            self.assertFalse(welcome["resumed"])
            self.assertEqual(welcome["last_uplink"], 0)
            self.assertEqual(welcome["ack_every"], 4)
            self.assertEqual(welcome["ack_interval_ms"], 50)
            for seq in range(1, 11):
                await ws.send(data(seq, b"m%d" % seq))
            self.assertEqual(await until_ack(ws, 10), 10)
            await ws.close()

        run(scenario())
        stats = self.server.session_stats(session)
        self.assertEqual(stats["received"], 10)
        self.assertEqual(stats["highest_seq"], 10)
        self.assertEqual(stats["next_expected"], 11)
        self.assertEqual(stats["device"], "pi-17")

    def test_duplicates_are_dropped_and_counted(self):
        session = new_session()

        async def scenario():
            ws, _ = await open_session(self.server, session)
            for seq in (1, 2, 3, 2, 3, 1):
                await ws.send(data(seq, b"x"))
            await until_ack(ws, 3)
            await ws.close()
            ws, welcome = await open_session(self.server, session, oldest_uplink=1, next_uplink=4)
            self.assertTrue(welcome["resumed"])
            self.assertEqual(welcome["last_uplink"], 3)
            await ws.send(data(3, b"x"))  # a retransmission after a lost ACK
            await ws.send(data(4, b"y"))
            await until_ack(ws, 4)
            await ws.close()

        run(scenario())
        stats = self.server.session_stats(session)
        self.assertEqual(stats["received"], 4)
        self.assertEqual(stats["duplicates"], 4)
        self.assertEqual(stats["gap_count"], 0)

    def test_gap_is_recorded_and_acked_at_once(self):
        session = new_session()

        async def scenario():
            ws, _ = await open_session(self.server, session)
            await ws.send(data(1))
            await ws.send(json.dumps({"type": "gap", "first": 2, "last": 5, "reason": "overflow"}))
            self.assertEqual(await until_ack(ws, 5), 5)
            await ws.send(data(6))
            await ws.send(data(9))  # unreported hole 7..8
            await until_ack(ws, 9)
            await ws.close()

        run(scenario())
        stats = self.server.session_stats(session)
        self.assertEqual(stats["received"], 3)
        self.assertEqual(stats["next_expected"], 10)
        self.assertEqual([(g["first"], g["last"], g["reason"]) for g in stats["gaps"]],
                         [(2, 5, "overflow"), (7, 8, "unreported")])

    def test_age_is_taken_where_the_hello_offers_it(self):
        session = new_session()

        async def scenario():
            ws, welcome = await open_session(self.server, session, features=["later", "age"])
            self.assertEqual(welcome.get("features"), ["age"])
            await ws.send(aged_data(1, 1500, b"sample"))
            await ws.send(data(2, b"restored"))  # a message without a known age
            await ws.send(aged_data(3, 0))
            self.assertEqual(await until_ack(ws, 3), 3)
            await ws.close()

        before_ms = int(time.time() * 1000)
        run(scenario())
        self.assertEqual(self.server.session_stats(session)["received"], 3)
        lines = [harness.parse_logfmt(line) for line in self.server.process.stderr().splitlines()]
        aged = [e for e in lines if e.get("event") == "uplink_age" and e.get("session") == session]
        self.assertEqual(len(aged), 1, aged)  # the first aged DATA of the connection
        self.assertEqual(aged[0]["seq"], "1")
        self.assertEqual(aged[0]["age_ms"], "1500")
        self.assertGreaterEqual(int(aged[0]["captured_ms"]), before_ms - 1500 - 1000)
        self.assertLessEqual(int(aged[0]["captured_ms"]), int(time.time() * 1000) - 1500)

    def test_without_the_offer_there_is_no_age(self):
        async def scenario():
            ws, welcome = await open_session(self.server, new_session())
            self.assertNotIn("features", welcome)
            await ws.send(data(1, b"plain"))
            self.assertEqual(await until_ack(ws, 1), 1)
            await ws.send(aged_data(2, 10, b"aged"))
            return await close_code(ws)

        self.assertEqual(run(scenario())[0], 4002)

    def test_an_aged_data_shorter_than_its_header_is_4002(self):
        async def scenario():
            ws, _ = await open_session(self.server, new_session(), features=["age"])
            await ws.send(aged_data(1, 7)[:13])
            return await close_code(ws)

        self.assertEqual(run(scenario())[0], 4002)

    def test_anything_before_hello_is_4002(self):
        async def scenario():
            ws = await connect(self.server)
            await ws.send(data(1, b"early"))
            return await close_code(ws)

        self.assertEqual(run(scenario())[0], 4002)

    def test_unknown_control_is_4002(self):
        async def scenario():
            ws, _ = await open_session(self.server, new_session())
            await ws.send(json.dumps({"type": "nonsense"}))
            return await close_code(ws)

        self.assertEqual(run(scenario())[0], 4002)

    def test_lower_version_is_4009(self):
        session = new_session()

        async def scenario():
            ws, _ = await open_session(self.server, session, version=5)
            await ws.close()
            ws = await connect(self.server)
            await ws.send(hello(session, version=4))
            return await close_code(ws)

        self.assertEqual(run(scenario())[0], 4009)

    def test_newer_connection_supersedes_the_older(self):
        session = new_session()

        async def scenario():
            old, _ = await open_session(self.server, session, version=2)
            new, _ = await open_session(self.server, session, version=2)
            code = await close_code(old)
            await new.send(data(1, b"still here"))
            await until_ack(new, 1)
            await new.close()
            return code

        self.assertEqual(run(scenario())[0], 4009)

    def test_downlink_push_replay_and_ack(self):
        session = new_session()

        async def scenario():
            ws, _ = await open_session(self.server, session)
            status, body = self.server.admin("POST", "/sessions/%s/push" % session, b"reboot")
            self.assertEqual(status, 200)
            self.assertEqual(body["seq"], 1)
            self.assertEqual(await recv(ws), ("D", 1, b"reboot"))
            await ws.close()
            # Offline pushes are replayed after the next welcome.
            for text in (b"two", b"three"):
                self.assertEqual(self.server.admin("POST", "/sessions/%s/push" % session,
                                                   text)[0], 200)
            ws, _ = await open_session(self.server, session, last_downlink=1)
            self.assertEqual(await recv(ws), ("D", 2, b"two"))
            self.assertEqual(await recv(ws), ("D", 3, b"three"))
            await ws.send(ack(3))
            await ws.send(data(1))
            await until_ack(ws, 1)  # the ACK of the downlink was processed before this
            await ws.close()

        run(scenario())
        stats = self.server.session_stats(session)
        self.assertEqual(stats["downlink_next"], 4)
        self.assertEqual(stats["downlink_acked"], 3)
        self.assertEqual(stats["downlink_held"], 0)

    def test_push_to_unknown_session_is_404(self):
        self.assertEqual(self.server.admin("POST", "/sessions/%s/push" % new_session(), b"x")[0],
                         404)


class Ownership(unittest.TestCase):
    """A token's user must own the session it claims (PROTOCOL.md section 5)."""

    def setUp(self):
        self.tmp = harness.TempDir("tether-server-")
        self.server = Server(self.tmp, extra=["--ack-every", "1"],
                             tokens="tokA alice\ntokB bob\ntokC carol pi-99\n")

    def tearDown(self):
        self.server.stop()

    def log_lines(self, event):
        return [line for line in self.server.process.stderr().splitlines()
                if harness.parse_logfmt(line).get("event") == event]

    def test_another_users_hello_is_4003_and_changes_nothing(self):
        session = session_of("alice", "pi-17")

        async def scenario():
            alice, _ = await open_session(self.server, session, token="tokA")
            for seq in (1, 2, 3):
                await alice.send(data(seq, b"alice %d" % seq))
            await until_ack(alice, 3)
            await alice.close()
            status, _ = self.server.admin("POST", "/sessions/%s/push" % session, b"for alice only")
            self.assertEqual(status, 200)
            before = self.server.session_stats(session)

            # bob knows alice's session id: a higher version, another device,
            # a hole that would wipe her accounting.
            bob = await connect(self.server, token="tokB")
            await bob.send(hello(session, version=99, device="evil", oldest_uplink=1000000,
                                 next_uplink=1000000))
            received = []
            code = None
            try:
                while True:
                    received.append(await asyncio.wait_for(bob.recv(), 3))
            except ConnectionClosed as closed:
                code = closed.code
            except asyncio.TimeoutError:
                await bob.close()
            after = self.server.session_stats(session)

            alice, welcome = await open_session(self.server, session, token="tokA",
                                                oldest_uplink=4, next_uplink=4)
            downlink = await recv(alice)
            await alice.close()
            return code, received, before, after, welcome, downlink

        code, received, before, after, welcome, downlink = run(scenario())
        self.assertEqual(code, 4003)
        self.assertEqual(received, [], "bob must get neither a welcome nor alice's downlink")
        for field in ("received", "gap_count", "missing_seqs", "next_expected", "version",
                      "device", "downlink_next", "downlink_held", "owner"):
            self.assertEqual(after[field], before[field], field)
        self.assertEqual(after["owner"], "alice")
        self.assertEqual(welcome["last_uplink"], 3)
        self.assertEqual(downlink, ("D", 1, b"for alice only"))
        forbidden = self.log_lines("forbidden")
        self.assertEqual(len(forbidden), 1, forbidden)
        fields = harness.parse_logfmt(forbidden[0])
        self.assertEqual((fields["session"], fields["why"]), (session, "owner"))
        self.assertEqual(self.server.stats()["hellos_forbidden"], 1)

    def test_a_token_bound_to_a_device_refuses_every_other_device(self):
        async def scenario():
            wrong = await connect(self.server, token="tokC")
            await wrong.send(hello(session_of("carol", "pi-98"), device="pi-98"))
            code = (await close_code(wrong))[0]
            right, welcome = await open_session(self.server, session_of("carol", "pi-99"),
                                                token="tokC", device="pi-99")
            await right.close()
            return code, welcome

        code, welcome = run(scenario())
        self.assertEqual(code, 4003)
        self.assertEqual(welcome["type"], "welcome")
        self.assertIsNone(self.server.session_stats(session_of("carol", "pi-98")))
        self.assertEqual(harness.parse_logfmt(self.log_lines("forbidden")[0])["why"], "device")

    def test_the_owner_survives_a_restart(self):
        session = session_of("alice", "pi-17")

        async def first():
            alice, _ = await open_session(self.server, session, token="tokA")
            await alice.close()

        run(first())
        self.server.stop()
        os.unlink(os.path.join(self.server.data_dir, "sessions", session, "meta"))
        self.server = Server(self.tmp, data_dir=self.server.data_dir,
                             tokens="tokA alice\ntokB bob\n")

        async def second():
            bob = await connect(self.server, token="tokB")
            await bob.send(hello(session, version=2))
            return (await close_code(bob))[0]

        self.assertEqual(run(second()), 4003)


class Upgrade(unittest.TestCase):
    def setUp(self):
        self.tmp = harness.TempDir("tether-server-")
        self.server = Server(self.tmp)

    def tearDown(self):
        self.server.stop()

    def status_of(self, **kw):
        async def scenario():
            try:
                ws = await connect(self.server, **kw)
            except InvalidStatusCode as error:
                return error.status_code, error.headers
            await ws.close()
            return 101, None

        return run(scenario())

    def test_missing_token_is_401(self):
        self.assertEqual(self.status_of(token=None)[0], 401)

    def test_unknown_token_is_401(self):
        self.assertEqual(self.status_of(token="nope")[0], 401)

    def test_missing_subprotocol_is_400(self):
        self.assertEqual(self.status_of(subprotocols=())[0], 400)
        self.assertEqual(self.status_of(subprotocols=("chat",))[0], 400)

    def test_reject_fault_answers_503_with_retry_after(self):
        status, _ = self.server.admin("POST", "/faults/reject?status=503&retry_after=5&ms=60000")
        self.assertEqual(status, 200)
        code, headers = self.status_of()
        self.assertEqual(code, 503)
        self.assertEqual(headers["Retry-After"], "5")
        self.server.admin("POST", "/faults/reject?status=503&ms=0")
        self.assertEqual(self.status_of()[0], 101)

    def test_help_documents_the_admin_interface(self):
        result = harness.run([SERVER, "--help"])
        self.assertEqual(result.returncode, 0)
        for endpoint in ("/stats", "/faults/reset", "/faults/close", "/faults/silence",
                         "/faults/reject", "/tokens/expire", "/sessions/ID/push", "/quit",
                         "--admin-token-file", "--admin-timeout-ms", "--admin-max-connections",
                         "--max-open-sessions", "--auth-max-failures", "--auth-penalty-ms"):
            self.assertIn(endpoint, result.stdout.decode() if isinstance(result.stdout, bytes)
                          else result.stdout)

    def test_bad_usage_exits_2(self):
        self.assertEqual(harness.run([SERVER, "--listen", "127.0.0.1:0"]).returncode, 2)
        self.assertEqual(harness.run([SERVER, "--bogus", "x"]).returncode, 2)


def raw_upgrade(port, token):
    """One upgrade over a plain socket (faster than a WebSocket client):
    (status, headers as a lowercase dict)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(("GET /v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: tether.v1\r\n"
                      "Authorization: Bearer %s\r\n\r\n" % token).encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    lines = reply.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ")[1]), headers


class BruteForce(unittest.TestCase):
    """Failed upgrades are throttled per source address."""

    def setUp(self):
        self.tmp = harness.TempDir("tether-server-")
        self.server = Server(self.tmp, extra=["--auth-penalty-ms", "1500"])

    def tearDown(self):
        self.server.stop()

    def test_2000_wrong_tokens_get_10_401s_then_429s_until_the_penalty_ends(self):
        statuses = {}
        retry_after = set()
        for guess in range(2000):
            status, headers = raw_upgrade(self.server.port, "guess-%d" % guess)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 429:
                retry_after.add(headers.get("retry-after"))
        self.assertEqual(statuses, {401: 10, 429: 1990})
        self.assertTrue(retry_after <= {"1", "2"}, retry_after)
        # While penalised even the right token is not looked at.
        self.assertEqual(raw_upgrade(self.server.port, TOKEN)[0], 429)
        harness.wait_for(lambda: raw_upgrade(self.server.port, TOKEN)[0] == 101, timeout=5,
                         interval=0.1, message="the penalty never ended")
        stats = self.server.stats()
        self.assertEqual(stats["upgrades_unauthorized"], 10)
        self.assertGreaterEqual(stats["upgrades_throttled"], 1991)
        throttled = [line for line in self.server.process.stderr().splitlines()
                     if harness.parse_logfmt(line).get("event") == "upgrade_throttled"]
        self.assertEqual(len(throttled), 1, throttled)
        self.assertEqual(harness.parse_logfmt(throttled[0])["addr"], "127.0.0.1")

    def test_a_few_failures_are_not_throttled(self):
        for guess in range(9):
            self.assertEqual(raw_upgrade(self.server.port, "guess-%d" % guess)[0], 401)
        self.assertEqual(raw_upgrade(self.server.port, TOKEN)[0], 101)
        self.assertEqual(self.server.stats()["upgrades_throttled"], 0)


class Descriptors(unittest.TestCase):
    """The store's descriptors are bounded, and running out of them fails one
    session at a time, never every session."""

    def setUp(self):
        self.tmp = harness.TempDir("tether-server-")

    def test_far_more_sessions_than_descriptors_and_a_healthy_session_keeps_working(self):
        # 48 descriptors: the process's own, the listeners, a few sockets and
        # the files of 4 sessions at a time; 150 sessions would need 450.
        server = Server(self.tmp, extra=["--max-open-sessions", "4", "--ack-every", "1"],
                        nofile=48)
        healthy_session = new_session()
        sessions = [new_session() for _ in range(150)]

        async def scenario():
            healthy, _ = await open_session(server, healthy_session)
            for seq, session in enumerate(sessions, start=1):
                ws, welcome = await open_session(server, session)
                self.assertFalse(welcome["resumed"])
                await ws.send(data(1, b"first"))
                await until_ack(ws, 1)
                await ws.close()
                await healthy.send(data(seq, b"healthy %d" % seq))
                self.assertEqual(await until_ack(healthy, seq), seq)
            # Old sessions come back from closed files.
            for session in sessions[:10]:
                ws, welcome = await open_session(server, session, oldest_uplink=2,
                                                 next_uplink=2)
                self.assertEqual((welcome["resumed"], welcome["last_uplink"]), (True, 1))
                await ws.send(data(2, b"second"))
                await until_ack(ws, 2)
                await ws.close()
            await healthy.close()

        try:
            run(scenario())
            stats = server.stats()
            self.assertEqual(stats["store"]["sessions"], 151)
            self.assertEqual(stats["store"]["received"], 150 + 150 + 10)
            self.assertFalse(stats["store"]["failed"])
            self.assertEqual(stats["store"]["session_failures"], 0)
            self.assertLessEqual(stats["store"]["open_sessions"], 4)
            self.assertEqual(server.session_stats(healthy_session)["received"], 150)
        finally:
            server.stop()


def cpu_seconds(pid):
    """User plus system CPU time of a process so far (/proc/<pid>/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class DescriptorsUnderLoad(unittest.TestCase):
    """Sessions that leave before their ACK all wait for the next sync at once:
    out of descriptors, the oldest of them is made durable early and closed
    for the newcomer, instead of the newcomer failing."""

    def test_a_burst_of_sessions_gone_before_their_ack(self):
        tmp = harness.TempDir("tether-server-")
        server = Server(tmp, extra=["--max-open-sessions", "4"], nofile=48)
        sessions = [new_session() for _ in range(200)]

        async def scenario():
            healthy, _ = await open_session(server, new_session())
            for seq, session in enumerate(sessions, start=1):
                ws, _ = await open_session(server, session)
                await ws.send(data(1, b"gone before the ack"))
                await ws.close()
                await healthy.send(data(seq, b"healthy"))
            last = await until_ack(healthy, len(sessions))
            await healthy.close()
            return last

        try:
            self.assertEqual(run(scenario()), len(sessions))
            stats = server.stats()
            self.assertEqual(stats["store"]["received"], 2 * len(sessions))
            self.assertEqual(stats["store"]["session_failures"], 0)
            self.assertFalse(any("event=store_error" in line
                                 for line in server.process.stderr().splitlines()))
        finally:
            server.stop()


class AcceptLoop(unittest.TestCase):
    """Out of descriptors, the server stops accepting for a while instead of
    spinning on a listener that stays readable."""

    def setUp(self):
        self.tmp = harness.TempDir("tether-server-")
        # Handshakes that never finish are kept for a minute: the hogs stay.
        self.server = Server(self.tmp, extra=["--ping-timeout-ms", "60000"], nofile=48)

    def tearDown(self):
        self.server.stop()

    def backoff_lines(self):
        return [line for line in self.server.process.stderr().splitlines()
                if harness.parse_logfmt(line).get("event") == "accept_backoff"]

    def test_emfile_costs_little_cpu_and_a_good_client_gets_in_once_descriptors_are_free(self):
        hogs = [socket.create_connection(("127.0.0.1", self.server.port), timeout=TIMEOUT)
                for _ in range(80)]
        try:
            try:
                harness.wait_for(lambda: self.backoff_lines(), timeout=2)
            except harness.HarnessError:
                pass  # no backoff logged: the CPU time below tells what it does instead
            before = cpu_seconds(self.server.process.pid)
            start = time.monotonic()
            time.sleep(2.0)  # the measurement itself: what the server burns meanwhile
            used = cpu_seconds(self.server.process.pid) - before
            elapsed = time.monotonic() - start
        finally:
            for hog in hogs:
                hog.close()
        self.assertLess(used, 0.2 * elapsed, "%.2f s of CPU in %.2f s" % (used, elapsed))

        async def good_client():
            ws, welcome = await open_session(self.server, new_session())
            await ws.close()
            return welcome

        self.assertEqual(run(good_client())["type"], "welcome")
        self.assertGreaterEqual(self.server.stats()["accept_backoffs"], 1)
        lines = self.backoff_lines()
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(harness.parse_logfmt(lines[0])["errno"], "EMFILE")


class Admin(unittest.TestCase):
    """The admin interface: a token for every POST, bounded and timed connections."""

    POSTS = ("/faults/reset", "/faults/close?code=1000", "/faults/silence?ms=1",
             "/faults/reject?ms=1", "/tokens/expire?all=1", "/sessions/%s/push" % new_session(),
             "/quit")

    def setUp(self):
        self.tmp = harness.TempDir("tether-server-")
        self.server = Server(self.tmp, extra=["--admin-timeout-ms", "1000"])

    def tearDown(self):
        self.server.stop()

    def raw_admin(self, method, path, headers):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.admin_port, timeout=TIMEOUT)
        conn.request(method, path, body=b"x" if method == "POST" else None, headers=headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        return response.status, response.getheader("WWW-Authenticate")

    def test_every_post_needs_the_admin_token_and_stats_needs_none(self):
        for path in self.POSTS:
            for headers in ({}, {"Authorization": "Bearer not-the-admin-token"},
                            {"Authorization": "Basic " + TOKEN}):
                status, challenge = self.raw_admin("POST", path, headers)
                self.assertEqual(status, 401, (path, headers))
                self.assertTrue(challenge.startswith("Bearer"), challenge)
        self.assertEqual(self.raw_admin("GET", "/stats", {})[0], 200)
        # Nothing happened: the server runs, the tokens are valid.
        async def scenario():
            ws, _ = await open_session(self.server, new_session())
            await ws.close()

        run(scenario())
        stats = self.server.stats()
        self.assertEqual(stats["admin_unauthorized"], 3 * len(self.POSTS))
        self.assertFalse(stats["silenced"])
        refused = [line for line in self.server.process.stderr().splitlines()
                   if harness.parse_logfmt(line).get("event") == "admin_unauthorized"]
        self.assertEqual(len(refused), 3 * len(self.POSTS))
        self.assertEqual(self.server.admin("POST", "/faults/silence?ms=1")[0], 200)

    def test_the_generated_token_is_0600_random_kept_and_never_printed(self):
        path = os.path.join(self.server.data_dir, "admin.token")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(path) as f:
            token = f.read().strip()
        self.assertRegex(token, r"^[0-9a-f]{64}$")
        self.assertNotIn(token, self.server.process.stdout() + self.server.process.stderr())
        self.server.stop()
        self.server = Server(self.tmp, data_dir=self.server.data_dir)
        with open(path) as f:
            self.assertEqual(f.read().strip(), token)
        other = Server(self.tmp, data_dir=self.tmp.path("other"))
        try:
            with open(os.path.join(other.data_dir, "admin.token")) as f:
                self.assertNotEqual(f.read().strip(), token)
        finally:
            other.stop()

    def test_an_admin_token_file_given_by_the_operator(self):
        token_file = self.tmp.path("ops-admin-token")
        with open(token_file, "w") as f:
            f.write("operator-chosen-admin-token\n")
        self.server.stop()
        self.server = Server(self.tmp, data_dir=self.tmp.path("data-ops"),
                             extra=["--admin-token-file", token_file])
        self.assertFalse(os.path.exists(os.path.join(self.server.data_dir, "admin.token")))
        good = {"Authorization": "Bearer operator-chosen-admin-token"}
        self.assertEqual(self.server.admin("POST", "/faults/silence?ms=1", headers=good)[0], 200)
        self.assertEqual(self.raw_admin("POST", "/faults/silence?ms=1", {})[0], 401)
        with open(token_file, "w") as f:
            f.write("short\n")
        result = harness.run([SERVER, "--listen", "127.0.0.1:0", "--data-dir",
                              self.tmp.path("data-bad"), "--admin-token-file", token_file])
        self.assertEqual(result.returncode, 1)

    def test_idle_connections_cannot_lock_the_interface_out(self):
        idle = [socket.create_connection(("127.0.0.1", self.server.admin_port), timeout=TIMEOUT)
                for _ in range(40)]
        try:
            for sock in idle[:5]:
                sock.sendall(b"GET /stats HTTP/1.1\r\n")  # a request that never ends
            self.assertEqual(self.raw_admin("GET", "/stats", {})[0], 200)
            stats = self.server.stats()
            self.assertGreaterEqual(stats["admin_evicted"], 40 - 16)
        finally:
            for sock in idle:
                sock.close()

    def test_a_connection_that_never_finishes_its_request_is_closed(self):
        with socket.create_connection(("127.0.0.1", self.server.admin_port),
                                      timeout=TIMEOUT) as sock:
            sock.sendall(b"POST /quit HTTP/1.1\r\n")
            start = time.monotonic()
            self.assertEqual(sock.recv(1024), b"")  # closed without an answer
            elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.8)
        self.assertLess(elapsed, 3.0)
        self.assertEqual(self.server.stats()["admin_timeouts"], 1)
        self.assertTrue(self.server.process.alive())


class Faults(unittest.TestCase):
    def setUp(self):
        self.tmp = harness.TempDir("tether-server-")
        self.server = Server(self.tmp)

    def tearDown(self):
        self.server.stop()

    def test_close_fault_sends_code_and_reason(self):
        async def scenario():
            ws, _ = await open_session(self.server, new_session())
            status, _ = self.server.admin("POST", "/faults/close?code=1012&reason=retry_after%3D5")
            self.assertEqual(status, 200)
            return await close_code(ws)

        self.assertEqual(run(scenario()), (1012, "retry_after=5"))

    def test_reset_fault_drops_without_close_frame(self):
        async def scenario():
            ws, _ = await open_session(self.server, new_session())
            self.server.admin("POST", "/faults/reset")
            return await close_code(ws)

        self.assertEqual(run(scenario())[0], 1006)

    def test_expired_token_closes_its_connections_with_4001(self):
        async def scenario():
            mine, _ = await open_session(self.server, new_session())
            other = await connect(self.server, token=OTHER_TOKEN)
            await other.send(hello(new_session()))
            await recv(other)
            status, body = self.server.admin("POST", "/tokens/expire?token=" + TOKEN)
            self.assertEqual((status, body["closed"]), (200, 1))
            code = await close_code(mine)
            await other.send(data(1))
            await until_ack(other, 1)  # the other token's connection lives on
            await other.close()
            try:
                await connect(self.server)
                rejected = None
            except InvalidStatusCode as error:
                rejected = error.status_code
            return code, rejected

        self.assertEqual(run(scenario()), ((4001, "token_expired"), 401))

    def test_silence_stops_answering_pings(self):
        async def scenario():
            ws, _ = await open_session(self.server, new_session())
            self.server.admin("POST", "/faults/silence?ms=1500")
            waiter = await ws.ping(b"are you there")
            try:
                await asyncio.wait_for(asyncio.shield(waiter), 0.8)
                silent = False
            except asyncio.TimeoutError:
                silent = True
            await asyncio.wait_for(waiter, 5)  # answered once the silence ends
            await ws.close()
            return silent

        self.assertTrue(run(scenario()))

    def test_server_pings_idle_clients_and_drops_dead_ones(self):
        self.server.stop()
        self.server = Server(self.tmp, extra=["--ping-interval-ms", "200",
                                              "--ping-timeout-ms", "300"],
                             data_dir=self.tmp.path("data2"))

        async def scenario():
            ws, _ = await open_session(self.server, new_session())
            # websockets answers pings while we read; stay alive a while.
            await asyncio.sleep(0.8)
            self.assertEqual(self.server.stats()["connections"], 1)
            ws.transport.pause_reading()  # now pings go unanswered
            await asyncio.sleep(1.5)
            connections = self.server.stats()["connections"]
            ws.transport.abort()
            return connections

        self.assertEqual(run(scenario()), 0)


class Lifecycle(unittest.TestCase):
    def setUp(self):
        self.tmp = harness.TempDir("tether-server-")

    def test_sigkill_then_restart_resumes_with_the_right_last_uplink(self):
        session = new_session()
        data_dir = self.tmp.path("data")
        server = Server(self.tmp, data_dir=data_dir, extra=["--ack-every", "1"])

        async def before():
            ws, _ = await open_session(server, session)
            for seq in range(1, 21):
                await ws.send(data(seq, b"payload %d" % seq))
            await until_ack(ws, 20)

        run(before())
        server.process.signal(signal.SIGKILL)
        server.process.wait(5)
        server.stop()
        server = Server(self.tmp, data_dir=data_dir)
        try:
            async def after():
                ws, welcome = await open_session(server, session, oldest_uplink=15,
                                                 next_uplink=25)
                await ws.close()
                return welcome

            welcome = run(after())
            self.assertTrue(welcome["resumed"])
            self.assertEqual(welcome["last_uplink"], 20)
            self.assertEqual(server.session_stats(session)["received"], 20)
        finally:
            server.stop()

    def test_sigterm_closes_with_1001_and_exits_0(self):
        server = Server(self.tmp)

        async def scenario():
            ws, _ = await open_session(server, new_session())
            server.process.signal(signal.SIGTERM)
            return await close_code(ws)

        self.assertEqual(run(scenario())[0], 1001)
        self.assertEqual(server.process.wait(5), 0)
        server.stop()

    def test_quit_endpoint_stops_the_server(self):
        server = Server(self.tmp)
        self.assertEqual(server.admin("POST", "/quit")[0], 200)
        self.assertEqual(server.process.wait(5), 0)
        server.stop()


class Tls(unittest.TestCase):
    def setUp(self):
        self.tmp = harness.TempDir("tether-server-")
        self.server = Server(self.tmp, tls=True)

    def tearDown(self):
        self.server.stop()

    def test_wss_hello_data_ack(self):
        context = ssl.create_default_context(cafile=certs().ca)
        session = new_session()

        async def scenario():
            for attempt in range(2):
                ws = await connect(self.server, url="wss://localhost:%d/v1" % self.server.tls_port,
                                   ssl_context=context)
                await ws.send(hello(session, next_uplink=attempt * 5 + 1,
                                    oldest_uplink=attempt * 5 + 1))
                kind, welcome = await recv(ws)
                self.assertEqual(welcome["last_uplink"], attempt * 5)
                for seq in range(attempt * 5 + 1, attempt * 5 + 6):
                    await ws.send(data(seq, os.urandom(3000)))
                await until_ack(ws, attempt * 5 + 5)
                await ws.close()

        run(scenario())
        self.assertEqual(self.server.session_stats(session)["received"], 10)

    def test_session_tickets_let_clients_resume(self):
        import socket
        context = ssl.create_default_context(cafile=certs().ca)

        def handshake(session=None):
            raw = socket.create_connection(("127.0.0.1", self.server.tls_port), timeout=TIMEOUT)
            tls = context.wrap_socket(raw, server_hostname="localhost", session=session)
            reused = tls.session_reused
            saved = tls.session
            tls.close()
            return reused, saved

        reused, session = handshake()
        self.assertFalse(reused)
        self.assertTrue(session.has_ticket)
        reused, _ = handshake(session)
        self.assertTrue(reused)

    def test_client_certificates_are_required_with_client_ca(self):
        c = certs()
        server = Server(self.tmp, tls=True, data_dir=self.tmp.path("mtls"),
                        extra=["--client-ca", c.client_ca])
        try:
            async def attempt(with_certificate):
                context = ssl.create_default_context(cafile=c.ca)
                if with_certificate:
                    context.load_cert_chain(c.client, c.client_key)
                try:
                    ws = await connect(server, url="wss://localhost:%d/v1" % server.tls_port,
                                       ssl_context=context)
                except Exception:  # noqa: BLE001 - the handshake must fail somehow
                    return False
                await ws.send(hello(new_session()))
                kind, _ = await recv(ws)
                await ws.close()
                return kind == "json"

            self.assertTrue(run(attempt(True)))
            self.assertFalse(run(attempt(False)))
        finally:
            server.stop()

    def test_plain_client_on_the_tls_port_is_dropped(self):
        async def scenario():
            try:
                await connect(self.server, url="ws://127.0.0.1:%d/v1" % self.server.tls_port)
            except Exception:  # noqa: BLE001 - any failure is the point
                return True
            return False

        self.assertTrue(run(scenario()))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV)
