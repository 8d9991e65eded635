# SPDX-License-Identifier: MIT
"""Two network namespaces joined by a veth pair, and the faults applied to the
link between them (nftables loss and blackhole, link down, tbf, netem when the
kernel has it).

Names carry the owner's pid (tt-<pid>-s, tt-<pid>-c), so parallel runs never
collide. Everything is removed by close(), which is also registered with
atexit; stale namespaces left by a run that was killed outright are removed by
remove_stale() at the start of the next run. Traffic stays inside the two
namespaces: the /30 exists nowhere else.
"""

import atexit
import ctypes
import os
import re
import subprocess
import threading

SERVER_ADDRESS = "10.213.0.1"
CLIENT_ADDRESS = "10.213.0.2"
PREFIX = 30
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_NAME = re.compile(r"^tt-(\d+)-[sc]$")


class NetError(Exception):
    pass


def sh(cmd, check=True, input_text=None):
    """Runs cmd (a list); returns (code, combined output)."""
    result = subprocess.run(cmd, input=input_text, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=30)
    if check and result.returncode != 0:
        raise NetError("%s: exit %d: %s" % (" ".join(cmd), result.returncode,
                                            result.stdout.strip()))
    return result.returncode, result.stdout


def _owner_alive(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"run_faults" in f.read()
    except OSError:
        return False


def remove_stale():
    """Deletes tt-<pid>-* namespaces whose run is gone (killed with SIGKILL, say)."""
    _, out = sh(["ip", "netns", "list"], check=False)
    removed = []
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        match = _NAME.match(name)
        if not match:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _owner_alive(pid):
            continue
        sh(["ip", "netns", "delete", name], check=False)
        removed.append(name)
    return removed


class Lab:
    """The server's namespace and the client's, one veth pair between them."""

    def __init__(self):
        tag = os.getpid()
        self.server_ns = "tt-%d-s" % tag
        self.client_ns = "tt-%d-c" % tag
        self.server_if = "tt%ds" % tag  # at most 15 characters
        self.client_if = "tt%dc" % tag
        self._closed = False
        self._setns_lock = threading.Lock()
        self.netem = False
        self.netem_note = ""
        atexit.register(self.close)

    # --- lifetime ------------------------------------------------------------

    def create(self):
        for ns in (self.server_ns, self.client_ns):
            sh(["ip", "netns", "add", ns])
            self.run(ns, ["ip", "link", "set", "dev", "lo", "up"])
        sh(["ip", "link", "add", self.server_if, "netns", self.server_ns, "type", "veth",
            "peer", "name", self.client_if, "netns", self.client_ns])
        for ns, dev, address in ((self.server_ns, self.server_if, SERVER_ADDRESS),
                                 (self.client_ns, self.client_if, CLIENT_ADDRESS)):
            self.run(ns, ["ip", "addr", "add", "%s/%d" % (address, PREFIX), "dev", dev])
            self.run(ns, ["ip", "link", "set", "dev", dev, "up"])
        # One table in the client's namespace filters both directions.
        self.run(self.client_ns, ["nft", "-f", "-"], input_text=(
            "table inet tether_faults {\n"
            "  chain in { type filter hook input priority 0; policy accept; }\n"
            "  chain out { type filter hook output priority 0; policy accept; }\n"
            "}\n"))
        self._probe_netem()

    def close(self):
        if self._closed:
            return
        self._closed = True
        for ns in (self.server_ns, self.client_ns):
            sh(["ip", "netns", "delete", ns], check=False)

    def run(self, ns, cmd, check=True, input_text=None):
        return sh(["ip", "netns", "exec", ns] + cmd, check=check, input_text=input_text)

    def exec_prefix(self, ns):
        return ["ip", "netns", "exec", ns]

    def in_namespace(self, ns, function):
        """Calls function() on this thread while it is in namespace ns (network
        namespaces are per thread), e.g. to open a socket to a loopback port there."""
        with self._setns_lock:
            home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            target = os.open("/run/netns/%s" % ns, os.O_RDONLY)
            try:
                if _libc.setns(target, _CLONE_NEWNET) != 0:
                    raise NetError("setns %s: errno %d" % (ns, ctypes.get_errno()))
                try:
                    return function()
                finally:
                    if _libc.setns(home, _CLONE_NEWNET) != 0:
                        raise NetError("setns back: errno %d" % ctypes.get_errno())
            finally:
                os.close(home)
                os.close(target)

    # --- faults ----------------------------------------------------------------

    def _probe_netem(self):
        code, out = self.run(self.client_ns, ["tc", "qdisc", "add", "dev", self.client_if,
                                              "root", "netem", "delay", "1ms"], check=False)
        if code == 0:
            self.run(self.client_ns, ["tc", "qdisc", "del", "dev", self.client_if, "root"],
                     check=False)
            self.netem = True
        else:
            self.netem_note = out.strip().splitlines()[0] if out.strip() else "exit %d" % code

    def _nft(self, script):
        self.run(self.client_ns, ["nft", "-f", "-"], input_text=script)

    def loss(self, percent):
        """Random loss of percent % of packets in each direction."""
        self._nft("add rule inet tether_faults in numgen random mod 100 < %d drop\n"
                  "add rule inet tether_faults out numgen random mod 100 < %d drop\n"
                  % (percent, percent))

    def blackhole(self):
        """Every packet dropped both ways: both TCP ends stay half-open."""
        self._nft("add rule inet tether_faults in ip saddr %s drop\n"
                  "add rule inet tether_faults out ip daddr %s drop\n"
                  % (SERVER_ADDRESS, SERVER_ADDRESS))

    def clear_filter(self):
        self._nft("flush chain inet tether_faults in\nflush chain inet tether_faults out\n")

    def link(self, up):
        self.run(self.client_ns, ["ip", "link", "set", "dev", self.client_if,
                                  "up" if up else "down"])

    def _both_ends(self):
        return ((self.server_ns, self.server_if), (self.client_ns, self.client_if))

    def bandwidth(self, kbit):
        """A token bucket on both ends: packets queue (delay) and overflow (loss)."""
        for ns, dev in self._both_ends():
            self.run(ns, ["tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate",
                          "%dkbit" % kbit, "burst", "4kb", "latency", "400ms"])

    def netem_on(self, *args):
        for ns, dev in self._both_ends():
            self.run(ns, ["tc", "qdisc", "replace", "dev", dev, "root", "netem"] + list(args))

    def clear_qdisc(self):
        for ns, dev in self._both_ends():
            self.run(ns, ["tc", "qdisc", "del", "dev", dev, "root"], check=False)

    def heal(self):
        """Removes every network fault (used after each one and on the way out)."""
        self.clear_filter()
        self.clear_qdisc()
        self.link(True)
