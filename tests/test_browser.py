"""The built site in a real browser: Debian's headless Chromium driven by Playwright.

Builds the site from the fixture run with each engine (mkdocs, and Zensical when the
site-engines extra is installed), serves it from 127.0.0.1 and also opens it from disk.
Every request the pages make is routed through a check that fails on anything but this
server or a file: URL. Every test runs on both sites; only search looks different.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from siteutil import build_example_site

from harness.paths import GOLDEN_RAW
from harness.tables.dataset import load_runs

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SUBJECT = "20261126T145156Z-fixture"

pytestmark = [
    pytest.mark.site,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
]
playwright = pytest.importorskip("playwright.sync_api")


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Path:
    return build_example_site(tmp_path_factory.mktemp(f"browser-{engine}"), GOLDEN_RAW, engine)


def search(page: Any, engine: str, word: str) -> list[str]:
    """Type `word` into the engine's search and return the pages of the results. mkdocs
    has a search field in the header; Zensical a button that opens a search dialog."""
    if engine == "zensical":
        page.click("button.md-search__button")
        results = "dialog[aria-label=Search] a[role=option]"
    else:
        page.click("input.md-search__input")
        results = ".md-search-result__item a"
    page.keyboard.type(word, delay=20)
    page.wait_for_selector(results, timeout=15_000)
    hrefs = page.eval_on_selector_all(results, "as => as.map(a => a.href)")
    return [h.split("?")[0].split("#")[0] for h in hrefs]


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    thread.join()


@pytest.fixture()
def browser(tmp_path: Path, base_url: str) -> Iterator[tuple[Any, list[str]]]:
    """A fresh Chromium profile whose every request must stay on this machine."""
    outside: list[str] = []

    def check(route: Any) -> None:
        url = route.request.url
        if url.startswith((base_url, "file://", "data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    with playwright.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        context.route("**/*", check)
        yield context, outside
        context.close()
    assert outside == [], f"requests left localhost: {outside}"


def expected() -> dict[tuple[str, str, int], tuple[float, float]]:
    """Mean req/s and mean p99 (ms) of the ok repeats, straight from the table.

    A repeat without any response counts in req/s (it measured 0) but has no latency.
    """
    df = load_runs(GOLDEN_RAW)
    ok = df[(df["run_id"] == SUBJECT) & (df["status"] == "ok")]
    keys = ["server", "app", "connections"]
    rps = ok.groupby(keys)["requests_per_sec"].mean()
    p99 = ok[ok["requests"] > 0].groupby(keys)["latency_p99_ms"].mean()
    return {
        (str(k[0]), str(k[1]), int(k[2])): (float(v), float(p99.get(k, float("nan"))))
        for k, v in rps.items()
        if isinstance(k, tuple)
    }


def table(page: Any, index: int, first_header: str | None = None) -> list[list[str]]:
    """The cells of the index-th table of the article (among those whose first header
    cell is `first_header`, when given), without their flag badges."""
    return page.eval_on_selector_all(
        "article table",
        """(ts, [index, head]) => {
            const chosen = ts.filter(t => head === null || t.rows[0].cells[0].innerText === head);
            const text = c => {
                const copy = c.cloneNode(true);
                copy.querySelectorAll("a.flag").forEach(b => b.remove());
                return copy.textContent.trim();
            };
            return Array.from(chosen[index].rows, r => Array.from(r.cells, text));
        }""",
        [index, first_header],
    )


def assert_charts_loaded(page: Any) -> int:
    images = page.eval_on_selector_all(
        "article img", "is => is.map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"
    )
    assert images, "no chart on the page"
    for src, complete, width in images:
        assert complete and width > 0, f"chart not loaded: {src}"
    return len(images)


def test_home_headline_matches_data(browser: tuple[Any, list[str]], base_url: str) -> None:
    page = browser[0].new_page()
    page.goto(base_url + "index.html")
    assert "When, where and how" in page.inner_text("article")
    assert_charts_loaded(page)
    means = expected()
    rps = table(page, 0, "Server")  # the verdict's tables come first; see test_site_verdict
    assert rps[0] == ["Server", "c=5", "c=10"]
    for server, *cells in rps[1:]:
        for conns, text in zip((5, 10), cells, strict=True):
            assert text == f"{means[(server, 'raw', conns)][0]:,.0f}", (server, conns)
    p99 = {row[0]: row[1:] for row in table(page, 1, "Server")[1:]}
    assert p99["gunicorn"] == [f"{means[('gunicorn', 'raw', c)][1]:.2f}" for c in (5, 10)]
    assert p99["waitress"][1] == "—"  # no response at all: not measured, not 0 ms


def test_server_page(browser: tuple[Any, list[str]], base_url: str) -> None:
    page = browser[0].new_page()
    page.goto(base_url + "results/servers/gunicorn.html")
    assert assert_charts_loaded(page) == 2  # throughput, latency (no errors: no error chart)
    means = expected()
    rows = table(page, 0, "App")
    assert rows[0][:3] == ["App", "Connections", "req/s"]
    for app, conns, rps, *_ in rows[1:]:
        assert rps == f"{means[('gunicorn', app, int(conns))][0]:,.0f}"
    failed = [r for r in rows if r[0] == "flask" and r[1] == "10"][0]
    repeats = failed[rows[0].index("Repeats")]
    assert repeats.startswith("1/2 ok; 1 failed: server exited with code 3")
    # Sortable: a click on a header sorts by it.
    header = page.locator("article table th", has_text="req/s 95 % CI").first
    header.click()
    assert header.get_attribute("aria-sort") in (
        "ascending", "descending",
    )  # fmt: skip


def test_overhead_page(browser: tuple[Any, list[str]], base_url: str) -> None:
    page = browser[0].new_page()
    page.goto(base_url + "results/overhead.html")
    assert_charts_loaded(page)
    means = expected()
    rows = {(r[0], r[3]): r for r in table(page, 0)[1:]}
    share = means[("gunicorn", "flask", 5)][0] / means[("gunicorn", "raw", 5)][0]
    assert rows[("gunicorn", "5")][4] == f"{share * 100:.1f} %"
    assert rows[("waitress", "10")][4] == "—"


def test_search_and_dark_mode(browser: tuple[Any, list[str]], base_url: str, engine: str) -> None:
    page = browser[0].new_page()
    page.goto(base_url + "index.html", wait_until="networkidle")  # search index loaded
    found = search(page, engine, "waitress")
    assert base_url + "results/servers/waitress.html" in found
    page.keyboard.press("Escape")
    scheme = page.get_attribute("body", "data-md-color-scheme")
    page.click("form[data-md-component=palette] label:visible")
    assert page.get_attribute("body", "data-md-color-scheme") != scheme


def test_opened_from_disk(browser: tuple[Any, list[str]], site: Path, engine: str) -> None:
    page = browser[0].new_page()
    for name in ("index.html", "results/servers/waitress.html", "results/overhead.html"):
        page.goto((site / name).as_uri())
        assert_charts_loaded(page)
    page.goto((site / "index.html").as_uri(), wait_until="networkidle")
    # Search works from disk too (mkdocs: the iframe-worker shim; Zensical: search.js).
    found = search(page, engine, "gunicorn")
    assert (site / "results/servers/gunicorn.html").as_uri() in found


def test_flag_badges_link_to_the_legend(browser: tuple[Any, list[str]], base_url: str) -> None:
    """A flagged cell shows its badge beside the number; the badge opens its legend entry."""
    df = load_runs(GOLDEN_RAW)
    flagged = df[(df["run_id"] == SUBJECT) & (df["server"] == "waitress") & (df["app"] == "raw")]
    assert "noisy" in flagged[flagged["connections"] == 5].iloc[0]["flags"]
    page = browser[0].new_page()
    page.goto(base_url + "results/servers/waitress.html")
    row = page.locator("article table tr", has_text="raw").filter(has_text="908").first
    badge = row.locator("a.flag", has_text="Repeats disagree")
    assert badge.is_visible()
    box, colour = badge.evaluate(
        "b => [b.getBoundingClientRect().height, getComputedStyle(b).backgroundColor]"
    )
    assert 0 < box < 40 and colour != "rgba(0, 0, 0, 0)"  # styled as a small label
    badge.click()
    page.wait_for_url("**/results/flags.html#noisy")
    assert page.locator("h2#noisy").is_visible()
    assert page.locator("h2#littles_law").count() == 1
    assert_no_broken_images(page)


def assert_no_broken_images(page: Any) -> None:
    broken = page.eval_on_selector_all(
        "article img", "is => is.filter(i => !i.complete || !i.naturalWidth).map(i => i.src)"
    )
    assert broken == []
