# SPDX-License-Identifier: MIT
"""Redis peers for tether's integration tests: redis-server and redis-sentinel
on 127.0.0.1, each in its own directory, never the system's Redis.

    import redis_harness
    tmp = harness.TempDir("redis-")
    primary = redis_harness.start_redis(tmp.path("primary"))          # AOF on
    replica = redis_harness.start_redis(tmp.path("replica"), replica_of=primary.port)
    sentinel = redis_harness.start_sentinel(tmp.path("sentinel"), primary.port, "tether")
    r = primary.client()                       # redis.Redis on 127.0.0.1:primary.port
    primary.restart()                          # SIGTERM (AOF flushed), same port and data
    primary.kill()                             # SIGKILL: no shutdown at all
    primary.start()                            # again, after kill() or stop()

Every server listens on 127.0.0.1 only, on a port that was free when it
started (kept across restart()), with `--save ''` (no RDB snapshots) and, by
default, `--appendonly yes --appendfsync always`, so a reply means the write
is in the AOF and a restart, even after kill(), keeps it. Its directory holds
the AOF, redis.log and (for a sentinel) sentinel.conf.

start_*() returns once the server answers PING (a replica: once its link to
the primary is up; a sentinel: once it monitors the master). Processes are
started through harness.Process, so they die with the test process (atexit,
SIGTERM and PR_SET_PDEATHSIG) and every wait is bounded.

Needs redis-server, redis-sentinel and python3-redis (tools/install-deps).
"""

import os
import shutil
import time

import harness
import redis

STARTUP_TIMEOUT = 10.0


def redis_server_path():
    path = shutil.which("redis-server")
    if path is None:
        raise harness.HarnessError("redis-server is not installed (tools/install-deps integration)")
    return path


def redis_sentinel_path():
    path = shutil.which("redis-sentinel")
    if path is None:
        raise harness.HarnessError("redis-sentinel is not installed (tools/install-deps integration)")
    return path


class RedisProcess:
    """One redis-server (or redis-sentinel) with a fixed port and directory.

    Attributes: port, directory, process (the harness.Process while running).
    """

    def __init__(self, directory, command_for_port, ready, name):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.port = harness.free_port()
        self._command_for_port = command_for_port
        self._ready = ready
        self.name = name
        self.process = None

    def start(self, timeout=STARTUP_TIMEOUT):
        """Starts the server (again) on the same port; waits until it is ready."""
        if self.process is not None and self.process.alive():
            return self
        deadline = time.monotonic() + timeout
        self.process = harness.Process(self._command_for_port(self.port), name=self.name,
                                       cwd=self.directory)
        while True:
            if not self.process.alive():
                raise harness.HarnessError("%s exited at start (port %d): %s" % (
                    self.name, self.port, self.log_tail()))
            try:
                if self._ready(self):
                    return self
            except (redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError,
                    redis.exceptions.TimeoutError):
                pass
            if time.monotonic() >= deadline:
                self.process.stop(grace=0.5)
                raise harness.HarnessError("%s not ready within %.1f s: %s" % (
                    self.name, timeout, self.log_tail()))
            time.sleep(0.02)

    def client(self, **kw):
        """A redis.Redis connected to this server (RESP2, bytes)."""
        kw.setdefault("socket_timeout", 5.0)
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def stop(self, grace=5.0):
        """SIGTERM (Redis flushes its AOF and exits), SIGKILL after grace seconds."""
        if self.process is not None:
            self.process.stop(grace=grace)

    def kill(self):
        """SIGKILL: the server stops without a shutdown (what a power cut looks like)."""
        if self.process is not None and self.process.alive():
            self.process.proc.kill()
            self.process.proc.wait()
            self.process.stop(grace=0)

    def restart(self, timeout=STARTUP_TIMEOUT):
        """stop() then start(): same port, same directory (and so the same data)."""
        self.stop()
        return self.start(timeout)

    def alive(self):
        return self.process is not None and self.process.alive()

    def log_tail(self, lines=20):
        try:
            with open(os.path.join(self.directory, "redis.log"), encoding="utf-8",
                      errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except FileNotFoundError:
            return "(no redis.log)"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def start_redis(tmpdir, appendonly=True, replica_of=None, extra_args=(), timeout=STARTUP_TIMEOUT):
    """A redis-server on 127.0.0.1 with its data in `tmpdir` (created).

    appendonly: AOF on with appendfsync always (False: no persistence at all).
    replica_of: the port of a primary on 127.0.0.1 to replicate; start_redis
    then returns once the replication link is up.
    extra_args: more `--name value` arguments for redis-server.
    """
    server_path = redis_server_path()

    def command(port):
        cmd = [server_path, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmpdir,
               "--save", "", "--logfile", "redis.log", "--daemonize", "no",
               "--protected-mode", "no"]
        if appendonly:
            cmd += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            cmd += ["--appendonly", "no"]
        if replica_of is not None:
            cmd += ["--replicaof", "127.0.0.1", str(replica_of)]
        return cmd + [str(a) for a in extra_args]

    def ready(server):
        with server.client(socket_timeout=1.0) as client:
            if not client.ping():
                return False
            if replica_of is None:
                return True
            return client.info("replication").get("master_link_status") == "up"

    server = RedisProcess(tmpdir, command, ready, "redis-server")
    return server.start(timeout)


def start_sentinel(tmpdir, primary_port, master_name, quorum=1, down_after_ms=1000,
                   failover_timeout_ms=3000, timeout=STARTUP_TIMEOUT):
    """A redis-sentinel on 127.0.0.1 monitoring the primary on 127.0.0.1:primary_port.

    Its sentinel.conf (rewritten by Sentinel itself) lives in `tmpdir`.
    down_after_ms and failover_timeout_ms are short so a failover test ends
    in seconds. Returns once it names the primary for master_name.
    """
    sentinel_path = redis_sentinel_path()
    os.makedirs(tmpdir, exist_ok=True)
    config = os.path.join(tmpdir, "sentinel.conf")

    def command(port):
        if not os.path.exists(config):
            with open(config, "w", encoding="utf-8") as f:
                f.write("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"
                        "logfile redis.log\n"
                        "sentinel monitor %s 127.0.0.1 %d %d\n"
                        "sentinel down-after-milliseconds %s %d\n"
                        "sentinel failover-timeout %s %d\n" % (
                            port, tmpdir, master_name, primary_port, quorum,
                            master_name, down_after_ms, master_name, failover_timeout_ms))
        return [sentinel_path, config]

    def ready(server):
        with server.client(socket_timeout=1.0) as client:
            answer = client.execute_command("SENTINEL", "get-master-addr-by-name", master_name)
        return answer is not None and len(answer) == 2

    server = RedisProcess(tmpdir, command, ready, "redis-sentinel")
    return server.start(timeout)
