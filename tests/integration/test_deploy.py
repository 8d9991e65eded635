#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The install-to-running path of docs/DEPLOY.md, as far as a machine without
systemd as PID 1 allows.

Builds the Debian packages with cpack, unpacks tetherd and tether-server with
dpkg-deb -x into a scratch root, checks the units with systemd-analyze verify
(offline), then starts the unpacked tetherd the way tetherd.service does: the
ExecStart command line read from the unit, the unit's credentials copied as
LoadCredential= would (SetCredential= when the file is missing), the
environment systemd gives (STATE_DIRECTORY, RUNTIME_DIRECTORY,
CREDENTIALS_DIRECTORY), as an unprivileged uid and gid through setpriv, with
the packaged /etc/tether/tetherd.json. Against a tether-server on 127.0.0.1
with the test PKI, the default edited in the URL and the token only (plus
tls.ca_file, since the test CA is not in the system store) goes online; the
unedited default stops with one line naming what is missing.

Usage: test_deploy.py --source-dir ROOT --build-dir DIR --cpack CPACK [Deploy]
"""

import argparse
import codecs
import glob
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest

ARGS = argparse.ArgumentParser(add_help=False)
ARGS.add_argument("--source-dir", required=True)
ARGS.add_argument("--build-dir", required=True)
ARGS.add_argument("--cpack", required=True)
OPTIONS, UNITTEST_ARGV = ARGS.parse_known_args()
sys.path.insert(0, os.path.join(OPTIONS.source_dir, "tests", "integration"))

import harness  # noqa: E402

# The service's transient user, in systemd's DynamicUser= range (61184..65519).
UID = 61999
GID = 61999
TOKEN = "deploy-token-1"


def run(command, **kwargs):
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=240, **kwargs)
    if result.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (command, result.returncode, result.stdout))
    return result.stdout


def unit_entries(text, key):
    """The values of `key=` in a unit file, in order (comments skipped)."""
    return [m.group(1) for m in re.finditer(r"^%s=(.*)$" % re.escape(key), text, re.M)]


class Deploy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.scratch = tempfile.mkdtemp(prefix="tether-deploy-")
        os.chmod(cls.scratch, 0o755)  # the service's uid reads the unpacked files
        out = os.path.join(cls.scratch, "out")
        cls.root = os.path.join(cls.scratch, "root")
        os.makedirs(cls.root)
        run([OPTIONS.cpack, "-G", "DEB", "--config",
             os.path.join(OPTIONS.build_dir, "CPackConfig.cmake"), "-B", out])
        for deb in glob.glob(os.path.join(out, "*.deb")):
            package = run(["dpkg-deb", "-f", deb, "Package"]).strip()
            if package in ("tetherd", "tether-server"):
                run(["dpkg-deb", "-x", deb, cls.root])
        cls.certs = harness.make_certs(os.path.join(cls.scratch, "certs"))
        for path in glob.glob(os.path.join(cls.certs.dir, "*")):
            os.chmod(path, 0o644)
        os.chmod(cls.certs.dir, 0o755)
        with open(cls.path("lib/systemd/system/tetherd.service")) as f:
            cls.unit = f.read()
        with open(cls.path("/etc/tether/tetherd.json")) as f:
            cls.packaged = f.read()  # as shipped, before any test edits it
        cls.server = None

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.stop()
        shutil.rmtree(cls.scratch, ignore_errors=True)

    @classmethod
    def path(cls, absolute):
        return os.path.join(cls.root, absolute.lstrip("/"))

    @classmethod
    def start_server(cls):
        """The unpacked tether-server, wss:// on 127.0.0.1 with the test PKI."""
        if cls.server is None:
            data = os.path.join(cls.scratch, "server-data")
            tokens = os.path.join(cls.scratch, "server-tokens")
            with open(tokens, "w") as f:
                f.write("%s tether\n" % TOKEN)
            cmd = [cls.path("/usr/bin/tether-server"), "--tls-listen", "127.0.0.1:0",
                   "--cert", cls.certs.server_chain, "--key", cls.certs.server_key,
                   "--data-dir", data, "--tokens", tokens, "--admin", "127.0.0.1:0"]
            cls.server = harness.start_process(cmd, expect_port=False, name="tether-server")
            match = cls.server.wait_for_line(r"^listen=(\d+) tls=(\d+) admin=(\d+)\s*$")
            cls.tls_port = int(match.group(2))
        return cls.tls_port

    def service(self, name, config_text, token):
        """Starts tetherd as tetherd.service would; returns (process, dirs).

        config_text replaces /etc/tether/tetherd.json in the scratch root (None:
        the packaged file as it is); token is written to /etc/tether/token
        (None: no such file)."""
        work = os.path.join(self.scratch, name)
        os.makedirs(work)
        os.chmod(work, 0o755)
        etc = self.path("/etc/tether")
        config = os.path.join(etc, "tetherd.json")
        with open(config, "w") as f:
            f.write(self.packaged if config_text is None else config_text)
        token_file = os.path.join(etc, "token")
        if os.path.exists(token_file):
            os.unlink(token_file)
        if token is not None:
            with open(token_file, "w") as f:
                f.write(token + "\n")
            os.chmod(token_file, 0o600)  # root-only, as docs/DEPLOY.md says
        dirs = {
            "STATE_DIRECTORY": os.path.join(work, "var/lib/tether"),
            "RUNTIME_DIRECTORY": os.path.join(work, "run/tether"),
            "CREDENTIALS_DIRECTORY": os.path.join(work, "run/credentials/tetherd.service"),
        }
        modes = {"STATE_DIRECTORY": 0o700, "RUNTIME_DIRECTORY": 0o755,
                 "CREDENTIALS_DIRECTORY": 0o500}
        # What systemd does before ExecStart: the credentials (LoadCredential=
        # from the file, else the SetCredential= of the same id) ...
        credentials = dirs["CREDENTIALS_DIRECTORY"]
        os.makedirs(credentials)
        defaults = {}
        for entry in unit_entries(self.unit, "SetCredential"):
            ident, _, value = entry.partition(":")
            defaults[ident] = codecs.decode(value, "unicode_escape").encode()
        for entry in unit_entries(self.unit, "LoadCredential"):
            ident, _, source = entry.partition(":")
            target = os.path.join(credentials, ident)
            if os.path.exists(self.path(source)):
                shutil.copyfile(self.path(source), target)
            else:
                self.assertIn(ident, defaults, "LoadCredential=%s without a default: the unit "
                              "would fail with 243/CREDENTIALS" % entry)
                with open(target, "wb") as f:
                    f.write(defaults[ident])
            os.chmod(target, 0o400)
        # ... and the state and runtime directories, owned by the service's user.
        # Under DynamicUser=yes the state directory is systemd's symlink
        # var/lib/tether -> private/tether (private/ is reachable inside the
        # service's namespace, as here).
        private_state = os.path.join(work, "var/lib/private/tether")
        os.makedirs(private_state)
        os.symlink("private/tether", dirs["STATE_DIRECTORY"])
        for key, directory in dirs.items():
            os.makedirs(directory, exist_ok=True)
        if os.geteuid() == 0:
            for key, directory in dirs.items():
                for parent, _, files in os.walk(directory):
                    os.chown(parent, UID, GID)
                    for name in files:
                        os.chown(os.path.join(parent, name), UID, GID)
        for key, directory in dirs.items():
            os.chmod(directory, modes[key])
        exec_start = unit_entries(self.unit, "ExecStart")
        self.assertEqual(len(exec_start), 1)
        argv = [self.path(word) if word.startswith("/") else word
                for word in exec_start[0].split()]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        env.update(dirs)
        if os.geteuid() == 0:
            argv = ["setpriv", "--reuid=%d" % UID, "--regid=%d" % GID, "--clear-groups"] + argv
        process = harness.start_process(argv, expect_port=False, name="tetherd", env=env,
                                        cwd="/")
        return process, dirs

    def edited(self, url, ca_file):
        """The packaged default with only the edits docs/DEPLOY.md asks for."""
        config = json.loads(self.packaged)
        config["endpoints"] = [url]
        config["tls"]["ca_file"] = ca_file
        return json.dumps(config, indent=2) + "\n"

    def test_the_units_verify(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze not installed")
        for name, binary in (("tetherd", "/usr/bin/tetherd"),
                             ("tether-server", "/usr/bin/tether-server")):
            with open(self.path("/lib/systemd/system/%s.service" % name)) as f:
                text = f.read()
            # systemd-analyze checks that ExecStart's program exists: the unpacked one.
            copy = os.path.join(self.scratch, "%s.service" % name)
            with open(copy, "w") as f:
                f.write(text.replace(binary, self.path(binary)))
            result = subprocess.run(["systemd-analyze", "verify", "--man=no", copy],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    timeout=60)
            self.assertEqual(result.returncode, 0, result.stdout)
            self.assertEqual(result.stdout.strip(), "", "%s: %s" % (name, result.stdout))

    def test_the_maintainer_scripts_are_shellcheck_clean(self):
        if shutil.which("shellcheck") is None:
            self.skipTest("shellcheck not installed")
        scripts = sorted(glob.glob(os.path.join(OPTIONS.source_dir, "packaging", "debian",
                                                "*.p*")))
        self.assertEqual(len(scripts), 6, scripts)
        run(["shellcheck", "-s", "sh"] + scripts)
        for script in scripts:
            with open(script) as f:
                text = f.read()
            # Nothing is enabled or started on installation: the config needs URL and token.
            self.assertNotRegex(text, r"deb-systemd-invoke (start|restart) ")
            self.assertNotRegex(text, r"systemctl (enable|start)")

    def test_the_unit_hands_the_token_as_a_credential_with_a_default(self):
        loads = unit_entries(self.unit, "LoadCredential")
        self.assertIn("token:/etc/tether/token", loads)
        self.assertIn("token:\\n", unit_entries(self.unit, "SetCredential"))
        config = json.loads(self.packaged)
        self.assertEqual(config["credentials"]["token_file"], "credential:token")
        self.assertIn("2", unit_entries(self.unit, "RestartPreventExitStatus"))
        # The keys the comments name are the configuration's.
        for stale in ("watchdog_device", "status_led"):
            self.assertNotIn(stale, self.unit)

    def test_the_unedited_default_stops_with_one_line_naming_what_is_missing(self):
        process, _ = self.service("unedited", None, None)
        self.assertEqual(process.wait(10), 2, process.stderr())
        lines = process.stderr().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("endpoints[0]", lines[0])
        self.assertIn("example placeholder", lines[0])
        self.assertIn("/etc/tether/tetherd.json", lines[0])
        self.assertIn("credentials.token_file", lines[0])
        self.assertIn("/etc/tether/token", lines[0])

    def test_only_the_token_missing_is_named_alone(self):
        port = self.start_server()
        process, _ = self.service("no-token", self.edited(
            "wss://localhost:%d/v1" % port, self.certs.ca), None)
        self.assertEqual(process.wait(10), 2, process.stderr())
        lines = process.stderr().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertNotIn("endpoints", lines[0])
        self.assertIn("credentials.token_file", lines[0])
        self.assertIn("empty", lines[0])

    def test_the_default_with_url_and_token_goes_online(self):
        port = self.start_server()
        process, dirs = self.service("online", self.edited(
            "wss://localhost:%d/v1" % port, self.certs.ca), TOKEN)
        run_dir = dirs["RUNTIME_DIRECTORY"]
        status_path = os.path.join(run_dir, "status.json")

        def status():
            try:
                with open(status_path) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return {}
        try:
            harness.wait_for(lambda: status().get("state") == "online", timeout=20,
                             message="status.json never said online:\n%s" % process.stderr())
            self.assertTrue(process.alive())
            # Everything it writes is inside the directories systemd gives.
            socket_path = os.path.join(run_dir, "input.sock")
            harness.wait_for(lambda: os.path.exists(os.path.join(run_dir, "tether.prom")),
                             timeout=15, message="no metrics file in the runtime directory")
            info = os.stat(socket_path)
            self.assertTrue(stat.S_ISSOCK(info.st_mode))
            self.assertEqual(stat.S_IMODE(info.st_mode), 0o660)
            if os.geteuid() == 0:
                self.assertEqual(info.st_uid, UID)
            self.assertTrue(os.path.exists(os.path.join(dirs["STATE_DIRECTORY"], "state")) or
                            os.listdir(dirs["STATE_DIRECTORY"]))
            # An operator in the service's group asks the packaged tetherctl.
            tetherctl = [self.path("/usr/bin/tetherctl"), "--run-dir=" + run_dir, "status"]
            if os.geteuid() == 0:
                tetherctl = ["setpriv", "--reuid=65534", "--regid=%d" % GID,
                             "--clear-groups"] + tetherctl
            asked = subprocess.run(tetherctl, capture_output=True, text=True, timeout=10)
            self.assertEqual(asked.returncode, 0, asked.stdout + asked.stderr)
            self.assertIn("online", asked.stdout)
            self.assertNotIn("level=error", process.stderr())
            process.signal(15)
            self.assertEqual(process.wait(15), 0, process.stderr())
        finally:
            process.stop()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGV)
