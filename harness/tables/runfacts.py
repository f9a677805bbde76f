"""Table stage: what a run's record says about where it measured, in words.

Takes run.json as a mapping (harness/raw/records.py) and returns display strings the
verdict, the pages and the terminal share: where the server and wrk ran and on which
CPUs ("server on CPU 0, wrk on CPU 1 of 2, same machine, over loopback"), the
project folder the run's recorded paths start with, so pages can show them relative
to it, and the server descriptions a run recorded as a reader should see them
(`recorded_prose`). Standard library only, no I/O.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Folders of the project that recorded paths pass through: the virtualenv, the harness
# (wrk's Lua reporter, the pre-fork launchers) and the apps (PYTHONPATH).
_UNDER_PROJECT = re.compile(r"(/[^\s'\"()=:;,]+?)/(?:\.venv|harness|apps)(?=/|$)")


def cpus_text(cpus: Sequence[int]) -> str:
    """[0] -> 'CPU 0'; [0, 1, 2, 5] -> 'CPUs 0–2, 5'."""
    values = sorted({int(c) for c in cpus})
    parts: list[str] = []
    start = prev = values[0]
    for c in [*values[1:], None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        parts.append(f"{start}" if start == prev else f"{start}–{prev}")
        if c is not None:
            start = prev = c
    return f"CPU{'s' if len(values) > 1 else ''} {', '.join(parts)}"


def pinning_text(run: Mapping[str, Any]) -> str:
    """Where the server and wrk ran, in words, from run.json."""
    s, host = run.get("settings") or {}, run.get("host") or {}
    if run.get("imported") or run.get("imported_from"):
        return "not recorded (imported from another tool's output)"
    hosts = run.get("hosts")
    server, client = s.get("server_cpus") or [], s.get("client_cpus") or []
    cores = host.get("cores")
    pinned = (
        f"server on {cpus_text(server)}, wrk on {cpus_text(client)}" if server and client else ""
    )
    if isinstance(hosts, Mapping) and isinstance(hosts.get("server"), Mapping):
        clients = [c for c in hosts.get("clients") or [] if isinstance(c, Mapping)]
        if len(clients) == 1 and clients[0].get("spec") == hosts["server"].get("spec"):
            return f"{pinned or 'server and wrk'} of one remote machine, same machine"
        others = f"{len(clients)} other machine{'s' if len(clients) != 1 else ''}"
        return f"server on its own machine, wrk on {others}, over the network"
    if pinned:
        return f"{pinned}{f' of {cores}' if cores else ''}, same machine, over loopback"
    shared = f"the machine's {cores} CPUs" if cores else "the machine's CPUs"
    return f"server and wrk not pinned, sharing {shared}, over loopback"


def one_machine(run: Mapping[str, Any]) -> bool:
    """Whether wrk and the servers ran on one machine (False when not recorded)."""
    if run.get("imported") or run.get("imported_from"):
        return False
    hosts = run.get("hosts")
    if not isinstance(hosts, Mapping) or not isinstance(hosts.get("server"), Mapping):
        return True
    clients = [c for c in hosts.get("clients") or [] if isinstance(c, Mapping)]
    return all(c.get("spec") == hosts["server"].get("spec") for c in clients)


def project_roots(run: Mapping[str, Any], cells: Iterable[Mapping[str, Any]] = ()) -> list[str]:
    """The folders the run's recorded paths start with: where the project was checked out
    on the machines that measured (found before its `.venv/`, `harness/` or `apps/`),
    most used first."""
    texts: list[str] = [str(v) for v in (run.get("versions") or {}).values()]
    texts += [str(a) for a in run.get("argv") or []]
    for c in cells:
        texts += [str(a) for a in c.get("server_argv") or []]
        texts += [str(a) for a in c.get("wrk_argv") or []]
        texts += [str(v) for v in (c.get("server_env") or {}).values()]
    found = Counter(m.group(1) for t in texts for m in _UNDER_PROJECT.finditer(t))
    return [root for root, _ in found.most_common()]


def relative_to(text: str, roots: Sequence[str]) -> str:
    """`text` with every path under one of `roots` made relative to it."""
    for root in sorted(roots, key=len, reverse=True):
        text = re.sub(re.escape(root) + r"/", "", text)
    return text


# Placeholders of the server descriptions that runs recorded before they were worded
# for readers, and what they mean: pages show the words (and the run's numbers).
LEGACY_WORDING = (
    ("for Budget.workers > 1, forks that many processes", "for more than one worker, forks "
     "one process per worker"),
    ("harness/serving/launchers/_prefork.py", "the harness's pre-fork launcher"),
    ("Budget.workers", "the run's worker count"),
    ("Budget.threads", "the run's thread count"),
    (" (FIELD-NOTES)", " (measured while building this tool)"),
)  # fmt: skip
RUN_COUNTS = {"the run's worker count": "workers", "the run's thread count": "server_threads"}


def recorded_prose(text: str, run: Mapping[str, Any]) -> str:
    """A server description as the run recorded it, for readers: older runs' placeholders
    said in words, the run's worker and thread counts beside them, and paths of the
    machine that measured made relative to the project."""
    text = relative_to(text, project_roots(run))
    for old, new in LEGACY_WORDING:
        text = text.replace(old, new)
    settings = run.get("settings") or {}
    for phrase, key in RUN_COUNTS.items():
        value = settings.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            text = text.replace(phrase, f"{phrase} ({value})")
    return text
