# SPDX-License-Identifier: MIT
"""Checks of make bench's sink, senders and allocation counter.

Usage: /usr/bin/python3 test_peers.py --build-dir DIR [TestClass]

SinkProtocol speaks raw bytes to tether-bench-sink (frames split byte by
byte, fragmentation, every length encoding, ping, protocol errors). Senders
runs every available sender against the sink and against a scripted server
that answers wrongly (no 101, a wrong accept, close code 1001, connection
refused). AllocCount preloads the counter into a small program.
Nothing reaches beyond 127.0.0.1.
"""

import argparse
import base64
import hashlib
import os
import socket
import struct
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import peers  # noqa: E402
from common import harness  # noqa: E402

ARGS = argparse.ArgumentParser(add_help=False)
ARGS.add_argument("--build-dir", default=os.path.join(common.SOURCE_DIR, "build", "host"))
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
BUILD_DIR = os.path.abspath(OPTIONS.build_dir)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MASK = b"\x11\x22\x33\x44"


def frame(opcode, payload=b"", fin=True, masked=True, rsv=0, length_form=None):
    """A client frame; length_form forces 16 or 64 for the extended lengths."""
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if length_form == 64 or (length_form is None and size > 0xFFFF):
        head += bytes([mask_bit | 127]) + struct.pack(">Q", size)
    elif length_form == 16 or size >= 126:
        head += bytes([mask_bit | 126]) + struct.pack(">H", size)
    else:
        head += bytes([mask_bit | size])
    if not masked:
        return head + payload
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def close_frame(code):
    return frame(0x8, struct.pack(">H", code))


class Client:
    """A WebSocket client on a plain socket, for the sink tests."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16))
        self.sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
                          b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError("sink closed during the upgrade")
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        self.head = head.decode()
        expected = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        assert self.head.startswith("HTTP/1.1 101"), self.head
        assert "Sec-WebSocket-Accept: %s" % expected in self.head, self.head

    def send(self, data, one_byte_at_a_time=False):
        if one_byte_at_a_time:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(len(data)):
                self.sock.sendall(data[i:i + 1])
        else:
            self.sock.sendall(data)

    def read_frame(self):
        """(opcode, payload) of the next server frame; None at EOF."""
        while True:
            if len(self.buffer) >= 2:
                size = self.buffer[1] & 0x7F
                assert size < 126 and not self.buffer[1] & 0x80
                if len(self.buffer) >= 2 + size:
                    opcode, payload = self.buffer[0] & 0x0F, self.buffer[2:2 + size]
                    self.buffer = self.buffer[2 + size:]
                    return opcode, payload
            chunk = self.sock.recv(4096)
            if not chunk:
                return None
            self.buffer += chunk

    def close_code(self):
        """The code of the server's close frame (after skipping pongs)."""
        while True:
            got = self.read_frame()
            assert got is not None, "EOF before the server's close frame"
            if got[0] == 0x8:
                return struct.unpack(">H", got[1])[0] if got[1] else 1005

    def expect_eof(self):
        assert self.read_frame() is None

    def close(self):
        self.sock.close()


class SinkProtocol(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sink = peers.start_sink(BUILD_DIR)

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()

    def conn(self):
        return peers.read_conn_line(self.sink, timeout=5)

    def test_counts_messages_split_byte_by_byte(self):
        client = Client(self.sink.port)
        data = frame(0x1, b"x" * 100) * 3 + frame(0x2, b"") + close_frame(1000)
        client.send(data, one_byte_at_a_time=True)
        self.assertEqual(client.close_code(), 1000)
        client.expect_eof()  # the FIN follows the close reply
        client.close()
        conn = self.conn()
        self.assertEqual((conn["messages"], conn["bytes"], conn["close_code"]), (4, 300, 1000))
        self.assertNotIn("error", conn)

    def test_counts_a_fragmented_message_once_with_a_ping_between(self):
        client = Client(self.sink.port)
        client.send(frame(0x1, b"ab", fin=False) + frame(0x9, b"hi") + frame(0x0, b"cd", fin=False) +
                    frame(0x0, b"ef") + close_frame(1000))
        self.assertEqual(client.read_frame(), (0xA, b"hi"))
        self.assertEqual(client.close_code(), 1000)
        client.close()
        conn = self.conn()
        self.assertEqual((conn["messages"], conn["bytes"]), (1, 6))

    def test_reads_16_and_64_bit_lengths(self):
        client = Client(self.sink.port)
        big = b"y" * 70000
        client.send(frame(0x2, b"z" * 200) + frame(0x2, b"z" * 5, length_form=16) + frame(0x2, big) +
                    frame(0x2, b"q" * 7, length_form=64) + close_frame(4001))
        self.assertEqual(client.close_code(), 4001)
        client.close()
        conn = self.conn()
        self.assertEqual((conn["messages"], conn["bytes"], conn["close_code"]),
                         (4, 200 + 5 + 70000 + 7, 4001))

    def test_answers_an_empty_close_with_an_empty_close(self):
        client = Client(self.sink.port)
        client.send(frame(0x8))
        self.assertEqual(client.close_code(), 1005)
        client.close()
        self.assertEqual(self.conn()["close_code"], 1005)

    def assert_protocol_error(self, data, error):
        client = Client(self.sink.port)
        client.send(data)
        self.assertEqual(client.close_code(), 1002)
        client.close()
        conn = self.conn()
        self.assertEqual(conn["error"], error)
        self.assertEqual(conn["close_code"], 1006)

    def test_rejects_an_unmasked_frame(self):
        self.assert_protocol_error(frame(0x1, b"a" * 10, masked=False), "unmasked client frame")

    def test_rejects_reserved_bits(self):
        self.assert_protocol_error(frame(0x1, b"a", rsv=0x40), "reserved bits set")

    def test_rejects_an_unknown_opcode(self):
        self.assert_protocol_error(frame(0x3, b"a"), "unknown opcode")

    def test_rejects_a_continuation_without_a_message(self):
        self.assert_protocol_error(frame(0x0, b"a"), "continuation without a message")

    def test_rejects_a_new_message_inside_a_fragmented_one(self):
        self.assert_protocol_error(frame(0x1, b"a", fin=False) + frame(0x1, b"b"),
                                   "new message inside a fragmented one")

    def test_rejects_a_fragmented_ping(self):
        self.assert_protocol_error(frame(0x9, b"a", fin=False),
                                   "fragmented or oversized control frame")

    def test_rejects_an_invalid_close_code(self):
        self.assert_protocol_error(close_frame(1005), "invalid close code")

    def test_serves_many_connections_at_once(self):
        clients = [Client(self.sink.port) for _ in range(50)]
        for index, client in enumerate(clients):
            client.send(frame(0x1, b"m") * index)
        for client in clients:
            client.send(close_frame(1000))
            self.assertEqual(client.close_code(), 1000)
            client.close()
        counts = sorted(self.conn()["messages"] for _ in clients)
        self.assertEqual(counts, list(range(50)))


class ScriptedServer:
    """Accepts one connection and answers it as `behaviour` says:
    "no_101" (HTTP 200), "bad_accept" (101 with a wrong accept),
    "close_1001" (a correct 101, then close 1001 to the client's close)."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(20)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        conn.settimeout(20)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        key = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:")][0]
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        if self.behaviour == "no_101":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        elif self.behaviour == "bad_accept":
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                         base64.b64encode(b"x" * 20) + b"\r\n\r\n")
        else:
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            while True:  # skip frames up to the client's close
                while len(data) < 2:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                size, at = data[1] & 0x7F, 2
                if size == 126:
                    size, at = None, 4
                elif size == 127:
                    size, at = None, 10
                while len(data) < at + 4:
                    data += conn.recv(65536)
                if size is None:
                    size = int.from_bytes(data[2:at], "big")
                while len(data) < at + 4 + size:
                    data += conn.recv(65536)
                opcode = data[0] & 0x0F
                data = data[at + 4 + size:]
                if opcode == 0x8:
                    conn.sendall(b"\x88\x02" + struct.pack(">H", 1001))
                    break
            try:
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
            except OSError:
                pass
        conn.close()

    def close(self):
        self.listener.close()
        self.thread.join(5)


class Senders(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # No npm ci here (it would reach the registry): without node_modules
        # the Node sender is skipped; make bench runs peers.prepare_node().
        cls.senders = peers.senders(BUILD_DIR)

    def for_each_sender(self, body):
        names = [sender["name"] for sender in self.senders]
        self.assertEqual(names, ["raw", "lws", "python", "node"])
        for sender in self.senders:
            with self.subTest(sender=sender["name"]):
                if not sender["available"]:
                    self.skipTest(sender["why_unavailable"])
                for path in sender["binary_paths"]:
                    self.assertTrue(os.path.isfile(path), path)
                body(sender)

    def test_every_sender_delivers_its_messages_and_closes_with_1000(self):
        with peers.start_sink(BUILD_DIR) as sink:
            def body(sender):
                run = common.run_measured(sender["command"]("127.0.0.1", sink.port, 2000), timeout=60)
                run.check()
                sent = peers.parse_sent_line(run.stdout)
                conn = peers.read_conn_line(sink)
                self.assertEqual(sent["sent"], 2000)
                self.assertGreater(sent["elapsed_us"], 0)
                self.assertEqual((conn["messages"], conn["bytes"], conn["close_code"]),
                                 (2000, 200000, 1000))
                self.assertNotIn("error", conn)
            self.for_each_sender(body)

    def test_every_sender_fails_when_the_connection_is_refused(self):
        port = harness.free_port()

        def body(sender):
            run = common.run_measured(sender["command"]("127.0.0.1", port, 10), timeout=30)
            self.assertNotEqual(run.returncode, 0)
        self.for_each_sender(body)

    def against_scripted_server(self, behaviour, expect_in_stderr=None):
        def body(sender):
            server = ScriptedServer(behaviour)
            try:
                run = common.run_measured(sender["command"]("127.0.0.1", server.port, 10),
                                          timeout=30)
            finally:
                server.close()
            self.assertNotEqual(run.returncode, 0, run.stdout)
            if expect_in_stderr:
                self.assertIn(expect_in_stderr, run.stderr)
        self.for_each_sender(body)

    def test_every_sender_fails_without_a_101(self):
        self.against_scripted_server("no_101")

    def test_every_sender_fails_on_a_wrong_accept(self):
        self.against_scripted_server("bad_accept")

    def test_every_sender_fails_on_a_close_code_other_than_1000(self):
        self.against_scripted_server("close_1001", "1001")


class AllocCount(unittest.TestCase):
    def test_counts_a_process_allocations_into_the_named_file(self):
        tmp = harness.TempDir("alloc-count")
        out = tmp.path("allocs.txt")
        env = peers.alloc_count_env(BUILD_DIR, out)
        script = "import threading\nx=[bytearray(1000) for _ in range(1000)]\n" \
                 "t=[threading.Thread(target=lambda: [bytearray(5000) for _ in range(500)]) " \
                 "for _ in range(4)]\n[a.start() for a in t]\n[a.join() for a in t]\n"
        result = harness.run([peers.PYTHON, "-c", script], env=env, timeout=30)
        self.assertEqual(result.returncode, 0, result)
        entries = peers.read_alloc_counts(out)
        self.assertEqual(len(entries), 1)
        self.assertGreater(entries[0]["pid"], 0)
        self.assertGreaterEqual(entries[0]["allocs"], 1000 + 4 * 500)
        self.assertGreaterEqual(entries[0]["bytes"], 1000 * 1000 + 4 * 500 * 5000)

    def test_counts_every_allocation_function(self):
        # The same script calls each function once or twice through ctypes
        # (prepared up front, plain int arguments): the counts of the two
        # runs differ by exactly one round of calls and its bytes.
        tmp = harness.TempDir("alloc-count-functions")
        script = """import ctypes, sys
libc = ctypes.CDLL(None)
size, vp, pp = ctypes.c_size_t, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
calls = []
for name, argtypes, args in (
        ("malloc", [size], (100001,)), ("calloc", [size, size], (3, 100000)),
        ("realloc", [vp, size], (None, 100003)), ("memalign", [size, size], (64, 100004)),
        ("aligned_alloc", [size, size], (64, 100032)), ("valloc", [size], (100006,)),
        ("pvalloc", [size], (100008,)),
        ("posix_memalign", [pp, size, size], (ctypes.byref(vp()), 64, 100007))):
    function = getattr(libc, name)
    function.argtypes = argtypes
    function.restype = vp
    calls.append((function, args))
for _ in range(int(sys.argv[1])):
    for function, args in calls:
        function(*args)
"""
        counts = []
        for rounds in ("1", "2"):
            out = tmp.path("allocs-%s.txt" % rounds)
            env = peers.alloc_count_env(BUILD_DIR, out)
            result = harness.run([peers.PYTHON, "-c", script, rounds], env=env, timeout=30)
            self.assertEqual(result.returncode, 0, result)
            counts.append(peers.read_alloc_counts(out)[0])
        expected_bytes = 100001 + 300000 + 100003 + 100004 + 100032 + 100006 + 100008 + 100007
        self.assertEqual(counts[1]["allocs"] - counts[0]["allocs"], 8)
        self.assertEqual(counts[1]["bytes"] - counts[0]["bytes"], expected_bytes)

if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV, verbosity=2)
