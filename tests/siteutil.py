"""Test helper: the example site, built from the project's hand-written docs/."""

from __future__ import annotations

import shutil
from pathlib import Path


def build_example_site(root: Path, raw: Path, engine: str, site_url: str | None = None) -> Path:
    """The project's docs/ (hand-written pages only) copied under `root`, the site of
    `raw` built from it by `engine` into `root/site`; returns that folder."""
    from harness.paths import REPO_ROOT
    from harness.site.build import build_site

    shutil.copytree(REPO_ROOT / "docs", root / "docs", ignore=shutil.ignore_patterns("results"))
    (root / "docs" / "index.md").unlink(missing_ok=True)
    return build_site(raw, root / "docs", root / "site", engine=engine, site_url=site_url)
