# SPDX-License-Identifier: MIT
"""Shared pieces of make bench: where things are, running a measured child,
and the integration harness (tests/integration/harness.py) for peers.

Every figure is measured on this machine in the same run as the figures it is
compared with; nothing here compares against stored numbers."""

import os
import statistics
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(BENCH_DIR)
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "integration"))

import harness  # noqa: E402  (after the path is set)

MESSAGE_SIZE = 100


class Measured:
    """One finished child: wall seconds, CPU seconds, peak RSS, output."""

    def __init__(self, cmd, returncode, wall_s, user_s, system_s, max_rss_kib, stdout, stderr):
        self.cmd = cmd
        self.returncode = returncode
        self.wall_s = wall_s
        self.user_s = user_s
        self.system_s = system_s
        self.max_rss_kib = max_rss_kib
        self.stdout = stdout
        self.stderr = stderr

    @property
    def cpu_s(self):
        return self.user_s + self.system_s

    def check(self):
        if self.returncode != 0:
            raise harness.HarnessError("%s exited %d\nstdout:\n%s\nstderr:\n%s" % (
                " ".join(self.cmd), self.returncode, self.stdout[-4000:], self.stderr[-4000:]))
        return self


def run_measured(cmd, timeout=600, env=None, cwd=None):
    """Runs cmd to completion; rusage comes from wait4 on this child alone."""
    started = time.monotonic()
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               cwd=cwd, preexec_fn=harness._die_with_parent)
    # wait4 needs the output drained meanwhile; communicate() reaps the child
    # itself, so read through threads and reap here.
    import threading
    chunks = {"out": [], "err": []}

    def drain(stream, key):
        for block in iter(lambda: stream.read(65536), b""):
            chunks[key].append(block)

    readers = [threading.Thread(target=drain, args=(process.stdout, "out"), daemon=True),
               threading.Thread(target=drain, args=(process.stderr, "err"), daemon=True)]
    for reader in readers:
        reader.start()
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid != 0:
            break
        if time.monotonic() > deadline:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.002)
    wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join(5)
    return Measured(cmd, process.returncode, wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss,
                    b"".join(chunks["out"]).decode(errors="replace"),
                    b"".join(chunks["err"]).decode(errors="replace"))


def median(values):
    return statistics.median(values) if values else float("nan")


def build_path(build_dir, *parts):
    return os.path.join(build_dir, *parts)


def machine_line():
    """CPU model, cores, memory, kernel: the line every figure is read against."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return "%s, %d cores, %.0f GiB, Linux %s" % (model, os.cpu_count() or 0, memory_gib,
                                                 os.uname().release)
