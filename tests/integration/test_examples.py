#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The examples in examples/ run against a real tether-server, through a
server kill and restart, and deliver everything exactly once.

Usage: /usr/bin/python3 test_examples.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import argparse
import os
import sys
import time
import unittest

ARGS = argparse.ArgumentParser(add_help=False)
ARGS.add_argument("--source-dir", required=True)
ARGS.add_argument("--build-dir", required=True)
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
sys.path.insert(0, os.path.join(OPTIONS.source_dir, "tests", "integration"))

import harness  # noqa: E402
import resume_harness as rh  # noqa: E402

BUILD = OPTIONS.build_dir


class Forever(unittest.TestCase):
    def test_every_reading_arrives_once_through_a_server_restart(self):
        tmp = harness.TempDir("example-forever-")
        store = tmp.path("store")
        os.makedirs(store)
        tokens = tmp.path("tokens")
        with open(tokens, "w") as f:
            f.write("token-1\n")
        token_file = tmp.path("device-token")
        with open(token_file, "w") as f:
            f.write("token-1\n")
        server = rh.Server(BUILD, store, tokens).start()
        count = 400
        example = harness.start_process(
            [os.path.join(BUILD, "examples", "tether-example-forever"),
             "ws://127.0.0.1:%d/v1" % server.port, tmp.path("state"), token_file, str(count)],
            expect_port=False, name="forever")
        try:
            session = rh.session_id("tether", "forever-example")
            harness.wait_for(lambda: len(rh.uplink(store, session)) >= 50, timeout=20,
                             message="the first readings never arrived")
            self.assertIsNone(example.wait(0), "finished before the fault")
            self.assertLess(len(rh.uplink(store, session)), count)
            server.kill()
            time.sleep(0.5)  # readings pile up in the outbox and the spool meanwhile
            server.start()
            self.assertEqual(example.wait(60), 0, "the example did not finish")
        finally:
            example.stop()
            server.stop()
        stored = [payload.decode() for _, payload in rh.uplink(store, session)]
        self.assertEqual(stored, ["reading %d" % i for i in range(1, count + 1)])


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV)
