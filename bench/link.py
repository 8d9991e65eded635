# SPDX-License-Identifier: MIT
"""make bench, the link figures beyond throughput:

(a) dead-link detection: a real blackhole (nftables drops the server port's
    packets on loopback, both directions, no FIN or RST) against the
    configured heartbeat interval + pong timeout;
(b) resume after tether-server is SIGKILLed and restarted: from the server
    listening again to the tether.v1 session resumed, split into the wait on
    backoff and the attempt itself (TCP + upgrade + hello/welcome);
(c) TLS reconnect CPU with and without session resumption, client and server.

The device is bench/link/tether-bench-link, which stamps every state change
with CLOCK_MONOTONIC (the clock of time.monotonic() here), so the driver's own
events (rule in, server listening) sit on the same time line.

    /usr/bin/python3 bench/link.py --build-dir build/host [--work-dir DIR]
        [--docs-dir docs] [--smoke]
"""

import argparse
import atexit
import os
import random
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (puts tests/integration on sys.path)
import harness  # noqa: E402

TOKEN = "bench-link-token"
DEVICE = "bench-link"
SEED = 20240
# A verdict later than interval + timeout by more than this is a bug: the
# loop wakes at the deadline, so only scheduling delay separates the two.
DETECTION_SLACK_MS = 50


class LinkError(Exception):
    pass


# --- the device ----------------------------------------------------------------

LINE = re.compile(r"(\w+)=(\"[^\"]*\"|\S*)")


def parse(line):
    fields = {key: value.strip('"') for key, value in LINE.findall(line)}
    if "t_us" in fields:
        fields["t"] = int(fields["t_us"]) / 1e6
    return fields


class Device:
    """tether-bench-link in hold mode; its log is read as it grows."""

    def __init__(self, build_dir, url, token_file, extra):
        self.cmd = [os.path.join(build_dir, "bench", "link", "tether-bench-link"), "hold",
                    "--token-file", token_file, "--device-id", DEVICE] + list(extra) + [url]
        self.process = harness.start_process(self.cmd, expect_port=False,
                                             name="tether-bench-link")

    def events(self):
        return [parse(line) for line in self.process.stdout().splitlines() if line.strip()]

    def wait(self, predicate, after, timeout, what):
        """The first event with t > after that satisfies predicate."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events():
                if event.get("t", 0) > after and predicate(event):
                    return event
            if not self.process.alive():
                raise LinkError("tether-bench-link exited waiting for %s:\n%s\n%s" % (
                    what, self.process.stdout()[-3000:], self.process.stderr()[-2000:]))
            if time.monotonic() > deadline:
                raise LinkError("no %s within %.1f s; device log tail:\n%s" % (
                    what, timeout, "\n".join(self.process.stdout().splitlines()[-30:])))
            time.sleep(0.005)

    def stop(self):
        return self.process.stop()


def is_state(name):
    return lambda e: e.get("event") == "state" and e.get("state") == name


def start_server(build_dir, data_dir, tokens, port, extra=()):
    cmd = [os.path.join(build_dir, "apps", "tether-server"), "--listen", "127.0.0.1:%d" % port,
           "--data-dir", data_dir, "--tokens", tokens] + list(extra)
    process = harness.start_process(cmd, expect_port=False, name="tether-server")
    process.wait_for_line(r"listen=\d+", timeout=10)
    return process


# --- the blackhole ---------------------------------------------------------------

TABLE_PREFIX = "tether_bench_link_"


class Blackhole:
    """Drops every packet to or from one TCP port on loopback (input hook, so
    each segment leaves its sender and vanishes: no error, no RST, no FIN).
    The table is per run; it is deleted on exit of every kind but SIGKILL,
    and a later run deletes tables left by runs that are gone."""

    def __init__(self, port):
        self.port = port
        self.table = "%s%d" % (TABLE_PREFIX, os.getpid())
        self.installed = False
        atexit.register(self.remove)

    @staticmethod
    def available():
        if shutil.which("nft") is None or os.geteuid() != 0:
            return False
        return subprocess.run(["nft", "list", "tables"], capture_output=True).returncode == 0

    @staticmethod
    def remove_stale():
        listed = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
        for name in re.findall(r"table inet (%s(\d+))" % TABLE_PREFIX, listed.stdout):
            table, pid = name
            if not os.path.exists("/proc/%s" % pid):
                subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True)

    def rules(self):
        return ("table inet %s {\n"
                "  chain in {\n"
                "    type filter hook input priority -300; policy accept;\n"
                "    tcp dport %s drop\n"
                "    tcp sport %s drop\n"
                "  }\n"
                "}\n" % (self.table, self.port, self.port))

    def install(self):
        self.installed = True  # set first: a failure halfway still gets cleaned up
        result = subprocess.run(["nft", "-f", "-"], input=self.rules(), capture_output=True,
                                text=True)
        if result.returncode != 0:
            raise LinkError("nft failed: %s" % result.stderr.strip())

    def remove(self):
        if self.installed:
            subprocess.run(["nft", "delete", "table", "inet", self.table], capture_output=True)
            self.installed = False


class Silence:
    """The fallback without nftables: tether-server's admin POST
    /faults/silence (it stops reading and answering pings)."""

    def __init__(self, admin_port, data_dir, ms):
        self.admin_port = admin_port
        self.data_dir = data_dir  # where the server keeps its admin token
        self.ms = ms

    def install(self):
        import http.client
        connection = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=5)
        connection.request("POST", "/faults/silence?ms=%d" % self.ms,
                           headers=harness.admin_headers(self.data_dir))
        if connection.getresponse().status >= 300:
            raise LinkError("POST /faults/silence failed")
        connection.close()

    def remove(self):
        pass  # ends by itself after ms


# --- (a) dead-link detection ------------------------------------------------------


def detection(build_dir, tmp, tokens, token_file, interval_ms, timeout_ms, repeats, rng):
    port = harness.free_port()
    admin_port = harness.free_port()
    data_dir = tmp.path("data-a-%d" % interval_ms)
    server = start_server(build_dir, data_dir, tokens, port,
                          ["--admin", "127.0.0.1:%d" % admin_port])
    use_nft = Blackhole.available()
    device_args = ["--ping-interval", str(interval_ms), "--pong-timeout", str(timeout_ms),
                   "--backoff-initial", "100", "--backoff-max", "400", "--jitter", "none",
                   "--connect-timeout", "500", "--healthy-after", "0", "--log-rx"]
    device = Device(build_dir, "ws://127.0.0.1:%d/v1" % port, token_file, device_args)
    trials = []
    method = "nftables" if use_nft else "tether-server POST /faults/silence"
    try:
        online = device.wait(is_state("online"), 0, 10, "first online")
        for _ in range(repeats):
            # A random phase against the ping cycle, so the figures cover the
            # spread between timeout and interval + timeout.
            time.sleep(0.3 + rng.uniform(0, interval_ms / 1000.0))
            fault = Blackhole(port) if use_nft else Silence(admin_port, data_dir,
                                                              interval_ms + timeout_ms + 3000)
            try:
                before = time.monotonic()
                fault.install()
                blocked = time.monotonic()
                down = device.wait(lambda e: e.get("event") == "state" and
                                   e.get("state") != "online", blocked,
                                   (interval_ms + timeout_ms) / 1000.0 + 10, "dead-link verdict")
            finally:
                fault.remove()
            unblocked = time.monotonic()
            last_rx = max((e["t"] for e in device.events()
                           if e.get("event") == "rx" and e["t"] < down["t"]), default=online["t"])
            back = device.wait(is_state("online"), unblocked,
                               (interval_ms + timeout_ms) / 1000.0 + 15, "online after blackhole")
            trials.append({
                "install_ms": (blocked - before) * 1e3,
                "detect_ms": (down["t"] - blocked) * 1e3,
                "silence_ms": (down["t"] - last_rx) * 1e3,
                "reason": down.get("reason", ""),
                "state": down.get("state"),
                "recover_ms": (back["t"] - unblocked) * 1e3,
            })
            online = back
    finally:
        device.stop()
        server.stop()
    return {"interval_ms": interval_ms, "timeout_ms": timeout_ms, "method": method,
            "trials": trials, "device_args": device_args}


# --- (b) resume after a server restart ---------------------------------------------


def restart(build_dir, tmp, tokens, token_file, repeats):
    port = harness.free_port()
    data_dir = tmp.path("data-b")
    server = start_server(build_dir, data_dir, tokens, port)
    device_args = ["--ping-interval", "5000", "--pong-timeout", "5000",
                   "--backoff-initial", "100", "--backoff-max", "1600", "--jitter", "none",
                   "--healthy-after", "0"]
    device = Device(build_dir, "ws://127.0.0.1:%d/v1" % port, token_file, device_args)
    trials = []
    try:
        device.wait(is_state("online"), 0, 10, "first online")
        for _ in range(repeats):
            time.sleep(0.5)
            killed = time.monotonic()
            server.signal(9)
            server.wait(10)
            server.stop()
            spawned = time.monotonic()
            server = start_server(build_dir, data_dir, tokens, port)
            listening = time.monotonic()
            online = device.wait(is_state("online"), listening, 15, "online after restart")
            window = [e for e in device.events() if e.get("event") == "state" and
                      killed < e["t"] <= online["t"]]
            drop = next(e for e in window if e["state"] == "waiting_to_retry")
            attempts = [e for e in window if e["state"] == "tcp_connecting"]
            attempt = attempts[-1]
            trials.append({
                "drop_ms": (drop["t"] - killed) * 1e3,
                "delay_ms": int(drop.get("delay_ms", "0")),
                "startup_ms": (listening - spawned) * 1e3,
                "down_ms": (listening - killed) * 1e3,
                "total_ms": (online["t"] - listening) * 1e3,
                "backoff_ms": (attempt["t"] - listening) * 1e3,
                "attempt_ms": (online["t"] - attempt["t"]) * 1e3,
                "attempts": len(attempts),
                "resumed": online.get("resumed") == "1",
                "reason": drop.get("reason", ""),
            })
    finally:
        device.stop()
        server.stop()
    return {"trials": trials, "device_args": device_args}


# --- (c) TLS reconnect CPU --------------------------------------------------------


def tls_cpu(build_dir, tmp, tokens, token_file, certs, key_type, count):
    cert, key = {"ECDSA P-256": (certs.server_chain, certs.server_key),
                 "RSA-2048": (certs.server_rsa, certs.server_rsa_key)}[key_type]
    tls_port = harness.free_port()
    cmd = [os.path.join(build_dir, "apps", "tether-server"),
           "--tls-listen", "127.0.0.1:%d" % tls_port, "--cert", cert, "--key", key,
           "--data-dir", tmp.path("data-c"), "--tokens", tokens]
    server = harness.start_process(cmd, expect_port=False, name="tether-server")
    rows = {}
    try:
        server.wait_for_line(r"listen=\d+", timeout=10)
        for resumption in ("off", "on"):
            bench_cmd = [os.path.join(build_dir, "bench", "link", "tether-bench-link"),
                         "tls-reconnects", "--count", str(count), "--resumption", resumption,
                         "--ca-file", certs.ca, "--token-file", token_file,
                         "--device-id", DEVICE, "--server-pid", str(server.pid),
                         "wss://localhost:%d/v1" % tls_port]
            measured = common.run_measured(bench_cmd, timeout=120).check()
            summary = next(parse(line) for line in measured.stdout.splitlines()
                           if line.startswith("event=summary"))
            rows[resumption] = {key: float(value) for key, value in summary.items()
                                if re.match(r"^-?[\d.]+$", value)}
            rows[resumption]["cmd"] = bench_cmd
    finally:
        server.stop()
    return {"key_type": key_type, "count": count, "rows": rows, "server_cmd": cmd}


class WorkDir:
    """A fresh directory under work_dir, removed at exit (KEEP_TEST_FILES=1 keeps it)."""

    def __init__(self, work_dir):
        import tempfile
        self.dir = tempfile.mkdtemp(prefix="link-", dir=os.path.abspath(work_dir))
        if not os.environ.get("KEEP_TEST_FILES"):
            atexit.register(shutil.rmtree, self.dir, True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)


# --- the report --------------------------------------------------------------------


def stats(values):
    return common.median(values), max(values)


def report(a_runs, b_run, c_runs, smoke):
    md = ["## Link: dead-link detection, resume after a server restart, TLS reconnect CPU", "",
          "Machine: %s. Device: `bench/link/tether-bench-link` (libtether, one tether.v1 "
          "client on PollLoop + PosixTransport), server: `apps/tether-server`, both on "
          "127.0.0.1. Times come from the device's CLOCK_MONOTONIC stamps and the driver's "
          "time.monotonic() (the same clock)." % common.machine_line(), ""]
    console, goals = [], []

    md += ["### Dead-link detection (blackhole)", "",
           "Method: %s. The nftables rule drops every TCP segment to or from the server's "
           "port in the input hook of loopback, both directions, so nothing (no FIN, no RST, "
           "no ICMP) reaches either end. Detection = device's first state change away from "
           "`online` minus the moment `nft -f` returned (rule certainly in force); silence = "
           "the same verdict minus the last read that returned bytes (the last pong). A "
           "verdict is due interval + timeout after the last frame received, so detection "
           "after the blackhole lies between timeout and interval + timeout depending on "
           "where in the ping cycle it starts (a random phase per trial)." % a_runs[0]["method"],
           "",
           "| heartbeat interval + timeout | trials | detection median / max (ms) | "
           "bound (ms) | silence median / max (ms) | verdict reason | back online after "
           "rule removed, median (ms) |",
           "|---|---|---|---|---|---|---|"]
    for run in a_runs:
        trials = run["trials"]
        bound = run["interval_ms"] + run["timeout_ms"]
        det = stats([t["detect_ms"] for t in trials])
        sil = stats([t["silence_ms"] for t in trials])
        reasons = sorted({t["reason"] or t["state"] for t in trials})
        md.append("| %d + %d ms | %d | %.0f / %.0f | %d | %.0f / %.0f | %s | %.0f |" % (
            run["interval_ms"], run["timeout_ms"], len(trials), det[0], det[1], bound, sil[0],
            sil[1], ", ".join(reasons), common.median([t["recover_ms"] for t in trials])))
        late = [t for t in trials if t["detect_ms"] > bound + DETECTION_SLACK_MS or
                t["silence_ms"] > bound + DETECTION_SLACK_MS]
        goals.append({"goal": "dead link (%s) detected within interval + timeout = %d ms "
                              "(+%d ms scheduling slack)" % (run["method"], bound,
                                                             DETECTION_SLACK_MS),
                      "measured": "max %.0f ms after the blackhole, max %.0f ms after the last "
                                  "byte, reasons %s" % (det[1], sil[1], ",".join(reasons)),
                      "met": not late and reasons == ["dead_link"]})
        console.append("link: blackhole %d+%d ms: detection median %.0f max %.0f ms (bound %d), "
                       "silence median %.0f max %.0f ms, %s" % (
                           run["interval_ms"], run["timeout_ms"], det[0], det[1], bound, sil[0],
                           sil[1], ",".join(reasons)))
        for t in late:
            console.append("link: LATE detection: %r" % t)
    over = max(t["silence_ms"] - run["interval_ms"] - run["timeout_ms"]
               for run in a_runs for t in run["trials"])
    md += [""] + ["Per trial, %d + %d ms: detection %s ms; silence %s ms." % (
        run["interval_ms"], run["timeout_ms"],
        ", ".join("%.0f" % t["detect_ms"] for t in run["trials"]),
        ", ".join("%.0f" % t["silence_ms"] for t in run["trials"])) for run in a_runs]
    md += ["", "Silence exceeds interval + timeout by at most %.1f ms: the core counts whole "
           "milliseconds (port::monotonic_now() truncates) and poll() waits whole "
           "milliseconds, so each of the two deadlines (ping due, pong due) fires up to about "
           "1 ms late; anything beyond that is the scheduler waking the process late on a "
           "busy machine (the check allows %d ms)." % (over, DETECTION_SLACK_MS)]
    md += ["", "Installing the rule took %.1f ms (median `nft -f` run). After the rule is "
           "removed the device is back once its current connect attempt (connect timeout "
           "500 ms) or backoff wait (100..400 ms, no jitter) ends." % common.median(
               [t["install_ms"] for run in a_runs for t in run["trials"]]), ""]

    trials = b_run["trials"]
    md += ["### Resume after a tether-server SIGKILL and restart", "",
           "The server is SIGKILLed, reaped and started again at once on the same port and "
           "store. The device sees the connection end (the kernel closes the dead server's "
           "sockets: FIN), waits the initial backoff (100 ms, no jitter, `--healthy-after 0` "
           "so a link that was up counts as healthy), then connects. *Listening* = when the "
           "driver read the restarted server's `listen=` line (it is printed right after "
           "listen()). Backoff part = the successful attempt's `tcp_connecting` minus "
           "listening; attempt part = `online` (welcome received) minus that `tcp_connecting`: "
           "TCP connect + HTTP upgrade + hello/welcome.", "",
           "| measured | median (ms) | max (ms) |", "|---|---|---|"]
    rows = [("server listening again -> session resumed (whole)", "total_ms"),
            ("... waiting on backoff (listening -> the successful attempt starts)", "backoff_ms"),
            ("... attempt: TCP + upgrade + hello/welcome", "attempt_ms"),
            ("kill -> device notices the drop", "drop_ms"),
            ("kill -> restarted server listening", "down_ms"),
            ("spawn -> restarted server listening (its start-up)", "startup_ms")]
    for label, key in rows:
        med, top = stats([t[key] for t in trials])
        md.append("| %s | %.1f | %.1f |" % (label, med, top))
    resumed = sum(1 for t in trials if t["resumed"])
    delays = sorted({t["delay_ms"] for t in trials})
    attempts = sorted({t["attempts"] for t in trials})
    md += ["", "%d trials; backoff delay chosen at the drop: %s ms; connection attempts per "
           "restart: %s; welcome said resumed in %d of %d. The backoff part is that delay "
           "minus the time from the drop to the server listening again." % (
               len(trials), ",".join(map(str, delays)), ",".join(map(str, attempts)), resumed,
               len(trials)), ""]
    med_total = stats([t["total_ms"] for t in trials])
    console.append("link: restart: listening->resumed median %.1f max %.1f ms (backoff median "
                   "%.1f, attempt median %.1f), resumed %d/%d" % (
                       med_total[0], med_total[1],
                       common.median([t["backoff_ms"] for t in trials]),
                       common.median([t["attempt_ms"] for t in trials]), resumed, len(trials)))
    goals.append({"goal": "session resumed (welcome resumed=true) after every server restart",
                  "measured": "%d of %d, listening->resumed max %.0f ms" % (
                      resumed, len(trials), med_total[1]),
                  "met": resumed == len(trials)})

    md += ["### TLS reconnect CPU, with and without session resumption", "",
           "`tether-bench-link tls-reconnects`: connect once, then %d times close (1000) and "
           "reconnect to tether-server's TLS listener (TLS 1.2, session tickets), verifying "
           "the chain against a CA made at run time by `tests/integration/tls/make_certs.sh`. "
           "Client per reconnect = getrusage(RUSAGE_SELF) user+system over the %d reconnects "
           "/ %d (close, TCP, TLS, upgrade, hello/welcome); client TLS only = "
           "CLOCK_PROCESS_CPUTIME_ID summed from entering `tls_handshake` to `ws_handshake`; "
           "server = its /proc/PID/task/*/schedstat run time over the same span (everything "
           "it did: TLS, upgrade, session store). Resumed = handshakes where "
           "PosixTransport::session_resumed() held." % (
               c_runs[0]["count"], c_runs[0]["count"], c_runs[0]["count"]), "",
           "| server key | resumption | resumed | client CPU per reconnect (ms) | client TLS "
           "handshake CPU (ms) | TLS handshake wall (ms) | server CPU per reconnect (ms) |",
           "|---|---|---|---|---|---|---|"]
    for run in c_runs:
        count = run["count"]
        for resumption in ("off", "on"):
            row = run["rows"][resumption]
            md.append("| %s | %s | %d/%d | %.3f | %.3f | %.3f | %s |" % (
                run["key_type"], resumption, row["resumed"], count, row["cpu_s"] * 1e3 / count,
                row["tls_cpu_s"] * 1e3 / count, row["tls_wall_s"] * 1e3 / count,
                "%.3f" % (row["server_cpu_s"] * 1e3 / count) if row["server_cpu_s"] >= 0
                else "n/a"))
        full, short = run["rows"]["off"], run["rows"]["on"]
        ratio = full["cpu_s"] / short["cpu_s"] if short["cpu_s"] > 0 else float("inf")
        tls_ratio = full["tls_cpu_s"] / short["tls_cpu_s"] if short["tls_cpu_s"] > 0 else 0
        server_ratio = (full["server_cpu_s"] / short["server_cpu_s"]
                        if short["server_cpu_s"] > 0 else float("nan"))
        run["ratios"] = (ratio, tls_ratio, server_ratio)
        console.append("link: TLS %s: client %.3f vs %.3f ms per reconnect (full/resumed "
                       "x%.1f, TLS alone x%.0f), server x%.1f, resumed %d/%d" % (
                           run["key_type"], full["cpu_s"] * 1e3 / count,
                           short["cpu_s"] * 1e3 / count, ratio, tls_ratio, server_ratio,
                           short["resumed"], count))
        goals.append({"goal": "TLS session resumption (%s) resumes every reconnect and cuts "
                              "client CPU" % run["key_type"],
                      "measured": "%d/%d resumed; client CPU per reconnect %.3f ms full, "
                                  "%.3f ms resumed (x%.1f)" % (
                                      short["resumed"], count, full["cpu_s"] * 1e3 / count,
                                      short["cpu_s"] * 1e3 / count, ratio),
                      "met": short["resumed"] == count and full["resumed"] == 0 and ratio > 1})
    md += [""] + ["Ratio full / resumed, %s: client per reconnect x%.1f, client TLS handshake "
                  "x%.0f, server x%.1f." % ((run["key_type"],) + run["ratios"])
                  for run in c_runs] + [""]

    md += ["### Reproduce", "", "```sh",
           "cmake -S . -B build/host -DCMAKE_BUILD_TYPE=RelWithDebInfo && "
           "cmake --build build/host -j2",
           "/usr/bin/python3 bench/link.py --build-dir build/host%s   # as root (nftables)" % (
               " --smoke" if smoke else ""),
           "# what it runs, per part (PORT, DIR: chosen at run time):",
           "tether-server --listen 127.0.0.1:PORT --data-dir DIR --tokens DIR/tokens",
           "tether-bench-link hold --token-file DIR/token --device-id %s %s "
           "ws://127.0.0.1:PORT/v1" % (DEVICE, " ".join(a_runs[0]["device_args"])),
           "nft -f - <<'EOF'   # the blackhole; removed with: nft delete table inet "
           "tether_bench_link_PID",
           Blackhole("PORT").rules().replace(
               "tether_bench_link_%d" % os.getpid(), "tether_bench_link_PID").rstrip(),
           "EOF",
           "tether-bench-link hold --token-file DIR/token --device-id %s %s "
           "ws://127.0.0.1:PORT/v1   # then kill -9 the server and start it again" % (
               DEVICE, " ".join(b_run["device_args"])),
           "tests/integration/tls/make_certs.sh DIR/certs",
           "tether-server --tls-listen 127.0.0.1:PORT --cert DIR/certs/server-chain.pem "
           "--key DIR/certs/server.key --data-dir DIR --tokens DIR/tokens   # RSA: "
           "server-rsa.pem / server-rsa.key",
           "tether-bench-link tls-reconnects --count %d --resumption off|on --ca-file "
           "DIR/certs/ca.pem --token-file DIR/token --device-id %s --server-pid SERVER_PID "
           "wss://localhost:PORT/v1" % (c_runs[0]["count"], DEVICE),
           "```", ""]
    return md, console, goals


def check_numbers(a_runs, b_run, c_runs):
    """Smoke and full alike: every figure came out."""
    for run in a_runs:
        if not run["trials"]:
            raise LinkError("no detection trials for %d+%d" % (run["interval_ms"],
                                                               run["timeout_ms"]))
    if not b_run["trials"]:
        raise LinkError("no restart trials")
    for run in c_runs:
        for resumption in ("off", "on"):
            row = run["rows"][resumption]
            for key in ("cpu_s", "tls_cpu_s", "tls_wall_s", "resumed", "handshakes"):
                if key not in row:
                    raise LinkError("TLS %s %s: no %s" % (run["key_type"], resumption, key))
            if row["handshakes"] != run["count"]:
                raise LinkError("TLS %s %s: %d handshakes of %d" % (
                    run["key_type"], resumption, row["handshakes"], run["count"]))


def run(build_dir, work_dir, docs_dir, smoke=False):
    build_dir = os.path.abspath(build_dir)
    os.makedirs(work_dir, exist_ok=True)
    tmp = WorkDir(work_dir)
    tokens = tmp.path("tokens")
    with open(tokens, "w") as f:
        f.write("%s tether\n" % TOKEN)
    token_file = tmp.path("token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    if Blackhole.available():
        Blackhole.remove_stale()
    rng = random.Random(SEED)

    settings = [(1000, 1000, 1)] if smoke else [(1000, 1000, 7), (3000, 2000, 5)]
    a_runs = [detection(build_dir, tmp, tokens, token_file, interval, timeout, repeats, rng)
              for interval, timeout, repeats in settings]
    b_run = restart(build_dir, tmp, tokens, token_file, 1 if smoke else 5)
    certs = harness.make_certs(tmp.path("certs"))
    key_types = ["ECDSA P-256"] if smoke else ["ECDSA P-256", "RSA-2048"]
    c_runs = [tls_cpu(build_dir, tmp, tokens, token_file, certs, key_type, 5 if smoke else 50)
              for key_type in key_types]
    check_numbers(a_runs, b_run, c_runs)
    md, console, goals = report(a_runs, b_run, c_runs, smoke)
    return {"markdown": "\n".join(md), "console": console, "goals": goals,
            "raw": {"detection": a_runs, "restart": b_run, "tls": c_runs}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=os.path.join(common.SOURCE_DIR, "build", "host"))
    parser.add_argument("--work-dir", default="/tmp/tether-bench")
    parser.add_argument("--docs-dir", default=None)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--markdown", help="also write the markdown section to this file")
    args = parser.parse_args()
    result = run(args.build_dir, args.work_dir, args.docs_dir, smoke=args.smoke)
    for line in result["console"]:
        print(line)
    for goal in result["goals"]:
        print("goal: %s: %s -> %s" % (goal["goal"], goal["measured"],
                                      {True: "met", False: "MISSED", None: "-"}[goal["met"]]))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(result["markdown"] + "\n")
    else:
        print()
        print(result["markdown"])
    return 0 if all(goal["met"] is not False for goal in result["goals"]) else 1


if __name__ == "__main__":
    sys.exit(main())
