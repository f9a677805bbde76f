"""build-site with files it cannot read: one bad cell or run.json never stops the site of
the rest; it is shown on the Errors page and its run's page, and `--strict-raw` fails.
Only the files the harness writes are published and zipped."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from invoke import Context, Exit

import tasks
from harness.pages.context import SiteError
from harness.paths import GOLDEN_RAW
from harness.perf.probe import hand_written_docs
from harness.raw.names import harness_file
from harness.site.build import build_site
from harness.site.rawcheck import readable_runs

SUBJECT = "20261126T145156Z-fixture"  # complete
NEWER = "20261126T145233Z-fixture"  # interrupted
BROKEN = "20261127T000000Z-broken"  # its run.json cannot be read
BAD_CELL = f"{SUBJECT}/gunicorn/raw/plaintext/c5-r1.txt"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("{", "line 1: expected JSON, found expecting property name enclosed in double quotes"),
        ("[]", "line 1: expected a JSON object, found list"),
        ("{}", "unknown format_version None (this code reads 1, 2)"),
        ("", "line 1: expected JSON, found expecting value (column 1)"),
    ],
)
def test_a_run_json_that_cannot_be_read_is_one_entry_naming_it(
    tmp_path: Path, content: str, error: str
) -> None:
    shutil.copytree(GOLDEN_RAW / SUBJECT, tmp_path / SUBJECT)
    (tmp_path / BROKEN).mkdir()
    (tmp_path / BROKEN / "run.json").write_text(content)
    runs, bad = readable_runs(tmp_path)
    assert [r["run_id"] for r in runs] == [SUBJECT]
    assert bad == [{"path": f"{BROKEN}/run.json", "run_id": BROKEN, "error": bad[0]["error"]}]
    assert bad[0]["error"].startswith(error)
    assert "\n" not in bad[0]["error"]


def test_a_missing_raw_directory_is_said_as_such(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match=f"^--raw: {tmp_path / 'nope'} does not exist$"):
        build_site(tmp_path / "nope", tmp_path / "docs", tmp_path / "site")


@pytest.mark.parametrize(
    ("rel", "ours"),
    [
        ("run.json", True),
        ("calibration.lua.json", True),
        ("gunicorn/raw/plaintext/c10-r2.txt", True),
        ("gunicorn/raw/plaintext/c10-r2.metrics.before.prom", True),
        ("gunicorn/raw/plaintext/c10-r2.client3.warmup.txt", True),
        ("gunicorn/raw/plaintext/c10-r2.server.log", True),
        ("evil.html", False),
        ("gunicorn/raw/plaintext/evil.html", False),
        ("gunicorn/raw/plaintext/c10-r2.html", False),
        ("gunicorn/raw/plaintext/.c10-r2.txt.1a2b.part", False),
        (".lock", False),
        ("gunicorn/raw/c10-r2.txt", False),
        ("notes/run.json", False),
    ],
)
def test_harness_files_by_name(rel: str, ours: bool) -> None:
    assert harness_file(rel) is ours


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture runs with one truncated wrk output, a run whose run.json is `{`, and
    an HTML page dropped into a run folder."""
    root = tmp_path_factory.mktemp("damaged")
    raw = root / "raw"
    shutil.copytree(GOLDEN_RAW, raw)
    txt = raw / BAD_CELL
    txt.write_text("".join(txt.read_text().splitlines(keepends=True)[:3]))
    (raw / BROKEN).mkdir()
    (raw / BROKEN / "run.json").write_text("{")
    (raw / SUBJECT / "evil.html").write_text("<script>alert(1)</script>")
    (raw / SUBJECT / "gunicorn" / "raw" / "plaintext" / "notes.html").write_text("<b>x</b>")
    return raw


def build(
    root: Path, raw: Path, capsys: pytest.CaptureFixture[str], **options: object
) -> tuple[Path, list[str]]:
    """`invoke build-site` as the task runs it; the site and the lines it printed on stderr."""
    with pytest.MonkeyPatch.context() as mp:
        docs = root / "docs"
        mp.setattr(tasks, "DOCS", docs if docs.is_dir() else hand_written_docs(docs))
        mp.setattr(tasks, "SITE", root / "site")
        capsys.readouterr()
        tasks.build_site.body(Context(), raw=str(raw), **options)
    return root / "site", capsys.readouterr().err.splitlines()


@pytest.mark.site
def test_bad_files_are_shown_and_the_rest_is_built(
    damaged: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site, said = build(tmp_path, damaged, capsys, runs="all")
    assert [line for line in said if line.startswith("unreadable:")] == [
        f"unreadable: {BAD_CELL}: line 4: expected 'Latency <time> <time> <time> <percent>%', "
        "found end of text",
        f"unreadable: {BROKEN}/run.json: line 1: expected JSON, found expecting property name "
        "enclosed in double quotes (column 2)",
    ]
    errors = (site / "results/errors.html").read_text()
    assert "Unreadable raw files" in errors
    assert BAD_CELL in errors and f"{BROKEN}/run.json" in errors
    run_page = (site / f"results/runs/{SUBJECT}.html").read_text()
    assert "Unreadable raw files: left out of every page" in run_page and BAD_CELL in run_page
    assert BAD_CELL not in (site / f"results/runs/{NEWER}.html").read_text()
    # Every other cell is there: 16 rows of the subject run less the bad one.
    data = site / "results/data" / SUBJECT
    assert len((data / "results.csv").read_text().splitlines()) == 1 + 15
    assert (site / f"results/runs/{NEWER}.html").is_file()
    # Only the harness's files are published and zipped.
    assert not (data / "raw" / "evil.html").exists()
    assert not (data / "raw/gunicorn/raw/plaintext/notes.html").exists()
    assert not list(site.rglob("evil.html")) and not list(site.rglob("notes.html"))
    with zipfile.ZipFile(data / f"{SUBJECT}-raw.zip") as zf:
        names = zf.namelist()
    assert f"{SUBJECT}/run.json" in names and f"{SUBJECT}/{BAD_CELL.split('/', 1)[1]}" in names
    assert not [n for n in names if n.endswith(".html")]


@pytest.mark.site
def test_a_rebuild_from_the_cache_still_says_them(
    damaged: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, first = build(tmp_path, damaged, capsys)
    _, again = build(tmp_path, damaged, capsys)  # docs/ reused: only mkdocs runs
    assert again == first
    assert len([line for line in first if line.startswith("unreadable:")]) == 2
    _, other = build(tmp_path, damaged, capsys, runs="all")  # docs/ anew, tables cached
    assert other == first


@pytest.mark.site
def test_strict_raw_fails_instead(
    damaged: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(Exit) as exit_:
        build(tmp_path, damaged, capsys, strict_raw=True)
    assert exit_.value.code == 2
    assert str(exit_.value.message).startswith(
        f"error: --strict-raw: 2 raw file(s) cannot be read, first {BAD_CELL}: line 4: "
    )
    assert not (tmp_path / "site").exists()


@pytest.mark.site
def test_runs_naming_another_run_is_not_stopped(
    damaged: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site, _ = build(tmp_path, damaged, capsys, runs=NEWER)
    assert (site / f"results/runs/{NEWER}.html").is_file()
