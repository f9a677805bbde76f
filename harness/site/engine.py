"""Site stage 5: `mkdocs build --strict --clean`, run in this process.

A separate `python -m mkdocs` costs a second interpreter and a second import of yaml,
jinja2 and markdown: ~0.4 s, which was most of what an unchanged rebuild added to a
bare mkdocs build (harness/site/cache.py skips everything else). Here mkdocs runs in the
build's own process; its warnings are collected instead of printed, and a strict
build that fails raises SiteError carrying them, as the command's output did before.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.pages.context import SiteError


class _Collect(logging.Handler):
    """Keeps the text of every warning mkdocs logs during one build."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} - {record.getMessage()}")


def build_strict(
    config: Path,
    before_read: Callable[[], object] | None = None,
    before_copy: Callable[[], object] | None = None,
) -> None:
    """Build the site of `config` like `mkdocs build --strict --clean`, in this process.

    mkdocs first lists the files of docs/, then reads and converts every page, then
    copies the other files into the site. `before_read` is called once it has listed
    them, before it reads any page; `before_copy` once it has converted every page,
    before it copies the other files. Until each is called, the files it completes need
    only exist: they can be empty while other processes write them.
    """
    # Material prints a banner about MkDocs 2 unless this is set (it sets it itself after).
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException
    from mkdocs.plugins import BasePlugin

    class Waits(BasePlugin):
        # mkdocs 1.6: on_files comes after listing docs/ and before reading any page,
        # on_env after converting every page and before copying the other files.
        def on_files(self, files: Any, *, config: Any) -> Any:
            if before_read is not None:
                before_read()
            return files

        def on_env(self, env: Any, *, config: Any, files: Any) -> Any:
            if before_copy is not None:
                before_copy()
            return env

    logger = logging.getLogger("mkdocs")
    collect = _Collect()
    # mkdocs's own handler (the CLI's) is not installed here: ours takes the warnings, so
    # Python's last-resort handler does not print them to stderr.
    logger.addHandler(collect)
    try:
        # dirty=False (the default) empties site_dir first, as --clean does.
        loaded = load_config(config_file=str(config), strict=True)
        if before_read is not None or before_copy is not None:
            loaded.plugins["harness-waits"] = Waits()
        build(loaded)
    except MkDocsException as e:
        text = "\n".join(collect.lines)
        raise SiteError(f"mkdocs build --strict failed:\n{text}\n{e}") from None
    finally:
        logger.removeHandler(collect)
