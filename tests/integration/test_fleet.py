#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tether-server as a fleet: several instances on one Redis (with a replica and
Sentinel where the test says so), tether-cat as the device with every instance
as an endpoint, and real kills in the middle of the stream.

The verdict is read from Redis itself (the session's uplink stream, its gap
stream and its state hash), never from the servers' own statistics: every
message the device produced is in Redis exactly once and in order.

Usage: /usr/bin/python3 test_fleet.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import argparse
import asyncio
import json
import os
import sys
import time
import unittest

ARGS = argparse.ArgumentParser(add_help=False)
ARGS.add_argument("--source-dir", required=True)
ARGS.add_argument("--build-dir", required=True)
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
sys.path.insert(0, os.path.join(OPTIONS.source_dir, "tests", "integration"))

import harness  # noqa: E402
import redis  # noqa: E402
import redis_harness  # noqa: E402
import resume_harness as rh  # noqa: E402

BUILD = OPTIONS.build_dir
PREFIX = "tether"
MASTER = "tether-primary"


def uplink_stream(client, session):
    return "%s:{%s}:up" % (PREFIX, session)


def stored_lines(client, session):
    """[(seq, payload text)] of the session's uplink stream, in stream order."""
    out = []
    for entry_id, fields in client.xrange(uplink_stream(client, session), "-", "+"):
        seq = int(entry_id.split(b"-")[0])
        out.append((seq, fields[b"payload"].decode()))
    return out


def recorded_gaps(client, session):
    return [(int(f[b"first"]), int(f[b"last"]), f[b"reason"].decode())
            for _, f in client.xrange("%s:{%s}:gaps" % (PREFIX, session), "-", "+")]


def session_state(client, session):
    return {k.decode(): v.decode() for k, v in
            client.hgetall("%s:{%s}:state" % (PREFIX, session)).items()}


class Fleet:
    """N tether-server instances on one Redis, one token file, one device."""

    def __init__(self, test, name, instances=2, redis_args=None, server_extra=(),
                 tokens="token-1\n", sentinel=False, replica=False):
        self.test = test
        self.tmp = harness.TempDir("fleet-%s-" % name)
        self.redis = redis_harness.start_redis(self.tmp.path("redis"), appendonly=True,
                                               extra_args=redis_args or [])
        self.replica = None
        self.sentinel = None
        if replica:
            self.replica = redis_harness.start_redis(self.tmp.path("replica"), appendonly=True,
                                                     replica_of=self.redis.port)
        if sentinel:
            self.sentinel = redis_harness.start_sentinel(self.tmp.path("sentinel"),
                                                         self.redis.port, MASTER, quorum=1)
        self.tokens = self.tmp.path("tokens")
        with open(self.tokens, "w") as f:
            f.write(tokens)
        self.servers = []
        for k in range(instances):
            data_dir = self.tmp.path("server-%d" % k)
            os.makedirs(data_dir)
            if sentinel:
                where = ["--redis-sentinel", "127.0.0.1:%d" % self.sentinel.port,
                         "--redis-master", MASTER]
            else:
                where = ["--redis", "127.0.0.1:%d" % self.redis.port]
            extra = ["--store", "redis", "--instance-id", "instance-%d" % k,
                     "--ping-interval-ms", "1000", "--ping-timeout-ms", "1000"] + where + \
                list(server_extra)
            self.servers.append(rh.Server(BUILD, data_dir, self.tokens, extra).start())
        self.devices = []

    def redis_client(self, port=None):
        return redis.Redis(host="127.0.0.1", port=port or self.redis.port, socket_timeout=5)

    def device(self, state="state", device="pi-1", token="token-1", extra=(), servers=None):
        token_file = self.tmp.path("token-" + state)
        with open(token_file, "w") as f:
            f.write(token + "\n")
        servers = servers if servers is not None else self.servers
        made = rh.Device(BUILD, servers[0], self.tmp.path(state), token_file, device=device,
                         extra=extra)
        # Every instance is an endpoint, the first the primary.
        made.cmd = made.cmd[:-1] + ["ws://127.0.0.1:%d/v1" % s.port for s in servers]
        self.devices.append(made)
        return made.start()

    def close(self):
        for device in self.devices:
            if device.process is not None:
                device.process.stop()
        for server in self.servers:
            server.stop()
        for part in (self.sentinel, self.replica, self.redis):
            if part is not None:
                part.stop()


def replication_role(client):
    """The server's replication role, or None while it drops its clients:
    Sentinel ends every normal client's connection (CLIENT KILL TYPE normal)
    on the replica it promotes, so a poll can meet a closed connection."""
    try:
        return client.info("replication")["role"]
    except redis.ConnectionError:
        return None


def online_count(device):
    return sum(1 for e in device.log() if e.get("state") == "online")


class FleetTestCase(unittest.TestCase):
    def assert_exactly_once(self, client, session, device):
        stored = stored_lines(client, session)
        seqs = [seq for seq, _ in stored]
        self.assertEqual(seqs, sorted(set(seqs)), "seqs out of order or duplicated")
        self.assertEqual([text for _, text in stored], device.produced,
                         "Redis does not hold exactly what the device produced, in order")
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
        self.assertEqual(recorded_gaps(client, session), [])
        return stored

    def wait_stored(self, client, session, count, timeout=20):
        harness.wait_for(lambda: client.xlen(uplink_stream(client, session)) >= count,
                         timeout=timeout, message="Redis never held %d messages" % count)


class Failover(FleetTestCase):
    def test_the_serving_instance_killed_mid_stream_loses_and_duplicates_nothing(self):
        fleet = Fleet(self, "kill")
        try:
            device = fleet.device()
            session = rh.session_id("tether", "pi-1")
            client = fleet.redis_client()
            harness.wait_for(lambda: online_count(device) >= 1, timeout=10)
            device.produce("m", rate_per_s=300)
            self.wait_stored(client, session, 300)
            killed_at = time.monotonic()
            fleet.servers[0].kill()
            harness.wait_for(lambda: online_count(device) >= 2, timeout=15,
                             message="the device never resumed on the other instance")
            failover_s = time.monotonic() - killed_at
            before = client.xlen(uplink_stream(client, session))
            self.wait_stored(client, session, before + 200)
            self.assertEqual(device.finish(timeout=30), 0)
            self.assert_exactly_once(client, session, device)
            state = session_state(client, session)
            self.assertEqual(state["instance"], "instance-1")
            # pong timeout (500 ms) + one backoff step (<= 800 ms) + 1 s
            self.assertLess(failover_s, 0.5 + 0.8 + 1.0 + 1.0)
        finally:
            fleet.close()

    def test_redis_killed_and_restarted_mid_stream_loses_and_duplicates_nothing(self):
        fleet = Fleet(self, "redis-restart", redis_args=["--appendfsync", "always"])
        try:
            device = fleet.device()
            session = rh.session_id("tether", "pi-1")
            client = fleet.redis_client()
            harness.wait_for(lambda: online_count(device) >= 1, timeout=10)
            device.produce("m", rate_per_s=300)
            self.wait_stored(client, session, 300)
            fleet.redis.kill()
            time.sleep(1.0)
            fleet.redis.restart()
            client = fleet.redis_client()
            harness.wait_for(lambda: online_count(device) >= 2, timeout=20,
                             message="the device never came back after Redis restarted")
            before = client.xlen(uplink_stream(client, session))
            self.wait_stored(client, session, before + 200)
            self.assertEqual(device.finish(timeout=30), 0)
            self.assert_exactly_once(client, session, device)
        finally:
            fleet.close()


class SentinelPromotion(FleetTestCase):
    def test_the_primary_killed_at_durability_one_replica_loses_nothing_acknowledged(self):
        fleet = Fleet(self, "sentinel", sentinel=True, replica=True,
                      server_extra=["--redis-durability", "replicas:1"])
        try:
            device = fleet.device()
            session = rh.session_id("tether", "pi-1")
            client = fleet.redis_client()
            harness.wait_for(lambda: online_count(device) >= 1, timeout=15)
            device.produce("m", rate_per_s=300)
            self.wait_stored(client, session, 300)
            fleet.redis.kill()
            replica = fleet.redis_client(fleet.replica.port)
            harness.wait_for(lambda: replication_role(replica) == "master",
                             timeout=30, message="Sentinel never promoted the replica")
            # "One replica" needs a replica again: the old primary comes back and
            # Sentinel makes it replicate the new one. Until then nothing is
            # acknowledged (WAIT 1 cannot be met), and nothing is lost.
            fleet.redis.restart()
            harness.wait_for(lambda: online_count(device) >= 2, timeout=30,
                             message="the device never resumed after the promotion")
            before = replica.xlen(uplink_stream(replica, session))
            self.wait_stored(replica, session, before + 200, timeout=30)
            self.assertEqual(device.finish(timeout=30), 0)
            self.assert_exactly_once(replica, session, device)
        finally:
            fleet.close()


class Supersede(FleetTestCase):
    def test_a_newer_process_on_another_instance_supersedes_the_older(self):
        fleet = Fleet(self, "supersede")
        try:
            first = fleet.device("state-1", servers=[fleet.servers[0]])
            harness.wait_for(lambda: online_count(first) >= 1, timeout=10)
            first.produce("first")
            time.sleep(0.5)
            second = fleet.device("state-2", servers=[fleet.servers[1]])
            self.assertEqual(first.process.wait(10), 3)
            self.assertEqual(first.log()[-1].get("reason"), "close_superseded")
            first.stop_producing()
            second.produce("second")
            time.sleep(0.5)
            self.assertEqual(second.finish(timeout=30), 0)
            client = fleet.redis_client()
            session = rh.session_id("tether", "pi-1")
            stored = stored_lines(client, session)
            seqs = [seq for seq, _ in stored]
            self.assertEqual(seqs, sorted(set(seqs)))
            self.assertEqual([t for _, t in stored if t.startswith("second-")], second.produced)
            self.assertEqual(session_state(client, session)["instance"], "instance-1")
        finally:
            fleet.close()


async def hijack_hello(port, token, session, device):
    import websockets  # Debian's python3-websockets
    async with websockets.connect(
            "ws://127.0.0.1:%d/v1" % port, subprotocols=["tether.v1"],
            extra_headers={"Authorization": "Bearer " + token}) as ws:
        await ws.send(json.dumps({"type": "hello", "session": session, "version": 99,
                                  "device": device, "last_downlink": 0,
                                  "oldest_uplink": 1000000, "next_uplink": 1000000}))
        try:
            while True:
                message = await asyncio.wait_for(ws.recv(), timeout=5)
                if isinstance(message, bytes):
                    return ("data", message)
        except websockets.ConnectionClosed as closed:
            return ("closed", closed.code)


class Hijack(FleetTestCase):
    def test_another_users_token_cannot_take_a_session(self):
        fleet = Fleet(self, "hijack", tokens="tokA alice\ntokB bob\n")
        try:
            alice = fleet.device("alice", token="tokA", extra=["--user", "alice"])
            session = rh.session_id("alice", "pi-1")
            harness.wait_for(lambda: online_count(alice) >= 1, timeout=10)
            alice.produce("a", rate_per_s=100)
            client = fleet.redis_client()
            self.wait_stored(client, session, 20)
            before = session_state(client, session)
            result = asyncio.run(hijack_hello(fleet.servers[1].port, "tokB", session, "pi-1"))
            self.assertEqual(result, ("closed", 4003))
            after = session_state(client, session)
            self.assertEqual(after["owner"], "alice")
            self.assertEqual(after["version"], before["version"])
            self.assertEqual(recorded_gaps(client, session), [])
            self.assertEqual(alice.finish(timeout=30), 0)
            self.assert_exactly_once(client, session, alice)
        finally:
            fleet.close()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV, verbosity=2)
