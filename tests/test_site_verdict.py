"""The site of the committed example run, as a stakeholder reads it (issue 14).

Built with each engine for a project path (`--site-url https://example.org/sub/`) from
the repository's raw/ (the example runs), served under /sub/ as GitHub Pages serves a
project site, and looked at in Debian's headless Chromium, light and dark, at 1,400 and
390 px: the verdict opens the home page with a ranked table per app, ties shown, and
charts whose smallest text stays readable. The built site carries no placeholder, no
reference to the developers' notes and no path of the machines involved; its 404 page
and sitemap work under the project path.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import re
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from siteutil import build_example_site

from harness.paths import RAW_DIR
from harness.paths import REPO_ROOT as REPO
from harness.site.buildrecord import read_build_record
from harness.tables.dataset import load_runs
from harness.tables.runfacts import project_roots
from harness.tables.verdict import run_verdict

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SITE_URL = "https://example.org/sub/"
PREFIX = "/sub/"
MIN_TEXT_PX = 9.0  # the smallest chart text, as rendered, at any width
MIN_CONTRAST = 3.0  # WCAG's minimum for graphics and large text

pytestmark = pytest.mark.site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Path:
    root = tmp_path_factory.mktemp(f"verdict-{engine}")
    return build_example_site(root, RAW_DIR, engine, site_url=SITE_URL)


@pytest.fixture(scope="module")
def subject() -> tuple[dict[str, Any], Any]:
    """The run the home page is about (the newest complete one) and its verdict."""
    runs = [json.loads(p.read_text()) for p in sorted(RAW_DIR.glob("*/run.json"))]
    run = [r for r in runs if r.get("status") == "complete"][-1]
    return run, run_verdict(load_runs(RAW_DIR / run["run_id"]), run)


def test_the_built_site_holds_no_placeholder_note_or_machine_path(
    site: Path, subject: tuple[dict[str, Any], Any]
) -> None:
    """Every file of site/ a reader can open, but the raw files offered as downloads
    (kept byte for byte, as the bench wrote them)."""
    cells = [json.loads(p.read_text()) for p in RAW_DIR.glob("*/*/*/*/c*-r*.json")]
    runs = [json.loads(p.read_text()) for p in RAW_DIR.glob("*/run.json")]
    measured_in = {r for run in runs for r in project_roots(run, cells)}
    assert measured_in  # where the example runs were measured (this clone or another)
    roots = measured_in | {str(REPO), str(site)}
    downloads = re.compile(r"^results/data/[^/]+/(run\.json|.*\.zip)$")
    checked = 0
    for path in site.rglob("*"):
        rel = path.relative_to(site).as_posix()
        if not path.is_file() or downloads.match(rel) or path.suffix in (".png", ".ico"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        checked += 1
        assert "Budget." not in text, rel
        assert "FIELD-NOTES" not in text, rel
        for root in roots:
            assert root + "/" not in text, (rel, root)
    assert checked > 30


def test_every_run_the_site_mentions_has_its_page_and_download(site: Path) -> None:
    """The newest run is the subject; the older example run is named by the comparison
    the site makes on its own, so it gets its page and its raw archive too."""
    runs = {p.parent.name for p in RAW_DIR.glob("*/run.json")}
    pages = [p.read_text(encoding="utf-8") for p in site.rglob("*.html")]
    mentioned = {run for run in runs if any(run in text for text in pages)}
    assert len(mentioned) >= 2
    for run in mentioned:
        assert (site / "results" / "runs" / f"{run}.html").is_file(), run
        assert (site / "results" / "data" / run / f"{run}-raw.zip").is_file(), run


def test_404_and_sitemap_work_under_a_project_path(site: Path, engine: str) -> None:
    assert read_build_record(site)["site_url"] == SITE_URL
    locs = [e.text or "" for e in ET.parse(site / "sitemap.xml").getroot().iter() if e.text]
    pages = [loc for loc in locs if loc.startswith("https://")]
    assert f"{SITE_URL}index.html" in pages and f"{SITE_URL}results/choose.html" in pages
    for loc in pages:
        assert loc.startswith(SITE_URL), loc
        assert (site / loc.removeprefix(SITE_URL)).is_file(), loc
    with served(site) as base, browser() as context:
        page = context.new_page()
        response = page.goto(base + "sub/no/such/page.html")
        assert response is not None and response.status == 404
        # The page's styles, script and links all resolve under /sub/.
        sheets = page.evaluate("Array.from(document.styleSheets, s => s.cssRules.length)")
        assert sheets and all(n > 0 for n in sheets)
        assert page.locator(".md-header").is_visible()
        page.locator("a.md-header__button.md-logo").click()
        page.wait_for_url(base + "sub/index.html")
        assert page.locator("h2#verdict").is_visible()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1400, 390])
def test_the_verdict_opens_the_home_page(
    site: Path, subject: tuple[dict[str, Any], Any], scheme: str, width: int
) -> None:
    _, verdict = subject
    with served(site) as base, browser(width, scheme) as context:
        page = context.new_page()
        page.goto(base + "sub/index.html", wait_until="networkidle")
        expected = "slate" if scheme == "dark" else "default"
        assert page.get_attribute("body", "data-md-color-scheme") == expected
        headings = page.eval_on_selector_all("article h2", "hs => hs.map(h => h.id)")
        assert headings[0] == "verdict"  # the first section of the page
        notice = page.locator(".admonition.warning", has_text="Indicative only")
        assert notice.is_visible() and "quick profile" in notice.inner_text()
        for app in verdict.apps:
            rows = ranked_rows(page, app.connections, app.rows[0].server, len(app.rows))
            assert [r[1] for r in rows] == [r.server for r in app.rows]
            assert [r[0] for r in rows] == [str(r.place) if r.place else "—" for r in app.rows]
            for shown, r in zip(rows, app.rows, strict=True):
                assert shown[2] == f"{r.requests_per_sec:,.0f}", r.server
                if r.tied_with:
                    assert "tied with" in shown[-1], r.server  # ties are said as ties
        assert any(r.tied_with for a in verdict.apps for r in a.rows)  # this run has ties
        charts = chart_text(page)
        assert len(charts) >= 2 * len(verdict.apps)  # a bar chart and a line chart per app
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        for src, smallest_px, ink in charts:
            assert smallest_px >= MIN_TEXT_PX, (src, smallest_px, width)
            assert contrast(ink, background) >= MIN_CONTRAST, (src, ink, background)
        page.screenshot(path=str(site.parent / f"home-{scheme}-{width}.png"), full_page=True)


def ranked_rows(page: Any, connections: int, first: str, n: int) -> list[list[str]]:
    """The rows of the verdict table whose first ranked server is `first`."""
    tables = page.eval_on_selector_all(
        "article table",
        """ts => ts.filter(t => t.rows[0].cells[0].innerText.trim() === "Place").map(t =>
            Array.from(t.rows).slice(1).map(r => Array.from(r.cells, c => {
                const copy = c.cloneNode(true);
                copy.querySelectorAll("a.flag").forEach(b => b.remove());
                return copy.textContent.trim();
            })))""",
    )
    found = [t for t in tables if t and t[0][1] == first and len(t) == n]
    assert found, f"no verdict table ranking {first} first ({connections})"
    return list(found[0])


def chart_text(page: Any) -> list[tuple[str, float, str]]:
    """Per chart of the article: its source, its smallest text as rendered (CSS px) and
    the colour of its text."""
    out = []
    for src, width in page.eval_on_selector_all(
        "article img", "is => is.map(i => [i.src, i.getBoundingClientRect().width])"
    ):
        svg = page.evaluate("u => fetch(u).then(r => r.text())", src)
        view = re.search(r'viewBox="0 0 ([\d.]+) [\d.]+"', svg)
        sizes = [float(s) for s in re.findall(r"font-size: ([\d.]+)px", svg)]
        inks = set(re.findall(r"<text[^>]*style=\"[^\"]*fill: (#[0-9a-f]{6})", svg))
        assert view and sizes, src
        out.append(
            (src, min(sizes) * width / float(view.group(1)), inks.pop() if inks else "#888888")
        )
    return out


def contrast(ink: str, background: str) -> float:
    """WCAG contrast ratio of a #rrggbb colour on an rgb()/rgba() CSS colour."""

    def luminance(rgb: tuple[float, ...]) -> float:
        c = [x / 255 for x in rgb]
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    fg = tuple(int(ink[i : i + 2], 16) for i in (1, 3, 5))
    bg = tuple(float(x) for x in re.findall(r"[\d.]+", background)[:3])
    hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


class ProjectPages(http.server.SimpleHTTPRequestHandler):
    """Serves the site under /sub/ and answers every missing path with its 404.html, as
    GitHub Pages does for a project site."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_head(self) -> Any:
        path = urlsplit(self.path).path
        if not path.startswith(PREFIX):
            return self._not_found()
        self.path = "/" + path.removeprefix(PREFIX)
        if not Path(self.translate_path(self.path)).exists():
            return self._not_found()
        return super().send_head()

    def _not_found(self) -> Any:
        body = (Path(self.directory) / "404.html").read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


class served:
    """The site served from 127.0.0.1 under /sub/: `with served(site) as base_url`."""

    def __init__(self, site: Path) -> None:
        handler = functools.partial(ProjectPages, directory=str(site))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()


class browser:
    """A Chromium context at `width` px in the `scheme` colour scheme whose every request
    must stay on this machine."""

    def __init__(self, width: int = 1400, scheme: str = "light") -> None:
        self.width, self.scheme = width, scheme

    def __enter__(self) -> Any:
        if not CHROMIUM.exists():
            pytest.skip("needs Debian's chromium")
        sync = pytest.importorskip("playwright.sync_api")
        self.p = sync.sync_playwright().start()
        self.b = self.p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        context = self.b.new_context(
            viewport={"width": self.width, "height": 900}, color_scheme=self.scheme
        )
        self.outside: list[str] = []

        def check(route: Any) -> None:
            url = route.request.url
            if url.startswith(("http://127.0.0.1:", "data:", "blob:")):
                route.continue_()
            else:
                self.outside.append(url)
                route.abort()

        context.route("**/*", check)
        return context

    def __exit__(self, *exc: object) -> None:
        self.b.close()
        self.p.stop()
        assert self.outside == [], f"requests left localhost: {self.outside}"
