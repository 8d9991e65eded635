#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tetherd through real TLS against tether-server: a certificate that does not
verify is reported with why (unknown CA, name mismatch, expired, pin mismatch)
in the log and in status.json; a TLS file that cannot be read is reported with
its path and errno's text.

Usage: /usr/bin/python3 test_tetherd_tls.py --source-dir ROOT --build-dir DIR [TestClass]
"""

import argparse
import json
import os
import re
import sys
import unittest

ARGS = argparse.ArgumentParser(add_help=False)
ARGS.add_argument("--source-dir", required=True)
ARGS.add_argument("--build-dir", required=True)
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
sys.path.insert(0, os.path.join(OPTIONS.source_dir, "tests", "integration"))

import harness  # noqa: E402
import resume_harness as rh  # noqa: E402

TETHERD = os.path.join(OPTIONS.build_dir, "apps", "tetherd")
CERTS = None


def certs():
    global CERTS
    if CERTS is None:
        CERTS = harness.make_certs(harness.TempDir("tetherd-tls-pki-").path("pki"))
    return CERTS


def write_config(tmp, endpoint, tls):
    token = tmp.path("token")
    with open(token, "w") as f:
        f.write("t-1\n")
    config = {
        "endpoints": [endpoint],
        "credentials": {"token_file": token},
        "session": {"user": "tether", "device_id": "gw-tls"},
        "backoff": {"initial_ms": 200, "max_ms": 400, "jitter": "none"},
        "state_dir": tmp.path("state"),
        "run_dir": tmp.path("run"),
        "inputs": {"health": {"enabled": False}},
        "downlink": {"output": "stdout"},
        "tls": tls,
        "log": {"level": "info"},
    }
    path = tmp.path("tetherd.json")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def tls_server(tmp, cert, key):
    """tether-server with a wss:// listener presenting cert; returns (server, tls port)."""
    tokens = tmp.path("tokens")
    with open(tokens, "w") as f:
        f.write("t-1 tether gw-tls\n")
    server = rh.Server(OPTIONS.build_dir, tmp.path("data"), tokens,
                       extra=["--tls-listen", "127.0.0.1:0", "--cert", cert, "--key", key])
    server.start()
    port = int(re.search(r"tls=(\d+)", server.process.stdout()).group(1))
    return server, port


class CertificateReasons(unittest.TestCase):
    def check(self, name, cert, key, tls, reason):
        tmp = harness.TempDir("tetherd-tls-%s-" % name)
        server, port = tls_server(tmp, cert, key)
        try:
            config = write_config(tmp, "wss://localhost:%d/v1" % port, tls)
            status_path = os.path.join(tmp.path("run"), "status.json")
            with harness.start_process([TETHERD, "--config", config], expect_port=False,
                                       name="tetherd") as tetherd:
                def failed():
                    for line in tetherd.stderr().splitlines():
                        event = harness.parse_logfmt(line)
                        if event.get("state") == "waiting_to_retry":
                            return event
                    return None
                harness.wait_for(failed, timeout=15, message="no failed attempt")
                event = failed()
                self.assertEqual(event["reason"], "tls_certificate_invalid")
                self.assertEqual(event["level"], "warn")
                self.assertIn("certificate=" + reason, event["msg"])
                for other in ("unknown_ca", "name_mismatch", "expired", "pin_mismatch"):
                    if other != reason:
                        self.assertNotIn("certificate=" + other, tetherd.stderr())

                def status():
                    try:
                        with open(status_path) as f:
                            return json.load(f)
                    except (OSError, ValueError):
                        return None
                harness.wait_for(lambda: (status() or {}).get("reason") ==
                                 "tls_certificate_invalid", timeout=10)
                self.assertEqual(status()["detail"],
                                 "tls=certificate_invalid certificate=" + reason)
        finally:
            server.stop()

    def test_a_certificate_of_an_unknown_ca(self):
        c = certs()
        self.check("unknown-ca", c.server_chain, c.server_key, {"ca_file": c.other_ca},
                   "unknown_ca")

    def test_a_certificate_for_another_name(self):
        c = certs()
        self.check("wrong-name", c.wrong, c.wrong_key, {"ca_file": c.ca}, "name_mismatch")

    def test_an_expired_certificate(self):
        c = certs()
        self.check("expired", c.expired, c.expired_key, {"ca_file": c.ca}, "expired")

    def test_a_public_key_that_is_not_the_pin(self):
        c = certs()
        pin = c.server_pin_hex
        wrong_pin = ("0" if pin[0] != "0" else "1") + pin[1:]
        self.check("pin", c.server_chain, c.server_key,
                   {"ca_file": c.ca, "pin_sha256": wrong_pin}, "pin_mismatch")

    def test_the_right_certificate_goes_online(self):
        # The same set-up with nothing wrong connects: the failures above are
        # the certificate's, not the harness's.
        c = certs()
        tmp = harness.TempDir("tetherd-tls-ok-")
        server, port = tls_server(tmp, c.server_chain, c.server_key)
        try:
            config = write_config(tmp, "wss://localhost:%d/v1" % port,
                                  {"ca_file": c.ca, "pin_sha256": c.server_pin_hex})
            with harness.start_process([TETHERD, "--config", config], expect_port=False,
                                       name="tetherd") as tetherd:
                harness.wait_for(lambda: "state=online" in tetherd.stderr(), timeout=15,
                                 message="tetherd did not go online")
        finally:
            server.stop()


class MissingFiles(unittest.TestCase):
    def test_each_tls_file_that_cannot_be_read_is_named_with_errno(self):
        c = certs()
        tmp = harness.TempDir("tetherd-tls-files-")
        missing = tmp.path("absent.pem")
        cases = [
            ({"ca_file": missing}, "CA file %s: No such file or directory" % missing),
            ({"ca_file": c.ca, "cert_file": missing, "key_file": c.client_key},
             "client certificate %s: No such file or directory" % missing),
            ({"ca_file": c.ca, "cert_file": c.client, "key_file": missing},
             "client key %s: No such file or directory" % missing),
        ]
        for tls, expected in cases:
            config = write_config(tmp, "wss://localhost:1/v1", tls)
            result = harness.run([TETHERD, "--config", config], timeout=10)
            self.assertEqual(result.returncode, 1, result)
            text = result.stderr.decode()
            self.assertIn(expected, text)
            self.assertNotIn("read error", text.lower())
            self.assertEqual(text.count(expected), 1, text)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV)
