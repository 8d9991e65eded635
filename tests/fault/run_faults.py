#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Fault injection on a real kernel network path.

tether-server runs in one network namespace, tetherd in another, joined by a
veth pair (10.213.0.1/30 and .2, addresses that exist only there). A producer
feeds numbered messages into tetherd's datagram socket at a steady rate and
downlink messages are pushed through the server's admin interface, while a
seeded random schedule injects faults: packet loss and a blackhole
(nftables), link down, a bandwidth limit (tbf), delay/reordering/duplication
(netem, only when the kernel has it), tether-server and tetherd SIGKILL and
restart, 503 storms and token expiry. The verdict is read from the server's
store on disk and tetherd's downlink output file, and tetherd's log.

Usage: run_faults.py --build-dir DIR [--duration S] [--faults N] [--seed N]
Exits 0 when every bar is met, 1 when one is missed, 2 when a tool is
missing, 77 (skipped) when not root. Needs root (namespaces, nftables, tc).
"""

import argparse
import bisect
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)

import harness  # noqa: E402
import resume_harness as rh  # noqa: E402
import netlab  # noqa: E402

USER = "tether"
DEVICE = "fault-gw"
SERVER_PORT = 7000
ADMIN_PORT = 7001
# tetherd's link settings: the bars below are computed from them.
HEARTBEAT_INTERVAL_MS = 1000
PONG_TIMEOUT_MS = 1000
MAX_MISSED_PONGS = 1
BACKOFF_INITIAL_MS = 200
BACKOFF_MAX_MS = 2000
ATTEMPT_TIMEOUT_MS = 2000  # connect, handshake and resume each
RETRY_DELAY = re.compile(r"reconnecting in ([0-9.]+) s")


def now():
    return time.monotonic()


# --- processes ---------------------------------------------------------------


class Daemon:
    """A process whose standard error lines are kept with the time they arrived
    (tetherd writes its log unbuffered, so arrival is when it happened)."""

    def __init__(self, cmd, name):
        self.name = name
        self.started = now()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, preexec_fn=harness._die_with_parent)
        self.events = []  # (monotonic time, parsed logfmt dict, raw line)
        self.stdout_lines = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.readers = [threading.Thread(target=self._read, args=(self.proc.stderr, True),
                                         daemon=True),
                        threading.Thread(target=self._read, args=(self.proc.stdout, False),
                                         daemon=True)]
        for reader in self.readers:
            reader.start()

    def _read(self, stream, is_log):
        for raw in iter(stream.readline, b""):
            at = now()
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                if is_log:
                    self.events.append((at, harness.parse_logfmt(line), line))
                else:
                    self.stdout_lines.append(line)
                self._cond.notify_all()
        stream.close()

    def wait_stdout(self, pattern, timeout):
        regex = re.compile(pattern)
        deadline = now() + timeout
        with self._cond:
            while True:
                for line in self.stdout_lines:
                    if regex.search(line):
                        return line
                remaining = deadline - now()
                if remaining <= 0 or self.proc.poll() is not None:
                    return None
                self._cond.wait(min(remaining, 0.1))

    def snapshot(self):
        with self._lock:
            return list(self.events)

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        for reader in self.readers:
            reader.join(2)

    def terminate(self, grace=15):
        """SIGTERM; the exit code, or None if it had to be killed."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


# --- load ----------------------------------------------------------------------


class Producer:
    """Numbered messages at a steady rate into tetherd's datagram socket. A
    message the kernel refuses (tetherd down) is retried with the same number,
    so the numbers accepted are exactly 1..accepted."""

    def __init__(self, path, rate):
        self.path = path
        self.rate = rate
        self.accepted = 0
        self.running = True
        self.paused = threading.Event()
        self.idle = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        next_at = now()
        while self.running:
            if self.paused.is_set():
                self.idle.set()
                time.sleep(0.005)
                next_at = now()
                continue
            self.idle.clear()
            try:
                self.sock.sendto(b"n-%d" % (self.accepted + 1), self.path)
                self.accepted += 1
            except OSError:
                pass
            next_at += 1.0 / self.rate
            time.sleep(max(0.0, next_at - now()))

    def pause(self):
        self.paused.set()
        self.idle.wait(2)

    def resume(self):
        self.paused.clear()

    def stop(self):
        self.running = False
        self.thread.join(2)


class Server:
    """tether-server in the server's namespace; its admin port listens on that
    namespace's loopback and is reached by opening the socket from there."""

    def __init__(self, lab, build_dir, store, tokens):
        self.lab = lab
        self.store = store
        self.cmd = lab.exec_prefix(lab.server_ns) + [
            os.path.join(build_dir, "apps", "tether-server"),
            "--listen", "%s:%d" % (netlab.SERVER_ADDRESS, SERVER_PORT),
            "--admin", "127.0.0.1:%d" % ADMIN_PORT,
            "--data-dir", store, "--tokens", tokens,
            "--ping-interval-ms", "3000", "--ping-timeout-ms", "2000",
            "--replay-capacity", "100000"]
        self.process = None
        self.lock = threading.RLock()  # a push never races a kill

    def start(self):
        self.process = Daemon(self.cmd, "tether-server")
        if self.process.wait_stdout(r"listen=\d+", 10) is None:
            raise harness.HarnessError("tether-server did not start: %s" % "\n".join(
                e[2] for e in self.process.snapshot()))

    def admin(self, method, path, body=b""):
        def request():
            connection = http.client.HTTPConnection("127.0.0.1", ADMIN_PORT, timeout=5)
            connection.connect()  # the socket belongs to the namespace it was made in
            return connection
        with self.lock:
            connection = self.lab.in_namespace(self.lab.server_ns, request)
            try:
                connection.request(method, path, body=body,
                                   headers=harness.admin_headers(self.store))
                response = connection.getresponse()
                data = response.read()
            finally:
                connection.close()
        if response.status >= 300:
            raise harness.HarnessError("admin %s %s: %d %s" % (method, path, response.status,
                                                               data))
        return data


class Pusher:
    """One downlink message per interval through the admin interface; only a
    push the server answered 200 (stored durably) counts."""

    def __init__(self, server, session, interval):
        self.server = server
        self.session = session
        self.interval = interval
        self.pushed = []
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            body = "dl-%d" % (len(self.pushed) + 1)
            with self.server.lock:
                if self.server.process is not None and self.server.process.alive():
                    try:
                        self.server.admin("POST", "/sessions/%s/push" % self.session,
                                          body.encode())
                        self.pushed.append(body)
                    except (OSError, harness.HarnessError):
                        pass
            time.sleep(self.interval)

    def stop(self):
        self.running = False
        self.thread.join(5)


# --- the run -----------------------------------------------------------------


class Fault:
    def __init__(self, kind, params, start):
        self.kind = kind
        self.params = params
        self.start = start
        self.end = start
        self.online_before = False
        self.broke = False
        self.recovery = None   # seconds from end to online, None when never online again
        self.bar = None
        self.dead_link = None  # blackhole: seconds to tetherd's dead_link
        self.problems = []


class Run:
    def __init__(self, options):
        self.options = options
        self.rng = random.Random(options.seed)
        self.tmp = harness.TempDir("tether-faults-")
        self.store = self.tmp.path("store")
        os.makedirs(self.store)
        self.token_count = 0
        self.tokens = self.tmp.path("tokens")
        with open(self.tokens, "w") as f:
            for k in range(1, 20001):
                f.write("tok-%d\n" % k)
        self.token_file = self.tmp.path("device-token")
        self.next_token()
        self.state_dir = self.tmp.path("state")
        self.run_dir = self.tmp.path("run")
        os.makedirs(self.run_dir)
        self.socket_path = os.path.join(self.run_dir, "in.sock")
        self.downlink_file = self.tmp.path("downlink.txt")
        self.session = rh.session_id(USER, DEVICE)
        self.lab = netlab.Lab()
        self.server = None
        self.daemons = []  # every tetherd incarnation, in order
        self.crashes = []
        self.kill_marks = []  # downlink lines written when each tetherd SIGKILL hit
        self.faults = []
        self.slack = options.slack

    # tokens: the server lists 20000; the device moves to the next on expiry.
    def next_token(self):
        self.token_count += 1
        with open(self.token_file + ".tmp", "w") as f:
            f.write("tok-%d\n" % self.token_count)
        os.rename(self.token_file + ".tmp", self.token_file)

    def tetherd_config(self):
        config = {
            "endpoints": ["ws://%s:%d/v1" % (netlab.SERVER_ADDRESS, SERVER_PORT)],
            "credentials": {"token_file": self.token_file},
            "session": {"user": USER, "device_id": DEVICE},
            "heartbeat": {"interval_ms": HEARTBEAT_INTERVAL_MS,
                          "pong_timeout_ms": PONG_TIMEOUT_MS,
                          "max_missed_pongs": MAX_MISSED_PONGS},
            "backoff": {"initial_ms": BACKOFF_INITIAL_MS, "max_ms": BACKOFF_MAX_MS,
                        "jitter": "full", "healthy_after_ms": 1000},
            "timeouts": {"connect_ms": ATTEMPT_TIMEOUT_MS, "handshake_ms": ATTEMPT_TIMEOUT_MS,
                         "resume_ms": ATTEMPT_TIMEOUT_MS, "close_ms": 1000},
            # One endpoint: its breaker must not keep it closed for long.
            "endpoint_pool": {"failure_threshold": 1000, "cooldown_ms": 100,
                              "max_cooldown_ms": 100},
            "state_dir": self.state_dir,
            "run_dir": self.run_dir,
            "inputs": {"socket": self.socket_path, "health": {"enabled": False}},
            "downlink": {"output": "command", "command": "cat >> %s" % self.downlink_file},
            "spool": {"enabled": True, "fsync_interval_ms": 1000},
            "log": {"level": "debug"},
        }
        path = self.tmp.path("tetherd.json")
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
        return path

    def start_tetherd(self):
        cmd = self.lab.exec_prefix(self.lab.client_ns) + [
            os.path.join(self.options.build_dir, "apps", "tetherd"), "--config",
            self.tetherd_config()]
        daemon = Daemon(cmd, "tetherd")
        self.daemons.append(daemon)
        return daemon

    @property
    def tetherd(self):
        return self.daemons[-1]

    # --- link state from tetherd's log -------------------------------------

    def states(self):
        """[(time, state, event)] across every tetherd incarnation."""
        out = []
        for daemon in self.daemons:
            out.append((daemon.started, "starting", {}))
            for at, event, _ in daemon.snapshot():
                if event.get("event") == "state":
                    out.append((at, event.get("state"), event))
        return out

    def state_at(self, t):
        current = ("starting", {})
        for at, state, event in self.states():
            if at > t:
                break
            current = (state, event)
        return current

    def online(self):
        return self.state_at(now())[0] == "online"

    def wait_online(self, timeout):
        deadline = now() + timeout
        while now() < deadline:
            self.check_alive()
            if self.online():
                return True
            time.sleep(0.02)
        return False

    def check_alive(self):
        for daemon in (self.server.process, self.tetherd):
            if daemon is not None and not daemon.alive():
                self.crashes.append("%s exited with %s at %.1f s: %s" % (
                    daemon.name, daemon.proc.returncode, now() - self.t0,
                    " | ".join(e[2] for e in daemon.snapshot()[-5:])))
                if daemon is self.tetherd:
                    self.start_tetherd()
                else:
                    self.server.start()

    # --- faults -------------------------------------------------------------

    def kinds(self):
        kinds = ["loss", "blackhole", "link_down", "bandwidth", "server_kill",
                 "tetherd_kill", "storm_503", "token_expiry"]
        if self.lab.netem:
            kinds += ["delay_jitter", "reorder", "duplicate"]
        return kinds

    def hold(self, low, high):
        time.sleep(self.rng.uniform(low, high))

    def inject(self, kind):
        rng = self.rng
        fault = Fault(kind, "", now())
        fault.online_before = self.online()
        if kind == "loss":
            percent = rng.randint(5, 20)
            fault.params = "%d%% each way" % percent
            self.lab.loss(percent)
            self.hold(1.5, 4.0)
            fault.end = now()
            self.lab.clear_filter()
        elif kind == "blackhole":
            self.lab.blackhole()
            fault.start = now()
            self.hold(3.5, 5.0)
            fault.end = now()
            self.lab.clear_filter()
        elif kind == "link_down":
            self.lab.link(False)
            fault.start = now()
            self.hold(0.5, 3.0)
            self.lab.link(True)
            fault.end = now()
        elif kind == "bandwidth":
            kbit = rng.choice([16, 32, 64, 128])
            fault.params = "%d kbit/s" % kbit
            self.lab.bandwidth(kbit)
            self.hold(2.0, 4.0)
            fault.end = now()
            self.lab.clear_qdisc()
        elif kind == "delay_jitter":
            self.lab.netem_on("delay", "100ms", "50ms")
            self.hold(2.0, 4.0)
            fault.end = now()
            self.lab.clear_qdisc()
        elif kind == "reorder":
            self.lab.netem_on("delay", "20ms", "reorder", "25%", "50%")
            self.hold(2.0, 4.0)
            fault.end = now()
            self.lab.clear_qdisc()
        elif kind == "duplicate":
            self.lab.netem_on("duplicate", "5%")
            self.hold(2.0, 4.0)
            fault.end = now()
            self.lab.clear_qdisc()
        elif kind == "server_kill":
            down = rng.uniform(0.2, 2.0)
            fault.params = "down %.1f s" % down
            with self.server.lock:
                self.check_alive()
                self.server.process.kill()
                fault.start = now()
                time.sleep(down)
                self.server.start()
                fault.end = now()
        elif kind == "tetherd_kill":
            down = rng.uniform(0.2, 1.0)
            fault.params = "down %.1f s" % down
            # Datagrams still queued in the socket die with the process (a
            # property of datagram sockets): the producer pauses so none is.
            self.producer.pause()
            time.sleep(0.1)
            self.check_alive()
            self.tetherd.kill()
            fault.start = now()
            time.sleep(0.1)  # a downlink command already started finishes its write
            self.kill_marks.append(len(self.downlink_lines()))
            time.sleep(down)
            self.start_tetherd()
            fault.end = now()
            harness.wait_for(lambda: os.path.exists(self.socket_path), timeout=10)
            self.producer.resume()
        elif kind == "storm_503":
            ms = rng.randint(500, 2500)
            fault.params = "%d ms, Retry-After 1" % ms
            self.server.admin("POST", "/faults/reject?status=503&retry_after=1&ms=%d" % ms)
            self.server.admin("POST", "/faults/reset")
            time.sleep(ms / 1000.0)
            fault.end = now()
        elif kind == "token_expiry":
            old = self.token_count
            self.next_token()
            fault.params = "tok-%d -> tok-%d" % (old, self.token_count)
            self.server.admin("POST", "/tokens/expire?token=tok-%d" % old)
            fault.end = now()
        return fault

    def assess(self, fault, settle_deadline):
        """Recovery and dead-link times of one fault, against their bars."""
        states = self.states()
        during = [s for s in states if fault.start <= s[0] <= fault.end + 0.05]
        fault.broke = fault.kind in ("server_kill", "tetherd_kill") or any(
            state != "online" for _, state, _ in during)
        if fault.kind == "blackhole" and fault.online_before:
            found = [at for at, state, event in states
                     if at >= fault.start and state == "waiting_to_retry"
                     and event.get("reason") == "dead_link"]
            bar = (HEARTBEAT_INTERVAL_MS + MAX_MISSED_PONGS * PONG_TIMEOUT_MS) / 1000.0 \
                + self.options.dead_link_slack
            if found and found[0] <= fault.end:
                fault.dead_link = found[0] - fault.start
                if fault.dead_link > bar:
                    fault.problems.append("dead link found after %.2f s > %.2f s" % (
                        fault.dead_link, bar))
            else:
                fault.problems.append("dead link never noticed during the blackhole")
        if not fault.broke:
            fault.recovery = 0.0
            fault.bar = 0.0
            return
        online = [at for at, state, _ in states if at > fault.end and state == "online"]
        if not online:
            fault.problems.append("not online again within %.0f s" % (
                settle_deadline - fault.end))
            return
        online_at = online[0]
        fault.recovery = online_at - fault.end
        state, event = self.state_at(fault.end)
        base = 0.0
        if fault.kind == "tetherd_kill":
            attempts = [at for at, e, _ in self.tetherd.snapshot() if e.get("event") == "attempt"]
            base = (attempts[0] - fault.end) if attempts else 0.0
        elif state == "waiting_to_retry":
            match = RETRY_DELAY.search(event.get("msg", ""))
            base = float(match.group(1)) + 0.05 if match else BACKOFF_MAX_MS / 1000.0
        elif state not in ("online", "waiting_to_retry", "starting"):
            # An attempt begun during the fault finishes or times out first.
            base = ATTEMPT_TIMEOUT_MS / 1000.0
        failures = [(at, e) for at, s, e in states
                    if fault.end < at < online_at and s == "waiting_to_retry"]
        if len(failures) == 1:
            at, e = failures[0]
            match = RETRY_DELAY.search(e.get("msg", ""))
            delay = float(match.group(1)) + 0.05 if match else BACKOFF_MAX_MS / 1000.0
            base = max(base, at - fault.end) + delay
            if at - fault.end > ATTEMPT_TIMEOUT_MS / 1000.0 + self.slack:
                fault.problems.append("an attempt failed %.2f s after the fault ended (%s)" % (
                    at - fault.end, e.get("reason")))
        elif len(failures) > 1:
            fault.problems.append("%d attempts failed after the fault ended (%s)" % (
                len(failures), ", ".join(e.get("reason", "?") for _, e in failures)))
        fault.bar = base + self.slack
        if fault.recovery > fault.bar:
            fault.problems.append("online again after %.2f s > bar %.2f s" % (
                fault.recovery, fault.bar))

    # --- main -----------------------------------------------------------------

    def execute(self):
        o = self.options
        print("fault run: seed %d, duration %d s, at most %s faults" % (
            o.seed, o.duration, o.faults if o.faults else "unlimited"))
        stale = netlab.remove_stale()
        if stale:
            print("removed stale namespaces: %s" % " ".join(stale))
        self.lab.create()
        print("namespaces %s (tether-server %s) and %s (tetherd %s), veth %s/%s" % (
            self.lab.server_ns, netlab.SERVER_ADDRESS, self.lab.client_ns,
            netlab.CLIENT_ADDRESS, self.lab.server_if, self.lab.client_if))
        if self.lab.netem:
            print("netem: available; delay/jitter, reordering and duplication included")
        else:
            print("note: this kernel has no netem qdisc (%s): delay/jitter, reordering and "
                  "duplication faults are SKIPPED" % self.lab.netem_note)
        self.t0 = now()
        self.server = Server(self.lab, o.build_dir, self.store, self.tokens)
        self.server.start()
        self.start_tetherd()
        harness.wait_for(lambda: os.path.exists(self.socket_path), timeout=10,
                         message="tetherd did not open its input socket")
        if not self.wait_online(15):
            raise harness.HarnessError("tetherd never came online:\n%s" % "\n".join(
                e[2] for e in self.tetherd.snapshot()))
        self.producer = Producer(self.socket_path, o.rate)
        self.pusher = Pusher(self.server, self.session, o.push_interval)
        time.sleep(1.0)

        kinds = self.kinds()
        cycle = []
        end_at = self.t0 + o.duration
        while now() < end_at and (not o.faults or len(self.faults) < o.faults):
            if not cycle:
                cycle = list(kinds)
                self.rng.shuffle(cycle)
            kind = cycle.pop()
            self.wait_online(10)
            fault = self.inject(kind)
            self.lab.heal()
            deadline = fault.end + 20
            self.wait_online(max(0.1, deadline - now()))
            time.sleep(0.1)  # the log line of a quick reconnect
            self.assess(fault, deadline)
            self.faults.append(fault)
            mark = "ok" if not fault.problems else "MISS: " + "; ".join(fault.problems)
            print("  %7.1f s  #%-4d %-13s %-22s recovery %s  %s" % (
                fault.start - self.t0, len(self.faults), kind, fault.params,
                "%.2f s" % fault.recovery if fault.recovery is not None else "never", mark))
            sys.stdout.flush()
            time.sleep(self.rng.uniform(0.2, 0.6))
        return self.finish()

    def finish(self):
        elapsed = now() - self.t0
        self.wait_online(20)
        self.producer.stop()
        self.pusher.stop()
        produced = self.producer.accepted
        pushed = list(self.pusher.pushed)
        deadline = now() + 30
        while now() < deadline:
            if (len(set(n for n, _ in self.numbers())) >= produced
                    and len(self.downlink_lines()) >= len(pushed)):
                break
            time.sleep(0.2)
        time.sleep(0.5)
        self.check_alive()
        tetherd_exit = self.tetherd.terminate()
        server_exit = self.server.process.terminate()
        return self.report(elapsed, produced, pushed, tetherd_exit, server_exit)

    def numbers(self):
        out = []
        for seq, payload in rh.uplink(self.store, self.session):
            if payload.startswith(b"n-"):
                out.append((int(payload[2:]), seq))
        return out

    def downlink_lines(self):
        try:
            with open(self.downlink_file) as f:
                return [line for line in f.read().splitlines() if line]
        except OSError:
            return []

    def classify_downlink_duplicates(self, downlink):
        """(unexplained duplicates, documented redeliveries). After a crash of
        the client, messages delivered since the last persisted last_delivered
        (at most 64) come again: allowed only right around a tetherd SIGKILL."""
        first_at = {}
        unexplained = redelivered = 0
        for i, line in enumerate(downlink):
            if line not in first_at:
                first_at[line] = i
                continue
            j = first_at[line]
            marks = [m for m in self.kill_marks if m <= i]
            if marks and marks[-1] - 64 <= j < marks[-1] and i - marks[-1] < 64:
                redelivered += 1
            else:
                unexplained += 1
        return unexplained, redelivered

    def report(self, elapsed, produced, pushed, tetherd_exit, server_exit):
        stored = self.numbers()
        numbers = [n for n, _ in stored]
        seq_of = {}
        for n, seq in stored:
            seq_of.setdefault(n, seq)
        unique = set(numbers)
        duplicates = len(numbers) - len(unique)
        out_of_order = 0
        highest = 0
        seen = set()
        for n in numbers:
            if n in seen:
                continue
            seen.add(n)
            if n < highest:
                out_of_order += 1
            highest = max(highest, n)
        gaps = rh.gaps(self.store, self.session)
        delivered = sorted(unique)
        missing = sorted(set(range(1, produced + 1)) - unique)
        in_gaps = 0
        for m in missing:
            i = bisect.bisect_left(delivered, m)
            low = seq_of[delivered[i - 1]] if i > 0 else 0
            high = seq_of[delivered[i]] if i < len(delivered) else 1 << 64
            if any(first < high and last > low for first, last, _ in gaps):
                in_gaps += 1
        lost = len(missing) - in_gaps
        extra = len([n for n in unique if n > produced or n < 1])
        downlink = self.downlink_lines()
        dl_dups, dl_redelivered = self.classify_downlink_duplicates(downlink)
        dl_missing = len(set(pushed) - set(downlink))
        dl_order = 0
        last = 0
        for line in dict.fromkeys(downlink):
            k = int(line[3:]) if line.startswith("dl-") else 0
            if k < last:
                dl_order += 1
            last = max(last, k)
        dl_gaps = sum(1 for d in self.daemons for _, e, _ in d.snapshot()
                      if e.get("event") == "gap" and e.get("direction") == "downlink")

        print()
        print("faults by kind (seed %d, %.0f s, %d faults = %.0f per hour)" % (
            self.options.seed, elapsed, len(self.faults), len(self.faults) * 3600.0 / elapsed))
        print("| kind | count | broke the session | max recovery s | its bar s "
              "| max dead-link s (bar %.1f) | missed |" % (
                  (HEARTBEAT_INTERVAL_MS + MAX_MISSED_PONGS * PONG_TIMEOUT_MS) / 1000.0
                  + self.options.dead_link_slack))
        print("|---|---|---|---|---|---|---|")
        kinds = self.kinds() + ([] if self.lab.netem else ["delay_jitter", "reorder",
                                                            "duplicate"])
        for kind in kinds:
            items = [f for f in self.faults if f.kind == kind]
            if not items:
                note = "skipped: no netem in this kernel" if kind in (
                    "delay_jitter", "reorder", "duplicate") and not self.lab.netem else "0 run"
                print("| %s | 0 | - | - | - | - | %s |" % (kind, note))
                continue
            recovered = [f for f in items if f.recovery is not None]
            worst = max(recovered, key=lambda f: f.recovery) if recovered else None
            dead = [f.dead_link for f in items if f.dead_link is not None]
            print("| %s | %d | %d | %s | %s | %s | %d |" % (
                kind, len(items), sum(1 for f in items if f.broke),
                "%.2f" % worst.recovery if worst else "-",
                "%.2f" % worst.bar if worst and worst.bar is not None else "-",
                "%.2f" % max(dead) if dead else "-",
                sum(1 for f in items if f.problems)))
        missed = [f for f in self.faults if f.problems]
        print()
        print("| measure | value |")
        print("|---|---|")
        rows = [
            ("uplink produced (accepted by tetherd's socket)", produced),
            ("delivered exactly once", sum(1 for n in unique if 1 <= n <= produced
                                           and numbers.count(n) == 1)),
            ("lost (not in a recorded gap)", lost),
            ("missing inside recorded gaps", in_gaps),
            ("duplicated", duplicates),
            ("out of order", out_of_order),
            ("recorded gaps", "%d %s" % (len(gaps), gaps[:5] if gaps else "")),
            ("never produced but stored", extra),
            ("downlink pushed / delivered", "%d / %d" % (len(pushed), len(set(downlink)))),
            ("downlink lost / duplicated / out of order / gaps",
             "%d / %d / %d / %d" % (dl_missing, dl_dups, dl_order, dl_gaps)),
            ("downlink redelivered right after a tetherd SIGKILL (allowed, PROTOCOL.md 4)",
             dl_redelivered),
            ("crashes", len(self.crashes)),
            ("faults missing a bar", len(missed)),
            ("tetherd / tether-server exit on SIGTERM", "%s / %s" % (tetherd_exit, server_exit)),
        ]
        for name, value in rows:
            print("| %s | %s |" % (name, value))
        for crash in self.crashes:
            print("crash: %s" % crash)
        for f in missed:
            print("missed: %s at %.1f s (%s): %s" % (f.kind, f.start - self.t0, f.params,
                                                     "; ".join(f.problems)))
        rate = len(self.faults) * 3600.0 / elapsed if elapsed > 0 else 0
        ok = (lost == 0 and duplicates == 0 and out_of_order == 0 and extra == 0
              and dl_missing == 0 and dl_dups == 0 and dl_order == 0
              and not self.crashes and not missed and tetherd_exit == 0 and server_exit == 0)
        if self.options.min_rate and rate < self.options.min_rate:
            print("FAIL: %.0f faults per hour, below %d" % (rate, self.options.min_rate))
            ok = False
        print("result: %s" % ("PASS" if ok else "FAIL"))
        if not ok and self.options.keep_logs:
            for k, d in enumerate(self.daemons):
                path = os.path.join(self.options.keep_logs, "tetherd-%d.log" % k)
                with open(path, "w") as f:
                    f.write("\n".join("%.3f %s" % (at - self.t0, line)
                                      for at, _, line in d.snapshot()))
            print("tetherd logs in %s" % self.options.keep_logs)
        return 0 if ok else 1

    def close(self):
        for daemon in self.daemons + ([self.server.process] if self.server and
                                      self.server.process else []):
            if daemon.alive():
                daemon.kill()
        self.lab.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build", "host"))
    parser.add_argument("--source-dir", default=ROOT, help="accepted for ctest; unused")
    parser.add_argument("--duration", type=float, default=90, help="seconds of faults")
    parser.add_argument("--faults", type=int, default=0, help="stop after N faults (0: no cap)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--rate", type=float, default=50, help="uplink messages per second")
    parser.add_argument("--push-interval", type=float, default=0.5, help="seconds per push")
    parser.add_argument("--slack", type=float, default=1.0,
                        help="recovery slack over backoff delay + round trip, seconds")
    parser.add_argument("--dead-link-slack", type=float, default=0.5)
    parser.add_argument("--min-rate", type=int, default=0, help="faults per hour required")
    parser.add_argument("--keep-logs", default=None, help="directory for logs on failure")
    options = parser.parse_args()
    if options.seed is None:
        options.seed = random.SystemRandom().randrange(1, 1 << 31)
    if os.geteuid() != 0:
        print("run_faults: SKIPPED: needs root (network namespaces, nftables, tc)",
              file=sys.stderr)
        return 77
    for tool in ("ip", "nft", "tc"):
        if subprocess.run(["sh", "-c", "command -v %s" % tool], stdout=subprocess.DEVNULL).returncode:
            print("run_faults: %s is missing (tools/install-deps faults)" % tool, file=sys.stderr)
            return 2
    run = Run(options)
    try:
        return run.execute()
    except KeyboardInterrupt:
        print("interrupted")
        return 130
    finally:
        run.close()


if __name__ == "__main__":
    sys.exit(main())
