"""Test helper: our own sshd on 127.0.0.1 — free port, generated keys, key-only auth.

`start_sshd(tmp)` generates a host key and a client key (ssh-keygen, no passphrase),
authorises the client key for the current user, writes a known_hosts line for the host
key, starts `/usr/sbin/sshd -D -e -f config` in its own process group and polls until
it sends its banner. `Sshd.stop()` ends the daemon and every connection it forked. The
system sshd and its configuration are never touched; only the privilege-separation
directory /run/sshd, which sshd insists on when started as root, is created if missing
(what the Debian service does at boot).
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


@dataclass
class Sshd:
    port: int
    client_key: Path
    known_hosts: Path
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def target(self) -> str:
        return f"{getpass.getuser()}@127.0.0.1:{self.port}"

    def connection_processes(self) -> list[psutil.Process]:
        """The per-connection sshd processes (children of the listener), not the sessions."""
        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [k for k in kids if _name(k) == "sshd"]

    def cut_connections(self) -> int:
        """SIGKILL every connection's sshd processes: the client sees the TCP link die."""
        procs = self.connection_processes()
        for p in procs:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        return len(procs)

    def pause_connections(self) -> list[psutil.Process]:
        """SIGSTOP every connection's sshd processes: the TCP link stays up but nothing
        flows either way, as when a network goes silent. Give them to `resume`."""
        procs = self.connection_processes()
        for p in procs:
            try:
                p.send_signal(signal.SIGSTOP)
            except psutil.NoSuchProcess:
                pass
        return procs

    @staticmethod
    def resume(procs: list[psutil.Process]) -> None:
        for p in procs:
            try:
                p.send_signal(signal.SIGCONT)
            except psutil.NoSuchProcess:
                pass

    def stop(self) -> None:
        self.cut_connections()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _name(p: psutil.Process) -> str:
    try:
        return p.name()
    except psutil.Error:
        return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)],
        check=True,
        timeout=30,
    )


def _banner(port: int, timeout_s: float) -> bool:
    """Poll until something on `port` speaks SSH (readiness, not a sleep)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-2.0"):
                    return True
        except OSError:
            time.sleep(0.02)  # poll interval
    return False


def start_sshd(tmp: Path) -> Sshd:
    tmp.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0 and not Path("/run/sshd").is_dir():
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    host_key, client_key = tmp / "host_ed25519", tmp / "client_ed25519"
    _keygen(host_key)
    _keygen(client_key)
    (tmp / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    host_pub = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
    for _attempt in range(3):
        port = _free_port()
        config = tmp / "sshd_config"
        config.write_text(
            f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {host_key}\nPidFile none\n"
            f"AuthorizedKeysFile {tmp / 'authorized_keys'}\n"
            "PubkeyAuthentication yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "UsePAM no\nStrictModes no\nAllowAgentForwarding no\nX11Forwarding no\n"
            f"Subsystem sftp {SFTP_SERVER}\n"
        )
        log = tmp / "sshd.log"
        with log.open("ab") as err:
            proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
            )
        if _banner(port, 10):
            known = tmp / "known_hosts"
            known.write_text(f"[127.0.0.1]:{port} {host_pub}\n")
            return Sshd(port, client_key, known, log, proc)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    raise RuntimeError(f"sshd did not start: {log.read_text()[-2000:]}")
