"""Bench side: the kernel's view of one TCP port — accept queue and established connections.

`port_state(port) -> PortState` says how many connections wait in the listen socket's
accept queue (handshake done, not yet accept()ed by the server) and how many
server-side connections of that port are ESTABLISHED (the accept queue included).
wrk cannot see a connection that never gets an answer; the kernel can.

The accept queue alone is cheap (the kernel walks only its listening sockets: 0.5 ms);
counting established connections walks every TCP socket of the host, TIME_WAIT
included (37 ms with 83,000 of them while other benchmarks ran), so callers may skip
it with `established=False`.

Two sources, same numbers (tests/test_sampler.py checks that they agree):

- NETLINK_INET_DIAG (what `ss` uses), preferred. The kernel filters by state, so the
  thousands of TIME_WAIT sockets a connection-closing server leaves behind cost nothing,
  and no text is formatted. Needs no root and no subprocess.
- /proc/net/tcp and tcp6, the fallback where netlink is refused. Also root-free and
  subprocess-free, but the kernel formats one line per socket of every state: 47 ms per
  read with 14,700 sockets (mostly TIME_WAIT) on the 2-core test machine, too much at
  four samples a second.

For a LISTEN socket both report the accept queue as the receive queue (`sk_ack_backlog`).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from pathlib import Path

_TCP_ESTABLISHED, _TCP_LISTEN = 1, 10
_NETLINK_INET_DIAG, _SOCK_DIAG_BY_FAMILY = 4, 20
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
# inet_diag_req_v2: family, protocol, ext, pad, states bitmask, zeroed 48-byte sockid.
_REQ = struct.Struct("=BBBxI48x")
# inet_diag_msg: family, state, timer, retrans, then sockid starting with sport (big
# endian); after the 48-byte sockid: expires, rqueue, wqueue, uid, inode.
_MSG_STATE, _MSG_SPORT, _MSG_RQUEUE = 1, 4, 56


@dataclass(frozen=True)
class PortState:
    listening: bool  # a LISTEN socket on the port was found
    accept_queue: int  # connections waiting to be accept()ed (0 when not listening)
    established: (
        int | None
    )  # server-side ESTABLISHED connections, queue included; None: not counted


def port_state(port: int, established: bool = True) -> PortState:
    """The accept queue and established connections of `port` now (IPv4 and IPv6)."""
    try:
        return from_netlink(port, established)
    except OSError:
        return from_proc(port, established)


def from_netlink(port: int, established: bool = True) -> PortState:
    counts = [0, 0, 0]  # listening sockets, accept queue, established
    # LISTEN alone makes the kernel skip the table of connected sockets entirely.
    states = (1 << _TCP_LISTEN) | ((1 << _TCP_ESTABLISHED) if established else 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_INET_DIAG) as nl:
        nl.settimeout(2.0)  # a dump never blocks for long; bound it anyway
        for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1):
            body = _REQ.pack(family, socket.IPPROTO_TCP, 0, states)
            head = _NLMSG_HDR.pack(
                _NLMSG_HDR.size + len(body),
                _SOCK_DIAG_BY_FAMILY,
                _NLM_F_REQUEST | _NLM_F_DUMP,
                seq,
                0,
            )
            nl.send(head + body)
            _read_dump(nl, port, counts)
    return PortState(counts[0] > 0, counts[1], counts[2] if established else None)


def _read_dump(nl: socket.socket, port: int, counts: list[int]) -> None:
    # Port filtering happens here, not with kernel bytecode: simpler, and the state
    # filter has already dropped the TIME_WAIT crowd that makes /proc slow.
    while True:
        data = nl.recv(65536)
        offset = 0
        while offset + _NLMSG_HDR.size <= len(data):
            length, kind, _flags, _seq, _pid = _NLMSG_HDR.unpack_from(data, offset)
            if kind == _NLMSG_DONE:
                return
            if kind == _NLMSG_ERROR:
                (err,) = struct.unpack_from("=i", data, offset + _NLMSG_HDR.size)
                raise OSError(-err, "inet_diag dump refused")
            msg = offset + _NLMSG_HDR.size
            (sport,) = struct.unpack_from(">H", data, msg + _MSG_SPORT)
            if sport == port:
                if data[msg + _MSG_STATE] == _TCP_LISTEN:
                    (rqueue,) = struct.unpack_from("=I", data, msg + _MSG_RQUEUE)
                    counts[0] += 1
                    counts[1] += rqueue
                else:
                    counts[2] += 1
            if length < _NLMSG_HDR.size:
                raise OSError("malformed netlink message")
            offset += (length + 3) & ~3  # messages are 4-byte aligned


def from_proc(port: int, established: bool = True, root: Path = Path("/proc/net")) -> PortState:
    listening, queue, count = False, 0, 0
    # Field 2 is local "ADDR:PORT" in hex; checking its end is enough to pick our port
    # and avoids splitting the other lines.
    suffix = f":{port:04X} ".encode()
    for name in ("tcp", "tcp6"):
        try:
            data = (root / name).read_bytes()
        except OSError:
            continue
        for line in data.splitlines()[1:]:
            fields = line.split(None, 5)
            if len(fields) < 5 or not (fields[1] + b" ").endswith(suffix):
                continue
            state = int(fields[3], 16)
            if state == _TCP_LISTEN:
                listening = True
                queue += int(fields[4].split(b":")[1], 16)  # tx_queue:rx_queue
            elif state == _TCP_ESTABLISHED:
                count += 1
    return PortState(listening, queue, count if established else None)
