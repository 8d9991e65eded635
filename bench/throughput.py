# SPDX-License-Identifier: MIT
"""Throughput side by side: the same workload through every client.

Each client connects to ws://127.0.0.1:PORT/, sends N text messages of 100
bytes as fast as it allows, closes with 1000, waits for the close reply and
exits. tether (plain WebSocket), the raw-socket bound and the peers send to
tether-bench-sink; tether.v1 sends to tether-server with acknowledgements
on and finishes only when every message is acknowledged.

Figures per client:
  msgs/s        N / time from the connection open to the close reply (the
                sink's clock for sink clients, the client's own for tether.v1),
                median of several runs; process start-up is not in it
  CPU s         user + system of the client process (wait4), median run
  instr/msg     callgrind, marginal: (I(2n) - I(n)) / n, so start-up cancels
  syscalls/msg  strace -f -c, marginal in the same way
  allocs/msg    an LD_PRELOAD counter of malloc & co., marginal
  peak RSS      ru_maxrss of the median run
  code          .text + .data of the client's own binary and its WebSocket
                library (for script clients: their source files)
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import peers  # noqa: E402
from common import harness  # noqa: E402

sys.path.insert(0, os.path.join(common.SOURCE_DIR, "tests", "integration"))
import resume_harness  # noqa: E402

TOKEN = "bench-token"

FULL = {"counts": [200000, 1000000], "runs": 3, "instr_n": 20000, "script_instr_n": 5000,
        "syscall_n": 20000, "alloc_n": 20000}
SMOKE = {"counts": [2000], "runs": 1, "instr_n": 500, "script_instr_n": 200,
         "syscall_n": 500, "alloc_n": 500}


def tether_clients(build_dir):
    binary = os.path.join(build_dir, "bench", "tether", "tether-bench-tether")
    available = os.path.exists(binary)
    # The WebSocket code: the binary (libtether is linked in) and wslay. TLS
    # (mbedTLS) is left out as OpenSSL is for libwebsockets.
    libraries = [lib for lib in [peers._shared_library(binary, "libwslay")] if lib] if available else []
    plain = {
        "name": "tether", "label": "tether (plain WebSocket)", "target": "sink",
        "command": lambda host, port, count: [binary, "--host", host, "--port", str(port),
                                              "--count", str(count)],
        "available": available, "why_unavailable": "" if available else "%s not built" % binary,
        "binary_paths": [binary] + libraries, "runtime_paths": [],
    }
    v1 = dict(plain)
    v1.update({
        "name": "tether.v1", "label": "tether.v1 (acknowledged)", "target": "server",
        "command": lambda host, port, count: [binary, "--host", host, "--port", str(port),
                                              "--count", str(count), "--tether-v1",
                                              "--token", TOKEN],
        "binary_paths": [binary] + libraries +
        [lib for lib in [peers._shared_library(binary, "libcjson")] if lib] if available else [],
    })
    return [plain, v1]


def code_bytes(paths):
    """.text + .data of ELF files (size(1), Berkeley format); file size otherwise."""
    total = 0
    for path in paths:
        try:
            result = subprocess.run(["size", path], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            result = None
        if result is not None and result.returncode == 0:
            fields = result.stdout.splitlines()[-1].split()
            total += int(fields[0]) + int(fields[1])
        else:
            total += os.path.getsize(path)
    return total


class Targets:
    """The sink and tether-server (store on tmpfs when there is one: its
    fsyncs then cost nothing, so the server is never what is measured)."""

    def __init__(self, build_dir, work_dir):
        self.sink = peers.start_sink(build_dir)
        self.store_dir = tempfile.mkdtemp(prefix="tether-bench-store-",
                                          dir="/dev/shm" if os.path.isdir("/dev/shm") else work_dir)
        tokens = os.path.join(work_dir, "tokens")
        with open(tokens, "w") as f:
            f.write("%s bench\n" % TOKEN)
        self.server = resume_harness.Server(build_dir, self.store_dir, tokens).start()

    def port(self, client):
        return self.sink.port if client.get("target", "sink") == "sink" else self.server.port

    def close(self):
        self.sink.stop()
        self.server.stop()
        shutil.rmtree(self.store_dir, ignore_errors=True)


def last_fields(text, key):
    """The logfmt fields of the last line of `text` that has `key=`."""
    for line in reversed(text.splitlines()):
        if key + "=" in line:
            return dict(re.findall(r"(\w+)=(\S+)", line))
    return {}


def one_run(client, targets, count, env=None, wrapper=(), work_dir=None):
    cmd = list(wrapper) + client["command"]("127.0.0.1", targets.port(client), count)
    if work_dir is None:
        measured = common.run_measured(cmd, timeout=900, env=env).check()
        return measured, _elapsed(client, targets, count, measured)
    # Peak RSS through GNU time: ru_maxrss of a child forked from Python
    # keeps the Python image it had before exec; time(1) forks from itself.
    rss_file = os.path.join(work_dir, "time.out")
    measured = common.run_measured(["/usr/bin/time", "-f", "maxrss_kib=%M", "-o", rss_file] +
                                   cmd, timeout=900, env=env).check()
    with open(rss_file) as f:
        measured.max_rss_kib = int(last_fields(f.read(), "maxrss_kib")["maxrss_kib"])
    return measured, _elapsed(client, targets, count, measured)


def _elapsed(client, targets, count, measured):
    reported = dict(last_fields(measured.stdout, "anonymous_kib"),
                    **last_fields(measured.stdout, "sent"))
    if client.get("target", "sink") == "sink":
        conn = peers.read_conn_line(targets.sink, timeout=30)
        if int(conn["messages"]) != count or int(conn["close_code"]) != 1000:
            raise harness.HarnessError("%s: the sink saw %s" % (client["name"], conn))
        elapsed_us = int(conn["elapsed_us"])
    else:
        if int(reported.get("sent", -1)) != count:
            raise harness.HarnessError("%s: reported %s" % (client["name"], reported))
        elapsed_us = int(reported["elapsed_us"])
    return elapsed_us, reported


def marginal(measure, n):
    """(f(2n) - f(n)) / n: the cost of one more message, start-up cancelled."""
    low = measure(n)
    high = measure(2 * n)
    if low is None or high is None:
        return None
    return (high - low) / n


def callgrind_instructions(client, targets, count, work_dir):
    out = os.path.join(work_dir, "callgrind.%s.%d" % (client["name"], count))
    measured, _ = one_run(client, targets, count, wrapper=[
        "valgrind", "--tool=callgrind", "--callgrind-out-file=" + out + ".%p"])
    match = re.findall(r"Collected : (\d+)", measured.stderr)
    if not match:
        raise harness.HarnessError("no callgrind total for %s:\n%s" % (client["name"],
                                                                       measured.stderr[-2000:]))
    return sum(int(value) for value in match)


def strace_calls(client, targets, count, work_dir):
    out = os.path.join(work_dir, "strace.%s.%d" % (client["name"], count))
    one_run(client, targets, count, wrapper=["strace", "-f", "-c", "-o", out])
    with open(out) as f:
        for line in f:
            fields = line.split()
            if fields and fields[-1] == "total":
                return int(fields[3] if len(fields) >= 5 else fields[2])
    raise harness.HarnessError("no strace total for %s" % client["name"])


def allocations(client, targets, count, build_dir, work_dir):
    library = os.path.join(build_dir, "bench", "libtether-bench-alloc-count.so")
    out = os.path.join(work_dir, "allocs.%s.%d" % (client["name"], count))
    if os.path.exists(out):
        os.unlink(out)
    env = dict(os.environ, LD_PRELOAD=library, TETHER_ALLOC_COUNT_FILE=out)
    one_run(client, targets, count, env=env)
    total = 0
    with open(out) as f:
        for line in f:
            fields = dict(re.findall(r"(\w+)=(\d+)", line))
            total += int(fields.get("allocs", 0))
    return total


def measure_client(client, targets, sizes, build_dir, work_dir, log):
    result = {"name": client["name"], "label": client["label"], "rates": {}}
    script = bool(client.get("runtime_paths"))
    for count in sizes["counts"]:
        runs = []
        for _ in range(sizes["runs"]):
            measured, (elapsed_us, reported) = one_run(client, targets, count,
                                                       work_dir=work_dir)
            runs.append((count / (elapsed_us / 1e6), measured, reported))
        runs.sort(key=lambda run: run[0])
        rate, measured, reported = runs[len(runs) // 2]
        result["rates"][count] = {
            "median": rate, "min": runs[0][0], "max": runs[-1][0], "runs": len(runs),
            "cpu_s": measured.cpu_s, "wall_s": measured.wall_s,
            "rss_kib": measured.max_rss_kib,
            "anonymous_kib": int(reported["anonymous_kib"]) if "anonymous_kib" in reported
            else None,
        }
        log("  %-26s N=%-8d %12.0f msgs/s (min %.0f, max %.0f)  cpu %.3f s  rss %d KiB" % (
            client["label"], count, rate, runs[0][0], runs[-1][0], measured.cpu_s,
            measured.max_rss_kib))
    instr_n = sizes["script_instr_n"] if script else sizes["instr_n"]
    result["instr_per_msg"] = marginal(
        lambda n: callgrind_instructions(client, targets, n, work_dir), instr_n)
    result["instr_n"] = instr_n
    result["syscalls_per_msg"] = marginal(
        lambda n: strace_calls(client, targets, n, work_dir), sizes["syscall_n"])
    result["allocs_per_msg"] = marginal(
        lambda n: allocations(client, targets, n, build_dir, work_dir), sizes["alloc_n"])
    result["allocs_total"] = allocations(client, targets, sizes["alloc_n"], build_dir, work_dir)
    result["code_bytes"] = code_bytes(client["binary_paths"])
    log("  %-26s %.0f instr/msg, %.4f syscalls/msg, %.3f allocs/msg, code %.0f KiB" % (
        client["label"], result["instr_per_msg"], result["syscalls_per_msg"],
        result["allocs_per_msg"], result["code_bytes"] / 1024))
    return result


def fmt_rate(value):
    if value >= 1e6:
        return "%.2f M" % (value / 1e6)
    return "%.0f k" % (value / 1e3)


def ratio(a, b):
    if not a or not b:
        return "—"
    value = a / b
    return "%.1f×" % value if value >= 0.95 else "%.3f×" % value


def run(build_dir, work_dir, docs_dir, smoke=False):
    sizes = SMOKE if smoke else FULL
    build_dir = os.path.abspath(build_dir)
    os.makedirs(work_dir, exist_ok=True)
    console = []

    def log(line):
        console.append(line)
        print(line, flush=True)

    node_ready, node_why = peers.prepare_node()
    clients = tether_clients(build_dir) + peers.senders(build_dir)
    for client in clients:
        if client["name"] == "node" and not node_ready:
            client["available"] = False
            client["why_unavailable"] = node_why
    missing = [c for c in clients if not c["available"]]
    if missing:
        raise harness.HarnessError("; ".join("%s: %s" % (c["name"], c["why_unavailable"])
                                             for c in missing))
    targets = Targets(build_dir, work_dir)
    try:
        results = [measure_client(c, targets, sizes, build_dir, work_dir, log) for c in clients]
    finally:
        targets.close()
    by_name = {r["name"]: r for r in results}
    big = max(sizes["counts"])
    rate = {name: r["rates"][big]["median"] for name, r in by_name.items()}

    rows = []
    header = ("| client | msgs/s (N=%s, median) | × raw bound | × libwebsockets | CPU s | "
              "instr/msg | syscalls/msg | allocs/msg | peak RSS | code |" % format(big, ","))
    rows.append(header)
    rows.append("|" + "---|" * 10)
    for r in results:
        figures = r["rates"][big]
        rows.append("| %s | %s | %s | %s | %.3f | %.0f | %.4f | %.3f | %.1f MiB | %.0f KiB |" % (
            r["label"], fmt_rate(figures["median"]), ratio(figures["median"], rate["raw"]),
            ratio(figures["median"], rate["lws"]), figures["cpu_s"], r["instr_per_msg"],
            r["syscalls_per_msg"], r["allocs_per_msg"], figures["rss_kib"] / 1024,
            r["code_bytes"] / 1024))
    small_rows = ["| client | " + " | ".join("N=%s: median (min–max) msgs/s" % format(n, ",")
                                             for n in sizes["counts"]) + " |",
                  "|---|" + "---|" * len(sizes["counts"])]
    for r in results:
        small_rows.append("| %s | %s |" % (r["label"], " | ".join(
            "%s (%s–%s)" % (fmt_rate(r["rates"][n]["median"]), fmt_rate(r["rates"][n]["min"]),
                            fmt_rate(r["rates"][n]["max"])) for n in sizes["counts"])))

    tether = by_name["tether"]
    v1 = by_name["tether.v1"]
    goals = [
        {"goal": "tether plain ≥ 10× libwebsockets msgs/s",
         "measured": ratio(rate["tether"], rate["lws"]),
         "met": rate["tether"] >= 10 * rate["lws"]},
        {"goal": "tether plain within 4× of the raw-socket bound",
         "measured": "%s of the bound" % ratio(rate["tether"], rate["raw"]),
         "met": rate["tether"] * 4 >= rate["raw"]},
        {"goal": "tether plain ≤ 400 instructions/msg (callgrind, marginal)",
         "measured": "%.0f" % tether["instr_per_msg"], "met": tether["instr_per_msg"] <= 400},
        {"goal": "tether plain ≤ 0.05 system calls/msg (strace -c, marginal)",
         "measured": "%.4f" % tether["syscalls_per_msg"],
         "met": tether["syscalls_per_msg"] <= 0.05},
        {"goal": "tether.v1 with acknowledgements ≥ 5× libwebsockets msgs/s",
         "measured": ratio(rate["tether.v1"], rate["lws"]),
         "met": rate["tether.v1"] >= 5 * rate["lws"]},
        {"goal": "zero heap allocations per message (tether, tether.v1)",
         "measured": "%.4f / %.4f allocs/msg (%d / %d in a whole run of %d messages)" % (
             tether["allocs_per_msg"], v1["allocs_per_msg"], tether["allocs_total"],
             v1["allocs_total"], sizes["alloc_n"]),
         "met": tether["allocs_per_msg"] == 0 and v1["allocs_per_msg"] == 0},
        {"goal": "peak RSS ≤ 2 MiB (tether plain)",
         "measured": "%.1f MiB, of which %.1f MiB private (anonymous); libwebsockets %.1f MiB" % (
             tether["rates"][big]["rss_kib"] / 1024,
             (tether["rates"][big]["anonymous_kib"] or 0) / 1024,
             by_name["lws"]["rates"][big]["rss_kib"] / 1024),
         "met": tether["rates"][big]["rss_kib"] <= 2048},
    ]

    commands = [
        "make bench    # everything below; or only this part:",
        "/usr/bin/python3 bench/throughput.py --build-dir build/host --work-dir /tmp/tether-bench",
        "# one client by hand (the sink prints one line per connection):",
        "build/host/bench/sink/tether-bench-sink --port 9000 &",
        "build/host/bench/tether/tether-bench-tether --port 9000 --count 1000000",
        "build/host/bench/peers/tether-bench-lws --host 127.0.0.1 --port 9000 --count 1000000",
        "valgrind --tool=callgrind build/host/bench/tether/tether-bench-tether --port 9000 "
        "--count 40000",
        "strace -f -c build/host/bench/tether/tether-bench-tether --port 9000 --count 40000",
    ]
    markdown = "\n".join([
        "## Throughput: %d-byte text messages, one connection" % common.MESSAGE_SIZE, "",
        "Every client runs the same workload against ws://127.0.0.1: connect, send N text "
        "messages of exactly 100 bytes as fast as it allows, close with 1000, wait for the "
        "server's close reply, exit. tether (plain), the raw-socket bound and the peers send to "
        "`tether-bench-sink` (bench/sink), which counts messages and times each connection from "
        "its 101 to the client's close frame. tether.v1 sends to tether-server with "
        "acknowledgements on (the server appends every message to its store, syncs and ACKs "
        "every 64 messages; store on tmpfs) and its clock stops when the last message is "
        "acknowledged and the close answered.", "",
        "\n".join(rows), "",
        "- msgs/s: N / (open → close reply), the median of %d runs; process start-up is "
        "excluded. × raw bound and × libwebsockets are ratios of figures from this same run." %
        sizes["runs"],
        "- instr/msg: `valgrind --tool=callgrind`, (I(2n) − I(n)) / n with n = %d (%d for the "
        "Python and Node clients, whose interpreters are slow under valgrind); all threads "
        "counted. A count, repeatable on a noisy machine." % (sizes["instr_n"],
                                                                sizes["script_instr_n"]),
        "- syscalls/msg and allocs/msg: marginal in the same way with n = %d (`strace -f -c`; an "
        "LD_PRELOAD counter of malloc, calloc, realloc and the aligned allocators, "
        "bench/alloc_count.c). Python's small objects come from its own pools and V8's from its "
        "heap, so their malloc counts understate what they allocate." % sizes["syscall_n"],
        "- peak RSS: ru_maxrss of the median run (through time(1)), shared libraries' resident "
        "pages included. The raw sender, a small C program, peaks at %.1f MiB here: that is "
        "the floor for a dynamically linked process on this machine (libc's pages alone are "
        "about 1.4 MiB). tether's own memory is its anonymous pages, %.1f MiB: the 256 KiB "
        "outbox, the receive and transmit buffers and the heap of the C library and mbedTLS." % (
            by_name["raw"]["rates"][big]["rss_kib"] / 1024,
            (tether["rates"][big]["anonymous_kib"] or 0) / 1024),
        "- code: .text + .data of the client's binary and its WebSocket library (tether: the "
        "binary with libtether linked in, and wslay; libwebsockets: the sender and "
        "libwebsockets.so); the TLS library is left out of both (mbedTLS, OpenSSL). For Python "
        "and Node: their source files, not the interpreter.", "",
        "All runs, N = %s:" % ", ".join(format(n, ",") for n in sizes["counts"]), "",
        "\n".join(small_rows), "",
        "```", "\n".join(commands), "```", ""])
    return {"markdown": markdown, "console": console, "goals": goals, "results": results}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(common.SOURCE_DIR, "build", "host"))
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--docs-dir", default=None)
    parser.add_argument("--smoke", action="store_true")
    options = parser.parse_args()
    work_dir = options.work_dir or tempfile.mkdtemp(prefix="tether-bench-")
    result = run(options.build_dir, work_dir, options.docs_dir, options.smoke)
    print(result["markdown"])
    for goal in result["goals"]:
        print("%-4s %s: %s" % ({True: "met", False: "MISS", None: "-"}[goal["met"]],
                               goal["goal"], goal["measured"]))


if __name__ == "__main__":
    main()
