# SPDX-License-Identifier: MIT
"""make bench, device state: the bytes a device receives on reconnect to catch
up with its desired state, snapshot against increments (PROTOCOL.md 9.2).

A gateway's configuration as a cloud team would write it (about 1.3 KB of
compact JSON: sampling, thresholds, twelve sensors) is set as the desired
document; the device applies it and goes offline; a backend then makes N small
changes (one threshold and one sensor each). On reconnect the device reads
what the server sends until it has the newest version. Measured on the wire:
the desired messages' WebSocket frames (payload plus frame header), for N in
1, 3, 10, 30, 64, 100, against what the other choice would have cost:
N increments, or one snapshot. The server picks the increments while they are
smaller than the snapshot and while it holds them (the last 64 versions).

    /usr/bin/python3 bench/device_state.py --build-dir build/host [--smoke]
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402,F401  (puts tests/integration on sys.path)
import harness  # noqa: E402
import resume_harness  # noqa: E402

TOKEN = "bench-state-token"
DEVICE = "bench-gw"
FULL = [1, 3, 10, 30, 64, 100]
SMOKE = [1, 100]

BASE_DESIRED = {
    "sampling": {"interval_ms": 1000, "batch": 16, "jitter_ms": 50},
    "thresholds": {"temperature_c": {"warn": 70, "crit": 85},
                   "humidity_pct": {"warn": 80, "crit": 95},
                   "vibration_g": {"warn": 1.5, "crit": 3.0}},
    "sensors": {"s%02d" % i: {"enabled": True, "address": "0x%02x" % (0x40 + i),
                              "calibration": [1.0, 0.0]} for i in range(12)},
    "uplink": {"compress": False, "max_batch_bytes": 32768},
    "log_level": "info",
}


def changed(k):
    return {"thresholds": {"temperature_c": {"warn": 60 + k % 20}},
            "sensors": {"s%02d" % (k % 12): {"enabled": k % 2 == 0}}}


def compact(value):
    return json.dumps(value, separators=(",", ":"))


def frame_bytes(payload_size):
    """A server-to-client (unmasked) WebSocket frame of one text message."""
    if payload_size < 126:
        return 2 + payload_size
    if payload_size < 65536:
        return 4 + payload_size
    return 10 + payload_size


async def catch_up(port, session, applied, version_counter):
    """Connects as the device having applied `applied`; returns the desired
    messages received until the newest version."""
    import websockets  # Debian's python3-websockets
    hello = {"type": "hello", "session": session, "version": version_counter, "device": DEVICE,
             "last_downlink": 0, "oldest_uplink": 1, "next_uplink": 1,
             "features": ["state"], "desired_version": applied}
    received = []
    async with websockets.connect("ws://127.0.0.1:%d/v1" % port, subprotocols=["tether.v1"],
                                  extra_headers={"Authorization": "Bearer " + TOKEN},
                                  max_size=1 << 20) as ws:
        await ws.send(json.dumps(hello))
        while True:
            try:
                message = await asyncio.wait_for(ws.recv(), timeout=1.0)
            except asyncio.TimeoutError:
                return received
            if isinstance(message, str) and json.loads(message)["type"] == "desired":
                received.append(message)
                parsed = json.loads(message)
                await ws.send(json.dumps({"type": "applied", "version": parsed["version"]}))


def run(build_dir, work_dir, docs_dir, smoke=False):
    os.makedirs(work_dir, exist_ok=True)
    data_dir = tempfile.mkdtemp(prefix="state-", dir=work_dir)
    tokens = os.path.join(work_dir, "tokens")
    with open(tokens, "w") as f:
        f.write(TOKEN + "\n")
    server = resume_harness.Server(build_dir, data_dir, tokens).start()
    session = resume_harness.session_id("tether", DEVICE)
    snapshot_size = len(compact(BASE_DESIRED))
    rows = []
    try:
        counter = 1
        asyncio.run(catch_up(server.port, session, 0, counter))  # the session exists now

        def set_desired(patch):
            reply = server.admin("POST", "/sessions/%s/desired" % session,
                                 compact(patch).encode())
            return json.loads(reply)["version"]

        version = set_desired(BASE_DESIRED)
        for n in (SMOKE if smoke else FULL):
            applied = version  # the device is up to date, then goes offline
            increments = 0
            for k in range(n):
                patch = changed(k + n)
                version = set_desired(patch)
                increments += frame_bytes(len(compact(
                    {"type": "desired", "version": version, "snapshot": False, "patch": patch})))
            final = json.loads(server.admin("GET", "/sessions/%s/state" % session))["desired"]
            snapshot = frame_bytes(len(compact(
                {"type": "desired", "version": version, "snapshot": True, "state": final})))
            counter += 1
            received = asyncio.run(catch_up(server.port, session, applied, counter))
            wire = sum(frame_bytes(len(m.encode())) for m in received)
            kinds = [json.loads(m)["snapshot"] for m in received]
            sent = ("1 snapshot" if kinds == [True] else
                    "%d increment%s" % (len(kinds), "" if len(kinds) == 1 else "s"))
            correct = json.loads(received[-1])["version"] == version if received else False
            rows.append({"n": n, "sent": sent, "wire": wire, "increments": increments,
                         "snapshot": snapshot, "correct": correct})
    finally:
        server.stop()

    md = ["## Device state: catching up after an outage", "",
          "`tools/bench --only state` (bench/device_state.py). A realistic desired document "
          "(%d bytes of compact JSON: sampling, thresholds, 12 sensors) is applied, the device "
          "goes offline, a backend makes N changes of one threshold and one sensor each; on "
          "reconnect the server sends the increments or one snapshot (PROTOCOL.md 9.2). Bytes "
          "are WebSocket frames as received (payload + frame header)." % snapshot_size, "",
          "| changes while offline | the server sent | bytes on the wire | N increments would be "
          "| one snapshot would be | newest version reached |",
          "|---:|---|---:|---:|---:|---|"]
    console = []
    for row in rows:
        md.append("| %d | %s | %s | %s | %s | %s |" % (
            row["n"], row["sent"], "{:,}".format(row["wire"]), "{:,}".format(row["increments"]),
            "{:,}".format(row["snapshot"]), "yes" if row["correct"] else "**no**"))
        console.append("  %3d changes: %-14s %6d bytes (increments %6d, snapshot %6d)%s" % (
            row["n"], row["sent"], row["wire"], row["increments"], row["snapshot"],
            "" if row["correct"] else "  NOT CAUGHT UP"))
    best = all(row["wire"] <= min(row["increments"], row["snapshot"]) + 8 and row["correct"]
               for row in rows)
    goals = [{"goal": "device state: a reconnect costs no more than the cheaper of increments "
                      "and snapshot, and reaches the newest version",
              "measured": ", ".join("%d changes: %s bytes" % (r["n"], "{:,}".format(r["wire"]))
                                    for r in rows),
              "met": best}]
    return {"markdown": "\n".join(md), "console": console, "goals": goals}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build/host")
    parser.add_argument("--smoke", action="store_true")
    options = parser.parse_args()
    work = tempfile.mkdtemp(prefix="tether-bench-state-")
    result = run(os.path.abspath(options.build_dir), work, None, smoke=options.smoke)
    print("\n".join(result["console"]))
    print(result["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
