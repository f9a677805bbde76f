"""Raw stage: the preflight check as the raw records keep it, and its vocabulary.

The bench runs the check (harness/bench/preflight.py) and the table stage reads it back
from the cell sidecar (`preflight`: ok, the checks in order, what blocks a measurement);
both speak these words. Standard library only: the agents on remote hosts import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.parse.records import RawFormatError

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


@dataclass(frozen=True)
class PreflightRecord:
    """The preflight check as a sidecar keeps it (docs/raw-format.md, `preflight`)."""

    ok: bool
    blocking: str | None  # the failures that refuse the cell, or None
    ignored: bool  # blocking, but measured anyway (--ignore-preflight)
    checks: tuple[tuple[str, bool, str], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "blocking": self.blocking,
            "ignored": self.ignored,
            "checks": [list(c) for c in self.checks],
        }

    @classmethod
    def from_json(cls, doc: Any, path: str) -> PreflightRecord:
        if not isinstance(doc, dict) or not isinstance(doc.get("checks", []), list):
            raise RawFormatError("preflight: expected an object with a list of checks", path=path)
        checks = []
        for c in doc.get("checks", []):
            if not (isinstance(c, list) and len(c) == 3 and isinstance(c[1], bool)):
                raise RawFormatError(
                    f"preflight.checks: expected [name, passed, detail], found {c!r}", path=path
                )
            checks.append((str(c[0]), c[1], str(c[2])))
        return cls(doc.get("ok") is True, doc.get("blocking"), doc.get("ignored") is True,
                   tuple(checks))  # fmt: skip

    @property
    def failed(self) -> list[str]:
        """Every failed check as `name: detail`, blocking or not."""
        return [f"{name}: {detail}" for name, passed, detail in self.checks if not passed]
