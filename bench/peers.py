# SPDX-License-Identifier: MIT
"""The senders make bench compares tether with, and the sink they send to.

Every sender runs the same workload against tether-bench-sink: connect to
ws://HOST:PORT/, send N text messages of --size bytes (100) as fast as the
client allows, close with 1000, wait for the server's close, exit 0. Each
prints a last stdout line `sent=N elapsed_us=T` and exits non-zero on any
failure. permessage-deflate is never used.

    import peers
    with peers.start_sink(build_dir) as sink:
        for sender in peers.senders(build_dir):
            if not sender["available"]:
                print(sender["name"], "skipped:", sender["why_unavailable"])
                continue
            result = common.run_measured(sender["command"]("127.0.0.1", sink.port, 200000))
            conn = peers.read_conn_line(sink, timeout=10)   # messages, close_code, ...

Senders, in this order:
  raw     bench/peers/raw_sender.c (tether-bench-raw): pre-masked frames in
          64 KiB write()s; the practical upper bound
  lws     bench/peers/lws_sender.c (tether-bench-lws): libwebsockets, built
          when Debian's libwebsockets-dev was found by CMake
  python  bench/peers/py_sender.py: python3-websockets under /usr/bin/python3
  node    bench/peers/node/sender.js: ws (pinned in package.json), needs
          prepare_node() to have installed node_modules
"""

import functools
import glob
import os
import re
import shutil
import subprocess

import common
from common import harness

PEERS_DIR = os.path.join(common.BENCH_DIR, "peers")
NODE_DIR = os.path.join(PEERS_DIR, "node")
PYTHON = "/usr/bin/python3"


def _binary(build_dir, *parts):
    return os.path.join(build_dir, "bench", *parts)


def _sender_args(host, port, count, size):
    args = ["--host", str(host), "--port", str(port), "--count", str(count)]
    if size is not None:
        args += ["--size", str(size)]
    return args


def _shared_library(binary, name_fragment):
    """The path ldd resolves for the binary's library whose name contains name_fragment."""
    try:
        output = subprocess.run(["ldd", binary], capture_output=True, text=True,
                                timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in output.splitlines():
        match = re.match(r"\s*(\S+)\s+=>\s+(\S+)", line)
        if match and name_fragment in match.group(1) and os.path.exists(match.group(2)):
            return os.path.realpath(match.group(2))
    return None


@functools.lru_cache(maxsize=None)
def _python_websockets():
    """(version, package directory) of websockets under /usr/bin/python3, or (None, reason)."""
    if not os.path.exists(PYTHON):
        return None, "%s not found" % PYTHON
    try:
        result = subprocess.run(
            [PYTHON, "-c", "import os, websockets; "
                           "print(websockets.__version__); print(os.path.dirname(websockets.__file__))"],
            capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        return None, str(error)
    if result.returncode != 0:
        return None, "python3-websockets is not installed for %s" % PYTHON
    version, directory = result.stdout.split("\n")[:2]
    return version, directory


def _package_files(directory, patterns):
    files = []
    for pattern in patterns:
        files += glob.glob(os.path.join(directory, "**", pattern), recursive=True)
    return sorted(set(files))


def node_version():
    node = shutil.which("node")
    if node is None:
        return None
    try:
        return subprocess.run([node, "--version"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def node_ws_version():
    """The ws version installed in bench/peers/node/node_modules, or None."""
    try:
        import json
        with open(os.path.join(NODE_DIR, "node_modules", "ws", "package.json")) as package:
            return json.load(package)["version"]
    except (OSError, ValueError, KeyError):
        return None


def prepare_node(source_dir=common.SOURCE_DIR):
    """Installs the Node sender's dependencies (npm ci) unless node_modules exists.

    Reaches the npm registry (only when node_modules is missing). Returns
    (True, "") when bench/peers/node/node_modules is ready, else
    (False, reason): node or npm missing, or npm ci failing (the registry
    unreachable, say).
    """
    node_dir = os.path.join(source_dir, "bench", "peers", "node")
    if shutil.which("node") is None:
        return False, "node is not installed"
    if os.path.isdir(os.path.join(node_dir, "node_modules", "ws")):
        return True, ""
    npm = shutil.which("npm")
    if npm is None:
        return False, "npm is not installed"
    try:
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=node_dir,
                                capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as error:
        return False, "npm ci failed: %s" % error
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        return False, "npm ci failed (%d): %s" % (result.returncode, " / ".join(tail))
    return True, ""


def senders(build_dir, size=None):
    """The senders in the order they are reported: raw, lws, python, node.

    Each is a dict:
      name             "raw", "lws", "python" or "node"
      label            what the tables print (library and version)
      command          function(host, port, count) -> argv list
      available        False when its binary, library or runtime is missing
      why_unavailable  the reason when not available ("" otherwise)
      binary_paths     the sender's own code and its WebSocket library (the
                       files whose size is reported; the language runtime is
                       not included)
      runtime_paths    the interpreter a script sender runs under ([] for C)
    size (bytes per message) is passed as --size when given.
    """
    result = []

    raw = _binary(build_dir, "peers", "tether-bench-raw")
    result.append({
        "name": "raw",
        "label": "raw socket bound",
        "command": lambda host, port, count: [raw] + _sender_args(host, port, count, size),
        "available": os.path.exists(raw),
        "why_unavailable": "" if os.path.exists(raw) else "%s not built" % raw,
        "binary_paths": [raw],
        "runtime_paths": [],
    })

    lws = _binary(build_dir, "peers", "tether-bench-lws")
    lws_library = _shared_library(lws, "libwebsockets") if os.path.exists(lws) else None
    lws_version = None
    if lws_library is not None:
        match = re.search(r"libwebsockets\.so\.(\d+)", lws_library)
        lws_version = match.group(1) if match else None
    try:
        lws_version = subprocess.run(["pkg-config", "--modversion", "libwebsockets"],
                                     capture_output=True, text=True,
                                     timeout=10).stdout.strip().rstrip("-") or lws_version
    except (OSError, subprocess.SubprocessError):
        pass
    result.append({
        "name": "lws",
        "label": "libwebsockets %s" % (lws_version or "?"),
        "command": lambda host, port, count: [lws] + _sender_args(host, port, count, size),
        "available": os.path.exists(lws),
        "why_unavailable": "" if os.path.exists(lws) else
        "tether-bench-lws not built (libwebsockets-dev missing: tools/install-deps bench)",
        "binary_paths": [lws] + ([lws_library] if lws_library else []),
        "runtime_paths": [],
    })

    script = os.path.join(PEERS_DIR, "py_sender.py")
    py_version, py_dir = _python_websockets()
    result.append({
        "name": "python",
        "label": "Python websockets %s" % (py_version or "?"),
        "command": lambda host, port, count: [PYTHON, script] + _sender_args(host, port, count, size),
        "available": py_version is not None,
        "why_unavailable": "" if py_version is not None else py_dir,
        "binary_paths": [script] + (_package_files(py_dir, ["*.py", "*.so"]) if py_version else []),
        "runtime_paths": [os.path.realpath(PYTHON)] if os.path.exists(PYTHON) else [],
    })

    sender_js = os.path.join(NODE_DIR, "sender.js")
    node = shutil.which("node")
    ws_version = node_ws_version()
    if node is None:
        node_why = "node is not installed"
    elif ws_version is None:
        node_why = "bench/peers/node/node_modules missing (prepare_node() runs npm ci)"
    else:
        node_why = ""
    ws_dir = os.path.join(NODE_DIR, "node_modules", "ws")
    result.append({
        "name": "node",
        "label": "Node %s ws %s" % (node_version() or "?", ws_version or "?"),
        "command": lambda host, port, count: [node or "node", sender_js] + _sender_args(
            host, port, count, size),
        "available": node_why == "",
        "why_unavailable": node_why,
        "binary_paths": [sender_js] + (_package_files(os.path.join(ws_dir, "lib"), ["*.js"]) +
                                       [os.path.join(ws_dir, "index.js")] if ws_version else []),
        "runtime_paths": [os.path.realpath(node)] if node else [],
    })
    return result


def start_sink(build_dir, host="127.0.0.1", port=0):
    """Starts tether-bench-sink; returns the harness process with .port set.

    Use it as a context manager (the sink is stopped on exit); it reports one
    `conn` line per finished connection, read with read_conn_line().
    """
    sink = _binary(build_dir, "sink", "tether-bench-sink")
    if not os.path.exists(sink):
        raise harness.HarnessError("%s not built" % sink)
    process = harness.Process([sink, "--host", host, "--port", str(port)], name="tether-bench-sink")
    try:
        process.port = int(process.wait_for_line(r"^listen=(\d+)\s*$").group(1))
    except BaseException:
        process.stop(grace=0.5)
        raise
    return process


_INT_FIELDS = ("id", "messages", "bytes", "close_code", "elapsed_us")


def read_conn_line(process, timeout=10.0):
    """The next `conn` line of the sink, parsed: ints for id, messages, bytes,
    close_code and elapsed_us; "error" (a string) only when the sink saw one.
    Raises harness.HarnessError when none comes within timeout seconds."""
    line = process.wait_for_line(r"^conn ", timeout).string
    fields = harness.parse_logfmt(line)
    for key in _INT_FIELDS:
        fields[key] = int(fields[key])
    return fields


def parse_sent_line(stdout):
    """{"sent": N, "elapsed_us": T} from a sender's last stdout line."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise harness.HarnessError("sender printed nothing")
    fields = harness.parse_logfmt(lines[-1])
    try:
        return {"sent": int(fields["sent"]), "elapsed_us": int(fields["elapsed_us"])}
    except (KeyError, ValueError):
        raise harness.HarnessError("sender's last line is not sent=N elapsed_us=T: %r" % lines[-1])


def alloc_count_library(build_dir):
    """The LD_PRELOAD allocation counter (bench/alloc_count.c)."""
    return _binary(build_dir, "libtether-bench-alloc-count.so")


def alloc_count_env(build_dir, out_path, base_env=None):
    """An environment that counts the heap allocations of a sender into out_path.

    Each process (and every child it starts) appends `pid=P allocs=N bytes=B`
    at exit. Python's small-object allocator and V8's heap do not go through
    malloc: set PYTHONMALLOC=malloc in base_env to see every Python object.
    """
    env = dict(os.environ if base_env is None else base_env)
    env["LD_PRELOAD"] = alloc_count_library(build_dir)
    env["TETHER_ALLOC_COUNT_FILE"] = out_path
    return env


def read_alloc_counts(out_path):
    """[{"pid", "allocs", "bytes"} as ints] from a TETHER_ALLOC_COUNT_FILE."""
    entries = []
    with open(out_path) as lines:
        for line in lines:
            if line.strip():
                fields = harness.parse_logfmt(line)
                entries.append({key: int(fields[key]) for key in ("pid", "allocs", "bytes")})
    return entries


def _main():
    """Runs every available sender once against a fresh sink (a quick check)."""
    import argparse
    parser = argparse.ArgumentParser(description="run each sender once against the sink")
    parser.add_argument("--build-dir", default=os.path.join(common.SOURCE_DIR, "build", "host"))
    parser.add_argument("--count", type=int, default=200000)
    args = parser.parse_args()
    ok, why = prepare_node()
    if not ok:
        print("node: %s" % why)
    failed = False
    with start_sink(args.build_dir) as sink:
        for sender in senders(args.build_dir):
            if not sender["available"]:
                print("%-7s skipped: %s" % (sender["name"], sender["why_unavailable"]))
                continue
            run = common.run_measured(sender["command"]("127.0.0.1", sink.port, args.count))
            conn = read_conn_line(sink)
            good = (run.returncode == 0 and conn["messages"] == args.count
                    and conn["close_code"] == 1000 and "error" not in conn)
            failed = failed or not good
            rate = conn["messages"] / (conn["elapsed_us"] / 1e6) if conn["elapsed_us"] else 0
            print("%-7s %-28s %s messages=%d close_code=%d sink %.0f msgs/s, cpu %.2f s%s" % (
                sender["name"], sender["label"], "ok  " if good else "FAIL", conn["messages"],
                conn["close_code"], rate, run.cpu_s,
                "" if run.returncode == 0 else " exit %d: %s" % (run.returncode, run.stderr.strip())))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(_main())
