"""Hosts on one machine: network namespaces on a bridge of the test's own, each with its own
address, hostname and processes, which are real hosts to TCP.

The bridge and its subnet are made for the test and only for it: the hosts have no default
route, so nothing they send leaves the bridge, and everything is deleted afterwards, even when
the test fails. Cutting a host's link (`cut`) splits it from every other host at once, as a
pulled cable does, while its processes go on.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def why_not_here() -> str | None:
    """Why this machine cannot hold the test's hosts, in one line; None when it can."""
    if os.geteuid() != 0:
        return "needs root, to make network namespaces"
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        return "needs iproute2's `ip` and util-linux's `unshare`"
    probe = f"rlprobe{secrets.token_hex(3)}"
    try:
        ip("netns", "add", probe)
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"cannot make a network namespace: {exc}"
    ip("netns", "del", probe)
    return None


@dataclass
class Host:
    name: str  # its hostname too
    ns: str
    address: str
    link: str  # its end of the cable, in the machine's own namespace, on the bridge
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)


class Network:
    """A bridge with a /24 of its own, the machine at .1 on it, and hosts from .2 up."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.tag = secrets.token_hex(2)
        self.bridge = f"rlb{self.tag}"
        # 10.213.0.0/16 is this suite's; a random /24 in it keeps two runs apart.
        self.prefix = f"10.213.{secrets.randbelow(250) + 1}"
        self.gateway = f"{self.prefix}.1"
        self.hosts: dict[str, Host] = {}

    def __enter__(self) -> Network:
        ip("link", "add", self.bridge, "type", "bridge")
        try:
            ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def add(self, name: str) -> Host:
        n = len(self.hosts) + 2
        host = Host(name, f"rl{self.tag}-{name}", f"{self.prefix}.{n}", f"rl{self.tag}h{n}")
        self.hosts[name] = host
        inside = f"rl{self.tag}n{n}"
        ip("netns", "add", host.ns)
        ip("link", "add", host.link, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", host.ns)
        ip("-n", host.ns, "addr", "add", f"{host.address}/24", "dev", inside)
        ip("-n", host.ns, "link", "set", inside, "up")
        ip("-n", host.ns, "link", "set", "lo", "up")
        ip("link", "set", host.link, "master", self.bridge)
        ip("link", "set", host.link, "up")
        return host

    def spawn(
        self,
        host: Host,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log: str,
        user: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """`argv` on `host`, started in the background; see `on`."""
        command = on(host, user) + list(argv)
        with (self.folder / f"{host.name}-{log}.log").open("ab") as out:
            proc = subprocess.Popen(
                command, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        host.procs.append(proc)
        return proc

    def log(self, host: Host, log: str) -> str:
        path = self.folder / f"{host.name}-{log}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def cut(self, host: Host) -> None:
        """Unplug the host: no packet in or out, its processes untouched."""
        ip("link", "set", host.link, "down")

    def restore(self, host: Host) -> None:
        ip("link", "set", host.link, "up")

    def split(self, host: Host, other: Host) -> None:
        """Drop whatever `host` sends to `other` alone: one path cut, the rest of the network
        up (a blackhole route in the host's namespace)."""
        ip("-n", host.ns, "route", "add", "blackhole", f"{other.address}/32")

    def join(self, host: Host, other: Host) -> None:
        ip("-n", host.ns, "route", "del", "blackhole", f"{other.address}/32")

    def kill(self, host: Host, proc: subprocess.Popen[bytes] | None = None) -> None:
        """SIGKILL to one of the host's process groups, or to every process in its namespace."""
        procs = [proc] if proc is not None else list(host.procs)
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        if proc is None:
            for pid in _pids_in(host.ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        for host in self.hosts.values():
            with contextlib.suppress(Exception):
                self.kill(host)
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.ns], capture_output=True)
            subprocess.run(["ip", "link", "del", host.link], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


def on(host: Host, user: str | None = None) -> list[str]:
    """What runs a command on `host`: in its network namespace, under its own hostname (a UTS
    namespace of its own), as `user`."""
    run_as = ["runuser", "-u", user, "--"] if user else []
    return [
        "ip", "netns", "exec", host.ns, "unshare", "--uts", "--",
        "sh", "-c", 'hostname "$0" && exec "$@"', host.name, *run_as,
    ]  # fmt: skip


def _pids_in(ns: str) -> list[int]:
    found = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def leftovers(tag: str) -> list[str]:
    """Namespaces and links of the network with this tag still on the machine."""
    spaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    names = [line.split()[0].split("@")[0] for line in (spaces + links).splitlines() if line]
    return [n for n in names if n.startswith(f"rl{tag}") or n == f"rlb{tag}"]
