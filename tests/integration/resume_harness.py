# SPDX-License-Identifier: MIT
"""Helpers for the tether.v1 end-to-end tests: tether-server, its admin
interface, its store on disk, and tether-cat as the device."""

import http.client
import json
import os
import struct
import threading
import time
import uuid
import zlib

import harness

SESSION_NAMESPACE = uuid.UUID("7ada0a06-5620-4a46-80ff-248e31991504")


def session_id(user, device):
    """The session id a client derives (UUIDv5 of "<user>\\n<device>")."""
    return str(uuid.uuid5(SESSION_NAMESPACE, "%s\n%s" % (user, device)))


class Server:
    """tether-server on fixed ports, so a restart keeps its address."""

    def __init__(self, build_dir, data_dir, tokens, extra=()):
        self.binary = os.path.join(build_dir, "apps", "tether-server")
        self.data_dir = data_dir
        self.tokens = tokens
        self.extra = list(extra)
        self.port, self.admin_port = self._two_ports()
        self.process = None
        self.started = False

    @staticmethod
    def _two_ports():
        # free_port() may hand out the port it just gave (bind 0, release,
        # bind 0 again): the listener and the admin interface need two.
        port = harness.free_port()
        admin_port = harness.free_port()
        while admin_port == port:
            admin_port = harness.free_port()
        return port, admin_port

    def start(self):
        # Another process may take a port between free_port() and the bind:
        # before the first start (nobody knows the ports yet) take new ones and
        # try again. A restart keeps its ports, as clients know them.
        for attempt in range(5):
            cmd = [self.binary, "--listen", "127.0.0.1:%d" % self.port,
                   "--admin", "127.0.0.1:%d" % self.admin_port,
                   "--data-dir", self.data_dir, "--tokens", self.tokens] + self.extra
            self.process = harness.start_process(cmd, expect_port=False, name="tether-server")
            try:
                self.process.wait_for_line(r"listen=\d+", timeout=10)
            except harness.HarnessError:
                if self.started or attempt == 4 or \
                        "Address already in use" not in self.process.stderr():
                    raise
                self.process.stop()
                self.port, self.admin_port = self._two_ports()
                continue
            self.started = True
            return self
        return self

    def kill(self):
        """SIGKILL: no chance to sync or close anything."""
        self.process.signal(9)
        self.process.wait(10)

    def stop(self):
        if self.process is not None and self.process.alive():
            self.process.stop()

    def admin(self, method, path, body=b""):
        connection = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=5)
        connection.request(method, path, body=body, headers=harness.admin_headers(self.data_dir))
        response = connection.getresponse()
        data = response.read()
        connection.close()
        if response.status >= 300:
            raise harness.HarnessError("admin %s %s: %d %s" % (method, path, response.status, data))
        return data

    def stats(self):
        return json.loads(self.admin("GET", "/stats"))

    def session_stats(self, session):
        for item in self.stats().get("sessions", []):
            if item["session"] == session:
                return item
        return None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def read_records(path):
    """A record log: key u64, length u32, body, crc32 (little-endian). A torn
    tail is where the store itself stops reading."""
    records = []
    if not os.path.exists(path):
        return records
    with open(path, "rb") as f:
        data = f.read()
    at = 0
    while at + 16 <= len(data):
        key, length = struct.unpack_from("<QI", data, at)
        end = at + 12 + length
        if end + 4 > len(data):
            break
        (crc,) = struct.unpack_from("<I", data, end)
        if zlib.crc32(data[at:end]) & 0xFFFFFFFF != crc:
            break
        records.append((key, data[at + 12:end]))
        at = end + 4
    return records


def uplink(data_dir, session):
    """[(seq, payload)] the server stored, in file order."""
    return read_records(os.path.join(data_dir, "sessions", session, "uplink.log"))


def gaps(data_dir, session):
    """[(first, last, reason)] the server recorded."""
    out = []
    for first, body in read_records(os.path.join(data_dir, "sessions", session, "gaps.log")):
        (last,) = struct.unpack_from("<Q", body, 0)
        out.append((first, last, body[8:].decode()))
    return out


class Device:
    """tether-cat speaking tether.v1, fed by a steady producer of numbered lines."""

    def __init__(self, build_dir, server, state_dir, token_file, device="pi-1", extra=(),
                 token_command=False):
        credentials = (["--token-command", "cat " + token_file] if token_command
                       else ["--token-file", token_file])
        self.cmd = [os.path.join(build_dir, "apps", "tether-cat"), "--tether-v1",
                    "--state-dir", state_dir, "--device-id", device] + credentials + [
                    "--ping-interval", "500", "--pong-timeout", "500", "--backoff-initial", "100",
                    "--backoff-max", "800", "--handshake-timeout", "1000"] + list(extra) + \
                   ["ws://127.0.0.1:%d/v1" % server.port]
        self.process = None
        self.produced = []
        self._producing = False
        self._thread = None

    def start(self):
        self.process = harness.start_process(self.cmd, expect_port=False, stdin=harness.PIPE,
                                             name="tether-cat")
        return self

    def produce(self, prefix, rate_per_s=200):
        """Writes prefix-1, prefix-2, ... at a steady rate until stop_producing()."""
        self._producing = True

        def run():
            k = 0
            while self._producing:
                k += 1
                line = "%s-%d" % (prefix, k)
                if not self.process.write_stdin((line + "\n").encode()):
                    return
                self.produced.append(line)
                time.sleep(1.0 / rate_per_s)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop_producing(self):
        self._producing = False
        if self._thread is not None:
            self._thread.join(5)

    def finish(self, timeout=30):
        """Ends input; tether-cat exits once everything is acknowledged."""
        self.stop_producing()
        self.process.close_stdin()
        return self.process.wait(timeout)

    def kill(self):
        self.stop_producing()
        self.process.signal(9)
        self.process.wait(10)

    def downlink(self):
        return self.process.stdout().splitlines()

    def log(self):
        return [harness.parse_logfmt(line) for line in self.process.stderr().splitlines()]
