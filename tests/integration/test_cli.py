#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The command-line conventions every program follows (apps/common/cli.h):
--version, -h/--help, --opt=value beside --opt value, one wording for an
unknown option and for a missing value, exit code 2 for bad usage.

Usage: /usr/bin/python3 test_cli.py --source-dir ROOT --build-dir DIR --version V [TestClass]
"""

import argparse
import os
import sys
import unittest

ARGS = argparse.ArgumentParser(add_help=False)
ARGS.add_argument("--source-dir", required=True)
ARGS.add_argument("--build-dir", required=True)
ARGS.add_argument("--version", required=True)
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
sys.path.insert(0, os.path.join(OPTIONS.source_dir, "tests", "integration"))

import harness  # noqa: E402

EXAMPLE = os.path.join(OPTIONS.source_dir, "packaging", "tetherd.example.json")

# Each program, one of its options that takes a value, a bad value for it
# that the program refuses with exit code 2 once the value reached it (so
# --opt=value is seen to carry the value), and what else that needs on the
# command line. A new program (tetherctl) adds a row.
PROGRAMS = [
    ("tetherd", "endpoint", "ftp://x/", ["--check-config", EXAMPLE]),
    ("tether-cat", "max-retries", "many", []),
    ("tether-server", "listen", "nowhere", []),
    ("tether-fleet", "clients", "many", []),
    ("tetherctl", "timeout", "soon", ["flush"]),
]


def binary(name):
    return os.path.join(OPTIONS.build_dir, "apps", name)


class Conventions(unittest.TestCase):
    def each(self):
        for name, option, bad, extra in PROGRAMS:
            path = binary(name)
            if os.path.exists(path):
                yield name, path, option, bad, extra

    def test_version_prints_the_project_version(self):
        for name, path, _, _, _ in self.each():
            result = harness.run([path, "--version"])
            self.assertEqual(result.returncode, 0, name)
            self.assertEqual(result.stdout.decode(), "%s %s\n" % (name, OPTIONS.version))

    def test_help_and_h_print_the_same_usage(self):
        for name, path, option, _, _ in self.each():
            long_help = harness.run([path, "--help"])
            short_help = harness.run([path, "-h"])
            self.assertEqual(long_help.returncode, 0, name)
            self.assertEqual(short_help.returncode, 0, name)
            self.assertEqual(long_help.stdout, short_help.stdout, name)
            text = long_help.stdout.decode()
            for word in ("--version", "--help", "--" + option, "=VALUE"):
                self.assertIn(word, text, name)

    def test_an_unknown_option_has_one_wording_and_exit_code_2(self):
        for name, path, _, _, _ in self.each():
            for arg in ("--no-such-option", "--no-such-option=1", "-q"):
                result = harness.run([path, arg])
                self.assertEqual(result.returncode, 2, (name, arg))
                self.assertEqual(result.stderr.decode(),
                                 "%s: unknown option '%s' (see --help)\n" % (name, arg))

    def test_a_missing_value_has_one_wording_and_exit_code_2(self):
        for name, path, option, _, _ in self.each():
            result = harness.run([path, "--" + option])
            self.assertEqual(result.returncode, 2, name)
            self.assertEqual(result.stderr.decode(),
                             "%s: option '--%s' needs a value (see --help)\n" % (name, option))

    def test_a_program_without_positional_arguments_names_the_one_given(self):
        for name in ("tetherd", "tether-server"):
            result = harness.run([binary(name), "surplus"])
            self.assertEqual(result.returncode, 2, name)
            self.assertEqual(result.stderr.decode(),
                             "%s: unexpected argument 'surplus' (see --help)\n" % name)

    def test_equals_carries_the_value_like_a_separate_argument(self):
        for name, path, option, bad, extra in self.each():
            spaced = harness.run([path] + extra + ["--" + option, bad])
            joined = harness.run([path] + extra + ["--%s=%s" % (option, bad)])
            self.assertEqual(spaced.returncode, 2, name)
            self.assertEqual(joined.returncode, 2, name)
            for other in ("needs a value", "unknown option", "takes no value"):
                self.assertNotIn(other, joined.stderr.decode(), name)
            self.assertEqual(spaced.stderr, joined.stderr, name)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV)
