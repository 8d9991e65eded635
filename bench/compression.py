# SPDX-License-Identifier: MIT
"""make bench, part "compression": bytes on the wire and CPU per telemetry
message with and without permessage-deflate (bench/deflate/deflate_bench.cpp)."""

import os
import subprocess

FULL = 20000
SMOKE = 500


def parse(line):
    return dict(field.split("=", 1) for field in line.split() if "=" in field)


def run(build_dir, work_dir, docs_dir, smoke=False):
    os.makedirs(work_dir, exist_ok=True)
    program = os.path.join(build_dir, "bench", "deflate", "tether-bench-deflate")
    count = SMOKE if smoke else FULL
    if not os.path.exists(program):  # a build with TETHER_DEFLATE=OFF
        note = "## Compression\n\nNot measured: built without permessage-deflate (TETHER_DEFLATE=OFF).\n"
        return {"console": ["  not built (TETHER_DEFLATE=OFF)"], "markdown": note, "goals": []}
    output = subprocess.run([program, "--messages=%d" % count], capture_output=True, text=True,
                            timeout=300, check=True).stdout.splitlines()
    rows = [parse(line) for line in output if line.startswith("mode=")]
    payload = [parse(line) for line in output if line.startswith("payload_bytes")][0]
    plain = rows[0]
    md = ["## Compression: permessage-deflate per telemetry message", "",
          "`tools/bench --only compression` (bench/deflate/deflate_bench.cpp). %d JSON telemetry "
          "messages (%s payload bytes each on average, values changing every message) queued "
          "through a client WsStream, one write per message; bytes are what reaches the transport "
          "(frame header and mask included); CPU is process CPU time per message for framing, "
          "masking and compression. The zlib arena is the memory per connection "
          "(docs/ARCHITECTURE.md)." % (count, payload["payload_bytes_per_message"]), "",
          "| mode | window bits | arena per connection | bytes per message | vs. plain "
          "| CPU ns per message | vs. plain |", "|---|---:|---:|---:|---:|---:|---:|",
          "| uncompressed | — | — | %s | 1.00 | %s | 1.0 |" % (
              plain["bytes_per_message"], plain["cpu_ns_per_message"])]
    console = ["  plain: %s bytes/message, %s ns CPU/message" % (
        plain["bytes_per_message"], plain["cpu_ns_per_message"])]
    goals = []
    for row in rows[1:]:
        name = ("deflate, context takeover" if row["mode"] == "deflate_context_takeover"
                else "deflate, no context takeover")
        md.append("| %s | %s | %d KiB | %s | %s | %s | %s |" % (
            name, row["window_bits"], int(row["arena_bytes"]) // 1024, row["bytes_per_message"],
            row["bytes_ratio"], row["cpu_ns_per_message"], row["cpu_ratio"]))
        console.append("  %s, %s bits: %s bytes/message (x%s), %s ns CPU/message (x%s)" % (
            name, row["window_bits"], row["bytes_per_message"], row["bytes_ratio"],
            row["cpu_ns_per_message"], row["cpu_ratio"]))
    takeover = [r for r in rows if r["mode"] == "deflate_context_takeover" and
                r["window_bits"] == "12"][0]
    goals.append({"goal": "permessage-deflate (12-bit window, context takeover) at most half "
                          "the bytes of uncompressed telemetry",
                  "measured": "x%s" % takeover["bytes_ratio"],
                  "met": float(takeover["bytes_ratio"]) <= 0.5})
    md.append("")
    return {"console": console, "markdown": "\n".join(md), "goals": goals}
