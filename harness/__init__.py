"""wsgi-baseline harness: bench side writes raw/, site side reads it (see STYLE.md).

`from harness import parse_wrk` stays light: `load_runs` (pandas) is imported on first use.
"""

from typing import Any

from harness.parse.wrk import RawFormatError, WrkResult, parse_wrk, parse_wrk_file

__all__ = ["RawFormatError", "WrkResult", "load_runs", "parse_wrk", "parse_wrk_file"]


def __getattr__(name: str) -> Any:
    if name == "load_runs":
        from harness.tables.dataset import load_runs

        return load_runs
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
