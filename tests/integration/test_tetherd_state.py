#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Device state (docs/PROTOCOL.md section 9) end to end: tetherd as the device,
tether-server with its file store or its Redis store, desired changes made
through the admin interface while the device is online, offline, killed, and
restored from a backup; and two raw tether.v1 clients of one session reporting
at once.

Each test class runs against one store: FileStore* with the file engine,
RedisStore* with two tether-server instances on one redis-server.

Usage: /usr/bin/python3 test_tetherd_state.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
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
DEVICE = "gw-state"
TOKEN = "t-1"
SESSION = rh.session_id("tether", DEVICE)

# A gateway's configuration as a cloud team would write it: ~1.3 KB compact.
BASE_DESIRED = {
    "sampling": {"interval_ms": 1000, "batch": 16, "jitter_ms": 50},
    "thresholds": {"temperature_c": {"warn": 70, "crit": 85},
                   "humidity_pct": {"warn": 80, "crit": 95},
                   "vibration_g": {"warn": 1.5, "crit": 3.0}},
    "sensors": {"s%02d" % i: {"enabled": True, "address": "0x%02x" % (0x40 + i),
                              "calibration": [1.0, 0.0]} for i in range(12)},
    "uplink": {"compress": False, "max_batch_bytes": 32768},
    "log_level": "info",
}


class Backend:
    """tether-server with one store; `instances` servers share a Redis store."""

    def __init__(self, test, name, store):
        self.tmp = harness.TempDir("state-%s-" % name)
        self.tokens = self.tmp.path("tokens")
        with open(self.tokens, "w") as f:
            f.write(TOKEN + "\n")
        self.redis = None
        self.servers = []
        count = 1
        if store == "redis":
            import redis_harness
            self.redis = redis_harness.start_redis(self.tmp.path("redis"), appendonly=True)
            count = 2
        for k in range(count):
            data_dir = self.tmp.path("server-%d" % k)
            os.makedirs(data_dir)
            extra = ["--ping-interval-ms", "1000", "--ping-timeout-ms", "1000"]
            if store == "redis":
                extra += ["--store", "redis", "--redis", "127.0.0.1:%d" % self.redis.port,
                          "--instance-id", "instance-%d" % k]
            self.servers.append(rh.Server(OPTIONS.build_dir, data_dir, self.tokens, extra).start())

    @property
    def server(self):
        return self.servers[0]

    def set_desired(self, patch, server=None):
        reply = (server or self.server).admin("POST", "/sessions/%s/desired" % SESSION,
                                              json.dumps(patch).encode())
        return json.loads(reply)["version"]

    def state(self, server=None):
        return json.loads((server or self.server).admin("GET", "/sessions/%s/state" % SESSION))

    def close(self):
        for server in self.servers:
            server.stop()
        if self.redis is not None:
            self.redis.stop()


class Gateway:
    """tetherd with state.enabled and a desired command that records every
    apply: `applied.log` gets "<version> <snapshot 0|1>" per apply, and
    `desired.json` the whole document it was given."""

    def __init__(self, backend, name, state_dir=None, report=None, command=None):
        self.backend = backend
        self.dir = backend.tmp.path(name)
        os.makedirs(self.dir, exist_ok=True)
        self.state_dir = state_dir or os.path.join(self.dir, "state")
        self.run_dir = os.path.join(self.dir, "run")
        self.applied_log = os.path.join(self.dir, "applied.log")
        self.document = os.path.join(self.dir, "desired.json")
        token = os.path.join(self.dir, "token")
        with open(token, "w") as f:
            f.write(TOKEN + "\n")
        apply = command or ('cat > %s.tmp && mv %s.tmp %s && '
                            'echo "$TETHER_DESIRED_VERSION $TETHER_DESIRED_SNAPSHOT" >> %s'
                            % (self.document, self.document, self.document, self.applied_log))
        state = {"enabled": True, "desired_command": apply, "command_timeout_ms": 60000,
                 "retry_delay_ms": 200}
        if report is not None:
            state["report_command"] = report
            state["report_interval_ms"] = 0
        config = {
            "endpoints": ["ws://127.0.0.1:%d/v1" % s.port for s in backend.servers],
            "credentials": {"token_file": token},
            "session": {"user": "tether", "device_id": DEVICE},
            "backoff": {"initial_ms": 100, "max_ms": 800, "jitter": "equal"},
            "heartbeat": {"interval_ms": 500, "pong_timeout_ms": 500},
            "state_dir": self.state_dir,
            "run_dir": self.run_dir,
            "inputs": {"health": {"enabled": False}},
            "state": state,
            "metrics": {"file": os.path.join(self.run_dir, "tether.prom"), "interval_ms": 1000},
            "status": {"file": os.path.join(self.run_dir, "status.json")},
            "log": {"level": "debug"},
        }
        self.config = os.path.join(self.dir, "tetherd.json")
        with open(self.config, "w") as f:
            json.dump(config, f)
        self.process = None

    def start(self):
        self.process = harness.start_process([TETHERD, "--config", self.config],
                                             expect_port=False, name="tetherd")
        harness.wait_for(lambda: self.online_count() >= 1, timeout=15,
                         message="tetherd never came online")
        return self

    def log(self):
        return [harness.parse_logfmt(line) for line in self.process.stderr().splitlines()]

    def online_count(self):
        return sum(1 for e in self.log() if e.get("event") == "state" and e.get("state") == "online")

    def applied(self):
        """[(version, snapshot)] in the order they were applied."""
        try:
            with open(self.applied_log) as f:
                return [(int(v), s == "1") for v, s in (line.split() for line in f if line.strip())]
        except FileNotFoundError:
            return []

    def status(self):
        with open(os.path.join(self.run_dir, "status.json")) as f:
            return json.load(f)

    def metric(self, name):
        try:
            with open(os.path.join(self.run_dir, "tether.prom")) as f:
                for line in f:
                    if line.startswith(name + " "):
                        return int(float(line.split()[1]))
        except FileNotFoundError:
            pass
        return None

    def stop(self):
        if self.process is not None:
            self.process.stop()

    def kill(self):
        self.process.signal(signal.SIGKILL)
        self.process.wait(10)


def changed(k):
    """The k-th change a backend makes: one threshold and one sensor."""
    return {"thresholds": {"temperature_c": {"warn": 60 + k % 20}},
            "sensors": {"s%02d" % (k % 12): {"enabled": k % 2 == 0}}}


def merged(document, patch):
    """RFC 7396, for the expected documents."""
    if not isinstance(patch, dict):
        return patch
    out = dict(document) if isinstance(document, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merged(out.get(key), value)
    return out


class StateCases:
    STORE = None

    def setUp(self):
        self.backend = Backend(self, self.id().split(".")[-1][:20], self.STORE)
        self.gateways = []

    def tearDown(self):
        for gateway in self.gateways:
            gateway.stop()
        self.backend.close()

    def gateway(self, name="gw", **kwargs):
        made = Gateway(self.backend, name, **kwargs)
        self.gateways.append(made)
        return made.start()

    def wait_applied(self, gateway, version, timeout=15):
        harness.wait_for(lambda: gateway.applied() and gateway.applied()[-1][0] >= version,
                         timeout=timeout,
                         message="version %d was never applied: %r" % (version, gateway.applied()))
        harness.wait_for(lambda: self.backend.state()["desired_applied"] >= version, timeout=10,
                         message="the server never heard that %d was applied" % version)

    def test_a_long_outage_gives_one_snapshot_and_only_the_final_state_is_applied(self):
        gateway = self.gateway()
        expected = BASE_DESIRED
        first = self.backend.set_desired(BASE_DESIRED)
        self.wait_applied(gateway, first)
        gateway.stop()
        for k in range(100):
            patch = changed(k)
            expected = merged(expected, patch)
            # Alternate instances: on Redis any instance takes a backend's change.
            last = self.backend.set_desired(patch, self.backend.servers[k % len(self.backend.servers)])
        self.assertEqual(last, first + 100)
        before = len(gateway.applied())
        gateway.start()
        self.wait_applied(gateway, last)
        time.sleep(0.5)
        self.assertEqual(gateway.applied()[before:], [(last, True)],
                         "one snapshot of the final state, nothing in between")
        with open(gateway.document) as f:
            self.assertEqual(json.load(f), expected)
        self.assertEqual(self.backend.state()["desired"], expected)
        harness.wait_for(lambda: gateway.metric("tether_state_desired_snapshots_total") == 1,
                         timeout=5, message="the metrics never counted the snapshot: %r" %
                         gateway.metric("tether_state_desired_snapshots_total"))
        harness.wait_for(lambda: gateway.status()["device_state"]["in_sync"], timeout=5,
                         message="the status never showed the device in sync")
        self.assertEqual(gateway.status()["device_state"]["desired_applied"], last)

    def test_a_short_outage_gives_increments_only(self):
        gateway = self.gateway()
        first = self.backend.set_desired(BASE_DESIRED)
        self.wait_applied(gateway, first)
        snapshots_before = self.metric_after_write(gateway, "tether_state_desired_snapshots_total")
        online = gateway.online_count()
        for server in self.backend.servers:
            server.admin("POST", "/faults/reject?status=503&ms=1500")
            server.admin("POST", "/faults/reset")
        for k in range(3):
            last = self.backend.set_desired(changed(k))
        harness.wait_for(lambda: gateway.online_count() > online, timeout=15,
                         message="the gateway never came back")
        self.wait_applied(gateway, last)
        harness.wait_for(
            lambda: gateway.metric("tether_state_desired_increments_total") == 3, timeout=5,
            message="three increments expected, metrics say %r" %
            gateway.metric("tether_state_desired_increments_total"))
        self.assertEqual(gateway.metric("tether_state_desired_snapshots_total"), snapshots_before)
        with open(gateway.document) as f:
            self.assertEqual(json.load(f), self.backend.state()["desired"])

    def metric_after_write(self, gateway, name):
        harness.wait_for(lambda: gateway.metric(name) is not None, timeout=5)
        time.sleep(1.1)  # the metrics file is rewritten every second
        return gateway.metric(name)

    def test_killed_between_receiving_and_applying_applies_the_change_exactly_once(self):
        gate = self.backend.tmp.path("gate")
        pid_file = self.backend.tmp.path("apply.pid")
        applied_log = self.backend.tmp.path("gw/applied.log")
        # The apply takes effect only at its end, and waits for the gate.
        command = ('echo $$ > %s; cat > /dev/null; while [ ! -e %s ]; do sleep 0.05; done; '
                   'echo "$TETHER_DESIRED_VERSION $TETHER_DESIRED_SNAPSHOT" >> %s'
                   % (pid_file, gate, applied_log))
        gateway = self.gateway(command=command)
        version = self.backend.set_desired({"log_level": "debug"})
        harness.wait_for(lambda: os.path.exists(pid_file), timeout=10,
                         message="the desired command never started")
        # A power cut: the daemon and the command it started die together.
        with open(pid_file) as f:
            group = int(f.read().strip())
        gateway.kill()
        os.killpg(group, signal.SIGKILL)
        os.unlink(pid_file)
        self.assertEqual(gateway.applied(), [])
        self.assertEqual(self.backend.state()["desired_applied"], 0)
        with open(gate, "w"):
            pass
        gateway.start()
        self.wait_applied(gateway, version)
        time.sleep(1.0)
        self.assertEqual([v for v, _ in gateway.applied()], [version])
        # And a clean restart after it does not apply it again.
        gateway.stop()
        gateway.start()
        time.sleep(1.5)
        self.assertEqual([v for v, _ in gateway.applied()], [version])

    def test_a_report_based_on_a_stale_version_is_refused_with_the_current_one(self):
        # The device reports, a backup of its state directory from before that
        # report comes up as the device and reports something else.
        original = self.gateway("original", report="echo '{\"firmware\": \"1.1\", \"uptime_s\": 5}'")
        harness.wait_for(lambda: self.backend.state()["reported_version"] == 1, timeout=10,
                         message="the first report never arrived")
        original.stop()
        backup_dir = self.backend.tmp.path("backup-state")
        shutil.copytree(original.state_dir, backup_dir)
        # Roll the copy's device state back to before the report: a fresh
        # device-state file is what a backup taken before it holds.
        for name in os.listdir(backup_dir):
            if name.startswith("device-state"):
                os.unlink(os.path.join(backup_dir, name))
        restored = self.gateway("restored", state_dir=backup_dir,
                                report="echo '{\"firmware\": \"1.0\"}'")
        harness.wait_for(lambda: any(e.get("event") == "report" and e.get("what") == "refused"
                                     for e in restored.log()), timeout=10,
                         message="the stale report was never refused")
        refusal = [e for e in restored.log() if e.get("what") == "refused"][0]
        self.assertEqual(refusal["reason"], "stale")
        self.assertEqual(refusal["server_version"], "1")
        self.assertEqual(refusal["level"], "error")
        # It then says its whole state on top of version 1: nothing silent,
        # and the server ends with this device's own state.
        harness.wait_for(lambda: self.backend.state()["reported_version"] == 2, timeout=10,
                         message="the restored device never reported on the current version")
        self.assertEqual(self.backend.state()["reported"], {"firmware": "1.0"})
        harness.wait_for(
            lambda: restored.metric("tether_state_reports_refused_total") == 1, timeout=5)

    def test_two_instances_reporting_at_once_never_lose_an_update_silently(self):
        # Two raw tether.v1 clients of one session, on different server
        # instances where the store has them, each reporting 15 times on the
        # version it last heard of, and superseding each other as they go.
        # Every report is answered (ok, or refused with the current version);
        # the accepted ones are exactly the versions 1..N, one each.
        outcome = asyncio.run(race(self.backend))
        accepted = outcome["accepted"]
        versions = sorted(accepted.values())
        final = self.backend.state()
        self.assertEqual(versions, list(range(1, final["reported_version"] + 1)))
        self.assertEqual(len(set(accepted)), len(accepted))
        self.assertEqual(outcome["unanswered"], [], "reports without an answer")
        self.assertGreater(outcome["refused"], 0, "the clients never raced")
        last_id = max(accepted, key=accepted.get)
        self.assertEqual(final["reported"]["by"], outcome["bodies"][last_id]["by"])
        self.assertEqual(final["reported"]["n"], outcome["bodies"][last_id]["n"])


async def race(backend):
    import websockets  # Debian's python3-websockets

    accepted = {}
    bodies = {}
    unanswered = []
    refused = [0]
    version_counter = [10]

    async def one(name, server, rounds):
        base = 0
        pending = None  # (id, base, body) sent but not answered yet
        n = 0
        for _ in range(rounds * 10):
            if n >= rounds and pending is None:
                break
            version_counter[0] += 1
            hello = {"type": "hello", "session": SESSION, "version": version_counter[0],
                     "device": DEVICE, "last_downlink": 0, "oldest_uplink": 1, "next_uplink": 1,
                     "features": ["state"], "desired_version": 0}
            try:
                async with websockets.connect(
                        "ws://127.0.0.1:%d/v1" % server.port, subprotocols=["tether.v1"],
                        extra_headers={"Authorization": "Bearer " + TOKEN},
                        max_size=1 << 20) as ws:
                    await ws.send(json.dumps(hello))
                    if pending is None:
                        report_id = os.urandom(8).hex()
                        body = {"by": name, "n": n}
                        n += 1
                        pending = (report_id, base, body)
                        bodies[report_id] = body
                    report_id, report_base, body = pending
                    welcomed = False
                    while True:
                        message = await asyncio.wait_for(ws.recv(), timeout=5)
                        if isinstance(message, bytes):
                            continue
                        parsed = json.loads(message)
                        if parsed["type"] == "welcome" and not welcomed:
                            welcomed = True
                            await ws.send(json.dumps({"type": "report", "id": report_id,
                                                      "base": report_base, "patch": body}))
                        elif parsed["type"] == "report_ok" and parsed["id"] == report_id:
                            accepted[report_id] = parsed["version"]
                            base = parsed["version"]
                            pending = None
                            break
                        elif parsed["type"] == "report_refused" and parsed["id"] == report_id:
                            refused[0] += 1
                            base = parsed["version"]
                            pending = None
                            break
            except (websockets.ConnectionClosed, asyncio.TimeoutError, OSError):
                pass  # superseded before the answer: the same report goes again
            await asyncio.sleep(0.01)
        if pending is not None:
            unanswered.append(pending[0])

    servers = backend.servers
    await asyncio.gather(one("a", servers[0], 15), one("b", servers[-1], 15))
    return {"accepted": accepted, "bodies": bodies, "unanswered": unanswered,
            "refused": refused[0]}


class FileStore(StateCases, unittest.TestCase):
    STORE = "file"


class RedisStore(StateCases, unittest.TestCase):
    STORE = "redis"


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV, verbosity=2)
