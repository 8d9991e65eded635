#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Every tracked source file starts with an SPDX licence line.

    check_spdx.py --source-dir DIR          list the files without it, exit 1 if any
    check_spdx.py --source-dir DIR --fix    add the line where it is missing

Source files are what git tracks as C and C++ sources and headers, JavaScript,
CMake files (CMakeLists.txt, *.cmake, *.cmake.in), Python, shell, the Makefile
and the scripts in tools/ and .ci/. The line comes first, or second after a
shebang line. JSON, Markdown, the fuzz corpora, units, configuration files and
generated data carry none. Prints "SKIPPED" when the tree is not a git checkout
(a source tarball has no list of tracked files).
"""

import argparse
import os
import re
import subprocess
import sys

LICENSE = "MIT"
TAG = "SPDX-License-Identifier: " + LICENSE

# (pattern over the path relative to the top, comment syntax); first match wins.
EXCLUDED = [re.compile(r"^tests/fuzz/corpus/")]
KINDS = [
    (re.compile(r"\.(c|cc|cpp|h|hpp|js)$"), "// "),
    (re.compile(r"(^|/)CMakeLists\.txt$|\.cmake(\.in)?$"), "# "),
    (re.compile(r"\.(py|sh)$"), "# "),
    (re.compile(r"(^|/)Makefile$"), "# "),
    (re.compile(r"^(tools|\.ci)/[^/.]+$"), "# "),
]


def comment_prefix(path):
    if any(pattern.search(path) for pattern in EXCLUDED):
        return None
    for pattern, prefix in KINDS:
        if pattern.search(path):
            return prefix
    return None


def tracked_files(source_dir):
    result = subprocess.run(["git", "-C", source_dir, "ls-files", "-z"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if result.returncode != 0:
        return None
    return [p for p in result.stdout.decode().split("\0") if p]


def has_tag(lines):
    head = lines[:2] if lines and lines[0].startswith("#!") else lines[:1]
    return any(TAG in line for line in head)


def add_tag(path, prefix):
    with open(path, "rb") as f:
        data = f.read().decode()
    lines = data.splitlines(keepends=True)
    at = 1 if lines and lines[0].startswith("#!") else 0
    lines.insert(at, prefix + TAG + "\n")
    with open(path, "wb") as f:
        f.write("".join(lines).encode())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--fix", action="store_true")
    args = parser.parse_args()
    files = tracked_files(args.source_dir)
    if files is None:
        print("SKIPPED: %s is not a git checkout" % args.source_dir)
        return 0
    checked = 0
    missing = []
    for relative in sorted(files):
        prefix = comment_prefix(relative)
        path = os.path.join(args.source_dir, relative)
        if prefix is None or not os.path.isfile(path):
            continue
        checked += 1
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        if has_tag(lines):
            continue
        if args.fix:
            add_tag(path, prefix)
        missing.append(relative)
    if args.fix:
        print("spdx: added '%s' to %d of %d source files" % (TAG, len(missing), checked))
        return 0
    if missing:
        print("spdx: %d of %d source files lack '%s' on their first line (second "
              "after a shebang); add it or run %s --source-dir %s --fix:"
              % (len(missing), checked, TAG, sys.argv[0], args.source_dir))
        for relative in missing:
            print("  " + relative)
        return 1
    print("spdx: %d source files carry '%s'" % (checked, TAG))
    return 0


if __name__ == "__main__":
    sys.exit(main())
