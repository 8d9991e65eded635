#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The Debian packages (make deb) as a user gets them.

Runs cpack on a configured build into a scratch directory, unpacks every
.deb with dpkg-deb -x into one scratch root, checks the files, the Depends,
the architecture, /usr/share/doc, lintian and the hardening of every ELF file
(readelf). On the host architecture (class Packages) it also runs the
shipped tetherd on the shipped configuration and builds a small consumer
against the unpacked libtether-dev twice: with find_package(tether) and with
pkg-config; both must link and run. For a cross build (class Cross, build/armhf
and build/arm64) it checks the ELF machine instead: nothing runs.
"""

import argparse
import glob
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

ARGS = None

RUNTIME_LIBS = ["libmbedtls14", "libmbedcrypto7", "libmbedx509-1", "libwslay1", "libcjson1"]

# lintian tags accepted on the packages, each with the reason a Debian maintainer
# would accept it; any other error or warning fails. Tag -> (packages, why).
LINTIAN_ALLOWED = {}

# What readelf -h says of each Debian architecture's executables.
ELF_MACHINE = {
    "amd64": "Advanced Micro Devices X86-64",
    "i386": "Intel 80386",
    "arm64": "AArch64",
    "armhf": "ARM",
}

# The static libraries of libtether-dev.
STATIC_LIBS = ["libtether_core.a", "libtether_net.a", "libtether.a", "libtether_port_posix.a"]

DOC_FILES = ["README.md", "changelog.gz", "copyright"]


def run(command, timeout=240, **kwargs):
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (command, result.returncode, result.stdout))
    return result.stdout


def control_field(deb, field):
    return run(["dpkg-deb", "-f", deb, field]).strip()


def readelf(path, *options):
    return run([ARGS.readelf, "-W"] + list(options) + [path])


def is_elf(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def executable_hardening(path):
    """The hardening features of one linked ELF file, as hardening-check names them."""
    header = readelf(path, "-h")
    dynamic = readelf(path, "-d")
    segments = readelf(path, "-l")
    # Num: Value Size Type Bind Vis Ndx Name, the name maybe "name@VERSION (n)".
    symbols = [line.split()[7].split("@")[0] for line in readelf(path, "--dyn-syms").splitlines()
               if " UND " in line and len(line.split()) > 7]
    flags_1 = re.search(r"\(FLAGS_1\)\s+Flags:(.*)", dynamic)
    flags = re.search(r"\(FLAGS\)\s+(.*)", dynamic)
    return {
        "pie": bool(re.search(r"Type:\s+DYN", header)) and bool(flags_1)
        and "PIE" in flags_1.group(1).split(),
        "relro": bool(re.search(r"^\s*GNU_RELRO\s", segments, re.M)),
        "bindnow": bool((flags and "BIND_NOW" in flags.group(1).split())
                        or (flags_1 and "NOW" in flags_1.group(1).split())),
        "stackprotector": "__stack_chk_fail" in symbols,
        "fortify": any(re.fullmatch(r"__\w+_chk", name) and name != "__stack_chk_fail"
                       for name in symbols),
    }


def archive_references(path):
    """The undefined symbols of every member of a static library."""
    return {line.split()[7] for line in readelf(path, "-s").splitlines()
            if " UND " in line and len(line.split()) > 7}


class PackageChecks:
    """What holds for the packages of every architecture (a mixin: the classes
    below are the ctest entries)."""

    @classmethod
    def setUpClass(cls):
        cls.scratch = tempfile.mkdtemp(prefix="tether-packages-")
        cls.out = os.path.join(cls.scratch, "out")
        cls.root = os.path.join(cls.scratch, "root")
        os.makedirs(cls.root)
        # cpack builds what the build directory has not built yet (a cross
        # build directory may hold only the unit tests).
        run([ARGS.cpack, "-G", "DEB", "--config",
             os.path.join(ARGS.build_dir, "CPackConfig.cmake"), "-B", cls.out], timeout=1500)
        cls.debs = {}
        for deb in glob.glob(os.path.join(cls.out, "*.deb")):
            cls.debs[control_field(deb, "Package")] = deb
            run(["dpkg-deb", "-x", deb, cls.root])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.scratch, ignore_errors=True)

    def path(self, relative):
        return os.path.join(self.root, relative.lstrip("/"))

    def files_of(self, package, docs=False):
        """The files of a package, /usr/share/doc/ left out unless docs."""
        listing = run(["dpkg-deb", "-c", self.debs[package]])
        files = sorted(line.split()[-1].lstrip(".") for line in listing.splitlines()
                       if not line.startswith("d"))
        return [f for f in files if docs or not f.startswith("/usr/share/doc/")]

    def elf_files(self):
        """Every ELF file of every package: (package, path in the package)."""
        found = []
        for package in sorted(self.debs):
            for name in self.files_of(package):
                if os.path.isfile(self.path(name)) and is_elf(self.path(name)):
                    found.append((package, name))
        return found

    def test_man_pages_are_compressed_without_name_or_time_and_render_cleanly(self):
        pages = ["usr/share/man/man8/tetherd.8.gz", "usr/share/man/man1/tether-cat.1.gz",
                 "usr/share/man/man5/tetherd.json.5.gz", "usr/share/man/man8/tether-server.8.gz",
                 "usr/share/man/man1/tetherctl.1.gz"]
        for page in pages:
            with open(self.path(page), "rb") as f:
                head = f.read(10)
            self.assertEqual(head[:2], b"\x1f\x8b", page)
            self.assertEqual(head[3] & 0x08, 0, "%s: gzip -n keeps no file name" % page)
            self.assertEqual(head[4:8], b"\0\0\0\0", "%s: gzip -n keeps no time" % page)
            if shutil.which("man"):
                result = subprocess.run(["man", "--warnings", "-l", self.path(page)],
                                        capture_output=True, text=True,
                                        env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(result.stderr, "", page)

    def test_three_packages_for_this_architecture(self):
        self.assertEqual(sorted(self.debs), ["libtether-dev", "tether-server", "tetherd"])
        for deb in self.debs.values():
            self.assertEqual(control_field(deb, "Architecture"), ARGS.arch)
            self.assertEqual(control_field(deb, "Version"), ARGS.version)
            self.assertEqual(control_field(deb, "Maintainer"), ARGS.maintainer)
            self.assertEqual(control_field(deb, "Homepage"), ARGS.homepage)

    def test_tetherd_package_holds_daemon_unit_and_conffile(self):
        self.assertEqual(self.files_of("tetherd"), [
            "/etc/tether/tetherd.json",
            "/lib/systemd/system/tetherd.service",
            "/usr/bin/tether-cat",
            "/usr/bin/tetherctl",
            "/usr/bin/tetherd",
            "/usr/share/man/man1/tether-cat.1.gz",
            "/usr/share/man/man1/tetherctl.1.gz",
            "/usr/share/man/man5/tetherd.json.5.gz",
            "/usr/share/man/man8/tetherd.8.gz",
            "/usr/share/tether/prometheus/tetherd-rules.yml",
        ])
        for binary in ("usr/bin/tetherd", "usr/bin/tether-cat", "usr/bin/tetherctl"):
            self.assertTrue(os.access(self.path(binary), os.X_OK), binary)
        with open(self.path("lib/systemd/system/tetherd.service")) as unit:
            text = unit.read()
        self.assertIn("ExecStart=/usr/bin/tetherd --config /etc/tether/tetherd.json", text)
        self.assertIn("StateDirectory=tether", text)
        conffiles = run(["dpkg-deb", "--info", self.debs["tetherd"], "conffiles"])
        self.assertEqual(conffiles.split(), ["/etc/tether/tetherd.json"])

    def test_tether_server_package_holds_server_unit_and_conffile(self):
        self.assertEqual(self.files_of("tether-server"), [
            "/etc/tether/tether-server.env",
            "/lib/systemd/system/tether-server.service",
            "/usr/bin/tether-server",
            "/usr/share/man/man8/tether-server.8.gz",
            "/usr/share/tether/grafana/tether.json",
            "/usr/share/tether/prometheus/tether-server-rules.yml",
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

    def test_alert_rules_and_dashboard_are_usable_as_installed(self):
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool missing: tools/install-deps integration")
        rules = [self.path("usr/share/tether/prometheus/%s-rules.yml" % name)
                 for name in ("tetherd", "tether-server")]
        result = subprocess.run([promtool, "check", "rules"] + rules, capture_output=True,
                                text=True, check=False)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        with open(self.path("usr/share/tether/grafana/tether.json"), encoding="utf-8") as f:
            self.assertIsInstance(json.load(f)["schemaVersion"], int)

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

    def test_every_package_documents_itself_in_usr_share_doc(self):
        for package, deb in sorted(self.debs.items()):
            doc = "/usr/share/doc/%s/" % package
            self.assertEqual([f for f in self.files_of(package, docs=True)
                              if f.startswith("/usr/share/doc/")],
                             [doc + name for name in DOC_FILES], package)
            with open(self.path(doc + "README.md")) as f:
                self.assertTrue(f.read().startswith("# tether\n"))

    def test_copyright_is_machine_readable_and_mit(self):
        with open(os.path.join(ARGS.source_dir, "LICENSE")) as f:
            licence = f.read()
        licence_body = licence[licence.index("Permission is hereby granted"):].split()
        for package in sorted(self.debs):
            with open(self.path("/usr/share/doc/%s/copyright" % package)) as f:
                text = f.read()
            paragraphs = text.strip("\n").split("\n\n")
            header = paragraphs[0]
            self.assertTrue(header.startswith(
                "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"),
                package)
            self.assertIn("\nUpstream-Name: tether\n", header)
            self.assertIn("\nUpstream-Contact: %s\n" % ARGS.maintainer, header)
            self.assertIn("\nSource: %s\n" % ARGS.homepage, header)
            self.assertNotIn("@", re.sub(r"<[^>]*>", "", text), "unconfigured placeholder")
            files = paragraphs[1].splitlines()
            self.assertEqual(files, ["Files: *", "Copyright: 2026 The tether authors",
                                     "License: MIT"], package)
            licence_paragraph = paragraphs[2].splitlines()
            self.assertEqual(licence_paragraph[0], "License: MIT")
            self.assertTrue(all(line.startswith(" ") for line in licence_paragraph[1:]))
            self.assertEqual([w for w in " ".join(licence_paragraph[1:]).split() if w != "."],
                             licence_body, package)
        # The static libraries' own dependencies are linked by the consumer.
        with open(self.path("/usr/share/doc/libtether-dev/copyright")) as f:
            self.assertRegex(" ".join(f.read().split()),
                             r"do not contain mbedTLS \(Apache-2.0\), wslay \(MIT\) or cJSON")

    def test_changelog_is_debian_format_for_this_version(self):
        with open(os.path.join(ARGS.source_dir, "packaging", "debian", "changelog"), "rb") as f:
            source = f.read()
        for package in sorted(self.debs):
            path = self.path("/usr/share/doc/%s/changelog.gz" % package)
            with open(path, "rb") as f:
                compressed = f.read()
            # gzip -9n: no file name (FLG.FNAME clear), no time stamp (MTIME 0),
            # maximum compression (XFL 2).
            self.assertEqual(compressed[3] & 0x08, 0, "file name stored")
            self.assertEqual(compressed[4:8], b"\0\0\0\0", "time stamp stored")
            self.assertEqual(compressed[8], 2, "not gzip -9")
            text = gzip.decompress(compressed)
            self.assertEqual(text, source, package)
        first = source.decode().splitlines()[0]
        match = re.fullmatch(r"tether \(([^)]+)\) [a-z-]+; urgency=[a-z]+", first)
        self.assertIsNotNone(match, first)
        self.assertEqual(match.group(1), ARGS.version,
                         "packaging/debian/changelog's latest entry is not PROJECT_VERSION")
        signature = re.search(r"^ -- (.+?)  (.+)$", source.decode(), re.M)
        self.assertEqual(signature.group(1), ARGS.maintainer)
        for deb in self.debs.values():
            self.assertEqual(control_field(deb, "Source"), "tether")

    def test_lintian_is_clean(self):
        self.assertIsNotNone(shutil.which("lintian"),
                             "lintian is required: run tools/install-deps package")
        for package, deb in sorted(self.debs.items()):
            result = subprocess.run(["lintian", "--tag-display-limit", "0", deb],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, timeout=600)
            # 0: clean, 1: tags at the fail-on level; anything else is lintian failing.
            self.assertIn(result.returncode, (0, 1), result.stdout)
            output = "\n".join(line for line in result.stdout.splitlines()
                               if "running with root privileges" not in line)
            print("lintian %s (%s): %s" % (package, ARGS.arch, output.strip() or "clean"))
            unexpected = []
            for line in result.stdout.splitlines():
                if not re.match(r"[EW]: ", line):
                    continue
                tag = line.split()[2]
                allowed = LINTIAN_ALLOWED.get(tag)
                if allowed is None or package not in allowed[0]:
                    unexpected.append(line)
            self.assertEqual(unexpected, [], "%s:\n%s" % (package, result.stdout))

    def test_every_executable_is_hardened(self):
        executables = [(package, name) for package, name in self.elf_files()
                       if not name.endswith(".a")]
        self.assertEqual(sorted(name for _, name in executables),
                         ["/usr/bin/tether-cat", "/usr/bin/tether-server", "/usr/bin/tetherctl",
                          "/usr/bin/tetherd"])
        for package, name in executables:
            features = executable_hardening(self.path(name))
            print("hardening %s (%s): %s" % (name, ARGS.arch, " ".join(
                "%s=%s" % (k, "yes" if v else "NO") for k, v in sorted(features.items()))))
            self.assertEqual([k for k, v in sorted(features.items()) if not v], [], name)

    def test_static_libraries_are_built_hardened(self):
        libdir = "/usr/" + ARGS.libdir + "/"
        protected = set()
        fortified = set()
        for name in STATIC_LIBS:
            references = archive_references(self.path(libdir + name))
            if "__stack_chk_fail" in references:
                protected.add(name)
            if any(re.fullmatch(r"__\w+_chk", r) and r != "__stack_chk_fail"
                   for r in references):
                fortified.add(name)
        print("static libraries (%s): stack protector in %s; fortified calls in %s"
              % (ARGS.arch, sorted(protected), sorted(fortified)))
        # Every library has functions with local arrays; the I/O side
        # (port_posix) calls the fortified C library.
        self.assertEqual(sorted(protected), sorted(STATIC_LIBS))
        self.assertIn("libtether_port_posix.a", fortified)

    def test_elf_files_are_for_this_architecture(self):
        machine = ELF_MACHINE[ARGS.arch]
        programs = [name for _, name in self.elf_files()]
        libraries = ["/usr/" + ARGS.libdir + "/" + name for name in STATIC_LIBS]
        for name in programs + libraries:
            header = readelf(self.path(name), "-h")
            machines = set(re.findall(r"^\s*Machine:\s+(.*?)\s*$", header, re.M))
            self.assertEqual(machines, {machine}, name)
            # The linker marks the hard-float calling convention in the
            # program's header (objects carry it only when they pass floats).
            if ARGS.arch == "armhf" and name in programs:
                flags = re.search(r"^\s*Flags:\s+(.*)$", header, re.M).group(1)
                self.assertIn("hard-float ABI", flags, name)


class Packages(PackageChecks, unittest.TestCase):
    """The host architecture's packages: the programs run, a consumer builds."""

    def test_shipped_configuration_is_valid(self):
        output = run([self.path("usr/bin/tetherd"), "--check-config",
                      self.path("etc/tether/tetherd.json")])
        self.assertIn(": valid:", output)

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



class Cross(PackageChecks, unittest.TestCase):
    """A cross build's packages (build/armhf, build/arm64): checked, not run."""


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--cmake", required=True)
    parser.add_argument("--cpack", required=True)
    parser.add_argument("--cxx", required=True)
    parser.add_argument("--libdir", help="the libraries' directory under /usr (default: "
                        "TETHER_INSTALL_LIBDIR of the build directory)")
    parser.add_argument("--version", required=True)
    parser.add_argument("--maintainer", required=True)
    parser.add_argument("--homepage", required=True)
    parser.add_argument("--readelf", default="readelf")
    parser.add_argument("--arch", help="the packages' Debian architecture (default: dpkg's)")
    ARGS, rest = parser.parse_known_args()
    if ARGS.arch is None:
        ARGS.arch = run(["dpkg", "--print-architecture"]).strip()
    # A cross architecture whose build directory was never configured (make
    # test-cross, cross-armhf, cross-arm64 configure them) has nothing to check.
    if not os.path.exists(os.path.join(ARGS.build_dir, "CPackConfig.cmake")):
        print("SKIPPED: %s is not a configured build directory" % ARGS.build_dir)
        return
    if ARGS.libdir is None:
        with open(os.path.join(ARGS.build_dir, "CMakeCache.txt")) as f:
            ARGS.libdir = re.search(r"^TETHER_INSTALL_LIBDIR:\w+=(.*)$", f.read(), re.M).group(1)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
