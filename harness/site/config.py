"""Site stage: mkdocs.yml and the build's nav additions -> the one config both engines read.

`write_config` writes `.mkdocs.generated.yml` beside docs/: every setting of mkdocs.yml,
copied (flat: no `INHERIT`), with `docs_dir` and `site_dir` relative to the config's own
folder, and the nav grown by one entry per server, run and comparison. Both engines
build it the same way. Zensical panics on an absolute `docs_dir`, refuses a `site_dir`
outside the config's folder, and through `INHERIT` appends lists (the nav twice) where
mkdocs replaces them; one flat file with relative paths has none of those problems.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from harness.pages.context import SiteError
from harness.paths import BASE_CONFIG

GENERATED_CONFIG = ".mkdocs.generated.yml"  # beside docs/; a dotfile, and git-ignored


def check_site_url(url: str) -> str:
    """An http(s) address with a host, ending with "/" (the folder the site is served
    from), or a SiteError saying what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SiteError(
            f"--site-url: expected an http(s) address such as https://org.github.io/project/, "
            f"got {url!r}"
        )
    if parts.query or parts.fragment:
        raise SiteError(f"--site-url: {url!r} has a query or fragment; give the folder only")
    return url if url.endswith("/") else url + "/"


def expand_nav(nav: Any, extra: Mapping[str, Sequence[str]], titles: Mapping[str, str]) -> Any:
    """The base nav with each `Title: index.md` listed in `extra` turned into a section."""
    if isinstance(nav, list):
        return [expand_nav(item, extra, titles) for item in nav]
    if isinstance(nav, dict):
        out = {}
        for title, value in nav.items():
            if isinstance(value, str) and value in extra:
                value = [value, *({titles.get(p, p): p} for p in extra[value])]
            out[title] = expand_nav(value, extra, titles)
        return out
    return nav


def config_path(docs_dir: Path) -> Path:
    """Where the generated config of `docs_dir` goes: beside it."""
    return docs_dir.resolve().parent / GENERATED_CONFIG


def site_config(
    docs_dir: Path,
    site_dir: Path,
    extra: Mapping[str, Sequence[str]],
    base: Path = BASE_CONFIG,
    site_url: str | None = None,
) -> dict[str, Any]:
    """mkdocs.yml with relative `docs_dir` and `site_dir`, the full nav and, when given,
    the address the site is served from (`site_url`): both engines then write 404.html
    with links under its path and list every page in sitemap.xml."""
    config = yaml.safe_load(base.read_text(encoding="utf-8"))
    if site_url:
        config["site_url"] = site_url
    folder = config_path(docs_dir).parent
    titles = {p: Path(p).stem for paths in extra.values() for p in paths}
    config["docs_dir"] = Path(os.path.relpath(docs_dir.resolve(), folder)).as_posix()
    config["site_dir"] = Path(os.path.relpath(site_dir.resolve(), folder)).as_posix()
    config["nav"] = expand_nav(config["nav"], extra, titles)
    return dict(config)


def write_config(
    docs_dir: Path,
    site_dir: Path,
    extra: Mapping[str, Sequence[str]],
    site_url: str | None = None,
) -> Path:
    """Write the config of a build of `docs_dir` into `site_dir` beside docs/; its path."""
    path = config_path(docs_dir)
    text = yaml.safe_dump(
        site_config(docs_dir, site_dir, extra, site_url=site_url),
        sort_keys=False,
        allow_unicode=True,
    )
    header = (
        "# Written by harness/site/config.py on every build: mkdocs.yml with relative paths\n"
        "# and the full nav, for mkdocs and Zensical alike. Edit mkdocs.yml instead.\n"
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(header + text, encoding="utf-8")
    tmp.replace(path)
    return path
