#!/usr/bin/python3
"""The Debian packages (make deb) as a user gets them.

Runs cpack on the configured build into a scratch directory, unpacks every
.deb with dpkg-deb -x into one scratch root, checks the files and the
Depends, then builds a small consumer against the unpacked libtether-dev
twice: with find_package(tether) and with pkg-config. Both must link and run.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

ARGS = None

RUNTIME_LIBS = ["libmbedtls14", "libmbedcrypto7", "libmbedx509-1", "libwslay1", "libcjson1"]

# lintian errors every package has today (the maintainer address is a placeholder,
# and no package ships a changelog or copyright file yet); anything else fails.
KNOWN_LINTIAN_ERRORS = {"bogus-mail-host", "no-changelog", "no-copyright-file"}


def run(command, **kwargs):
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=240, **kwargs)
    if result.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (command, result.returncode, result.stdout))
    return result.stdout


def control_field(deb, field):
    return run(["dpkg-deb", "-f", deb, field]).strip()


class Packages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.scratch = tempfile.mkdtemp(prefix="tether-packages-")
        cls.out = os.path.join(cls.scratch, "out")
        cls.root = os.path.join(cls.scratch, "root")
        os.makedirs(cls.root)
        run([ARGS.cpack, "-G", "DEB", "--config",
             os.path.join(ARGS.build_dir, "CPackConfig.cmake"), "-B", cls.out])
        cls.debs = {}
        for deb in glob.glob(os.path.join(cls.out, "*.deb")):
            cls.debs[control_field(deb, "Package")] = deb
            run(["dpkg-deb", "-x", deb, cls.root])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.scratch, ignore_errors=True)

    def path(self, relative):
        return os.path.join(self.root, relative.lstrip("/"))

    def files_of(self, package):
        listing = run(["dpkg-deb", "-c", self.debs[package]])
        return sorted(line.split()[-1].lstrip(".") for line in listing.splitlines()
                      if not line.startswith("d"))

    def test_three_packages_for_this_architecture(self):
        self.assertEqual(sorted(self.debs), ["libtether-dev", "tether-server", "tetherd"])
        arch = run(["dpkg", "--print-architecture"]).strip()
        for deb in self.debs.values():
            self.assertEqual(control_field(deb, "Architecture"), arch)
            self.assertEqual(control_field(deb, "Version"), ARGS.version)

    def test_tetherd_package_holds_daemon_unit_and_conffile(self):
        self.assertEqual(self.files_of("tetherd"), [
            "/etc/tether/tetherd.json",
            "/lib/systemd/system/tetherd.service",
            "/usr/bin/tether-cat",
            "/usr/bin/tetherctl",
            "/usr/bin/tetherd",
        ])
        for binary in ("usr/bin/tetherd", "usr/bin/tether-cat", "usr/bin/tetherctl"):
            self.assertTrue(os.access(self.path(binary), os.X_OK), binary)
        with open(self.path("lib/systemd/system/tetherd.service")) as unit:
            text = unit.read()
        self.assertIn("ExecStart=/usr/bin/tetherd --config /etc/tether/tetherd.json", text)
        self.assertIn("StateDirectory=tether", text)
        conffiles = run(["dpkg-deb", "--info", self.debs["tetherd"], "conffiles"])
        self.assertEqual(conffiles.split(), ["/etc/tether/tetherd.json"])
        # The shipped configuration is one tetherd accepts.
        output = run([self.path("usr/bin/tetherd"), "--check-config",
                      self.path("etc/tether/tetherd.json")])
        self.assertIn(": valid:", output)

    def test_tether_server_package_holds_server_unit_and_conffile(self):
        self.assertEqual(self.files_of("tether-server"), [
            "/etc/tether/tether-server.env",
            "/lib/systemd/system/tether-server.service",
            "/usr/bin/tether-server",
        ])
        self.assertTrue(os.access(self.path("usr/bin/tether-server"), os.X_OK))
        conffiles = run(["dpkg-deb", "--info", self.debs["tether-server"], "conffiles"])
        self.assertEqual(conffiles.split(), ["/etc/tether/tether-server.env"])
        with open(self.path("lib/systemd/system/tether-server.service")) as unit:
            text = unit.read()
        self.assertIn("\nEnvironmentFile=/etc/tether/tether-server.env\n", text)
        self.assertIn("\nRestart=on-failure\n", text)
        self.assertIn("\nStateDirectory=tether-server\n", text)
        exec_start = re.search(r"^ExecStart=(.*)$", text, re.M).group(1).split()
        self.assertEqual(exec_start[0], "/usr/bin/tether-server")
        # Every variable the unit expands is set in the shipped file, so none is
        # missing by accident; the default store is the state directory's.
        with open(self.path("etc/tether/tether-server.env")) as f:
            env_text = f.read()
        assigned = {}
        for line in env_text.splitlines():
            if line and not line.startswith("#"):
                match = re.fullmatch(r'([A-Z_]+)="([^"]*)"', line)
                self.assertIsNotNone(match, "not NAME=\"value\": %r" % line)
                assigned[match.group(1)] = match.group(2)
        used = [word[1:] for word in exec_start if word.startswith("$")]
        self.assertEqual(sorted(used), sorted(assigned))
        self.assertIn("--store file --data-dir /var/lib/tether-server",
                      assigned["TETHER_SERVER_STORE"])
        self.assertRegex(env_text, r"\n#TETHER_SERVER_STORE=\"--store redis --redis-sentinel ")

    def test_lintian_finds_no_new_errors(self):
        if shutil.which("lintian") is None:
            self.skipTest("lintian not installed")
        for package, deb in sorted(self.debs.items()):
            result = subprocess.run(["lintian", "--tag-display-limit", "0", deb],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, timeout=240)
            errors = sorted({line.split()[2] for line in result.stdout.splitlines()
                             if line.startswith("E: ")})
            self.assertLessEqual(set(errors), KNOWN_LINTIAN_ERRORS,
                                 "%s:\n%s" % (package, result.stdout))

    def test_runtime_packages_depend_on_the_debian_libraries(self):
        for package in ("tetherd", "tether-server"):
            depends = control_field(self.debs[package], "Depends")
            names = [item.split()[0] for item in depends.split(", ")]
            for lib in RUNTIME_LIBS:
                self.assertIn(lib, names, "%s Depends: %s" % (package, depends))

    def test_dev_package_holds_libraries_headers_and_package_files(self):
        files = self.files_of("libtether-dev")
        libdir = "/usr/" + ARGS.libdir
        for name in ("libtether_core.a", "libtether_net.a", "libtether.a",
                     "libtether_port_posix.a", "pkgconfig/tether.pc",
                     "cmake/tether/tetherConfig.cmake", "cmake/tether/tetherConfigVersion.cmake",
                     "cmake/tether/tetherTargets.cmake",
                     "cmake/tether/TetherFindDependencies.cmake"):
            self.assertIn(libdir + "/" + name, files)
        headers = sorted(os.path.relpath(h, os.path.join(ARGS.source_dir, "include"))
                         for h in glob.glob(os.path.join(ARGS.source_dir, "include", "tether",
                                                         "**", "*.h"), recursive=True))
        self.assertEqual(sorted(f[len("/usr/include/"):] for f in files
                                if f.startswith("/usr/include/")), headers)
        depends = control_field(self.debs["libtether-dev"], "Depends")
        self.assertEqual(depends, "libmbedtls-dev, libwslay-dev, libcjson-dev")

    def check_consumer_runs(self, program):
        output = run([program])
        self.assertIn("consumer ok: seq 1", output)

    def test_consumer_builds_with_find_package(self):
        build = os.path.join(self.scratch, "consumer-cmake")
        output = run([ARGS.cmake, "-S", os.path.join(ARGS.source_dir, "tests", "integration",
                                                     "consumer"),
                      "-B", build, "-DCMAKE_CXX_COMPILER=" + ARGS.cxx,
                      "-DCMAKE_PREFIX_PATH=" + self.path("usr"),
                      "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF"])
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            cache = f.read()
        self.assertIn("tether_DIR:PATH=" + self.path("usr/" + ARGS.libdir + "/cmake/tether"),
                      cache, output)
        run([ARGS.cmake, "--build", build])
        self.check_consumer_runs(os.path.join(build, "consumer"))

    def test_consumer_builds_with_pkg_config(self):
        env = dict(os.environ)
        env["PKG_CONFIG_PATH"] = self.path("usr/" + ARGS.libdir + "/pkgconfig")
        flags = run(["pkg-config", "--cflags", "--libs", "tether"], env=env).split()
        self.assertTrue(any(f.startswith("-I" + self.root) for f in flags), flags)
        program = os.path.join(self.scratch, "consumer-pc")
        run([ARGS.cxx, "-std=c++17", "-o", program,
             os.path.join(ARGS.source_dir, "tests", "integration", "consumer", "main.cpp")]
            + flags)
        self.check_consumer_runs(program)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--cmake", required=True)
    parser.add_argument("--cpack", required=True)
    parser.add_argument("--cxx", required=True)
    parser.add_argument("--libdir", required=True)
    parser.add_argument("--version", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
