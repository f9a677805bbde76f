"""Site stage 5: the generated config -> site/, by one of two engines.

mkdocs (the default): `mkdocs build --strict --clean`, run in this process. A separate
`python -m mkdocs` costs a second interpreter and a second import of yaml, jinja2 and
markdown: ~0.4 s, which was most of what an unchanged rebuild added to a bare mkdocs
build (harness/site/cache.py skips everything else). Its warnings are collected instead
of printed, and a strict build that fails raises SiteError carrying them. A plugin of
ours lets the build overlap it: mkdocs lists docs/ while the pages are still rendered.

Zensical (mkdocs-material's successor, `--engine zensical`): `zensical build --strict`
in a child process, whose output becomes the SiteError of a failed build. It has no
plugin API, so docs/ must be complete before it starts. It keeps a cache of rendered
pages in `<config dir>/.cache` (which is why the harness keeps its own elsewhere) and
empties site_dir itself. Its strict mode reports broken links but not a missing image.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.pages.context import SiteError

ENGINES = ("mkdocs", "zensical")
DEFAULT_ENGINE = "mkdocs"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def check_engine(engine: str, config_dir: Path, site_dir: Path) -> None:
    """Refuse, before any work, an engine that does not exist or cannot build there."""
    if engine not in ENGINES:
        raise SiteError(f"unknown site engine {engine!r}; known: {', '.join(ENGINES)}")
    if engine == "zensical" and importlib.util.find_spec("zensical") is None:
        raise SiteError(
            "zensical is not installed here: pip install -e '.[site-engines]' "
            "(./bootstrap.sh test installs it)"
        )
    if engine == "zensical" and not site_dir.resolve().is_relative_to(config_dir.resolve()):
        raise SiteError(
            f"zensical builds only into a folder below {config_dir.resolve()} "
            f"(the folder of docs/), not into {site_dir.resolve()}"
        )


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

    mkdocs first lists the files of docs/, then reads and converts every page, copies
    the other files into the site and writes every page. `before_read` is called once
    it has listed them, before it reads any page; `before_copy` once it has written
    every page: the files still empty when mkdocs copied them (charts and archives
    being made) are copied again after it. Until each is called, the files it completes
    need only exist: they can be empty while other processes write them. (Waiting for
    them before mkdocs writes the pages left one core idle for the half-second the
    theme's templates take.)
    """
    # Material prints a banner about MkDocs 2 unless this is set (it sets it itself after).
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException
    from mkdocs.plugins import BasePlugin

    class Waits(BasePlugin):
        # mkdocs 1.6: on_files comes after listing docs/ and before reading any page,
        # on_env after converting every page and before copying the other files,
        # on_post_build after writing every page.
        late: Sequence[Any] = ()  # set by on_env

        def on_files(self, files: Any, *, config: Any) -> Any:
            if before_read is not None:
                before_read()
            return files

        def on_env(self, env: Any, *, config: Any, files: Any) -> Any:
            # What is still empty now is being made: mkdocs copies it as it is.
            self.late = [
                f
                for f in files
                if not f.is_documentation_page() and f.abs_src_path and _empty(f.abs_src_path)
            ]
            return env

        def on_post_build(self, *, config: Any) -> None:
            if before_copy is not None:
                before_copy()
            for file in self.late:
                file.copy_file(dirty=False)

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


def _empty(path: str) -> bool:
    try:
        return os.stat(path).st_size == 0
    except OSError:
        return False


def build_zensical(config: Path) -> None:
    """`zensical build --strict` of `config` (its cache kept: no `--clean`); docs/ must be
    complete. A failed build raises SiteError carrying what Zensical printed."""
    env = {**os.environ, "NO_COLOR": "1"}
    argv = [sys.executable, "-m", "zensical", "build", "--strict", "-f", str(config)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        text = _ANSI.sub("", done.stdout + done.stderr).strip()
        # The traceback click prints adds nothing: Zensical's own report comes last.
        tail = text.rsplit("RuntimeError: ", 1)[-1] if "RuntimeError: " in text else text
        raise SiteError(f"zensical build --strict failed:\n{tail[-3000:]}")
