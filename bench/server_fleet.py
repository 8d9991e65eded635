# SPDX-License-Identifier: MIT
"""make bench, tether-server as a fleet: the redis store against the file store.

Side by side in one run, on this machine:

  acknowledged msgs/s  tether-fleet sends M numbered tether.v1 messages per
                       device and ends when the server acknowledged every one;
                       one device, then 1,000 devices; the server's CPU time
                       (and Redis's) per acknowledged message from /proc
  failover             two instances on one Redis, tether-cat with both as
                       endpoints producing at a steady rate; the serving
                       instance is SIGKILLed: the time from the kill to the
                       device online on the other instance, and the loss and
                       duplicates counted from Redis
  idle devices         K devices connected and silent: the server's resident
                       memory per connection (VmRSS after - before) / K

The file store's data directory and Redis's AOF live on tmpfs (/dev/shm), so
the figures compare the stores, not the disk. Redis runs with appendfsync
everysec (its default) and the redis store with --redis-durability reply.

    /usr/bin/python3 bench/server_fleet.py --build-dir build/host [--smoke]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (puts tests/integration on sys.path)
import harness  # noqa: E402
import redis_harness  # noqa: E402
import resume_harness  # noqa: E402

TOKEN = "bench-fleet-token"
PREFIX = "tether"
FULL = {"one_device": 50000, "many": 1000, "many_messages": 100, "failovers": 3,
        "idle": 3000, "rate": 500}
SMOKE = {"one_device": 500, "many": 20, "many_messages": 10, "failovers": 1, "idle": 50,
         "rate": 200}


def cpu_seconds(pid):
    """utime + stime of a live process, from /proc/<pid>/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raise_fd_limit():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_server(build_dir, root, name, redis_port=None):
    data_dir = os.path.join(root, "server-" + name)
    os.makedirs(data_dir, exist_ok=True)
    tokens = os.path.join(root, "tokens")
    with open(tokens, "w") as f:
        f.write(TOKEN + "\n")
    extra = ["--max-connections", "100000", "--ping-interval-ms", "1000",
             "--ping-timeout-ms", "1000", "--ack-interval-ms", "10"]
    if redis_port is not None:
        extra += ["--store", "redis", "--redis", "127.0.0.1:%d" % redis_port,
                  "--instance-id", name]
    raise_fd_limit()  # inherited by the children
    return resume_harness.Server(build_dir, data_dir, tokens, extra).start()


def fleet(build_dir, server, clients, messages, hold=False, timeout_s=120):
    cmd = [common.build_path(build_dir, "apps", "tether-fleet"), "--clients", str(clients),
           "--messages", str(messages), "--tether-v1", "--token", TOKEN,
           "--timeout-ms", str(int(timeout_s * 1000)),
           "ws://127.0.0.1:%d/v1" % server.port]
    if hold:
        return harness.start_process(cmd + ["--hold"], expect_port=False, name="tether-fleet")
    return common.run_measured(cmd, timeout=timeout_s + 30)


def redis_tally(port):
    import redis
    client = redis.Redis(host="127.0.0.1", port=port)
    total = 0
    for session in client.smembers("%s:sessions" % PREFIX):
        total += client.xlen("%s:{%s}:up" % (PREFIX, session.decode()))
    return total


def throughput(build_dir, root, settings):
    results = {}
    for store in ("file", "redis"):
        redis_server = None
        if store == "redis":
            redis_server = redis_harness.start_redis(os.path.join(root, "redis-" + store),
                                                     appendonly=True,
                                                     extra_args=["--appendfsync", "everysec"])
        server = start_server(build_dir, root, "tp-" + store,
                              redis_server.port if redis_server else None)
        try:
            for label, clients, messages in (
                    ("1 device", 1, settings["one_device"]),
                    ("%d devices" % settings["many"], settings["many"],
                     settings["many_messages"])):
                server_cpu = cpu_seconds(server.process.pid)
                redis_cpu = cpu_seconds(redis_server.process.pid) if redis_server else 0.0
                run = fleet(build_dir, server, clients, messages).check()
                server_cpu = cpu_seconds(server.process.pid) - server_cpu
                redis_cpu = (cpu_seconds(redis_server.process.pid) - redis_cpu) if redis_server else 0.0
                count = clients * messages
                # tether-fleet's own clock: from its first connect to the last
                # ACK, without its process start.
                summary = harness.parse_logfmt(run.stdout.strip().splitlines()[-1])
                seconds = max(int(summary["elapsed_ms"]), 1) / 1000.0
                results[(store, label)] = {
                    "messages": count, "wall_s": seconds, "rate": count / seconds,
                    "server_us": server_cpu * 1e6 / count, "redis_us": redis_cpu * 1e6 / count}
            if redis_server is not None:
                results[("redis", "tally")] = redis_tally(redis_server.port)
        finally:
            server.stop()
            if redis_server is not None:
                redis_server.stop()
    return results


def failover(build_dir, root, settings):
    runs = []
    for k in range(settings["failovers"]):
        directory = os.path.join(root, "failover-%d" % k)
        os.makedirs(directory)
        redis_server = redis_harness.start_redis(os.path.join(directory, "redis"),
                                                 appendonly=True)
        servers = [start_server(build_dir, directory, "instance-%d" % i, redis_server.port)
                   for i in range(2)]
        token_file = os.path.join(directory, "device-token")
        with open(token_file, "w") as f:
            f.write(TOKEN + "\n")
        device = resume_harness.Device(build_dir, servers[0], os.path.join(directory, "state"),
                                       token_file, device="bench-failover")
        device.cmd = device.cmd[:-1] + ["ws://127.0.0.1:%d/v1" % s.port for s in servers]
        try:
            device.start()
            harness.wait_for(lambda: online(device) >= 1, timeout=10)
            device.produce("m", rate_per_s=settings["rate"])
            time.sleep(1.0)
            killed = time.monotonic()
            servers[0].kill()
            harness.wait_for(lambda: online(device) >= 2, timeout=30, interval=0.002)
            seconds = time.monotonic() - killed
            time.sleep(1.0)
            device.finish(timeout=60)
            stored, duplicates, lost = verdict(redis_server.port, device)
            runs.append({"seconds": seconds, "stored": stored, "duplicates": duplicates,
                         "lost": lost, "produced": len(device.produced)})
        finally:
            if device.process is not None:
                device.process.stop()
            for server in servers:
                server.stop()
            redis_server.stop()
    return runs


def online(device):
    return sum(1 for e in device.log() if e.get("state") == "online")


def verdict(port, device):
    import redis
    client = redis.Redis(host="127.0.0.1", port=port)
    session = resume_harness.session_id("tether", "bench-failover")
    texts = [f[b"payload"].decode() for _, f in
             client.xrange("%s:{%s}:up" % (PREFIX, session), "-", "+")]
    duplicates = len(texts) - len(set(texts))
    lost = len(set(device.produced) - set(texts))
    return len(texts), duplicates, lost


def idle(build_dir, root, settings):
    results = {}
    for store in ("file", "redis"):
        redis_server = None
        if store == "redis":
            redis_server = redis_harness.start_redis(os.path.join(root, "idle-redis"),
                                                     appendonly=True)
        server = start_server(build_dir, root, "idle-" + store,
                              redis_server.port if redis_server else None)
        held = None
        try:
            time.sleep(0.3)
            before = rss_kib(server.process.pid)
            held = fleet(build_dir, server, settings["idle"], 1, hold=True)
            held.wait_for_line(r"all_online n=%d" % settings["idle"], timeout=120)
            time.sleep(1.0)
            after = rss_kib(server.process.pid)
            results[store] = {"devices": settings["idle"], "before_kib": before,
                              "after_kib": after,
                              "per_connection_kib": (after - before) / settings["idle"]}
        finally:
            if held is not None:
                held.stop()
            server.stop()
            if redis_server is not None:
                redis_server.stop()
    return results


def fmt_rate(rate):
    return "{:,.0f}".format(rate)


def run(build_dir, work_dir, docs_dir, smoke=False):
    del docs_dir
    settings = SMOKE if smoke else FULL
    os.makedirs(work_dir, exist_ok=True)
    root = tempfile.mkdtemp(prefix="tether-server-fleet-", dir="/dev/shm")
    try:
        tp = throughput(build_dir, root, settings)
        fo = failover(build_dir, root, settings)
        idle_results = idle(build_dir, root, settings)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    console = []
    md = ["## tether-server: the redis store against the file store", "",
          "bench/server_fleet.py: tether-fleet as the devices (100-byte class messages, "
          "acknowledged by the server), one instance per store; data and AOF on tmpfs; "
          "Redis appendfsync everysec, `--redis-durability reply`.", "",
          "| workload | file: acked msgs/s | redis: acked msgs/s | redis / file | "
          "server CPU µs/msg file | server CPU µs/msg redis | redis-server CPU µs/msg |",
          "|---|---|---|---|---|---|---|"]
    goals = []
    for label in ("1 device", "%d devices" % settings["many"]):
        f, r = tp[("file", label)], tp[("redis", label)]
        ratio = r["rate"] / f["rate"] if f["rate"] else float("nan")
        md.append("| %s × %d msgs | %s | %s | %.2f× | %.1f | %.1f | %.1f |" % (
            label, f["messages"] // (1 if label == "1 device" else settings["many"]),
            fmt_rate(f["rate"]), fmt_rate(r["rate"]), ratio, f["server_us"], r["server_us"],
            r["redis_us"]))
        console.append("  %-14s file %10s/s  redis %10s/s  (%.2f×)  server µs/msg %.1f vs %.1f,"
                       " redis-server %.1f" % (label, fmt_rate(f["rate"]), fmt_rate(r["rate"]),
                                               ratio, f["server_us"], r["server_us"],
                                               r["redis_us"]))
    expected = settings["one_device"] + settings["many"] * settings["many_messages"]
    md += ["", "Redis held %d uplink entries after both redis runs (%d sent)." % (
        tp[("redis", "tally")], expected), ""]
    goals.append({"goal": "redis store: every acknowledged message is in Redis",
                  "measured": "%d of %d" % (tp[("redis", "tally")], expected),
                  "met": tp[("redis", "tally")] == expected})

    bound = 0.5 + 0.8 + 1.0  # tether-cat's pong timeout + its backoff cap + 1 s
    md += ["| failover run | kill → online on the other instance | produced | stored | "
           "lost | duplicated |", "|---|---|---|---|---|---|"]
    for k, f in enumerate(fo):
        md.append("| %d | %.0f ms | %d | %d | %d | %d |" % (
            k + 1, f["seconds"] * 1000, f["produced"], f["stored"], f["lost"], f["duplicates"]))
        console.append("  failover %d: %.0f ms, produced %d stored %d lost %d duplicated %d" % (
            k + 1, f["seconds"] * 1000, f["produced"], f["stored"], f["lost"], f["duplicates"]))
    worst = max(f["seconds"] for f in fo)
    goals.append({"goal": "failover <= pong timeout + one backoff step + 1 s = %.1f s, "
                          "0 lost, 0 duplicated" % bound,
                  "measured": "worst %.0f ms; lost %d, duplicated %d" % (
                      worst * 1000, sum(f["lost"] for f in fo),
                      sum(f["duplicates"] for f in fo)),
                  "met": worst <= bound and all(f["lost"] == 0 and f["duplicates"] == 0
                                                for f in fo)})
    md += ["", "| idle devices | store | server RSS before | after | per connection |",
           "|---|---|---|---|---|"]
    for store, i in idle_results.items():
        md.append("| %d | %s | %d KiB | %d KiB | %.1f KiB |" % (
            i["devices"], store, i["before_kib"], i["after_kib"], i["per_connection_kib"]))
        console.append("  idle %d devices, %s: %.1f KiB per connection" % (
            i["devices"], store, i["per_connection_kib"]))
    md.append("")
    return {"markdown": "\n".join(md), "console": console, "goals": goals,
            "results": {"throughput": tp, "failover": fo, "idle": idle_results}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(common.SOURCE_DIR, "build", "host"))
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--smoke", action="store_true")
    options = parser.parse_args()
    result = run(os.path.abspath(options.build_dir),
                 options.work_dir or tempfile.mkdtemp(prefix="tether-bench-"), None,
                 smoke=options.smoke)
    print("\n".join(result["console"]))
    for goal in result["goals"]:
        print("goal: %s: %s (%s)" % (goal["goal"], goal["measured"],
                                     {True: "met", False: "NOT met", None: "n/a"}[goal["met"]]))
    print(result["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
