"""One generated config, two engines: mkdocs and Zensical build the same site.

The fixture run and the committed example run (raw/) are each built with both engines
from the same docs/; the page sets must be identical, every link and image of every
page must resolve inside the site, and no page or stylesheet may refer to another host.
Zensical's strict mode does not report a missing image, so the links are checked here,
from the HTML, for both. The browser tests (tests/test_browser.py) look at both sites'
search and requests.
"""

from __future__ import annotations

import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from invoke import Context

import tasks
from harness.pages.context import SiteError
from harness.paths import GOLDEN_RAW, RAW_DIR
from harness.paths import REPO_ROOT as REPO
from harness.perf.probe import hand_written_docs
from harness.site.build import build_site
from harness.site.cache import CACHE_NAME, read_log
from harness.site.config import GENERATED_CONFIG

pytest.importorskip("zensical", reason="needs the site-engines extra (./bootstrap.sh test)")

ENGINES = ("mkdocs", "zensical")
# Hosts a theme reaches for when a setting is left at its default (fonts, CDNs, the
# generator link, repository facts).
OUTSIDE = ("fonts.googleapis", "fonts.gstatic", "unpkg.com", "cdn.jsdelivr",
           "squidfunk.github.io", "zensical.org", "api.github.com")  # fmt: skip


def build_both(raw: Path, root: Path) -> dict[str, Path]:
    docs = hand_written_docs(root / "docs")
    return {e: build_site(raw, docs, root / f"site-{e}", runs="all", engine=e) for e in ENGINES}


@pytest.fixture(scope="module", params=["fixture", "example"])
def sites(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The fixture runs, and the committed example run(s) in raw/, built by both engines."""
    raw = GOLDEN_RAW if request.param == "fixture" else RAW_DIR
    return build_both(raw, tmp_path_factory.mktemp(f"engines-{request.param}"))


def pages(site: Path) -> set[str]:
    return {p.relative_to(site).as_posix() for p in site.rglob("*.html")}


class Refs(HTMLParser):
    """Every URL a page refers to (href, src) and every id it defines."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.urls.append(value)
            if name == "id" and value:
                self.ids.add(value)


def refs(path: Path) -> Refs:
    parser = Refs()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_config_is_flat_with_relative_paths(sites: dict[str, Path]) -> None:
    config = sites["mkdocs"].parent / GENERATED_CONFIG
    doc = yaml.safe_load(config.read_text())
    assert "INHERIT" not in doc
    assert doc["docs_dir"] == "docs" and doc["site_dir"] == "site-zensical"  # built last
    assert doc["theme"]["variant"] == "classic"  # Material's look in Zensical too
    titles = [next(iter(item)) for item in doc["nav"]]
    assert titles == [
        "Home",
        "How to choose",
        "Results",
        "About",
    ]  # once each: no list appended twice


def test_both_engines_build_the_same_pages(sites: dict[str, Path]) -> None:
    mkdocs, zensical = (pages(sites[e]) for e in ENGINES)
    assert mkdocs == zensical
    assert {"index.html", "results/data.html", "results/perf.html"} <= mkdocs


@pytest.mark.parametrize("engine", ENGINES)
def test_every_link_and_image_resolves(sites: dict[str, Path], engine: str) -> None:
    site = sites[engine]
    ids: dict[Path, set[str]] = {}
    broken = []
    for page in sorted(site.rglob("*.html")):
        if page.name == "404.html" and page.parent == site:
            continue  # served for any missing path, so its links are from the root: /…
        for url in refs(page).urls:
            parts = urlsplit(url)
            if parts.scheme or url.startswith("//"):
                continue  # outside references: test_no_outside_references
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_relative_to(site.resolve()) or not target.is_file():
                broken.append(f"{page.relative_to(site)}: {url}")
            elif parts.fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = refs(target).ids
                if unquote(parts.fragment) not in ids[target]:
                    broken.append(f"{page.relative_to(site)}: {url} (no such anchor)")
    assert broken == []


@pytest.mark.parametrize("engine", ENGINES)
def test_no_outside_references(sites: dict[str, Path], engine: str) -> None:
    """No page or stylesheet loads or links anything from another host: no fonts, CDNs,
    generator or repository links (the browser tests check what pages request)."""
    site = sites[engine]
    offenders = []
    for path in site.rglob("*"):
        if path.suffix not in (".html", ".css") or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{path.relative_to(site)}: {n}" for n in OUTSIDE if n in text]
        if path.suffix == ".html":
            for url in refs(path).urls:
                scheme = urlsplit(url).scheme
                if url.startswith("//") or scheme not in ("", "mailto"):
                    offenders.append(f"{path.relative_to(site)}: {url}")
    assert offenders == []


def test_harness_cache_outlives_zensical_clean(tmp_path: Path) -> None:
    """Zensical caches in <config dir>/.cache and `--clean` deletes that folder: the
    harness's cache is elsewhere, so a clean build leaves the next one unchanged."""
    build_site(GOLDEN_RAW, hand_written_docs(tmp_path / "docs"), tmp_path / "site",
               engine="zensical")  # fmt: skip
    assert (tmp_path / ".cache").is_dir() and (tmp_path / CACHE_NAME / "charts").is_dir()
    argv = [sys.executable, "-m", "zensical", "build", "--clean"]
    subprocess.run([*argv, "-f", str(tmp_path / GENERATED_CONFIG)], check=True,
                   capture_output=True)  # fmt: skip
    build_site(GOLDEN_RAW, tmp_path / "docs", tmp_path / "site", engine="zensical")
    assert read_log(tmp_path / CACHE_NAME)["generated"] is False


def test_engine_option_of_the_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "DOCS", hand_written_docs(tmp_path / "docs"))
    monkeypatch.setattr(tasks, "SITE", tmp_path / "site")
    tasks.build_site.body(Context(), raw=str(GOLDEN_RAW), engine="zensical")
    assert read_log(tmp_path / CACHE_NAME)["engine"] == "zensical"
    assert (tmp_path / "site/search.json").is_file()  # Zensical's search index


def test_engine_errors_are_one_line(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "invoke", "build-site", "--engine", "hugo"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: unknown site engine 'hugo'; known: mkdocs, zensical"
    with pytest.raises(SiteError, match="zensical builds only into a folder below"):
        build_site(GOLDEN_RAW, tmp_path / "a" / "docs", tmp_path / "b" / "site", engine="zensical")


def test_a_broken_link_fails_the_zensical_build(tmp_path: Path) -> None:
    docs = hand_written_docs(tmp_path / "docs")
    with open(docs / "schema.md", "a", encoding="utf-8") as f:
        f.write("\n[gone](no-such-page.md)\n")
    with pytest.raises(SiteError, match="zensical build --strict failed"):
        build_site(GOLDEN_RAW, docs, tmp_path / "site", engine="zensical")
