# SPDX-License-Identifier: MIT
"""make bench, tetherd end to end: what the spool costs.

tetherd reads 100-byte messages from standard input or its UNIX datagram
socket and sends them over tether.v1 to tether-server, whose store is the
finish line: a message counts once its record is in the session's uplink.log.
Every workload runs with the spool off and on, with tetherd's state directory
and the server's store both on a tmpfs (/dev/shm) and both on the real disk
(/var/tmp), side by side in one run:

  stdin burst    N lines written to tetherd's stdin at once (stdin stays open)
  datagram flood datagrams sent as fast as the socket takes them, for T s
  datagram paced R datagrams/s for T s: the latency when tetherd keeps up

Figures per run:
  stored/s    messages stored / (first write -> last message stored or given
              up as a gap); the store is read as it grows, every few ms
  evicted     seqs the server recorded as gaps: messages the outbox dropped
  latency     store time - the time written into the message just before it
              was sent (stdin: the burst's start), p50 / p99 / max; the store
              is read every POLL_S, so figures are that coarse
  last after  from the last write to the last message stored

    /usr/bin/python3 bench/tetherd_e2e.py --build-dir build/host [--work-dir DIR]
        [--docs-dir docs] [--smoke]
"""

import argparse
import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (puts tests/integration on sys.path)
import harness  # noqa: E402
import resume_harness  # noqa: E402

TOKEN = "bench-e2e-token"
USER = "tether"
DEVICE = "bench-e2e"
SIZE = common.MESSAGE_SIZE
POLL_S = 0.005
# tether-server writes a batch of records when it syncs them, before the ACK:
# every 64 messages or this often (its default, 200 ms, would dominate latency).
SERVER_ACK_INTERVAL_MS = 10
SPOOL = {"enabled": True, "max_bytes": 1 << 30, "fsync_interval_ms": 100}
FULL = {"stdin_n": 200000, "flood_s": 5.0, "paced_rate": 2000, "paced_s": 3.0, "timeout_s": 60.0}
SMOKE = {"stdin_n": 2000, "flood_s": 0.3, "paced_rate": 500, "paced_s": 0.4, "timeout_s": 15.0}
WORKLOADS = ["stdin", "flood", "paced"]
WORKLOAD_LABEL = {"stdin": "stdin burst", "flood": "datagram flood", "paced": "datagram paced"}


def mount_of(path):
    """(file system type, source) of the mount holding path."""
    path = os.path.realpath(path)
    best = ("?", "?", "")
    with open("/proc/mounts") as mounts:
        for line in mounts:
            source, target, fstype = line.split()[:3]
            if (path == target or path.startswith(target.rstrip("/") + "/")) and \
                    len(target) >= len(best[2]):
                best = (fstype, source, target)
    return best[0], best[1]


def media(work_dir):
    """name -> directory for the runs: a tmpfs and the real disk."""
    chosen = {}
    if os.path.isdir("/dev/shm") and mount_of("/dev/shm")[0] == "tmpfs":
        chosen["tmpfs"] = "/dev/shm"
    for candidate in ("/var/tmp", work_dir):
        if os.path.isdir(candidate) and mount_of(candidate)[0] not in ("tmpfs", "ramfs"):
            chosen["disk"] = candidate
            break
    return chosen


class StoreTail:
    """Reads the session's uplink.log as it grows; notes when each seq appeared."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.pending = b""
        self.seqs = set()
        self.latencies_ns = []
        self.last_ns = 0
        self.origin_ns = 0  # for messages that carry no send time (0): the burst's start
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.running = False
        self.thread.join(5)
        self.poll()

    def run(self):
        while self.running:
            self.poll()
            time.sleep(POLL_S)

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        now = time.monotonic_ns()
        self.offset += len(data)
        data = self.pending + data
        at = 0
        with self.lock:
            while at + 16 <= len(data):
                seq, length = struct.unpack_from("<QI", data, at)
                end = at + 12 + length
                if end + 4 > len(data):
                    break
                if zlib.crc32(data[at:end]) & 0xFFFFFFFF != struct.unpack_from("<I", data, end)[0]:
                    break  # a torn tail: the server is still writing it
                if seq not in self.seqs:
                    self.seqs.add(seq)
                    sent_ns = int(data[at + 12:end].split(b" ", 2)[1]) or self.origin_ns
                    self.latencies_ns.append(now - sent_ns)
                    self.last_ns = now
                at = end + 4
        self.pending = data[at:]

    def count(self):
        with self.lock:
            return len(self.seqs)


def payload(k, sent_ns):
    return (b"%d %d " % (k, sent_ns)).ljust(SIZE, b".")


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def one_run(build_dir, root, workload, spool, settings):
    """One workload through a fresh tether-server and tetherd under root."""
    base = tempfile.mkdtemp(prefix="e2e-", dir=root)
    store, state, run_dir = (os.path.join(base, name) for name in ("store", "state", "run"))
    os.makedirs(store)
    tokens = os.path.join(base, "tokens")
    with open(tokens, "w") as f:
        f.write(TOKEN + "\n")
    server = resume_harness.Server(build_dir, store, tokens,
                                   ["--ack-interval-ms", str(SERVER_ACK_INTERVAL_MS)])
    sock_path = os.path.join(run_dir, "in.sock")
    config = {
        "endpoints": ["ws://127.0.0.1:%d/v1" % server.port],
        "credentials": {"token_file": tokens},
        "session": {"user": USER, "device_id": DEVICE},
        "state_dir": state, "run_dir": run_dir,
        "inputs": {"stdin": workload == "stdin", "socket": sock_path,
                   "health": {"enabled": False}},
        "spool": SPOOL if spool else {"enabled": False},
        "log": {"level": "warn"},
    }
    config_path = os.path.join(base, "tetherd.json")
    with open(config_path, "w") as f:
        json.dump(config, f)
    session = resume_harness.session_id(USER, DEVICE)
    daemon = None
    tail = None
    try:
        server.start()
        daemon = harness.start_process([os.path.join(build_dir, "apps", "tetherd"), "--config",
                                        config_path], expect_port=False, name="tetherd",
                                       stdin=harness.PIPE if workload == "stdin" else None)
        harness.wait_for(lambda: (server.session_stats(session) or {}).get("live_connections"),
                         timeout=10, interval=0.02, message="tetherd never came online")
        tail = StoreTail(os.path.join(store, "sessions", session, "uplink.log")).start()
        if workload == "stdin":
            produced = settings["stdin_n"]
            burst = b"".join(payload(k, 0) + b"\n" for k in range(1, produced + 1))
            started_ns = tail.origin_ns = time.monotonic_ns()
            daemon.write_stdin(burst)
        else:
            started_ns = time.monotonic_ns()
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.settimeout(1.0)  # blocking: the socket's queue paces the flood
            produced = 0
            seconds = settings["flood_s"] if workload == "flood" else settings["paced_s"]
            interval_ns = 0 if workload == "flood" else int(1e9 / settings["paced_rate"])
            end_ns = started_ns + int(seconds * 1e9)
            while True:
                now_ns = time.monotonic_ns()
                if now_ns >= end_ns:
                    break
                if interval_ns:
                    due_ns = started_ns + produced * interval_ns
                    if now_ns < due_ns:
                        time.sleep((due_ns - now_ns) / 1e9)
                        now_ns = time.monotonic_ns()
                try:
                    sender.sendto(payload(produced + 1, now_ns), sock_path)
                    produced += 1
                except (socket.timeout, BlockingIOError):
                    pass
            sender.close()
        written_ns = time.monotonic_ns()

        def accounted():
            stats = server.session_stats(session) or {}
            return tail.count() + stats.get("missing_seqs", 0) >= produced

        deadline = time.monotonic() + settings["timeout_s"]
        complete = False
        while time.monotonic() < deadline:
            if accounted():
                complete = True
                break
            time.sleep(0.02)
        tail.stop()
        stats = server.session_stats(session) or {}
        stored = tail.count()
        finished_ns = tail.last_ns if complete and tail.last_ns else time.monotonic_ns()
        elapsed = max((finished_ns - started_ns) / 1e9, 1e-9)
        latencies_ms = [ns / 1e6 for ns in tail.latencies_ns]
        return {
            "workload": workload, "spool": spool, "produced": produced, "stored": stored,
            "evicted": stats.get("missing_seqs", 0), "duplicates": stats.get("duplicates", 0),
            "complete": complete, "rate": stored / elapsed, "elapsed_s": elapsed,
            "p50_ms": percentile(latencies_ms, 0.50), "p99_ms": percentile(latencies_ms, 0.99),
            "max_ms": max(latencies_ms) if latencies_ms else float("nan"),
            "last_after_ms": max(0.0, (tail.last_ns - written_ns) / 1e6) if tail.last_ns else
            float("nan"),
        }
    finally:
        if tail is not None:
            tail.running = False
        if daemon is not None:
            daemon.stop()
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def datagram_queue():
    """net.unix.max_dgram_qlen: datagrams a socket queues before senders block."""
    try:
        with open("/proc/sys/net/unix/max_dgram_qlen") as f:
            return f.read().strip()
    except OSError:
        return "?"


def fmt_rate(rate):
    if rate != rate:
        return "—"
    if rate >= 1e6:
        return "%.2f M" % (rate / 1e6)
    if rate >= 1e4:
        return "%.0f k" % (rate / 1e3)
    if rate >= 1e3:
        return "%.1f k" % (rate / 1e3)
    return "%.0f" % rate


def fmt_ms(value):
    return "—" if value != value else ("%.0f" % value if value >= 10 else "%.1f" % value)


def ratio(on, off):
    return on["rate"] / off["rate"] if off["rate"] > 0 else float("nan")


def run(build_dir, work_dir, docs_dir, smoke=False):
    del docs_dir  # the section goes into docs/BENCHMARKS.md through tools/bench
    settings = SMOKE if smoke else FULL
    os.makedirs(work_dir, exist_ok=True)
    places = media(work_dir)
    results = {}
    for medium, directory in places.items():
        root = tempfile.mkdtemp(prefix="tether-e2e-", dir=directory)
        try:
            for workload in WORKLOADS:
                for spool in (False, True):
                    results[(medium, workload, spool)] = one_run(build_dir, root, workload,
                                                                 spool, settings)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    fsync_ms = SPOOL["fsync_interval_ms"]
    goals = []
    for medium in places:
        for workload in ("stdin", "flood"):
            off, on = results[(medium, workload, False)], results[(medium, workload, True)]
            r = ratio(on, off)
            goals.append({
                "goal": "%s, %s: spool on >= 1/3 of spool off (stored/s), evicting no more" % (
                    WORKLOAD_LABEL[workload], medium),
                "measured": "%.3f× (%s/s vs %s/s); evicted %d vs %d" % (
                    r, fmt_rate(on["rate"]), fmt_rate(off["rate"]), on["evicted"], off["evicted"]),
                "met": (r >= 1.0 / 3.0 and on["evicted"] <= off["evicted"] and on["complete"])
                if medium == "tmpfs" else None})
    for medium in places:
        on = results[(medium, "paced", True)]
        bound = fsync_ms + 50
        goals.append({
            "goal": "datagram paced, %s, spool on: every message stored, latency max <= "
                    "fsync_interval_ms + 50 ms = %d ms" % (medium, bound),
            "measured": "stored %d of %d, p50 %s ms, p99 %s ms, max %s ms" % (
                on["stored"], on["produced"], fmt_ms(on["p50_ms"]), fmt_ms(on["p99_ms"]),
                fmt_ms(on["max_ms"])),
            "met": (on["stored"] == on["produced"] and on["max_ms"] <= bound)
            if medium == "tmpfs" else None})

    console = ["tetherd end to end%s: spool on = %s" % (" (smoke)" if smoke else "",
                                                          json.dumps(SPOOL))]
    for (medium, workload, spool), r in sorted(results.items(),
                                               key=lambda item: (item[0][0] != "tmpfs",
                                                                 WORKLOADS.index(item[0][1]),
                                                                 item[0][2])):
        console.append(
            "  %-5s %-14s spool %-3s produced %7d stored %7d evicted %7d  %9s/s  "
            "latency p50 %6s p99 %6s max %6s ms  last after %6s ms%s" % (
                medium, WORKLOAD_LABEL[workload], "on" if spool else "off", r["produced"],
                r["stored"], r["evicted"], fmt_rate(r["rate"]), fmt_ms(r["p50_ms"]),
                fmt_ms(r["p99_ms"]), fmt_ms(r["max_ms"]), fmt_ms(r["last_after_ms"]),
                "" if r["complete"] else "  INCOMPLETE after %.0f s" % settings["timeout_s"]))
    for g in goals:
        console.append("  goal: %s: %s (%s)" % (g["goal"], g["measured"],
                                                 {True: "met", False: "NOT met",
                                                  None: "n/a"}[g["met"]]))
    return {"markdown": markdown(results, places, settings), "console": console,
            "goals": goals, "results": results}


def markdown(results, places, settings):
    lines = [
        "## tetherd end to end: the spool's cost", "",
        "tetherd (tether.v1) from its input to tether-server's store on 127.0.0.1, 100-byte "
        "messages, the default outbox (256 KiB, drop_oldest); spool on: `%s`. A message "
        "counts when its record is in the server's uplink.log, read as it grows every %d ms "
        "(the server writes and syncs its records every 64 messages or %d ms, "
        "`--ack-interval-ms`, then acknowledges them). tetherd's state directory and the "
        "server's store are on the same medium." % (
            json.dumps(SPOOL), POLL_S * 1000, SERVER_ACK_INTERVAL_MS), "",
        "- stdin burst: %d lines written at once, stdin left open; datagram flood: blocking "
        "sends for %.1f s, as fast as the socket takes them (one Python sender, which with "
        "the kernel's queue of %s datagrams is the limit with the spool off: the stdin burst "
        "is the measure of tetherd's own rate); datagram paced: %d/s for %.1f s." % (
            settings["stdin_n"], settings["flood_s"], datagram_queue(),
                                     settings["paced_rate"], settings["paced_s"]),
        "- stored/s: stored / (first write to the last message stored, or given up as a gap); "
        "evicted: seqs the server recorded as gaps (the outbox dropped them); latency: store "
        "time minus the send time written in the message (stdin: the burst's start); last "
        "after: from the last write to the last message stored.", "",
    ]
    for medium, directory in places.items():
        fstype, source = mount_of(directory)
        lines += ["### %s (%s, %s on %s)" % ("tmpfs" if medium == "tmpfs" else "real disk",
                                              directory, fstype, source), "",
                  "| workload | spool | produced | stored | evicted | stored/s | on/off | "
                  "p50 ms | p99 ms | max ms | last after ms |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for workload in WORKLOADS:
            off = results[(medium, workload, False)]
            for spool in (False, True):
                r = results[(medium, workload, spool)]
                lines.append("| %s | %s | %d | %d%s | %d | %s | %s | %s | %s | %s | %s |" % (
                    WORKLOAD_LABEL[workload], "on" if spool else "off", r["produced"],
                    r["stored"], "" if r["complete"] else " (incomplete)", r["evicted"],
                    fmt_rate(r["rate"]), "%.3f×" % ratio(r, off) if spool else "",
                    fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]), fmt_ms(r["max_ms"]),
                    fmt_ms(r["last_after_ms"])))
        lines.append("")
    lines += ["```", "tools/bench --only tetherd      # or: /usr/bin/python3 bench/tetherd_e2e.py "
              "--build-dir build/host", "```", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(common.SOURCE_DIR, "build", "host"))
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--docs-dir", default=None)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="tether-bench-e2e-")
    result = run(os.path.abspath(args.build_dir), os.path.abspath(work_dir), None,
                 smoke=args.smoke)
    print("\n".join(result["console"]))
    print()
    print(result["markdown"])


if __name__ == "__main__":
    main()
