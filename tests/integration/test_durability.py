#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tetherd's promise, checked on the server's store: every message it accepted
is stored exactly once, or its seq is covered by a gap the server recorded;
never stored twice, never silently missing. One class per way it was broken:

  OversizeMessages  a message that fits max_message_size but not the frame
  UnwritableSpool   the spool's disk is full or turns read-only (root only)
  KillNine          kill -9 while a producer streams, over and over
  DamagedSpool      the spool deleted, truncated or corrupted between runs
  SpoolBurst        a burst on stdin with the spool on, stdin left open

Usage: /usr/bin/python3 test_durability.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import argparse
import bisect
import ctypes
import fcntl
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
import unittest
import zlib

ARGS = argparse.ArgumentParser(add_help=False)
ARGS.add_argument("--source-dir", required=True)
ARGS.add_argument("--build-dir", required=True)
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
sys.path.insert(0, os.path.join(OPTIONS.source_dir, "tests", "integration"))

import harness  # noqa: E402
import resume_harness as rh  # noqa: E402

BUILD = OPTIONS.build_dir
TETHERD = os.path.join(BUILD, "apps", "tetherd")
TETHER_CAT = os.path.join(BUILD, "apps", "tether-cat")
USER = "tether"
DEVICE = "gw-durable"
SESSION = rh.session_id(USER, DEVICE)

MAX_MESSAGE = 65536   # outbox.max_message_size and tether-server's default limit
V1_HEADER = 14        # tether.v1 DATA header with its age: the largest payload is MAX_MESSAGE - 14

# What the fix reports when the spool cannot be written. The exact field and
# metric names were not settled when these tests were written: the checks are
# deliberately loose, and these are the only places to adjust.
NO_SPACE = re.compile(r"no space|enospc", re.I)
READ_ONLY = re.compile(r"read-only|erofs", re.I)


def metrics_count_refused(text):
    """The largest counter of messages refused at intake (0 if none)."""
    best = 0.0
    for line in text.splitlines():
        if line.startswith("tether_") and re.search(r"refused|rejected|oversize|too_large",
                                                    line.split(" ")[0]):
            try:
                best = max(best, float(line.rpartition(" ")[2]))
            except ValueError:
                pass
    return best


def status_shows_spool_problem(text, problem):
    """The status file (JSON text) names the spool and the problem."""
    return "spool" in text.lower() and problem.search(text) is not None


def metrics_show_spool_problem(text):
    """Some tether_spool* sample that speaks of an error is non-zero."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith("tether_spool"):
            continue
        name, _, value = line.rpartition(" ")
        if re.search(r"error|fail|degraded|unwritable|no_space|enospc|erofs|read_only", name, re.I):
            try:
                if float(value) > 0:
                    return True
            except ValueError:
                pass
    return False


# --- the rig: tether-server and tetherd in one directory -------------------------


class Rig:
    """tether-server, and tetherd configured through JSON (docs/CONFIG.md)."""

    def __init__(self, name, state_dir=None, **overrides):
        self.tmp = harness.TempDir("durability-%s-" % name)
        self.store = self.tmp.path("store")
        os.makedirs(self.store)
        tokens = self.tmp.path("tokens")
        with open(tokens, "w") as f:
            f.write("t-1\n")
        self.server = rh.Server(BUILD, self.store, tokens)
        self.state_dir = state_dir or self.tmp.path("state")
        self.run_dir = self.tmp.path("run")
        self.socket = os.path.join(self.run_dir, "in.sock")
        self.status_path = os.path.join(self.run_dir, "status.json")
        self.metrics_path = os.path.join(self.run_dir, "tether.prom")
        self.config_path = self.tmp.path("tetherd.json")
        self.config = {
            "endpoints": ["ws://127.0.0.1:%d/v1" % self.server.port],
            "credentials": {"token_file": tokens},
            "session": {"user": USER, "device_id": DEVICE},
            "backoff": {"initial_ms": 100, "max_ms": 800, "jitter": "equal",
                        "healthy_after_ms": 300},
            "heartbeat": {"interval_ms": 1000, "pong_timeout_ms": 1000},
            "state_dir": self.state_dir,
            "run_dir": self.run_dir,
            "inputs": {"socket": self.socket, "health": {"enabled": False}},
            "downlink": {"output": "stdout"},
            "metrics": {"file": self.metrics_path, "interval_ms": 1000},
            "log": {"level": "info"},
        }
        self.configure(**overrides)
        self.daemon = None
        self.logs = []  # stderr of every tetherd run, oldest first

    def configure(self, **overrides):
        for key, value in overrides.items():
            self.config[key] = value
        with open(self.config_path, "w") as f:
            json.dump(self.config, f)

    def start(self, stdin=False):
        """Starts tetherd (after any previous run ended) and waits for its socket."""
        self.daemon = harness.start_process([TETHERD, "--config", self.config_path],
                                            expect_port=False, name="tetherd",
                                            stdin=harness.PIPE if stdin else None)
        harness.wait_for(lambda: self.socket_ready() or not self.daemon.alive(), timeout=10,
                         message="tetherd never bound its socket")
        return self.daemon

    def socket_ready(self):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            probe.connect(self.socket)
            return True
        except OSError:
            return False
        finally:
            probe.close()

    def end(self, signum):
        """Ends the running tetherd with signum; returns its exit code."""
        process, self.daemon = self.daemon, None
        if process is None:
            return None
        process.signal(signum)
        code = process.wait(15)
        process.stop()
        if process.proc.stdin is not None:
            process.close_stdin()
        self.logs.append(process.stderr())
        return code

    def wait_until(self, predicate, timeout):
        try:
            return bool(harness.wait_for(predicate, timeout=timeout, interval=0.1))
        except harness.HarnessError:
            return False

    def wait_online(self, timeout=10):
        return self.wait_until(lambda: "state=online" in self.log_text(), timeout)

    def log_text(self):
        """Every tetherd run's standard error so far."""
        running = [self.daemon.stderr()] if self.daemon is not None else []
        return "\n".join(self.logs + running)

    def records(self):
        return rh.uplink(self.store, SESSION)

    def gaps(self):
        return rh.gaps(self.store, SESSION)

    def stored_payloads(self):
        return [p.decode(errors="replace") for _, p in self.records()]

    def stored_names(self):
        return [label(p) for p in self.stored_payloads()]

    def wait_stored(self, wanted, timeout):
        """Waits until every name in `wanted` is in the store; True if so."""
        wanted = set(wanted)
        return self.wait_until(lambda: wanted <= set(self.stored_names()), timeout)

    def read(self, path):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        if self.daemon is not None:
            self.daemon.stop()
            if self.daemon.proc.stdin is not None:
                self.daemon.close_stdin()
            self.logs.append(self.daemon.stderr())
            self.daemon = None
        self.server.stop()


class Sender:
    """Datagrams to tetherd's input socket; only those the kernel took count."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)

    def send(self, payload):
        try:
            self.sock.sendto(payload, self.path)
            return True
        except OSError:
            return False

    def send_all(self, payloads, pause=0.0, produced=None, patient=True):
        """Sends each payload, retrying while the socket is full (patient: for
        up to 5 s, else the rest is not sent); appends the names to produced."""
        produced = [] if produced is None else produced
        for payload in payloads:
            deadline = time.monotonic() + 5
            while not self.send(payload):
                if time.monotonic() > deadline:
                    if patient:
                        raise harness.HarnessError("tetherd took no datagram for 5 s")
                    return produced
                time.sleep(0.002)
            produced.append(label(payload.decode()))
            if pause:
                time.sleep(pause)
        return produced

    def close(self):
        self.sock.close()


def numbered(prefix, count, size=0):
    """prefix-1, prefix-2, ... as bytes, padded with '.' to size."""
    return [("%s-%d" % (prefix, k)).encode().ljust(size, b".") for k in range(1, count + 1)]


def label(payload):
    """The message's name without its padding."""
    return payload.rstrip(".")


# --- the verdict -----------------------------------------------------------------


class Verdict:
    """The store against what was produced (names in production order)."""

    def __init__(self, produced, records, recorded_gaps):
        self.produced = produced
        self.records = records
        self.gaps = recorded_gaps
        self.problems = []
        position = {name: i for i, name in enumerate(produced)}
        seqs = [seq for seq, _ in records]
        names = [label(p.decode(errors="replace")) for _, p in records]

        seen_seqs = set()
        twice = sorted(set(s for s in seqs if s in seen_seqs or seen_seqs.add(s)))
        if twice or seqs != sorted(seqs):
            self.problems.append("seqs stored twice or out of order: %s" % twice[:10])
        seen = {}
        self.duplicates = []
        for seq, name in zip(seqs, names):
            if name in seen:
                self.duplicates.append((name, seen[name], seq))
            seen[name] = seq
        if self.duplicates:
            self.problems.append("%d messages stored twice (name, first seq, again at seq): %s" % (
                len(self.duplicates), self.duplicates[:5]))
        strangers = [n for n in names if n not in position]
        if strangers:
            self.problems.append("stored but never produced: %s" % strangers[:5])
        order = [position[n] for n in names if n in position]
        if order != sorted(order):
            self.problems.append("stored out of production order")

        gap_seqs = set()
        for first, last, _ in recorded_gaps:
            gap_seqs.update(range(first, last + 1))
        if gap_seqs & set(seqs):
            self.problems.append("a gap covers a stored seq")
        # The server's own rule: every seq below its high-water mark is stored or a gap.
        top = max(seqs + list(gap_seqs) + [0])
        holes = set(range(1, top + 1)) - gap_seqs - set(seqs)
        if holes:
            self.problems.append("seqs neither stored nor in a gap: %s" % sorted(holes)[:10])

        # Each run of produced messages missing from the store lies between two
        # stored neighbours (seqs s1 < s2); the seqs between them must include a
        # recorded gap seq for every missing message. A lost message whose seq
        # went to the next one (or whose successor was dropped as its duplicate)
        # leaves no seq between its neighbours.
        sorted_gaps = sorted(gap_seqs)

        def gap_seqs_between(low, high):  # low < s < high; high None: no bound
            end = len(sorted_gaps) if high is None else bisect.bisect_left(sorted_gaps, high)
            return max(0, end - bisect.bisect_right(sorted_gaps, low))

        stored_at = {}
        for seq, name in zip(seqs, names):
            stored_at.setdefault(name, seq)
        self.missing = [n for n in produced if n not in stored_at]
        self.lost_without_gap = []
        run = []
        previous_seq = 0
        for name in produced + [None]:
            if name is not None and name not in stored_at:
                run.append(name)
                continue
            next_seq = stored_at[name] if name is not None else None
            if run:
                room = gap_seqs_between(previous_seq, next_seq)
                if room < len(run):
                    self.lost_without_gap.append((run[0], run[-1], len(run), room))
                run = []
            if next_seq is not None:
                previous_seq = max(previous_seq, next_seq)
        if self.lost_without_gap:
            total = sum(r[2] for r in self.lost_without_gap)
            self.problems.append(
                "%d messages missing without a recorded gap for them "
                "(first, last, missing, gap seqs available): %s" % (
                    total, self.lost_without_gap[:5]))

    def summary(self):
        return "produced %d, stored %d, missing %d (%d without a gap), stored twice %d, gaps %s" % (
            len(self.produced), len(self.records), len(self.missing),
            sum(r[2] for r in self.lost_without_gap), len(self.duplicates),
            [(f, l, r) for f, l, r in self.gaps][:6])


class DurabilityTestCase(unittest.TestCase):
    def assert_exactly_once_or_gap(self, rig, produced, must_arrive=(), context=""):
        """Nothing twice, nothing missing without a gap; `must_arrive` all stored."""
        verdict = Verdict(produced, rig.records(), rig.gaps())
        absent = [n for n in must_arrive if n in set(verdict.missing)]
        problems = list(verdict.problems)
        if absent:
            problems.append("%d messages that had to arrive are missing: %s" % (
                len(absent), absent[:5]))
        self.assertFalse(problems, "%s\n%s%s" % ("\n".join(problems), context,
                                                 verdict.summary()))
        return verdict

    def assert_all_stored_no_gap(self, rig, produced):
        verdict = self.assert_exactly_once_or_gap(rig, produced, must_arrive=produced)
        self.assertEqual(verdict.gaps, [], verdict.summary())
        return verdict


# --- 1. a message too large for the frame ------------------------------------------


def big(size, name):
    return name.encode().ljust(size, b"x")


class OversizeMessages(DurabilityTestCase):
    """A message of at most max_message_size that tether.v1's 14-byte header
    pushes past the server's limit must be refused at intake, counted and
    logged with its size; the messages behind it must not wait for it."""

    FITS = MAX_MESSAGE - V1_HEADER  # 65,522: the largest payload the server takes

    def run_daemon_case(self, spool):
        rig = Rig("oversize-%s" % ("spool" if spool else "memory"),
                  spool={"enabled": spool, "fsync_interval_ms": 100})
        sender = Sender(rig.socket)
        try:
            rig.server.start()
            rig.start()
            expected = sender.send_all(numbered("before", 10))
            fits = big(self.FITS, "fits-%d" % self.FITS)
            sender.send_all([fits])
            expected.append(fits.decode())
            refused_sizes = (self.FITS + 1, MAX_MESSAGE - 1, MAX_MESSAGE)
            for size in refused_sizes:
                self.assertTrue(sender.send(big(size, "refused-%d" % size)))
            sender.send_all(numbered("after", 50), pause=0.002, produced=expected)
            self.assert_flows(rig, expected)
            self.assertEqual(rig.end(15), 0)
            # Refused at intake: logged with its size (once, not once per retry)
            # and counted.
            log = [line for line in rig.log_text().splitlines() if "event=start" not in line]
            first = re.compile(r"\b%d\b" % refused_sizes[0])
            self.assertTrue([line for line in log if first.search(line)],
                            "no log line gives the refused size %d" % refused_sizes[0])
            any_size = re.compile(r"\b(%s)\b" % "|".join(str(n) for n in refused_sizes))
            mentions = [line for line in log if any_size.search(line)]
            self.assertLessEqual(len(mentions), len(refused_sizes), mentions)
            self.assertGreaterEqual(metrics_count_refused(rig.read(rig.metrics_path)),
                                    len(refused_sizes), "no metric counts the refused messages")
            if spool:
                # Nothing refused may wait in the spool to jam the next run.
                rig.start()
                sender.send_all(numbered("restarted", 20), pause=0.002, produced=expected)
                self.assert_flows(rig, expected)
                self.assertEqual(rig.end(15), 0)
            self.assertEqual(rig.stored_payloads(), expected)
        finally:
            sender.close()
            rig.close()

    def assert_flows(self, rig, expected):
        arrived = rig.wait_stored(expected, timeout=10)
        stored = rig.stored_payloads()
        self.assertFalse([p for p in stored if p.startswith("refused-")])
        online = rig.log_text().count("event=state state=online")
        self.assertTrue(arrived, "the messages behind the oversize ones never arrived: %d of %d "
                        "stored; online %d times (a refused frame, reconnect, resend?)" % (
                            len(set(stored) & set(expected)), len(expected), online))

    def test_a_message_the_frame_cannot_carry_is_refused_and_the_rest_flows(self):
        self.run_daemon_case(spool=False)

    def test_with_the_spool_on_nothing_jams_across_a_restart(self):
        self.run_daemon_case(spool=True)

    def tether_cat(self, rig, device, line, timeout):
        token = rig.tmp.path("cat-token")
        with open(token, "w") as f:
            f.write("t-1\n")
        cmd = [TETHER_CAT, "--tether-v1", "--state-dir", rig.tmp.path("cat-" + device),
               "--device-id", device, "--token-file", token, "--backoff-initial", "100",
               "--backoff-max", "400", "ws://127.0.0.1:%d/v1" % rig.server.port]
        return harness.run(cmd, stdin_bytes=line + b"\n", timeout=timeout)

    def test_tether_cat_exits_on_a_line_the_frame_cannot_carry(self):
        rig = Rig("oversize-cat")
        try:
            rig.server.start()
            result = self.tether_cat(rig, "cat-big", b"y" * (self.FITS + 1), timeout=8)
            self.assertFalse(result.timed_out, "tether-cat still running after 8 s with a "
                             "%d-byte line: %r" % (self.FITS + 1, result))
            self.assertNotEqual(result.returncode, 0, result)
            self.assertIn(str(self.FITS + 1), result.stderr.decode(errors="replace"))
            # The largest line that fits goes through.
            line = b"z" * self.FITS
            result = self.tether_cat(rig, "cat-fits", line, timeout=10)
            self.assertEqual(result.returncode, 0, result)
            stored = rh.uplink(rig.store, rh.session_id(USER, "cat-fits"))
            self.assertEqual([p for _, p in stored], [line])
        finally:
            rig.close()


# --- 2. a spool that cannot be written ---------------------------------------------


def run_root(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


class UnwritableSpool(DurabilityTestCase):
    """A full or read-only disk under the spool must not stop sending: the
    error is logged once, shown in the status file and the metrics, and the
    messages go out from memory while the server acknowledges them."""

    COUNT = 5000

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root: mounts a small tmpfs / a loop ext4 as the state directory")

    def mount(self, args, target):
        if not os.path.exists(target):
            os.makedirs(target)
        result = run_root(["mount"] + args + [target])
        if result.returncode != 0:
            self.skipTest("cannot mount %s: %s" % (" ".join(args), result.stderr.strip()))
        self.addCleanup(self.unmount, target)

    def unmount(self, target):
        if run_root(["umount", target]).returncode != 0:
            run_root(["umount", "-l", target])

    def rig(self, name):
        rig = Rig(name, spool={"enabled": True, "fsync_interval_ms": 200})
        return rig

    def stream_and_check(self, rig, problem, during=None):
        """Streams COUNT 100-byte messages (calling during() half way), then the verdict."""
        self.addCleanup(rig.close)  # after the mounts' cleanups were registered: runs first
        sender = Sender(rig.socket)
        self.addCleanup(sender.close)
        rig.server.start()
        rig.start()
        online = rig.wait_online()
        produced = []
        if online:
            messages = numbered("m", self.COUNT, size=100)
            half = self.COUNT // 2
            sender.send_all(messages[:half], pause=0.0005, produced=produced, patient=False)
            if during is not None:
                during()
            sender.send_all(messages[half:], pause=0.0005, produced=produced, patient=False)
        arrived = online and rig.wait_stored(produced, timeout=15)
        shown = arrived and rig.wait_until(
            lambda: status_shows_spool_problem(rig.read(rig.status_path), problem) and
            metrics_show_spool_problem(rig.read(rig.metrics_path)), timeout=3)
        alive = rig.daemon is not None and rig.daemon.alive()
        status = rig.read(rig.status_path)
        metrics = [line for line in rig.read(rig.metrics_path).splitlines() if "spool" in line]
        rig.close()
        log = rig.log_text()
        self.assertTrue(alive, "tetherd exited:\n%s" % log[-3000:])
        mentions = [line for line in log.splitlines()
                    if problem.search(line) and "event=start" not in line]
        stored = len(set(rig.stored_names()) & set(produced))
        self.assertTrue(arrived, "sending stopped: %d of %d stored, gaps %s; the log names the "
                        "problem %d times; status: %s" % (stored, len(produced), rig.gaps()[:5],
                                                          len(mentions), status.strip()))
        self.assert_all_stored_no_gap(rig, produced)
        self.assertTrue(mentions, "the log never names the problem (%s)" % problem.pattern)
        self.assertLessEqual(len(mentions), 3, "logged %d times, e.g. %s" % (
            len(mentions), mentions[:3]))
        self.assertTrue(shown, "the status file or the metrics do not show the spool "
                        "problem:\n%s\n%s" % (status, "\n".join(metrics)))

    def test_a_full_disk_is_reported_and_sending_goes_on(self):
        rig = self.rig("full")
        self.mount(["-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs"], rig.state_dir)
        self.stream_and_check(rig, NO_SPACE)

    def make_ext4(self, rig):
        image = rig.tmp.path("state.img")
        with open(image, "wb") as f:
            f.truncate(16 << 20)
        result = run_root(["mkfs.ext4", "-q", "-F", image])
        if result.returncode != 0:
            self.skipTest("mkfs.ext4: %s" % result.stderr.strip())
        self.mount(["-o", "loop,errors=remount-ro", image], rig.state_dir)
        device = None
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                if fields[1] == rig.state_dir:
                    device = os.path.basename(fields[0])
        knob = "/sys/fs/ext4/%s/trigger_fs_error" % device
        if not os.path.exists(knob):
            self.skipTest("no %s to turn the file system read-only" % knob)
        return knob

    def test_a_file_system_turning_read_only_is_reported_and_sending_goes_on(self):
        # What an SD card does: ext4 with errors=remount-ro, an error half way
        # through the stream; from then on every write and fsync fails EROFS.
        rig = self.rig("ro-fs")
        knob = self.make_ext4(rig)

        def turn_read_only():
            with open(knob, "w") as f:
                f.write("durability test\n")
        self.stream_and_check(rig, READ_ONLY, during=turn_read_only)

    def test_a_read_only_spool_at_start_is_reported_and_sending_goes_on(self):
        # The state record is writable; the spool file is on a read-only mount.
        rig = self.rig("ro-spool")
        os.makedirs(rig.state_dir, mode=0o700)
        spool = os.path.join(rig.state_dir, "spool")
        open(spool, "wb").close()
        self.mount(["--bind", spool], spool)
        result = run_root(["mount", "-o", "remount,bind,ro", spool])
        if result.returncode != 0:
            self.skipTest("cannot remount the spool read-only: %s" % result.stderr.strip())
        self.stream_and_check(rig, READ_ONLY)


# --- 3. kill -9 at random moments ---------------------------------------------------


def process_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0]
    except OSError:
        return "gone"


_libc = ctypes.CDLL(None, use_errno=True)
SYS_PIDFD_GETFD = 438  # the same number on every architecture


def steal_socket(pid, path):
    """A duplicate of the socket process pid has bound to path (pidfd_getfd(2)).

    The socket is found by inode (/proc/net/unix, /proc/PID/fd). Reading from
    the duplicate takes datagrams from the process's own queue."""
    inodes = set()
    with open("/proc/net/unix") as table:
        for line in table:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == path:
                inodes.add("socket:[%s]" % fields[6])
    fd_dir = "/proc/%d/fd" % pid
    targets = []
    for name in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, name)) in inodes:
                targets.append(int(name))
        except OSError:
            pass
    if len(targets) != 1:
        raise harness.HarnessError("found %d sockets bound to %s in %d" % (len(targets), path, pid))
    pidfd = os.pidfd_open(pid)
    try:
        fd = _libc.syscall(SYS_PIDFD_GETFD, pidfd, targets[0], 0)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
    finally:
        os.close(pidfd)
    return socket.socket(fileno=fd)


def first_queued_size(sock):
    """FIONREAD on a datagram socket: the size of the first queued datagram, 0 if none."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]


def take_unread(sock):
    """Every datagram still queued (the process, stopped, never read them)."""
    unread = []
    while True:
        try:
            unread.append(label(sock.recv(1 << 17, socket.MSG_DONTWAIT).decode()))
        except BlockingIOError:
            return unread


class KillNine(DurabilityTestCase):
    """SIGKILL while a producer streams numbered datagrams, then a restart,
    over and over: whatever tetherd had read from its socket is stored once
    or covered by a gap, and no seq is given to two messages.

    Each kill comes at a random moment of the stream, and lands while tetherd
    reads a batch of ten larger datagrams, the window in which it holds
    messages it accepted only in its memory. Datagrams still queued on its
    socket when it is frozen were never read; the test takes them out itself
    (pidfd_getfd) and does not count them as produced, since the kernel drops
    them with the socket. Nothing else is excused: a lost message needs a gap
    seq of its own between its stored neighbours, so one whose seq went to
    the next message, or whose successor the server dropped as a duplicate
    of it, fails the verdict."""

    SEED = 12
    DURATION_S = 20.0
    RATE = 2000  # messages per second, in bursts: tetherd is often busy when killed
    BURST = 20

    def test_kill_9_at_random_moments_loses_nothing_silently(self):
        rig = Rig("kill9", spool={"enabled": True, "fsync_interval_ms": 200})
        randomness = random.Random(self.SEED)
        sender = Sender(rig.socket)
        produced = []
        lock = threading.Lock()
        running = [True]

        def produce():
            while running[0]:
                with lock:
                    for _ in range(self.BURST):
                        name = "k-%d" % (int(produced[-1][2:]) + 1 if produced else 1)
                        if sender.send(name.encode()):
                            produced.append(name)
                time.sleep(self.BURST / self.RATE)

        producer = threading.Thread(target=produce, daemon=True)
        kills = 0
        unread_total = 0
        try:
            rig.server.start()
            rig.start()
            producer.start()
            started = time.monotonic()
            while time.monotonic() - started < self.DURATION_S:
                time.sleep(randomness.uniform(0.25, 0.85))
                with lock:
                    # Frozen, then a few messages of different sizes queue up;
                    # thawed, it reads them in one go, and is frozen again as soon
                    # as it has taken the first: it then holds messages it read
                    # only in its memory (or has just handed them on).
                    pid = rig.daemon.pid
                    watch = steal_socket(pid, rig.socket)
                    os.kill(pid, signal.SIGSTOP)
                    harness.wait_for(lambda: process_state(pid) in ("T", "t"), timeout=5)
                    early = take_unread(watch)  # the producer's burst, if not all read yet
                    if early:
                        self.assertEqual(early, produced[-len(early):])
                        del produced[-len(early):]
                        unread_total += len(early)
                    sizes = []
                    for i in range(10):
                        name = "k-%d" % (int(produced[-1][2:]) + 1 if produced else 1)
                        data = name.encode().ljust(8000 + i, b".")
                        sender.sock.setblocking(False)
                        if sender.send(data):
                            produced.append(name)
                            sizes.append(len(data))
                        sender.sock.setblocking(True)
                    os.kill(pid, signal.SIGCONT)
                    deadline = time.monotonic() + 1.0
                    while sizes and first_queued_size(watch) == sizes[0] and \
                            time.monotonic() < deadline:
                        pass
                    os.kill(pid, signal.SIGSTOP)
                    harness.wait_for(lambda: process_state(pid) in ("T", "t"), timeout=5)
                    # Frozen: what its socket still holds was never read by
                    # tetherd, so it does not count as produced.
                    unread = take_unread(watch)
                    watch.close()
                    if unread:
                        self.assertEqual(unread, produced[-len(unread):])
                        del produced[-len(unread):]
                        unread_total += len(unread)
                    rig.end(signal.SIGKILL)
                kills += 1
                rig.start()
            running[0] = False
            producer.join(5)
            # Some messages lie inside gaps and never arrive: wait until every
            # one is stored or accounted for by a gap (the last run may still
            # be backing off after 30 kills, its messages safe in the spool),
            # not for all of them.
            rig.wait_until(lambda: not Verdict(produced, rig.records(), rig.gaps()).problems,
                           timeout=30)
            self.assertEqual(rig.end(signal.SIGTERM), 0)
            verdict = self.assert_exactly_once_or_gap(
                rig, produced, context="kill -9 x%d, %d datagrams never read by tetherd: " % (
                    kills, unread_total))
            self.assertGreaterEqual(kills, 20)
            self.assertGreater(len(produced), 3000, verdict.summary())
            sys.stderr.write("kill -9 x%d (%d datagrams never read): %s\n" % (
                kills, unread_total, verdict.summary()))
        finally:
            running[0] = False
            sender.close()
            rig.close()


# --- 4. a damaged spool -------------------------------------------------------------

SLOT = 64
HEADER_BLOCK = 128
RECORD_HEADER = 20


def spool_journal(path):
    """(region base, [(offset, type, seq, length)], journal end) of the newest
    intact generation; see include/tether/spool.h for the layout."""
    with open(path, "rb") as f:
        data = f.read()
    best = None
    for s in (0, 1):
        slot = data[s * SLOT:(s + 1) * SLOT]
        if len(slot) < SLOT or slot[:4] != b"TSPL":
            continue
        if zlib.crc32(slot[:60]) & 0xFFFFFFFF != struct.unpack_from("<I", slot, 60)[0]:
            continue
        generation, region_size = struct.unpack_from("<II", slot, 8)
        if best is None or generation > best[0]:
            best = (generation, region_size, slot[16])
    if best is None:
        raise AssertionError("no intact spool header slot in %s" % path)
    generation, region_size, region = best
    base = HEADER_BLOCK + region * region_size
    records = []
    at = base
    while at + RECORD_HEADER <= len(data):
        header = data[at:at + RECORD_HEADER]
        if header == bytes(RECORD_HEADER):
            break
        kind, _, tag, length, seq, crc = struct.unpack("<BBHIQI", header)
        body = data[at + RECORD_HEADER:at + RECORD_HEADER + length]
        if tag != generation & 0xFFFF or \
                zlib.crc32(body, zlib.crc32(header[:16])) & 0xFFFFFFFF != crc:
            break
        records.append((at, chr(kind), seq, length))
        at += RECORD_HEADER + length
    return base, records, at


class DamagedSpool(DurabilityTestCase):
    """The spool damaged between two runs (the state record intact): nothing
    the server already holds comes back under a new seq, and what the damage
    took away is covered by a gap, never by new messages reusing its seqs."""

    def spooled_while_offline(self, name, damage, restart_overrides=None, count=200, size=0,
                              **overrides):
        """A is stored; B waits in the spool (server down); damage; C after a restart."""
        overrides.setdefault("spool", {"enabled": True, "fsync_interval_ms": 100})
        rig = Rig(name, **overrides)
        sender = Sender(rig.socket)
        try:
            rig.server.start()
            rig.start()
            a = sender.send_all(numbered("a", 50, size), pause=0.002)
            self.assertTrue(rig.wait_stored(a, timeout=10), "the first messages never arrived")
            rig.server.kill()
            b = sender.send_all(numbered("b", count, size), pause=0.001)
            time.sleep(0.5)  # read, spooled and synced (fsync_interval_ms 100)
            self.assertEqual(rig.end(15), 0)
            damage(os.path.join(rig.state_dir, "spool"))
            if restart_overrides:
                rig.configure(**restart_overrides)
            rig.server.start()
            rig.start()
            c = sender.send_all(numbered("c", 50, size), pause=0.002)
            rig.wait_stored(c, timeout=10)
            self.assertEqual(rig.end(15), 0)
            self.assert_exactly_once_or_gap(rig, a + b + c, must_arrive=a + c)
        finally:
            sender.close()
            rig.close()

    def acknowledged_then_damaged(self, name, damage):
        """A is stored and acknowledged (ACK records in the spool); damage; C."""
        rig = Rig(name, spool={"enabled": True, "fsync_interval_ms": 100})
        sender = Sender(rig.socket)
        try:
            rig.server.start()
            rig.start()
            a = sender.send_all(numbered("a", 600), pause=0.001)
            self.assertTrue(rig.wait_stored(a, timeout=10), "the first messages never arrived")
            time.sleep(1.0)  # the server's last ACK reaches the spool
            self.assertEqual(rig.end(15), 0)
            path = os.path.join(rig.state_dir, "spool")
            _, records, _ = spool_journal(path)
            self.assertTrue(any(kind == "A" for _, kind, _, _ in records), records[-5:])
            damage(path, records)
            rig.start()
            c = sender.send_all(numbered("c", 50), pause=0.002)
            rig.wait_stored(c, timeout=10)
            self.assertEqual(rig.end(15), 0)
            self.assert_exactly_once_or_gap(rig, a + c, must_arrive=a + c)
        finally:
            sender.close()
            rig.close()

    def test_a_deleted_spool(self):
        self.spooled_while_offline("deleted", os.unlink)

    def test_a_spool_truncated_to_nothing(self):
        self.spooled_while_offline("emptied", lambda path: os.truncate(path, 0))

    def test_a_spool_with_both_header_slots_damaged(self):
        def damage(path):
            with open(path, "r+b") as f:
                for offset in (5, SLOT + 5):
                    f.seek(offset)
                    byte = f.read(1)
                    f.seek(offset)
                    f.write(bytes([byte[0] ^ 0xFF]))
        self.spooled_while_offline("header", damage)

    def test_a_journal_truncated_in_the_middle(self):
        def damage(path, records):
            middle = records[len(records) // 2][0]
            os.truncate(path, middle + 7)  # cut inside a record
        self.acknowledged_then_damaged("cut", damage)

    def test_a_byte_flipped_in_the_middle_of_the_journal(self):
        def damage(path, records):
            offset, _, _, _ = next(r for r in records[len(records) // 2:] if r[1] == "M")
            with open(path, "r+b") as f:
                f.seek(offset + RECORD_HEADER)
                byte = f.read(1)
                f.seek(offset + RECORD_HEADER)
                f.write(bytes([byte[0] ^ 0x01]))
        self.acknowledged_then_damaged("flip", damage)

    def test_a_restart_with_a_smaller_outbox(self):
        # 1,500 messages of 100 bytes (180 KB) wait in a 256 KiB outbox; the
        # restart gets 32 KiB, which holds about 270 of them.
        self.spooled_while_offline(
            "smaller", lambda path: None, count=1500, size=100,
            outbox={"size_bytes": 262144, "max_message_size": 4096},
            restart_overrides={"outbox": {"size_bytes": 32768, "max_message_size": 4096}})


# --- 5. a burst with the spool on ---------------------------------------------------


class SpoolBurst(DurabilityTestCase):
    """50,000 lines on stdin with the spool on and stdin left open: every one
    is stored within fsync_interval_ms plus a few seconds, none evicted."""

    COUNT = 50000
    FSYNC_MS = 1000  # the default

    def burst(self, rig, count):
        lines = numbered("line", count)
        rig.daemon.write_stdin(b"".join(line + b"\n" for line in lines))
        return [line.decode() for line in lines]

    def run_burst(self, name, **overrides):
        overrides.setdefault("spool", {"enabled": True, "fsync_interval_ms": self.FSYNC_MS})
        rig = Rig(name, **overrides)
        rig.configure(inputs=dict(rig.config["inputs"], stdin=True))
        try:
            rig.server.start()
            rig.start(stdin=True)
            self.assertTrue(rig.wait_online(), rig.log_text())
            produced = self.burst(rig, self.COUNT)
            written = time.monotonic()
            arrived = rig.wait_stored(produced, timeout=self.FSYNC_MS / 1000.0 + 5)
            took = time.monotonic() - written
            verdict = Verdict(produced, rig.records(), rig.gaps())
            self.assertTrue(arrived, "after %.1f s (stdin open): %s" % (took, verdict.summary()))
            self.assert_all_stored_no_gap(rig, produced)
            return rig, produced
        except BaseException:
            rig.close()
            raise

    def test_a_burst_on_stdin_is_stored_whole(self):
        # The default outbox (256 KiB) and spool (8 MiB).
        rig, _ = self.run_burst("burst")
        rig.close()

    def test_the_end_of_a_burst_goes_out_without_more_input(self):
        # An outbox that holds the whole burst, so nothing can be evicted; then
        # single lines, each of which must go out on its own.
        rig, produced = self.run_burst("tail", outbox={"size_bytes": 8 << 20},
                                       spool={"enabled": True, "max_bytes": 64 << 20,
                                              "fsync_interval_ms": self.FSYNC_MS})
        try:
            for k in range(1, 4):
                line = "single-%d" % k
                rig.daemon.write_stdin(line.encode() + b"\n")
                produced.append(line)
                self.assertTrue(rig.wait_stored([line], timeout=self.FSYNC_MS / 1000.0 + 1),
                                "%s not stored within fsync_interval_ms + 1 s" % line)
                time.sleep(0.3 * k)
            self.assert_all_stored_no_gap(rig, produced)
        finally:
            rig.close()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV, verbosity=2)
