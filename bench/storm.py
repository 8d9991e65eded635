# SPDX-License-Identifier: MIT
"""The reconnect storm: 1,000 tether.v1 clients (tether-fleet, one poll loop in
one process) against tether-server; the server is killed, kept down, and
restarted on the same ports and data directory. For each jitter mode the
fleet's --events time line gives the connection attempts per 100 ms, the peak
attempt rate, the first retry round's spread and the time until every session
is resumed.

    /usr/bin/python3 bench/storm.py --build-dir build/host --work-dir /tmp/storm \
        --docs-dir docs [--smoke]
"""

import argparse
import bisect
import os
import re
import resource
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from common import harness  # noqa: E402

MODES = ("none", "full", "equal", "decorrelated")
TOKEN = "storm-token"
BIN_MS = 100
ZOOM_IMAGE = "bench-storm-zoom.png"


class Settings:
    """Sizes and backoff of one run (full or smoke)."""

    def __init__(self, smoke):
        self.clients = 20 if smoke else 1000
        self.messages = 3
        self.initial_ms = 250 if smoke else 1000
        self.max_ms = 2000 if smoke else 16000
        self.healthy_after_ms = 500 if smoke else 1000
        self.down_s = 1.0 if smoke else 3.0
        self.online_timeout_s = 20 if smoke else 120

    def backoff_args(self, mode):
        return ["--jitter", mode, "--backoff-initial-ms", str(self.initial_ms),
                "--backoff-max-ms", str(self.max_ms),
                "--healthy-after-ms", str(self.healthy_after_ms)]


def first_round_window(mode, initial_ms):
    """(low, high) ms of the first reconnect delay after a healthy link drops
    (ReconnectMachine: the delay of attempt 1 with the mode's jitter)."""
    return {"none": (initial_ms, initial_ms),
            "full": (0, initial_ms),
            "equal": (initial_ms // 2, initial_ms),
            "decorrelated": (initial_ms, 3 * initial_ms)}[mode]


def raise_nofile():
    """The server holds one descriptor per client; children inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds(pid):
    """User + system CPU of a live process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Disturbed(Exception):
    """The links dropped before the kill: something else stopped the server."""


class StormServer:
    """tether-server on fixed ports, so a restart keeps its address."""

    def __init__(self, build_dir, data_dir, tokens):
        self.cmd = [os.path.join(build_dir, "apps", "tether-server"),
                    "--listen", "127.0.0.1:%d" % harness.free_port(),
                    "--admin", "127.0.0.1:%d" % harness.free_port(),
                    "--data-dir", data_dir, "--tokens", tokens]
        self.port = int(self.cmd[2].rsplit(":", 1)[1])
        self.process = None
        self.lives = []  # every Process started, for the logs

    def start(self):
        self.process = harness.start_process(self.cmd, expect_port=False, name="tether-server")
        self.lives.append(self.process)
        self.process.wait_for_line(r"listen=\d+", timeout=30)
        return time.monotonic() * 1000.0

    def kill(self):
        self.process.signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self):
        if self.process is not None:
            self.process.stop()


def parse_events(path):
    """[(t_ms, client, event, {field: value})] in file order."""
    events = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3:
                continue
            fields = dict(p.split("=", 1) for p in parts[3:] if "=" in p)
            events.append((float(parts[0]), int(parts[1]), parts[2], fields))
    return events


def peak_sliding(times_ms, width_ms=1000.0):
    """The most attempts in any window [t, t + width) (t at an attempt)."""
    best = 0
    for i, t in enumerate(times_ms):
        j = bisect.bisect_left(times_ms, t + width_ms, lo=i)
        best = max(best, j - i)
    return best


def run_mode(build_dir, work_dir, mode, settings, data_root):
    """One storm; returns the raw time line and the figures."""
    mode_dir = os.path.join(work_dir, mode)
    os.makedirs(mode_dir, exist_ok=True)
    data_dir = os.path.join(data_root, "data-" + mode)
    shutil.rmtree(data_dir, ignore_errors=True)
    tokens = os.path.join(mode_dir, "tokens")
    with open(tokens, "w") as f:
        f.write("%s tether\n" % TOKEN)
    events_path = os.path.join(mode_dir, "events.txt")

    server = StormServer(build_dir, data_dir, tokens)
    fleet = None
    try:
        server.start()
        fleet_cmd = [os.path.join(build_dir, "apps", "tether-fleet"),
                     "--clients", str(settings.clients), "--messages", str(settings.messages),
                     "--tether-v1", "--token", TOKEN, "--hold", "--events", events_path] + \
            settings.backoff_args(mode) + ["ws://127.0.0.1:%d/v1" % server.port]
        fleet = harness.start_process(fleet_cmd, expect_port=False, name="tether-fleet")
        match = fleet.wait_for_line(r"all_online n=%d t_ms=([\d.]+)" % settings.clients,
                                    timeout=settings.online_timeout_s)
        t_first_online = float(match.group(1))
        # Let every link become healthy (the backoff resets), as in a fleet
        # that has been up for a while when its server dies.
        time.sleep(settings.healthy_after_ms / 1000.0 + 0.5)

        t_kill = time.monotonic() * 1000.0
        server.kill()
        time.sleep(settings.down_s)
        t_restart = time.monotonic() * 1000.0
        t_listen = server.start()
        cpu_at_listen = cpu_seconds(server.process.pid)
        match = fleet.wait_for_line(r"all_online n=%d t_ms=([\d.]+)" % settings.clients,
                                    timeout=settings.online_timeout_s)
        t_all_online = float(match.group(1))
        server_cpu_s = cpu_seconds(server.process.pid) - cpu_at_listen
        code = fleet.stop(grace=10)
        if code not in (0, 1):
            raise harness.HarnessError("tether-fleet exited %s\n%s" % (code, fleet.stderr()))
        summary = harness.parse_logfmt(fleet.stdout().splitlines()[-1])
    finally:
        if fleet is not None:
            fleet.stop()
        server.stop()
    server_log = "\n".join(p.stderr() for p in server.lives)
    with open(os.path.join(mode_dir, "server.log"), "w") as f:
        f.write(server_log)
    shutil.rmtree(data_dir, ignore_errors=True)
    events = parse_events(events_path)
    # The machine is shared: a stray SIGTERM or admin /quit from elsewhere
    # would drop the links early and fake a storm; such a run does not count.
    early = [e for e in events if e[2] == "down" and t_first_online <= e[0] < t_kill]
    if early:
        raise Disturbed("%s: %d links dropped %.0f ms before the kill (%s)" % (
            mode, len(early), t_kill - early[0][0], server_log.splitlines()[:1]))
    return analyse(mode, settings, events, t_kill, t_restart, t_listen,
                   t_all_online, server_cpu_s, summary, server_log)


def analyse(mode, settings, events, t_kill, t_restart, t_listen, t_all_online, server_cpu_s,
            summary, server_log):
    n = settings.clients
    storm = [e for e in events if t_kill <= e[0] <= t_all_online + 1.0]
    attempts = sorted(e[0] for e in storm if e[2] == "attempt")
    if not attempts:
        raise harness.HarnessError("%s: no attempts after the kill" % mode)

    # The first retry round: each client's first attempt after the kill.
    first = {}
    for t, client, kind, _ in storm:
        if kind == "attempt" and client not in first:
            first[client] = t
    if len(first) != n:
        raise harness.HarnessError("%s: %d of %d clients retried" % (mode, len(first), n))
    round_times = sorted(first.values())
    low, high = first_round_window(mode, settings.initial_ms)
    width_ms = high - low
    mean_rate = n / (width_ms / 1000.0) if width_ms > 0 else None

    # Every client must end online on a resumed session.
    last_online = {}
    for t, client, kind, fields in storm:
        if kind == "online":
            last_online[client] = fields.get("resumed")
    not_resumed = [c for c in range(n) if last_online.get(c) != "1"]
    if not_resumed:
        raise harness.HarnessError("%s: %d clients not back on a resumed session (e.g. %s)" % (
            mode, len(not_resumed), not_resumed[:5]))

    welcomes = len(re.findall(r"event=welcome .*resumed=1", server_log))
    if welcomes < n:
        raise harness.HarnessError("%s: the server logged %d resumed welcomes for %d clients" % (
            mode, welcomes, n))

    retries = [e for e in storm if e[2] == "retry"]
    refused = sum(1 for e in retries if e[3].get("reason") == "tcp_refused")
    after_restart = [e for e in retries if e[0] >= t_restart]
    overloaded = sum(1 for e in retries if "503" in e[3].get("detail", ""))
    timeouts = sum(1 for e in retries if "timeout" in e[3].get("reason", ""))
    other_failures = sorted({e[3].get("reason", "?") for e in after_restart} - {"tcp_refused"})

    # Attempt to online, for the attempts that succeeded after the restart:
    # how long the server took to upgrade and resume each connection.
    last_attempt = {}
    latencies = []
    for t, client, kind, _ in storm:
        if kind == "attempt":
            last_attempt[client] = t
        elif kind == "online" and t >= t_restart:
            latencies.append(t - last_attempt[client])
    latencies.sort()
    online_times = sorted(e[0] for e in storm if e[2] == "online")
    attempts_after_listen = [t for t in attempts if t >= t_listen]

    bins = {}
    for t in attempts:
        b = int((t - t_kill) // BIN_MS)
        bins[b] = bins.get(b, 0) + 1
    return {
        "mode": mode,
        "attempt_times_s": [(t - t_kill) / 1000.0 for t in attempts],
        "online_times_s": [(t - t_kill) / 1000.0 for t in online_times],
        "restart_s": (t_restart - t_kill) / 1000.0,
        "listen_s": (t_listen - t_kill) / 1000.0,
        "peak_1s": peak_sliding(attempts),
        "peak_bin_per_s": max(bins.values()) * (1000 // BIN_MS),
        "round_spread_ms": round_times[-1] - round_times[0],
        "round_first_ms": round_times[0] - t_kill,
        "round_last_ms": round_times[-1] - t_kill,
        "round_peak_1s": peak_sliding(round_times),
        "window": (low, high),
        "mean_rate": mean_rate,
        "resume_s": (t_all_online - t_restart) / 1000.0,
        "resume_after_listen_s": (t_all_online - t_listen) / 1000.0,
        "server_start_ms": t_listen - t_restart,
        "total_attempts": len(attempts),
        "refused": refused,
        "attempts_before_listen": len(attempts) - len(attempts_after_listen),
        "overloaded_503": overloaded,
        "timeouts": timeouts,
        "other_failures": other_failures,
        "latency_p50_ms": latencies[len(latencies) // 2] if latencies else None,
        "latency_max_ms": latencies[-1] if latencies else None,
        "server_cpu_s": server_cpu_s,
        "server_welcomes": welcomes,
        "fleet_summary": summary,
    }


def plot(results, settings, path, zoom_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"none": "tab:red", "full": "tab:blue", "equal": "tab:green",
               "decorrelated": "tab:purple"}
    end_s = max(max(r["online_times_s"]) for r in results) + 0.5
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7.5), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 2]})
    nbins = int(end_s * 1000 // BIN_MS) + 1
    for r in results:
        counts = [0] * nbins
        for t in r["attempt_times_s"]:
            b = int(t * 1000 // BIN_MS)
            if 0 <= b < nbins:
                counts[b] += 1
        xs = [i * BIN_MS / 1000.0 for i in range(nbins)]
        rate = [c * (1000 // BIN_MS) for c in counts]
        top.step(xs, rate, where="post", color=colours[r["mode"]], linewidth=1.3,
                 label="%s (peak %d/s in 1 s)" % (r["mode"], r["peak_1s"]))
        online = [0.0] + r["online_times_s"]
        bottom.step(online, [i - 0 for i in range(len(online))], where="post",
                    color=colours[r["mode"]], linewidth=1.3, label=r["mode"])
    restart = results[0]["restart_s"]
    for axis in (top, bottom):
        axis.axvline(restart, color="black", linestyle="--", linewidth=1)
        axis.grid(True, alpha=0.3)
    top.text(restart, top.get_ylim()[1] * 0.95, " server restarted", va="top", fontsize=9)
    top.set_ylabel("connection attempts / s (%d ms bins)" % BIN_MS)
    top.set_yscale("symlog", linthresh=100)
    top.set_ylim(0, 20000)
    top.set_title("Reconnect storm: %d tether.v1 clients, server killed at 0, down %.0f s "
                  "(backoff %d ms .. %d ms)" % (settings.clients, settings.down_s,
                                                settings.initial_ms, settings.max_ms),
                  fontsize=10)
    top.legend(fontsize=9)
    bottom.set_ylabel("links online (cumulative welcomes)")
    bottom.set_xlabel("seconds since the server was killed")
    bottom.set_xlim(0, end_s)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

    # The jittered modes on a linear scale (without jitter the bins are off it).
    figure, axis = plt.subplots(figsize=(10, 4.5))
    zoom_end = min(end_s, 8.0)
    nbins = int(zoom_end * 1000 // BIN_MS) + 1
    for r in results:
        if r["mode"] == "none":
            continue
        counts = [0] * nbins
        for t in r["attempt_times_s"]:
            b = int(t * 1000 // BIN_MS)
            if 0 <= b < nbins:
                counts[b] += 1
        axis.step([i * BIN_MS / 1000.0 for i in range(nbins)],
                  [c * (1000 // BIN_MS) for c in counts], where="post",
                  color=colours[r["mode"]], linewidth=1.3,
                  label="%s (mean over first-retry window %s/s)" % (
                      r["mode"], fmt_rate(r["mean_rate"])))
    none = [r for r in results if r["mode"] == "none"]
    if none:
        axis.set_title("Jittered modes, linear scale; without jitter all %d clients retry within "
                       "%.0f ms (%d/s in one 100 ms bin), off this scale" % (
                           settings.clients, none[0]["round_spread_ms"],
                           none[0]["peak_bin_per_s"]), fontsize=10)
    axis.axvline(restart, color="black", linestyle="--", linewidth=1)
    axis.grid(True, alpha=0.3)
    axis.set_xlim(0, zoom_end)
    axis.set_ylabel("connection attempts / s (%d ms bins)" % BIN_MS)
    axis.set_xlabel("seconds since the server was killed (dashed: restart)")
    axis.legend(fontsize=9)
    figure.tight_layout()
    figure.savefig(zoom_path, dpi=110)
    plt.close(figure)


def fmt_rate(value):
    return "—" if value is None else "%.0f" % value


def markdown(results, settings, image, data_root_note, disturbed):
    s = settings
    lines = [
        "## Reconnect storm",
        "",
        "%d tether.v1 clients (`tether-fleet`: one process, one poll loop) hold sessions on "
        "`tether-server`; the server is killed with SIGKILL, kept down %.0f s, and restarted on "
        "the same ports and data directory. Backoff: initial %d ms, cap %d ms, x2 per attempt, "
        "healthy after %d ms (the fleet has been up longer than that when the server dies, so "
        "every client starts from the first delay). %s" % (
            s.clients, s.down_s, s.initial_ms, s.max_ms, s.healthy_after_ms, data_root_note),
        "",
        "| jitter | first-retry window | first round spread | mean rate over window | "
        "peak /s (1 s window) | peak /s (100 ms bin x10) | peak / mean | attempts | refused "
        "while down | restart to all resumed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = "—" if r["mean_rate"] is None else "%.2f" % (r["peak_1s"] / r["mean_rate"])
        lines.append("| %s | %d–%d ms | %.0f ms | %s /s | %d | %d | %s | %d | %d | %.2f s |" % (
            r["mode"], r["window"][0], r["window"][1], r["round_spread_ms"],
            fmt_rate(r["mean_rate"]), r["peak_1s"], r["peak_bin_per_s"], ratio,
            r["total_attempts"], r["refused"], r["resume_s"]))
    lines += [
        "",
        "Server side, after the restart: ",
        "",
        "| jitter | server start to listening | its CPU until all resumed | attempt to welcome "
        "p50 / max | 503 | timeouts | other failures |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append("| %s | %.0f ms | %.2f s | %.1f / %.1f ms | %d | %d | %s |" % (
            r["mode"], r["server_start_ms"], r["server_cpu_s"], r["latency_p50_ms"],
            r["latency_max_ms"], r["overloaded_503"], r["timeouts"],
            ", ".join(r["other_failures"]) or "none"))
    lines += [
        "",
        "![attempts per second during the storm](%s)" % image,
        "",
        "![the jittered modes, linear scale](%s)" % os.path.join(os.path.dirname(image),
                                                                  ZOOM_IMAGE),
        "",
        "Definitions. An *attempt* is a client entering `kTcpConnecting` (its `connect()` "
        "to the server starts; `kResolving` is entered at the same moment for the literal "
        "127.0.0.1, but would also count attempts that never reach the server). "
        "*First round*: each client's first attempt after the kill. Its *window* is the range "
        "the backoff draws the first delay from after a healthy link drops (none: exactly the "
        "initial delay; full: 0..initial; equal: initial/2..initial; decorrelated: "
        "initial..3 x initial); *spread* is the measured first-to-last of that round. "
        "*Mean rate over the window* = clients / window width (each client makes exactly one "
        "first-round attempt; undefined for none, whose window has no width). *Peak /s (1 s "
        "window)* = the most attempts, of any round, in any 1-second sliding window from the "
        "kill until all are resumed; *100 ms bin x10* = the fullest 100 ms bin scaled to a "
        "second. *Refused while down* = attempts answered with a refused connect. *Restart to "
        "all resumed* = from starting the new server process to the fleet's `all_online` line, "
        "every client back with `welcome resumed=true`. *Attempt to welcome* = per successful "
        "attempt after the restart, from the `connect()` to the welcome (TCP, upgrade, hello, "
        "the session store's lookup).",
        "",
        "Command: `/usr/bin/python3 bench/storm.py --build-dir build/host --work-dir WORK "
        "--docs-dir docs` (the fleet: `tether-fleet --clients %d --messages %d --tether-v1 "
        "--token T --hold --events FILE --jitter MODE --backoff-initial-ms %d "
        "--backoff-max-ms %d --healthy-after-ms %d ws://127.0.0.1:PORT/v1`)." % (
            s.clients, s.messages, s.initial_ms, s.max_ms, s.healthy_after_ms),
        "",
        "Machine: %s." % common.machine_line(),
    ]
    if disturbed:
        lines += ["", "%d run(s) were repeated: the links dropped before the kill (the server "
                  "was stopped by something else on this shared machine)." % len(disturbed)]
    return "\n".join(lines)


def run(build_dir, work_dir, docs_dir, smoke=False):
    settings = Settings(smoke)
    raise_nofile()
    os.makedirs(work_dir, exist_ok=True)
    # The store syncs every session's log; on a tmpfs those syncs cost
    # nothing, so what is measured is the server's work, not the disk's.
    data_root = tempfile.mkdtemp(prefix="tether-storm-",
                                 dir="/dev/shm" if os.path.isdir("/dev/shm") else work_dir)
    on_tmpfs = data_root.startswith("/dev/shm")
    note = ("The server's data directory is on a tmpfs (/dev/shm), so the store's fsyncs "
            "cost nothing: the figures show the server's and the clients' work, not a disk's."
            if on_tmpfs else "The server's data directory is in the work directory.")
    results = []
    disturbed = []
    try:
        for mode in MODES:
            for trial in range(3):
                try:
                    results.append(run_mode(build_dir, work_dir, mode, settings, data_root))
                    break
                except Disturbed as error:
                    if trial == 2:
                        raise
                    disturbed.append(str(error))
    finally:
        shutil.rmtree(data_root, ignore_errors=True)

    image_name = "bench-storm.png"
    image_dir = docs_dir if docs_dir is not None else work_dir
    os.makedirs(image_dir, exist_ok=True)
    plot(results, settings, os.path.join(image_dir, image_name),
         os.path.join(image_dir, ZOOM_IMAGE))

    by_mode = {r["mode"]: r for r in results}
    full, none = by_mode["full"], by_mode["none"]
    goals = [
        {"goal": "full jitter: peak attempts/s (1 s window) <= 3 x mean rate over the jitter "
                 "window",
         "measured": "%d/s vs 3 x %.0f/s = %.0f/s (ratio %.2f)" % (
             full["peak_1s"], full["mean_rate"], 3 * full["mean_rate"],
             full["peak_1s"] / full["mean_rate"]),
         "met": full["peak_1s"] <= 3 * full["mean_rate"]},
        {"goal": "without jitter, the contrast: all %d clients retry within one second" %
                 settings.clients,
         "measured": "first round spread %.0f ms, peak %d attempts in 1 s, %d/s in 100 ms" % (
             none["round_spread_ms"], none["peak_1s"], none["peak_bin_per_s"]),
         "met": none["round_spread_ms"] < 1000.0},
        {"goal": "server is not the limit: no 503 and no timeout in any mode",
         "measured": "503: %d, timeouts: %d" % (sum(r["overloaded_503"] for r in results),
                                               sum(r["timeouts"] for r in results)),
         "met": all(r["overloaded_503"] == 0 and r["timeouts"] == 0 for r in results)},
    ]
    console = ["storm %s: %d clients" % ("(smoke)" if smoke else "", settings.clients)]
    for r in results:
        console.append(
            "  %-12s peak %4d/s (1 s) %5d/s (100 ms)  mean over window %s/s  round spread "
            "%5.0f ms  attempts %5d  refused %5d  resumed in %.2f s  503=%d timeouts=%d" % (
                r["mode"], r["peak_1s"], r["peak_bin_per_s"], fmt_rate(r["mean_rate"]),
                r["round_spread_ms"], r["total_attempts"], r["refused"], r["resume_s"],
                r["overloaded_503"], r["timeouts"]))
    for note_line in disturbed:
        console.append("  run repeated: " + note_line)
    for g in goals:
        console.append("  goal: %s: %s (%s)" % (g["goal"], g["measured"],
                                                 {True: "met", False: "NOT met",
                                                  None: "n/a"}[g["met"]]))
    image_ref = image_name if docs_dir is not None else os.path.join(image_dir, image_name)
    return {"markdown": markdown(results, settings, image_ref, note, disturbed), "console": console,
            "goals": goals, "results": results}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(common.SOURCE_DIR, "build", "host"))
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--docs-dir", default=None)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="tether-bench-storm-")
    result = run(os.path.abspath(args.build_dir), os.path.abspath(work_dir),
                 os.path.abspath(args.docs_dir) if args.docs_dir else None, smoke=args.smoke)
    print("\n".join(result["console"]))
    print()
    print(result["markdown"])


if __name__ == "__main__":
    main()
