"""Page names from ids (harness/pages/context.py `slug`): one page per server and run,
whatever characters the ids have; no site build, no charts drawn."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from harness.pages.context import server_page, slug
from harness.paths import GOLDEN_RAW
from harness.site.build import generate_docs

SUBJECT = "20261126T145156Z-fixture"
# An older study's `gunicorn_gthread` beside the built-in `gunicorn-gthread`; ids that
# differ only in characters a file name cannot keep.
COLLIDING = ["gunicorn_gthread", "gunicorn-gthread", "a|b|c", "a-b-c", "a b c"]


@pytest.mark.parametrize(
    ("a", "b"),
    [("gunicorn_gthread", "gunicorn-gthread"), ("a|b|c", "a-b-c"), ("a|b|c", "a b c"),
     ("x", ""), ("run.1", "run.1.")],
)  # fmt: skip
def test_ids_that_would_share_a_slug_do_not(a: str, b: str) -> None:
    assert slug(a) != slug(b)
    assert server_page(a) != server_page(b)


def test_slugs_are_safe_and_stable() -> None:
    assert slug("gunicorn-gthread") == "gunicorn-gthread"  # a plain id is its own slug
    assert slug("20261126T145156Z-fixture") == "20261126T145156Z-fixture"
    assert slug("gunicorn_gthread") == "gunicorn-gthread_e3c29e52"  # the same every build
    assert slug("<b>x y</b>") == "b-x-y-b_b45823a4"
    for ident in [*COLLIDING, "../../etc", "", ".", "ü", "a/b"]:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*(_[0-9a-f]{8})?", slug(ident)), ident


def test_every_server_gets_its_own_page(tmp_path: Path) -> None:
    """Seven servers, seven pages (the slugs of five of them used to collide)."""
    raw = tmp_path / "raw"
    shutil.copytree(GOLDEN_RAW / SUBJECT, raw / SUBJECT)
    run = raw / SUBJECT
    for name in COLLIDING:
        shutil.copytree(run / "gunicorn", run / name)
        for sidecar in (run / name).glob("*/*/c*-r*.json"):
            if sidecar.name.count(".") == 1:
                doc = json.loads(sidecar.read_text())
                sidecar.write_text(json.dumps({**doc, "server": name}))
    meta = json.loads((run / "run.json").read_text())
    meta["settings"]["servers"] += COLLIDING
    (run / "run.json").write_text(json.dumps(meta))

    generate_docs(raw, tmp_path / "docs", runs=SUBJECT, draw=False)
    pages = sorted(p.name for p in (tmp_path / "docs/results/servers").glob("*.md"))
    servers = ["gunicorn", "waitress", *COLLIDING]
    assert pages == sorted(["index.md", *(f"{slug(s)}.md" for s in servers)])
    # Each page is its own server's (the title is the id, escaped for markdown).
    titles = {s: title(tmp_path / "docs" / server_page(s)) for s in servers}
    assert len(set(titles.values())) == len(servers), titles
    assert titles["gunicorn_gthread"] == "# gunicorn&#95;gthread"


def title(page: Path) -> str:
    """The page's heading, after its front matter."""
    body = page.read_text().split("\n---\n", 1)[1]
    return next(line for line in body.splitlines() if line.startswith("# "))
