"""Raw stage: the records the raw store keeps, and the vocabulary they are written in.

The preflight check's result as a cell sidecar records it (`preflight`: ok, the checks
in order, what blocks a measurement), shared by the bench, which runs the check, and the
table stage, which reads it back. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

ANNOUNCED_CLOSE = "server sent Connection: close: every request would need a new connection"
EOF_FRAMING = (
    "no Content-Length and not chunked: the body ends at connection close, "
    "so wrk would count every response as a read error"
)


@dataclass(frozen=True)
class PreflightResult:
    ok: bool
    checks: list[tuple[str, bool, str]]  # (name, passed, detail) in the order checked
    reason: str | None  # the failed checks as "name: detail; …", None when ok


def preflight_result(checks: list[tuple[str, bool, str]]) -> PreflightResult:
    failed = [f"{name}: {detail}" for name, passed, detail in checks if not passed]
    return PreflightResult(not failed, checks, "; ".join(failed) or None)


def blocking(result: PreflightResult) -> str | None:
    """The failures that make wrk's figures wrong, or None if the server may be measured.

    An announced `Connection: close` (gunicorn's sync worker, by design) fails the
    keep-alive check but only costs a reconnect per request: wrk honours it and counts
    no error. Everything else (wrong answer, EOF framing, a silent close) blocks.
    """
    failed = [
        f"{name}: {detail}"
        for name, passed, detail in result.checks
        if not passed and detail != ANNOUNCED_CLOSE
    ]
    return "; ".join(failed) or None
