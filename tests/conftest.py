"""Test-suite policy: where everything a test needs is installed (CI, `./bootstrap.sh
test`, which sets WSGI_BASELINE_NO_SKIP=1), a skipped test is a failure, so a feature's
tests never stop running silently because a tool went missing."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

NO_SKIP = os.environ.get("WSGI_BASELINE_NO_SKIP") == "1"


def _fail_skip(report: Any) -> None:
    if NO_SKIP and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped where every tool is installed: {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Generator[None, Any, None]:
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: Any) -> Generator[None, Any, None]:
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.fixture(scope="module", params=["mkdocs", "zensical"])
def engine(request: pytest.FixtureRequest) -> str:
    """Each site engine in turn (Zensical needs the site-engines extra)."""
    if request.param == "zensical":
        pytest.importorskip("zensical", reason="needs the site-engines extra")
    return str(request.param)
