"""Test helper: two network namespaces standing in for a server VM and a client VM.

`two_hosts(tmp)` makes two namespaces joined by a veth pair, with addresses in
10.213.<n>.0/24 (a range these tests own; namespaces are private, so nothing outside
them can see or route to it), loopback up and no default route in either. Before
anything is sent it checks with `ip route get` inside each namespace that the other's
address is reached over the veth and nothing else is routable. Each namespace runs its
own sshd (key-only, like tests/sshd.py) on port 22 of its address. `Hosts.close()` stops
both sshds by process group and deletes the namespaces (which removes the veth pair).
Needs root and iproute2; `available()` says whether they are there.

Load only ever goes from the client namespace (no default route) to the server
namespace's address.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.sshd import SFTP_SERVER, SSHD, _keygen

IP = "/usr/sbin/ip"
NET = "10.213"


def available() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not Path(IP).exists() or not Path(SSHD).exists():
        return "needs iproute2 and openssh-server"
    probe = subprocess.run([IP, "netns", "list"], capture_output=True, timeout=10)
    return None if probe.returncode == 0 else "ip netns does not work here"


def ip(*args: str, ns: str | None = None) -> str:
    argv = [IP, *(["-n", ns] if ns else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def in_ns(ns: str, argv: list[str]) -> list[str]:
    return [IP, "netns", "exec", ns, *argv]


@dataclass
class Hosts:
    server_ns: str
    client_ns: str
    server_addr: str
    client_addr: str
    server_dev: str
    client_dev: str
    client_key: Path
    known_hosts: Path
    sshds: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"root@{self.server_addr}"

    @property
    def client(self) -> str:
        return f"root@{self.client_addr}"

    def controller(self, argv: list[str]) -> list[str]:
        """A command run on the client VM's side: inside the client namespace."""
        return in_ns(self.client_ns, argv)

    def link(self, up: bool) -> None:
        """Take the server VM's end of the link down, or up again."""
        ip("link", "set", self.server_dev, "up" if up else "down", ns=self.server_ns)

    def close(self) -> None:
        for proc in self.sshds:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        for ns in (self.server_ns, self.client_ns):
            subprocess.run([IP, "netns", "del", ns], capture_output=True, timeout=30)


def _check_routes(h: Hosts) -> None:
    """Inside each namespace: the other address over the veth, no default route."""
    for ns, dev, other in (
        (h.client_ns, h.client_dev, h.server_addr),
        (h.server_ns, h.server_dev, h.client_addr),
    ):
        if ip("route", "show", "default", ns=ns).strip():
            raise RuntimeError(f"{ns} has a default route")
        route = ip("route", "get", other, ns=ns)
        if f"dev {dev}" not in route:
            raise RuntimeError(f"{ns}: {other} is not reached over {dev}: {route.strip()}")
        outside = subprocess.run(
            [IP, "-n", ns, "route", "get", "1.1.1.1"], capture_output=True, text=True, timeout=30
        )
        if outside.returncode == 0:
            raise RuntimeError(f"{ns} can route outside its link: {outside.stdout.strip()}")


def _sshd(h: Hosts, ns: str, addr: str, tmp: Path) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    host_key = tmp / "host_ed25519"
    _keygen(host_key)
    config = tmp / "sshd_config"
    config.write_text(
        f"ListenAddress {addr}\nPort 22\nHostKey {host_key}\nPidFile none\n"
        f"AuthorizedKeysFile {tmp.parent / 'authorized_keys'}\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        "UsePAM no\nStrictModes no\nAllowAgentForwarding no\nX11Forwarding no\n"
        f"Subsystem sftp {SFTP_SERVER}\n"
    )
    log = tmp / "sshd.log"
    with log.open("ab") as err:
        proc = subprocess.Popen(
            in_ns(ns, [SSHD, "-D", "-e", "-f", str(config)]),
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
        )
    h.sshds.append(proc)
    deadline = time.monotonic() + 15
    while b"Server listening on" not in log.read_bytes():  # readiness, read from its log
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"sshd in {ns} did not start: {log.read_text()[-2000:]}")
        time.sleep(0.05)  # poll interval
    host_pub = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
    with h.known_hosts.open("a") as f:
        f.write(f"{addr} {host_pub}\n")


def two_hosts(tmp: Path) -> Hosts:
    tag = f"wb{os.getpid() % 100000}"
    net = f"{NET}.{os.getpid() % 250 + 1}"
    h = Hosts(
        server_ns=f"{tag}-srv", client_ns=f"{tag}-cli",
        server_addr=f"{net}.1", client_addr=f"{net}.2",
        server_dev=f"{tag}s", client_dev=f"{tag}c",
        client_key=tmp / "client_ed25519", known_hosts=tmp / "known_hosts",
    )  # fmt: skip
    try:
        for ns in (h.server_ns, h.client_ns):
            ip("netns", "add", ns)
        ip("link", "add", h.server_dev, "type", "veth", "peer", "name", h.client_dev)
        for ns, dev, addr in (
            (h.server_ns, h.server_dev, h.server_addr),
            (h.client_ns, h.client_dev, h.client_addr),
        ):
            ip("link", "set", dev, "netns", ns)
            ip("addr", "add", f"{addr}/24", "dev", dev, ns=ns)
            ip("link", "set", dev, "up", ns=ns)
            ip("link", "set", "lo", "up", ns=ns)
        _check_routes(h)
        tmp.mkdir(parents=True, exist_ok=True)
        _keygen(h.client_key)
        (tmp / "authorized_keys").write_text(h.client_key.with_suffix(".pub").read_text())
        h.known_hosts.write_text("")
        _sshd(h, h.server_ns, h.server_addr, tmp / "server")
        _sshd(h, h.client_ns, h.client_addr, tmp / "client")
        return h
    except BaseException:
        h.close()
        raise


def python() -> str:
    """This virtualenv's interpreter (the namespaces share the file system)."""
    return shutil.which("python", path=str(Path(sys.executable).parent)) or sys.executable
