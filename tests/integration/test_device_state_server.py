#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Device state (docs/PROTOCOL.md section 9) against the real tether-server with
its file store: python3-websockets speaks tether.v1 by hand as the device, the
admin interface plays the backend.

Usage: /usr/bin/python3 test_device_state_server.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import argparse
import asyncio
import http.client
import json
import os
import sys
import unittest
import uuid

ARGS = argparse.ArgumentParser(add_help=False)
ARGS.add_argument("--source-dir", required=True)
ARGS.add_argument("--build-dir", required=True)
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
sys.path.insert(0, os.path.join(OPTIONS.source_dir, "tests", "integration"))

import harness  # noqa: E402
import resume_harness as rh  # noqa: E402
import websockets  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

TOKEN = "state-token"
TIMEOUT = 10.0


def hello(session, version, desired_version=0, features=("state",)):
    fields = {"type": "hello", "session": session, "version": version, "device": "pi-17",
              "last_downlink": 0, "oldest_uplink": 1, "next_uplink": 1,
              "features": list(features), "desired_version": desired_version}
    return json.dumps(fields)


def merge(document, patch):
    """RFC 7396, as the server applies it (for the expected results)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(document) if isinstance(document, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


class Device:
    """One connection: hello, welcome, then whatever the test sends and reads."""

    def __init__(self, port, session, version, desired_version=0, features=("state",)):
        self.port = port
        self.session = session
        self.version = version
        self.desired_version = desired_version
        self.features = features
        self.ws = None
        self.welcome = None

    async def __aenter__(self):
        self.ws = await websockets.connect(
            "ws://127.0.0.1:%d/v1" % self.port, subprotocols=["tether.v1"],
            extra_headers={"Authorization": "Bearer " + TOKEN}, open_timeout=TIMEOUT,
            max_size=1 << 20)
        await self.ws.send(hello(self.session, self.version, self.desired_version, self.features))
        self.welcome = json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT))
        assert self.welcome["type"] == "welcome", self.welcome
        return self

    async def __aexit__(self, *exc):
        await self.ws.close()

    async def send(self, fields):
        await self.ws.send(json.dumps(fields))

    async def next_json(self, timeout=TIMEOUT):
        """The next text message (binary ones, downlink and ACKs, are skipped)."""
        while True:
            message = await asyncio.wait_for(self.ws.recv(), timeout)
            if isinstance(message, str):
                return json.loads(message)

    async def quiet(self, seconds=0.5):
        """True when no text message arrives within `seconds`."""
        try:
            message = await self.next_json(timeout=seconds)
        except asyncio.TimeoutError:
            return True
        raise AssertionError("unexpected message %r" % (message,))


class StateServerTestCase(unittest.TestCase):
    SERVER_EXTRA = ()

    def setUp(self):
        self.tmp = harness.TempDir("state-server-")
        self.data_dir = self.tmp.path("data")
        tokens = self.tmp.path("tokens")
        with open(tokens, "w") as f:
            f.write(TOKEN + " alice\n")
        self.server = rh.Server(OPTIONS.build_dir, self.data_dir, tokens,
                                list(self.SERVER_EXTRA)).start()
        self.session = str(uuid.uuid4())

    def tearDown(self):
        self.server.stop()

    def admin(self, method, path, body=b"", token=True):
        """(status, parsed JSON body) of one admin request."""
        connection = http.client.HTTPConnection("127.0.0.1", self.server.admin_port,
                                                timeout=TIMEOUT)
        headers = harness.admin_headers(self.data_dir) if token else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response.status, json.loads(data) if data else None

    def desire(self, patch, expect=None):
        path = "/sessions/%s/desired" % self.session
        if expect is not None:
            path += "?expect=%d" % expect
        body = patch if isinstance(patch, (bytes, str)) else json.dumps(patch)
        return self.admin("POST", path, body.encode() if isinstance(body, str) else body)

    def state(self):
        status, body = self.admin("GET", "/sessions/%s/state" % self.session)
        self.assertEqual(status, 200, body)
        return body

    def run_async(self, coroutine):
        return asyncio.run(asyncio.wait_for(coroutine, 60))

    def create_session(self):
        """A first connection, so the server knows the session."""
        async def first():
            async with Device(self.server.port, self.session, 1) as device:
                self.assertIn("state", device.welcome.get("features", []))
                self.assertTrue(await device.quiet(0.3))  # no desired document yet
        self.run_async(first())


class Server(StateServerTestCase):
    def test_a_long_outage_is_one_snapshot_of_the_final_document(self):
        self.create_session()
        expected = {}
        for i in range(1, 101):
            patch = {"step": i, "key%d" % (i % 7): i}
            if i % 10 == 0:
                patch["key3"] = None
            status, body = self.desire(patch)
            self.assertEqual((status, body["version"]), (200, i))
            expected = merge(expected, patch)

        async def reconnect():
            async with Device(self.server.port, self.session, 2, desired_version=5) as device:
                message = await device.next_json()
                self.assertEqual(message["type"], "desired")
                self.assertEqual(message["version"], 100)
                self.assertTrue(message["snapshot"])
                self.assertEqual(message["state"], expected)
                self.assertTrue(await device.quiet())  # one message, nothing more
                await device.send({"type": "applied", "version": 100})
                await asyncio.sleep(0.5)  # applied is recorded with the next sync
        self.run_async(reconnect())
        state = self.state()
        self.assertEqual(state["desired_version"], 100)
        self.assertEqual(state["desired"], expected)
        self.assertEqual(state["desired_applied"], 100)
        self.assertEqual(self.server.session_stats(self.session)["desired_applied"], 100)

    def test_a_short_gap_gets_the_increments_only_and_live_changes_follow(self):
        self.create_session()
        self.assertEqual(self.desire({"name": "n" * 300, "rate": 1})[0], 200)
        self.assertEqual(self.desire({"rate": 2})[0], 200)
        self.assertEqual(self.desire({"mode": "eco"})[0], 200)

        async def reconnect():
            async with Device(self.server.port, self.session, 2, desired_version=1) as device:
                first = await device.next_json()
                second = await device.next_json()
                self.assertEqual([first["version"], second["version"]], [2, 3])
                self.assertEqual([first["snapshot"], second["snapshot"]], [False, False])
                self.assertEqual(first["patch"], {"rate": 2})
                self.assertEqual(second["patch"], {"mode": "eco"})
                self.assertNotIn("state", first)
                self.assertTrue(await device.quiet())
                # While online, a change is sent at once as its increment.
                status, body = await asyncio.get_running_loop().run_in_executor(
                    None, self.desire, {"rate": 3})
                self.assertEqual((status, body["version"]), (200, 4))
                live = await device.next_json()
                self.assertEqual((live["version"], live["snapshot"], live["patch"]),
                                 (4, False, {"rate": 3}))
        self.run_async(reconnect())

    def test_reports_stale_refused_with_the_current_document_repeat_answered_ok(self):
        self.create_session()

        async def device_reports():
            async with Device(self.server.port, self.session, 2) as device:
                await device.send({"type": "report", "id": "00000000000000a1", "base": 0,
                                   "patch": {"temp": 20}})
                self.assertEqual(await device.next_json(),
                                 {"type": "report_ok", "id": "00000000000000a1", "version": 1})
                # The answer was lost: the same report again, the same answer.
                await device.send({"type": "report", "id": "00000000000000a1", "base": 0,
                                   "patch": {"temp": 20}})
                self.assertEqual(await device.next_json(),
                                 {"type": "report_ok", "id": "00000000000000a1", "version": 1})
                # Another report on the old base (a second instance of the device).
                await device.send({"type": "report", "id": "00000000000000b2", "base": 0,
                                   "state": {"temp": 99}})
                refused = await device.next_json()
                self.assertEqual(refused["type"], "report_refused")
                self.assertEqual(refused["id"], "00000000000000b2")
                self.assertEqual(refused["reason"], "stale")
                self.assertEqual(refused["version"], 1)
                self.assertEqual(refused["state"], {"temp": 20})
                # Rebased, it is applied.
                await device.send({"type": "report", "id": "00000000000000b2", "base": 1,
                                   "patch": {"fan": "on"}})
                self.assertEqual((await device.next_json())["version"], 2)
                # Too large, and not an object: refused, the connection stays.
                await device.send({"type": "report", "id": "00000000000000c3", "base": 2,
                                   "patch": {"big": "x" * 8200}})
                self.assertEqual((await device.next_json())["reason"], "too_large")
                await device.send({"type": "report", "id": "00000000000000d4", "base": 2,
                                   "patch": [1, 2]})
                refused = await device.next_json()
                self.assertEqual((refused["reason"], refused["version"]), ("invalid", 2))
        self.run_async(device_reports())
        state = self.state()
        self.assertEqual(state["reported_version"], 2)
        self.assertEqual(state["reported"], {"temp": 20, "fan": "on"})
        stats = self.server.stats()
        self.assertEqual(stats["reports_applied"], 3)
        self.assertEqual(stats["reports_refused"], 3)

    def test_state_view_has_the_delta_and_survives_a_restart(self):
        self.create_session()
        self.assertEqual(self.desire({"rate": 5, "mode": "eco"})[0], 200)

        async def report():
            async with Device(self.server.port, self.session, 2) as device:
                snapshot = await device.next_json()
                self.assertEqual((snapshot["version"], snapshot["snapshot"]), (1, True))
                await device.send({"type": "applied", "version": 1})
                await device.send({"type": "report", "id": "00000000000000e5", "base": 0,
                                   "state": {"rate": 5, "mode": "normal", "uptime": 3}})
                self.assertEqual((await device.next_json())["type"], "report_ok")
        self.run_async(report())
        self.server.kill()
        self.server.start()
        state = self.state()
        self.assertEqual(state["desired"], {"rate": 5, "mode": "eco"})
        self.assertEqual(state["reported"], {"rate": 5, "mode": "normal", "uptime": 3})
        self.assertEqual(state["reported_version"], 1)
        self.assertEqual(state["delta"], {"mode": "eco"})

    def test_admin_desired_answers(self):
        status, _ = self.desire({"a": 1})
        self.assertEqual(status, 404)  # the server does not know the session yet
        self.assertEqual(self.admin("GET", "/sessions/%s/state" % self.session)[0], 404)
        self.create_session()
        self.assertEqual(self.desire({"a": 1}, expect=0), (200, {"ok": True, "version": 1}))
        status, body = self.desire({"a": 2}, expect=0)
        self.assertEqual((status, body["version"]), (409, 1))
        self.assertEqual(self.desire(b"not json")[0], 400)
        self.assertEqual(self.desire(b"[1]")[0], 400)
        self.assertEqual(self.desire({"big": "x" * 9000})[0], 413)
        status, _ = self.admin("POST", "/sessions/%s/desired" % self.session, b"{}", token=False)
        self.assertEqual(status, 401)
        self.assertEqual(self.state()["desired_version"], 1)

    def test_state_messages_without_negotiation_close_4002(self):
        self.create_session()

        async def no_state():
            async with Device(self.server.port, self.session, 2, features=()) as device:
                self.assertNotIn("state", device.welcome.get("features", []))
                await device.send({"type": "applied", "version": 1})
                with self.assertRaises(ConnectionClosed) as closed:
                    await device.next_json()
                return closed.exception.rcvd.code
        self.assertEqual(self.run_async(no_state()), 4002)

        async def applied_beyond():
            async with Device(self.server.port, self.session, 3) as device:
                await device.send({"type": "applied", "version": 7})
                with self.assertRaises(ConnectionClosed) as closed:
                    await device.next_json()
                return closed.exception.rcvd.code
        self.assertEqual(self.run_async(applied_beyond()), 4002)

        async def invalid():
            async with Device(self.server.port, self.session, 4) as device:
                await device.send({"type": "applied", "version": 0})
                with self.assertRaises(ConnectionClosed) as closed:
                    await device.next_json()
                return closed.exception.rcvd.code
        self.assertEqual(self.run_async(invalid()), 4002)


class SmallLimit(StateServerTestCase):
    """--max-message-size below a state message: state still fits, DATA keeps the limit."""

    SERVER_EXTRA = ("--max-message-size", "1024")

    def test_a_large_report_fits_and_large_data_is_refused(self):
        self.create_session()

        async def device_sends():
            async with Device(self.server.port, self.session, 2) as device:
                await device.send({"type": "report", "id": "00000000000000f6", "base": 0,
                                   "state": {"blob": "b" * 8000}})
                self.assertEqual((await device.next_json())["type"], "report_ok")
                await device.ws.send(b"D\x00" + (1).to_bytes(8, "big") + b"x" * 2000)
                with self.assertRaises(ConnectionClosed) as closed:
                    await device.next_json()
                return closed.exception.rcvd.code
        self.assertEqual(self.run_async(device_sends()), 1009)
        self.assertEqual(self.state()["reported"], {"blob": "b" * 8000})


class NoState(StateServerTestCase):
    """--no-state: the welcome leaves "state" out and state messages are violations."""

    SERVER_EXTRA = ("--no-state",)

    def test_state_is_not_negotiated(self):
        async def device():
            async with Device(self.server.port, self.session, 1) as device:
                self.assertNotIn("state", device.welcome.get("features", []))
                await device.send({"type": "report", "id": "00000000000000a1", "base": 0,
                                   "patch": {"t": 1}})
                with self.assertRaises(ConnectionClosed) as closed:
                    await device.next_json()
                return closed.exception.rcvd.code
        self.assertEqual(self.run_async(device()), 4002)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV)
