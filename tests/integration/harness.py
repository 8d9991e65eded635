# SPDX-License-Identifier: MIT
"""Test harness for tether's integration tests: real peers on 127.0.0.1.

Run with /usr/bin/python3 (Debian's python3-websockets lives there, not in a
pyenv build first on PATH). Needs the Debian packages from
`tools/install-deps integration`: python3-websockets, nginx-light (or nginx)
and openssl. Nothing here reaches beyond 127.0.0.1.

Peers (all print `port=N` as their first stdout line and run until SIGTERM):
  servers/echo_server.py  a correct WebSocket echo server (websockets library)
  servers/adversary.py    scripted misbehaving servers, one --scenario per run
  nginx (start_nginx)     wss terminator in front of either, with the test PKI
  tls/make_certs.sh       test CA, localhost/wrong-name/expired leaves, client CA

Every process started here is killed when the test ends: by its context
manager, by atexit, by SIGTERM (converted to an exit) and, should the test
process die hard, by PR_SET_PDEATHSIG. Every wait has a timeout, so a hung
peer fails a test instead of hanging ctest. (PR_SET_PDEATHSIG follows the
thread that started the child: start peers from the main thread.)

nginx in front of the adversary writes its own `Connection: upgrade` into
every 101 (masking missing_connection) and adds Server and Date; for wss
against the handshake scenarios start the adversary with tls=certs instead.
Frame-level scenarios pass through nginx unchanged.

Every peer listens on 127.0.0.1 only; the server certificate names both
localhost and IP 127.0.0.1, so a client that resolves localhost to ::1 first
should use 127.0.0.1 (with SNI "localhost" if it wants a name check).

How a tether-cat test uses it (ctest passes --source-dir and --build-dir):

    import harness
    tmp = harness.TempDir("cat-reconnect")             # removed at exit
    log = tmp.path("adversary.jsonl")
    with harness.start_adversary("drop_after_handshake", log=log) as peer:
        result = harness.run(
            [build_dir + "/tether-cat", "ws://127.0.0.1:%d/" % peer.port],
            stdin_bytes=b"hello\\n", timeout=10)
        attempts = [e for e in harness.read_jsonl(log) if e["event"] == "attempt"]
        gaps = [b["t_ms"] - a["t_ms"] for a, b in zip(attempts, attempts[1:])]
        status = harness.parse_logfmt(result.stderr_lines()[-1])

    # wss through nginx with the generated PKI:
    certs = harness.make_certs(tmp.path("certs"))
    with harness.start_echo_server() as echo, \\
         harness.start_nginx("normal", echo.port, certs) as proxy:
        url = "wss://localhost:%d/" % proxy.port     # trust certs.ca
        ...
        entries = proxy.access_log_entries()        # ssl_session_reused == "r"

For a long-running client, start_process(cmd, expect_port=False) and then
wait_for_line()/wait_for(); stop() returns its exit code.
"""

import atexit
import ctypes
import json
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVERS_DIR = os.path.join(HERE, "servers")
PYTHON = "/usr/bin/python3"
MAKE_CERTS = os.path.join(HERE, "tls", "make_certs.sh")
NGINX_TEMPLATE = os.path.join(HERE, "nginx", "nginx.conf.in")

# Generous for a loaded CI machine running ctest -j2; a healthy peer answers in ms.
STARTUP_TIMEOUT = 10.0
STOP_GRACE = 3.0
PIPE = subprocess.PIPE


class HarnessError(Exception):
    """A peer could not be started or misbehaved in a way the harness detects."""


# --- process lifetime --------------------------------------------------------

_live_processes = set()
_temp_dirs = []
_live_lock = threading.Lock()


def _clean_up():
    # Peers first: nginx must not be writing into a directory being removed.
    with _live_lock:
        processes = list(_live_processes)
    for process in processes:
        process.stop(grace=0.5)
    for temp_dir in reversed(_temp_dirs):
        temp_dir.remove()


atexit.register(_clean_up)


def _exit_on_sigterm(signum, frame):
    # ctest's timeout and a parent runner send SIGTERM: turn it into a normal
    # exit so atexit stops the peers.
    sys.exit(128 + signum)


if threading.current_thread() is threading.main_thread():
    for _sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(_sig) in (signal.SIG_DFL, None):
            signal.signal(_sig, _exit_on_sigterm)

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Runs in the child between fork and exec: if the test process is killed
    # outright (SIGKILL), the kernel still takes its peers down with it.
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Process:
    """A child process whose stdout and stderr are collected by reader threads.

    Use as a context manager (stop() on exit). `port` is set when started
    through start_process(expect_port=True). stdin: None (/dev/null), bytes
    (written, then closed) or PIPE (write_stdin()/close_stdin() as you go).
    """

    def __init__(self, cmd, name=None, env=None, cwd=None, stdin=None):
        self.cmd = [str(c) for c in cmd]
        self.name = name or os.path.basename(self.cmd[0])
        self.port = None
        self.returncode = None
        self._stdout_lines = []
        self._stderr_lines = []
        self._lines = queue.Queue()
        self._output_lock = threading.Lock()
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            preexec_fn=_die_with_parent,
        )
        with _live_lock:
            _live_processes.add(self)
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self._stdout_lines, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self._stderr_lines, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if isinstance(stdin, (bytes, bytearray)):
            threading.Thread(target=self._feed, args=(bytes(stdin),), daemon=True).start()

    @property
    def pid(self):
        return self.proc.pid

    def _read(self, stream, lines, to_queue):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._output_lock:
                lines.append(line)
            if to_queue:
                self._lines.put(line)
        stream.close()
        if to_queue:
            self._lines.put(None)

    def _feed(self, data):
        self.write_stdin(data)
        self.close_stdin()

    def write_stdin(self, data):
        """Writes to a process started with stdin=PIPE; False if it is gone."""
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, ValueError, OSError):
            return False

    def close_stdin(self):
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            pass

    def wait_for_line(self, pattern, timeout=STARTUP_TIMEOUT):
        """The first re.match of pattern on a stdout line not yet consumed."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HarnessError("%s: no stdout line matching %r within %.1f s%s" % (
                    self.name, pattern, timeout, self._diagnostics()))
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self._lines.put(None)  # keep reporting end of output
                self.proc.wait(timeout=STOP_GRACE)
                raise HarnessError("%s exited (%s) before printing %r%s" % (
                    self.name, self.proc.returncode, pattern, self._diagnostics()))
            match = regex.match(line)
            if match:
                return match

    def read_port(self, timeout=STARTUP_TIMEOUT):
        self.port = int(self.wait_for_line(r"^port=(\d+)\s*$", timeout).group(1))
        return self.port

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout):
        """Exit code, or None if still running after timeout seconds.

        Once the process has exited, its output is read to the end before this
        returns: a test that reads stderr right after wait() sees the last line.
        """
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        for reader in self._readers:
            reader.join(timeout=5.0)
        return code

    def signal(self, signum):
        if self.alive():
            self.proc.send_signal(signum)

    def stop(self, grace=STOP_GRACE):
        """SIGTERM, SIGKILL after grace seconds; reaps and returns the exit code."""
        if self.returncode is None:
            if self.proc.poll() is None:
                try:
                    self.proc.terminate()
                    self.proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                except ProcessLookupError:
                    self.proc.wait()
            self.returncode = self.proc.returncode
            for reader in self._readers:
                reader.join(timeout=1.0)
        with _live_lock:
            _live_processes.discard(self)
        return self.returncode

    def stdout(self):
        with self._output_lock:
            return "\n".join(self._stdout_lines)

    def stderr(self):
        with self._output_lock:
            return "\n".join(self._stderr_lines)

    def _diagnostics(self):
        return "\n  command: %s\n  stderr:\n%s" % (
            " ".join(shlex.quote(c) for c in self.cmd), _indent(self.stderr()))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def _indent(text, prefix="    "):
    return "\n".join(prefix + line for line in text.splitlines()) or prefix + "(empty)"


def start_process(cmd, expect_port=True, timeout=STARTUP_TIMEOUT, **kw):
    """Starts cmd; with expect_port, waits for its `port=N` line and sets .port.

    The process is stopped if it fails to report a port in time.
    """
    process = Process(cmd, **kw)
    if expect_port:
        try:
            process.read_port(timeout)
        except BaseException:
            process.stop(grace=0.5)
            raise
    return process


def _tls_args(certs, mutual=False):
    if certs is None:
        return []
    args = ["--tls-cert", certs.server_chain, "--tls-key", certs.server_key]
    if mutual:
        args += ["--tls-client-ca", certs.client_ca]
    return args


def start_echo_server(log=None, subprotocol=None, max_size=None, tls=None, extra_args=()):
    """The echo server; tls=Certs serves wss itself with the localhost certificate."""
    cmd = [PYTHON, os.path.join(SERVERS_DIR, "echo_server.py")] + _tls_args(tls)
    if log:
        cmd += ["--log", log]
    if subprotocol:
        cmd += ["--subprotocol", subprotocol]
    if max_size is not None:
        cmd += ["--max-size", str(max_size)]
    return start_process(cmd + list(extra_args), name="echo_server")


def start_adversary(scenario, log=None, retry_after=None, close_code=None, reset_after_ms=None,
                    tls=None, mutual_tls=False):
    """One adversary scenario; tls=Certs speaks TLS with the localhost certificate
    (mutual_tls also requires a client certificate from the client CA)."""
    cmd = [PYTHON, os.path.join(SERVERS_DIR, "adversary.py"), "--scenario", scenario]
    cmd += _tls_args(tls, mutual_tls)
    if log:
        cmd += ["--log", log]
    if retry_after is not None:
        cmd += ["--retry-after", str(retry_after)]
    if close_code is not None:
        cmd += ["--close-code", str(close_code)]
    if reset_after_ms is not None:
        cmd += ["--reset-after-ms", str(reset_after_ms)]
    return start_process(cmd, name="adversary:" + scenario)


# --- small helpers -----------------------------------------------------------


def admin_headers(data_dir):
    """The header every admin POST of tether-server needs: its admin token,
    which the server keeps in <data_dir>/admin.token (written before it prints
    its port line) unless it was given --admin-token-file."""
    with open(os.path.join(data_dir, "admin.token"), encoding="ascii") as f:
        return {"Authorization": "Bearer " + f.readline().strip()}


def free_port():
    """A port that was free a moment ago (bind 0, read it, release it).

    Another process may take it before you bind it: prefer peers that bind 0
    themselves and report `port=N`; retry on EADDRINUSE otherwise.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=5.0, interval=0.02, message=None):
    """Polls predicate until it returns a truthy value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise HarnessError(message or "condition not met within %.1f s" % timeout)
        time.sleep(interval)


class Result:
    def __init__(self, cmd, returncode, stdout, stderr, timed_out, duration):
        self.cmd = cmd
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.timed_out = timed_out
        self.duration = duration

    def stdout_lines(self):
        return self.stdout.decode("utf-8", "replace").splitlines()

    def stderr_lines(self):
        return self.stderr.decode("utf-8", "replace").splitlines()

    def __repr__(self):
        return "Result(returncode=%r, timed_out=%r, %.2f s, stdout=%r, stderr=%r)" % (
            self.returncode, self.timed_out, self.duration, self.stdout[-2000:], self.stderr[-2000:])


def run(cmd, stdin_bytes=b"", timeout=10.0, env=None, cwd=None):
    """Runs cmd to completion, feeding stdin_bytes; kills it after timeout.

    Returns a Result (returncode is negative for a signal, timed_out tells a
    kill by this timeout apart). Never raises for the command's failure.
    """
    cmd = [str(c) for c in cmd]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=cwd, preexec_fn=_die_with_parent)
    timed_out = False
    try:
        out, err = proc.communicate(stdin_bytes, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        out, err = proc.communicate()
    return Result(cmd, proc.returncode, out, err, timed_out, time.monotonic() - start)


_LOGFMT = re.compile(r'\s*([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_logfmt(line):
    """`a=1 b="two words" c=` -> {"a": "1", "b": "two words", "c": ""}.

    Values stay strings; backslash escapes inside quotes are undone (\\" and
    \\\\ only). Tokens without `=` are ignored.
    """
    fields = {}
    for key, value in _LOGFMT.findall(line):
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r'\\(["\\])', r"\1", value[1:-1])
        fields[key] = value
    return fields


def read_jsonl(path):
    """Events of a peer's --log file so far; [] if it does not exist yet.

    A partly written last line (the peer is still running) is skipped.
    """
    events = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                events.append(json.loads(line))
    except FileNotFoundError:
        pass
    return events


class TempDir:
    """A temporary directory removed at exit (KEEP_TEST_FILES=1 keeps it)."""

    def __init__(self, prefix="tether-it-"):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        _temp_dirs.append(self)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def remove(self):
        if not os.path.isdir(self.dir):
            return
        if os.environ.get("KEEP_TEST_FILES"):
            sys.stderr.write("keeping %s\n" % self.dir)
            return
        shutil.rmtree(self.dir, ignore_errors=True)


# --- TLS material ------------------------------------------------------------


class Certs:
    """Paths of the files tls/make_certs.sh wrote (see its header)."""

    NAMES = ("ca", "server", "server-rsa", "wrong", "expired", "other-ca", "other-server",
             "client-ca", "client")

    def __init__(self, directory):
        self.dir = directory
        for name in self.NAMES:
            attr = name.replace("-", "_")
            setattr(self, attr, os.path.join(directory, name + ".pem"))
            setattr(self, attr + "_key", os.path.join(directory, name + ".key"))
        self.server_chain = os.path.join(directory, "server-chain.pem")
        pins = {}
        with open(os.path.join(directory, "server.pin"), encoding="ascii") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                pins[key] = value
        self.server_pin_base64 = pins["base64"]
        self.server_pin_hex = pins["hex"]


def make_certs(directory, timeout=60.0):
    """Generates the test PKI into directory and returns a Certs."""
    result = run(["sh", MAKE_CERTS, directory], timeout=timeout)
    if result.returncode != 0:
        raise HarnessError("make_certs.sh failed: %r" % result)
    return Certs(directory)


# --- nginx -------------------------------------------------------------------

# variant -> (certificate attribute, key attribute, client verification)
NGINX_VARIANTS = {
    "normal": ("server_chain", "server_key", False),
    "rsa": ("server_rsa", "server_rsa_key", False),
    "wrong_name": ("wrong", "wrong_key", False),
    "expired": ("expired", "expired_key", False),
    "unknown_ca": ("other_server", "other_server_key", False),
    "mtls": ("server_chain", "server_key", True),
}


def find_nginx():
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise HarnessError("nginx not found: run tools/install-deps integration")


class Nginx(Process):
    """A private nginx instance; .port is its wss port, .dir holds its files."""

    def access_log_entries(self):
        """The access log parsed with parse_logfmt, one dict per request."""
        try:
            with open(os.path.join(self.dir, "access.log"), encoding="utf-8") as f:
                return [parse_logfmt(line) for line in f if line.endswith("\n")]
        except FileNotFoundError:
            return []

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log"), encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def _diagnostics(self):
        return Process._diagnostics(self) + "\n  error.log:\n" + _indent(self.error_log()[-4000:])


def start_nginx(variant, backend_port, certs, directory=None, protocols="TLSv1.2 TLSv1.3",
                timeout=STARTUP_TIMEOUT, attempts=5):
    """Starts nginx terminating wss on 127.0.0.1 and proxying to backend_port.

    variant: normal (server-chain for localhost/127.0.0.1), rsa, wrong_name,
    expired, unknown_ca (leaf from the unrelated CA) or mtls (normal plus
    `ssl_verify_client on` with client-ca; a client without a valid
    certificate gets HTTP 400). Returns an Nginx process; .port is the port.
    nginx cannot report a port it chose, so a free port is picked and the
    start retried on a bind collision with a parallel test.
    """
    if variant not in NGINX_VARIANTS:
        raise ValueError("unknown nginx variant %r" % variant)
    cert_attr, key_attr, verify_client = NGINX_VARIANTS[variant]
    if directory is None:
        directory = TempDir("tether-nginx-").dir
    os.makedirs(directory, exist_ok=True)
    with open(NGINX_TEMPLATE, encoding="utf-8") as f:
        template = f.read()
    client_verify = ""
    if verify_client:
        client_verify = "\n".join("        " + line for line in (
            "ssl_client_certificate %s;" % certs.client_ca,
            "ssl_verify_client on;",
            "ssl_verify_depth 2;",
        ))
    nginx = find_nginx()
    last_error = None
    for _ in range(attempts):
        port = free_port()
        values = {
            "DIR": directory,
            "PORT": str(port),
            "CERT": getattr(certs, cert_attr),
            "KEY": getattr(certs, key_attr),
            "PROTOCOLS": protocols,
            "CLIENT_VERIFY": client_verify,
            "BACKEND_PORT": str(backend_port),
        }
        config = re.sub(r"@([A-Z_]+)@", lambda m: values[m.group(1)], template)
        conf_path = os.path.join(directory, "nginx.conf")
        with open(conf_path, "w", encoding="utf-8") as f:
            f.write(config)
        error_log = os.path.join(directory, "error.log")
        if os.path.exists(error_log):
            os.unlink(error_log)
        process = Nginx([nginx, "-p", directory + "/", "-e", error_log, "-c", conf_path],
                        name="nginx:" + variant)
        process.dir = directory
        process.port = port
        try:
            state = wait_for(lambda: _nginx_state(process), timeout=timeout, interval=0.02,
                             message="nginx did not start within %.1f s" % timeout)
        except HarnessError as e:
            process.stop(grace=0.5)
            raise HarnessError(str(e) + process._diagnostics())
        if state == "ready":
            return process
        last_error = process._diagnostics()
        process.stop(grace=0.5)
        if state != "port_taken":
            break
    raise HarnessError("nginx failed to start (%s)%s" % (variant, last_error))


_NGINX_STARTED = re.compile(r"\[notice\] \d+#\d+: nginx/\d")


def _nginx_state(process):
    log = process.error_log()
    if "bind() to" in log and "Address already in use" in log:
        return "port_taken"
    if not process.alive():
        return "exited"
    # ngx_os_status() logs the version only after the listening sockets are
    # bound, so a connection now reaches this nginx, not a stranger's port.
    if not _NGINX_STARTED.search(log):
        return None
    try:
        socket.create_connection(("127.0.0.1", process.port), timeout=0.5).close()
    except OSError:
        return None
    return "ready"
