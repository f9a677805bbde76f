"""Golden pages: the markdown rendered from the fixture raw tree matches tests/golden/.

When a change to the pages is intended, run `invoke update-golden` and review the
diff of tests/golden/ like code.
"""

from __future__ import annotations

from pathlib import Path

from harness.paths import GOLDEN_DIR, GOLDEN_RAW
from harness.site.build import golden_pages, update_golden


def test_pages_match_golden(tmp_path: Path) -> None:
    rendered = golden_pages(GOLDEN_RAW, tmp_path)
    golden = {
        p.relative_to(GOLDEN_DIR).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(GOLDEN_DIR.rglob("*.md"))
    }
    assert sorted(rendered) == sorted(golden), "pages added or removed: run invoke update-golden"
    for path, text in rendered.items():
        assert text == golden[path], f"{path} differs from tests/golden/{path}"


def test_update_golden_writes_what_the_test_reads(tmp_path: Path) -> None:
    written = update_golden(GOLDEN_RAW, tmp_path / "golden")
    names = {p.relative_to(tmp_path / "golden").as_posix() for p in written}
    assert {"index.md", "results/methodology.md", "results/overhead.md"} <= names
    assert "results/servers/gunicorn.md" in names and "results/errors.md" in names


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    assert golden_pages(GOLDEN_RAW, tmp_path / "a") == golden_pages(GOLDEN_RAW, tmp_path / "b")
