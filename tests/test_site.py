"""The site stages: summaries, escaping, run choice, a strict mkdocs build, publishing.

Everything runs on the committed fixture run (tests/fixtures/site_raw/, real wrk
output) or on copies of it with one thing changed on purpose.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.pages import context
from harness.pages import render as pages
from harness.pages.context import SiteError, select_runs
from harness.paths import GOLDEN_RAW
from harness.paths import REPO_ROOT as REPO
from harness.perf.probe import hand_written_docs
from harness.site.build import build_site, read_runs
from harness.site.buildrecord import read_build_record
from harness.site.publish import MARKER, build_again_for, publish
from harness.tables import summary
from harness.tables.dataset import load_runs

pytestmark = pytest.mark.site  # builds the real site: not in `invoke test --fast`

SUBJECT = "20261126T145156Z-fixture"  # complete
NEWER = "20261126T145233Z-fixture"  # interrupted
XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def subject() -> pd.DataFrame:
    df = load_runs(GOLDEN_RAW)
    return df[df["run_id"] == SUBJECT]


@pytest.fixture(scope="module")
def xss_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture with markup in a URL line, a sidecar URL and a failure reason, built."""
    root = tmp_path_factory.mktemp("xss")
    raw = root / "raw"
    shutil.copytree(GOLDEN_RAW, raw)
    cell = raw / SUBJECT / "gunicorn" / "flask" / "plaintext"  # first cell: on Methodology
    txt = cell / "c5-r1.txt"
    lines = txt.read_text().splitlines(keepends=True)
    url = f"http://127.0.0.1:1/{XSS}"
    lines[0] = f"Running 1s test @ {url}\n"
    txt.write_text("".join(lines))
    sidecar = json.loads((cell / "c5-r1.json").read_text())
    sidecar["url"] = url
    sidecar["wrk_argv"][-1] = url
    (cell / "c5-r1.json").write_text(json.dumps(sidecar))
    failed = raw / SUBJECT / "gunicorn" / "flask" / "plaintext" / "c10-r2.json"
    doc = json.loads(failed.read_text())
    doc["reason"] = "boom <img src=x onerror=alert(2)> *not emphasis* | [link](http://x)"
    failed.write_text(json.dumps(doc))
    return build_site(raw, hand_written_docs(root / "docs"), root / "site")


def row(frame: pd.DataFrame, server: str, app: str, connections: int) -> dict[str, Any]:
    """The one row of a summary for a cell of the plaintext workload."""
    sel = frame[
        (frame["server"] == server) & (frame["app"] == app) & (frame["connections"] == connections)
    ]
    assert len(sel) == 1
    return {str(k): v for k, v in sel.iloc[0].items()}


def test_cell_stats_are_means_of_ok_repeats(subject: pd.DataFrame) -> None:
    stats = summary.cell_stats(subject)
    ok = subject[subject["status"] == "ok"]
    mine = ok[(ok["server"] == "gunicorn") & (ok["app"] == "raw") & (ok["connections"] == 5)]
    cell = row(stats, "gunicorn", "raw", 5)
    assert cell["requests_per_sec_mean"] == pytest.approx(mine["requests_per_sec"].mean())
    assert cell["requests_per_sec_min"] == pytest.approx(mine["requests_per_sec"].min())
    assert cell["latency_p99_ms_max"] == pytest.approx(mine["latency_p99_ms"].max())
    # The failed repeat is counted as failed and left out of the mean, not taken as 0.
    failed = row(stats, "gunicorn", "flask", 10)
    assert (failed["repeats"], failed["ok"], failed["failed"]) == (2, 1, 1)
    assert "crafted" in failed["reasons"]
    assert failed["requests_per_sec_mean"] == pytest.approx(1237.503012, rel=1e-6)


def test_no_response_is_not_zero_latency(subject: pd.DataFrame) -> None:
    cell = row(summary.cell_stats(subject), "waitress", "raw", 10)
    assert cell["requests_per_sec_mean"] == 0  # measured: nothing got through
    assert pd.isna(cell["latency_p99_ms_mean"])  # not measured, so not 0 ms
    assert cell["no_response"] == 2
    rates = row(summary.error_rates(subject), "waitress", "raw", 10)
    assert pd.isna(rates["read_rate"])  # no requests: no rate


def test_error_rates_are_per_request_and_never_summed() -> None:
    base = {"run_id": "r", "workload": "w", "status": "ok", "reason": None}
    figures = {m: 1.0 for m in summary.METRICS}
    rows = [
        {**base, **figures, "server": "s", "app": "raw", "connections": 10, "repeat": k,
         "requests": 1000, "errors_connect": 0, "errors_read": 10 * k, "errors_write": 0,
         "errors_timeout": 1, "non_2xx_3xx": 0}
        for k in (1, 2)
    ]  # fmt: skip
    rates = summary.error_rates(pd.DataFrame(rows)).iloc[0]
    assert rates["read_rate"] == pytest.approx(30 / 2000)
    assert rates["timeout_rate"] == pytest.approx(2 / 2000)
    assert rates["connect_rate"] == 0
    assert "errors_rate" not in rates.index  # there is no summed column


def test_overhead_share_and_range(subject: pd.DataFrame) -> None:
    ov = summary.overhead(subject)
    share = row(ov, "gunicorn", "flask", 5)
    ok = subject[(subject["status"] == "ok") & (subject["server"] == "gunicorn")]
    fw = ok[(ok["app"] == "flask") & (ok["connections"] == 5)]["requests_per_sec"]
    raw = ok[(ok["app"] == "raw") & (ok["connections"] == 5)]["requests_per_sec"]
    assert share["share"] == pytest.approx(fw.mean() / raw.mean())
    assert share["share_min"] == pytest.approx(fw.min() / raw.max())
    assert share["share_max"] == pytest.approx(fw.max() / raw.min())
    # waitress/raw at c=10 never answered: no share rather than a division by zero.
    assert pd.isna(row(ov, "waitress", "flask", 10)["share"])


def test_select_runs_defaults_to_latest_complete() -> None:
    runs = read_runs(GOLDEN_RAW)
    chosen, subject = select_runs(runs, "latest")
    assert [r["run_id"] for r in chosen] == [SUBJECT] and subject["run_id"] == SUBJECT
    chosen, subject = select_runs(runs, "all")
    assert [r["run_id"] for r in chosen] == [NEWER, SUBJECT] and subject["run_id"] == SUBJECT
    chosen, subject = select_runs(runs, NEWER)
    assert subject["run_id"] == NEWER  # asked for explicitly, even though interrupted
    with pytest.raises(SiteError, match="unknown run nope; known: "):
        select_runs(runs, "nope")
    with pytest.raises(SiteError, match="no complete run"):
        select_runs([r for r in runs if r["status"] != "complete"], "latest")


def test_escape_makes_markup_literal() -> None:
    assert pages.escape(XSS) == "&#60;script&#62;alert&#40;1&#41;&#60;/script&#62;"
    assert pages.escape("a|b*c_d`e[f]") == "a&#124;b&#42;c&#95;d&#96;e&#91;f&#93;"
    assert pages.escape("'q' & x") == "&#39;q&#39; &#38; x"  # one pass: no broken entities
    assert pages.escape("two\nlines") == "two<br>lines"
    assert pages.code("x<y") == "<code>x&#60;y</code>"
    assert pages.href("../data/run 1/(x).csv") == "../data/run%201/%28x%29.csv"
    assert pages.rps(None) == "—" and pages.rps(float("nan")) == "—" and pages.rps(0.0) == "0"
    assert pages.ms(0.5) == "0.500" and pages.ms(12.345) == "12.3" and pages.pct(0.644) == "64.4 %"
    assert pages.rate(0) == "0" and pages.rate(0.000123) == "0.0123 %"


def test_unfiltered_template_output_is_escaped(tmp_path: Path) -> None:
    (tmp_path / "t.md.j2").write_text("{{ value }} {{ value|code }} {{ 5.0|rps }}\n")
    text = pages.render_pages({"t.md": ("t.md.j2", {"value": XSS})}, tmp_path)["t.md"]
    assert "<script>" not in text and "5.0" in text


class PageText(HTMLParser):
    """What a browser shows as text, apart from script bodies and the tags it creates."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.scripts: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        (self.scripts if self._in_script else self.text).append(data)


def page_text(path: Path) -> PageText:
    parser = PageText()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_markup_from_raw_files_renders_as_text(xss_site: Path) -> None:
    methodology = page_text(xss_site / "results/methodology.html")
    errors = page_text(xss_site / "results/errors.html")
    for page in (methodology, errors):
        assert not any("alert" in s for s in page.scripts)  # no script element was made
        assert not any("onerror" in attrs for _, attrs in page.tags)
    assert f"http://127.0.0.1:1/{XSS}" in "".join(methodology.text)
    # Stars, pipe and brackets stay literal too: no emphasis, no table cell, no link.
    reason = "boom <img src=x onerror=alert(2)> *not emphasis* | [link](http://x)"
    assert reason in "".join(errors.text)


def test_built_site_is_offline(xss_site: Path) -> None:
    """No page or asset refers to a host: no fonts, CDNs or generator link."""
    offenders = []
    for path in xss_site.rglob("*"):
        if path.suffix in (".html", ".css") and path.is_file():
            text = path.read_text(errors="replace")
            for needle in ("fonts.googleapis", "fonts.gstatic", "unpkg.com", "cdn.jsdelivr",
                           "squidfunk.github.io"):  # fmt: skip
                if needle in text:
                    offenders.append(f"{path.relative_to(xss_site)}: {needle}")
    assert offenders == []
    assert (xss_site / "assets/vendor/iframe-worker/shim.js").is_file()
    assert (
        'src="../assets/vendor/iframe-worker/shim.js"'
        in (xss_site / "results/overhead.html").read_text()
    )


def test_data_downloads_are_in_the_site(xss_site: Path) -> None:
    data = xss_site / "results/data" / SUBJECT
    csv = pd.read_csv(data / "results.csv")
    assert len(csv) == 16 and set(csv["status"]) == {"ok", "failed"}
    assert (data / "run.json").read_bytes() == (GOLDEN_RAW / SUBJECT / "run.json").read_bytes()
    import zipfile

    with zipfile.ZipFile(data / f"{SUBJECT}-raw.zip") as zf:
        names = zf.namelist()
    assert f"{SUBJECT}/run.json" in names
    assert f"{SUBJECT}/gunicorn/raw/plaintext/c5-r1.txt" in names
    # The raw files travel in the archive only: four files per run, whatever its size.
    got = sorted(p.name for p in data.iterdir())
    assert got == sorted([f"{SUBJECT}-raw.zip", "results.csv", "results.jsonl", "run.json"])


def test_charts_are_deterministic_svg(tmp_path: Path, subject: pd.DataFrame) -> None:
    from harness.figures import charts
    from harness.figures import draw as figures

    spec = charts.latency_chart(subject[subject["server"] == "gunicorn"], "a.svg", "alt")
    first = figures.draw(spec, tmp_path / "a.svg").read_bytes()
    second = figures.draw(spec, tmp_path / "b.svg").read_bytes()
    assert first == second and first.startswith(b"<?xml")
    assert b"<dc:date>" not in first  # no timestamp in the file
    assert charts.colour("server", "gunicorn") == charts.SERVER_COLOURS["gunicorn"]
    assert charts.colour("app", "unknown-app") == charts.colour("app", "unknown-app")


def test_chart_series_are_per_line_groupbys(subject: pd.DataFrame) -> None:
    """Series built from one groupby per panel equal one groupby per line, to the bit."""
    from harness.figures import charts
    from harness.tables.intervals import ci_bounds

    def line(rows: pd.DataFrame, metric: str) -> tuple[tuple[float, ...], ...]:
        ok = summary.ok_rows(rows).dropna(subset=[metric])
        by = ok.groupby("connections")[metric].agg(["mean", "std", "count"]).sort_index()
        low, high = ci_bounds(by["mean"], by["std"], by["count"])  # the 95 % interval
        low = np.where(np.isnan(low), by["mean"], low)  # one repeat: no band
        high = np.where(np.isnan(high), by["mean"], high)
        failed = sorted(float(c) for c in rows[rows["status"] != "ok"]["connections"])
        return (
            tuple(float(x) for x in by.index),
            *(tuple(float(v) for v in values) for values in (by["mean"], low, high)),
            tuple(float(c) for c in ok["connections"]),
            tuple(float(v) for v in ok[metric]),
            tuple(failed),
        )

    df = subject.copy()
    df.loc[df.index[:4], "requests"] = 0  # no response: latency not measured
    for server, rows in df.groupby("server"):
        spec = charts.latency_chart(rows, "a.svg", "alt")
        for panel, metric in zip(spec.panels, summary.LATENCY[1:], strict=True):
            apps = sorted(rows["app"].unique())
            assert [s.label for s in panel.series] == apps
            for s, app in zip(panel.series, apps, strict=True):
                got = (s.x, s.mean, s.low, s.high, s.dots_x, s.dots_y, s.failed_x)
                assert got == line(rows[rows["app"] == app], metric), (server, app, metric)


def test_pages_need_no_matplotlib(tmp_path: Path) -> None:
    """Planning and rendering pages import no matplotlib: only drawing does."""
    code = (
        "import sys; from pathlib import Path; from harness.site.build import golden_pages;"
        "from harness.paths import GOLDEN_RAW;"
        f"golden_pages(GOLDEN_RAW, Path({str(tmp_path)!r}));"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_publish_to_bare_repository(xss_site: Path, tmp_path: Path) -> None:
    remote = tmp_path / "pages.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    publish(xss_site, str(remote), "first")
    assert publish(xss_site, str(remote), "again").startswith("unchanged: ")  # no empty commit
    (xss_site / "extra.txt").write_text("changed")
    try:
        assert publish(xss_site, str(remote), "second").startswith("pushed ")
    finally:
        (xss_site / "extra.txt").unlink()

    def git(*args: str) -> str:
        return subprocess.run(["git", "--git-dir", str(remote), *args], check=True,
                              capture_output=True, text=True).stdout  # fmt: skip

    files = set(git("ls-tree", "-r", "--name-only", "gh-pages").split())
    assert {"index.html", "results/overhead.html", ".nojekyll"} <= files
    assert f"results/data/{SUBJECT}/results.csv" in files
    assert git("log", "--format=%s", "gh-pages").split() == ["second", "first"]
    assert git("show", "gh-pages:index.html") == (xss_site / "index.html").read_text()


def test_publish_to_directory(xss_site: Path, tmp_path: Path) -> None:
    target = tmp_path / "www"
    publish(xss_site, str(target))
    assert publish(xss_site, str(target)) == f"unchanged: {target} holds this site already"
    (target / "index.html").write_text("stale")
    publish(xss_site, str(target))  # replaces its own earlier copy
    assert (target / "index.html").read_bytes() == (xss_site / "index.html").read_bytes()
    assert (target / MARKER).is_file()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("not a site")
    with pytest.raises(SiteError, match="refusing to replace"):
        publish(xss_site, str(foreign))
    assert (foreign / "keep.txt").is_file()


def test_publish_for_another_address_builds_the_site_again(tmp_path: Path) -> None:
    """`invoke publish --site-url`: a site built for another address (or none) is built
    again as it was, for this one, before it is published; one whose raw folder the record
    cannot find again is refused with the command that fixes it."""
    site = build_site(GOLDEN_RAW, hand_written_docs(tmp_path / "docs"), tmp_path / "site")
    record = read_build_record(site)
    assert record["site_url"] is None and record["raw"] == "tests/fixtures/site_raw"
    assert record["runs"] == "latest" and record["engine"] == "mkdocs"
    url = "https://org.example/project/"
    with pytest.raises(SiteError, match="built for no --site-url, not https://org.example/proj"):
        publish(site, str(tmp_path / "www"), site_url=url)
    assert not build_again_for(None, tmp_path / "docs", site)
    assert build_again_for(url.removesuffix("/"), tmp_path / "docs", site)  # "/" is added
    assert read_build_record(site)["site_url"] == url
    assert f"<loc>{url}index.html</loc>" in (site / "sitemap.xml").read_text()
    assert 'href="/project/assets/' in (site / "404.html").read_text()
    assert not build_again_for(url, tmp_path / "docs", site)  # built for it already
    assert publish(site, str(tmp_path / "www"), site_url=url).endswith(f"(for {url})")
    with pytest.raises(SiteError, match="--site-url: expected an http"):
        build_again_for("org.example/project", tmp_path / "docs", site)


def test_a_site_built_from_raw_outside_the_project_is_not_rebuilt(xss_site: Path) -> None:
    assert read_build_record(xss_site)["raw"] is None  # a temporary folder: not recorded
    with pytest.raises(SiteError, match="from raw files it cannot find again"):
        build_again_for("https://org.example/p/", xss_site.parent / "docs", xss_site)


def test_links_are_relative_and_slugs_safe() -> None:
    assert context.rel("results/servers/a.md", "index.md") == "../../index.md"
    assert context.slug("<b>x y</b>") == "b-x-y-b_b45823a4"  # see tests/test_slugs.py
    assert context.server_page("gunicorn-gthread") == "results/servers/gunicorn-gthread.md"
