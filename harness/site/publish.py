"""Site stage 6: a built site/ -> where stakeholders read it.

Two kinds of target. A git remote (URL, `user@host:path`, or a local repository) gets
the site as a new commit on its `gh-pages` branch, on top of the branch's history, as
`mkdocs gh-deploy` does; the commit is made in a throwaway repository so the working
repository's branches and index are never touched. Any other path is a directory
that receives a copy of the site, replacing a copy published there before. A site the
target holds already is left as it is: no empty commit, no copy.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.pages.context import SiteError
from harness.paths import REPO_ROOT
from harness.site.build import build_site
from harness.site.buildrecord import read_build_record
from harness.site.config import check_site_url

BRANCH = "gh-pages"
# Left in a published directory so a later publish knows it may replace its contents.
MARKER = ".wsgi-baseline-site"
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")


def is_git_target(target: str) -> bool:
    """A URL, an scp-like address, or an existing git repository (bare or not)."""
    if "://" in target or _SCP_LIKE.match(target):
        return True
    path = Path(target)
    return (path / "HEAD").is_file() and (path / "objects").is_dir() or (path / ".git").exists()


def publish(
    site_dir: Path,
    target: str,
    message: str = "Publish the wsgi-baseline site",
    site_url: str | None = None,
) -> str:
    """Publish `site_dir` to `target`; return a one-line description of what was done.

    `site_url`: the address the site will be served from. A site built for another one
    (its 404 page and sitemap point there) is refused: build it for this one first
    (`invoke publish --site-url` does: `build_again_for` below).
    """
    site_dir = Path(site_dir)
    if not (site_dir / "index.html").is_file():
        raise SiteError(f"{site_dir} holds no built site (no index.html); run build-site first")
    built_for = read_build_record(site_dir).get("site_url")
    if site_url is not None and check_site_url(site_url) != built_for:
        raise SiteError(
            f"{site_dir} was built for {built_for or 'no --site-url'}, not {site_url}: run "
            f"invoke build-site --site-url {site_url} first"
        )
    where = f" (for {built_for})" if built_for else " (built without --site-url)"
    if is_git_target(target):
        text = f"{message}\n\nsite_url: {built_for}" if built_for else message
        commit = push_gh_pages(site_dir, target, text)
        if commit is None:
            return f"unchanged: {target} branch {BRANCH} holds this site already"
        return f"pushed {commit[:12]} to {target} branch {BRANCH}{where}"
    if same_files(site_dir, Path(target)):
        return f"unchanged: {target} holds this site already"
    copy_site(site_dir, Path(target))
    return f"copied the site to {target}{where}"


def build_again_for(
    site_url: str | None,
    docs_dir: Path,
    site_dir: Path,
    note: Callable[[str], None] | None = None,
) -> bool:
    """Build `site_dir` again, as it was built, for `site_url` when it was built for
    another address (`invoke publish --site-url`); whether it did. A build that read a raw
    folder outside the project cannot be repeated from its record: SiteError."""
    if site_url is None:
        return False
    record = read_build_record(Path(site_dir))
    if record.get("site_url") == check_site_url(site_url):
        return False
    if not record.get("raw") or not record.get("engine"):
        raise SiteError(
            f"{site_dir} was built for {record.get('site_url') or 'no --site-url'} from raw "
            f"files it cannot find again; build it for {site_url} first: "
            f"invoke build-site --site-url {site_url}"
        )
    pairs = [(str(a), str(b)) for a, b in record.get("compare") or []]
    build_site(
        REPO_ROOT / str(record["raw"]), docs_dir, site_dir, str(record.get("runs") or "latest"),
        pairs, engine=str(record["engine"]), note=note, site_url=site_url,
    )  # fmt: skip
    return True


def _git(*args: str, env: dict[str, str], check: bool = True) -> str:
    done = subprocess.run(["git", *args], env=env, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise SiteError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip() if done.returncode == 0 else ""


def push_gh_pages(site_dir: Path, remote: str, message: str) -> str | None:
    """Commit site_dir as the new tree of the remote's gh-pages branch and push it;
    None when the branch's tip has that tree already (nothing is pushed)."""
    with tempfile.TemporaryDirectory(prefix="wsgi-baseline-publish-") as tmp:
        env = {
            **os.environ,
            "GIT_DIR": str(Path(tmp) / "repo.git"),
            "GIT_WORK_TREE": str(site_dir.resolve()),
            "GIT_INDEX_FILE": str(Path(tmp) / "index"),
            # Used only when git has no identity configured (CI, fresh machines).
            "GIT_AUTHOR_NAME": os.environ.get("GIT_AUTHOR_NAME", "wsgi-baseline"),
            "GIT_AUTHOR_EMAIL": os.environ.get("GIT_AUTHOR_EMAIL", "wsgi-baseline@localhost"),
            "GIT_COMMITTER_NAME": os.environ.get("GIT_COMMITTER_NAME", "wsgi-baseline"),
            "GIT_COMMITTER_EMAIL": os.environ.get("GIT_COMMITTER_EMAIL", "wsgi-baseline@localhost"),
        }
        bare = {k: v for k, v in env.items() if k not in ("GIT_DIR", "GIT_WORK_TREE")}
        _git("init", "--quiet", "--bare", env["GIT_DIR"], env=bare)
        # Keep the branch's history: the new commit's parent is the current tip, if any.
        _git("fetch", "--quiet", remote, f"refs/heads/{BRANCH}", env=env, check=False)
        parent = _git("rev-parse", "--verify", "--quiet", "FETCH_HEAD", env=env, check=False)
        (site_dir / ".nojekyll").touch()  # GitHub Pages: serve folders starting with _
        _git("add", "--all", "--force", env=env)  # no pathspec: the whole site
        tree = _git("write-tree", env=env)
        if parent and _git("rev-parse", f"{parent}^{{tree}}", env=env, check=False) == tree:
            return None
        parents = ["-p", parent] if parent else []
        commit = _git("commit-tree", tree, *parents, "-m", message, env=env)
        _git("push", "--quiet", remote, f"{commit}:refs/heads/{BRANCH}", env=env)
        return commit


def same_files(site_dir: Path, target: Path) -> bool:
    """`target` is a copy of `site_dir` published before: the same files, byte for byte
    (besides the marker)."""
    if not (target / MARKER).is_file():
        return False

    def files(root: Path) -> dict[str, Path]:
        return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}

    mine, theirs = files(site_dir), files(target)
    theirs.pop(MARKER, None)
    return mine.keys() == theirs.keys() and all(
        p.stat().st_size == theirs[k].stat().st_size and p.read_bytes() == theirs[k].read_bytes()
        for k, p in mine.items()
    )


def copy_site(site_dir: Path, target: Path) -> None:
    """Replace target's contents with the site; refuse a directory that is not ours."""
    if target.exists():
        if not target.is_dir():
            raise SiteError(f"{target} exists and is not a directory")
        if any(target.iterdir()) and not (target / MARKER).is_file():
            raise SiteError(
                f"{target} is not empty and was not published to before (no {MARKER}); "
                "refusing to replace its contents"
            )
        shutil.rmtree(target)
    shutil.copytree(site_dir, target)
    (target / MARKER).write_text("Published by `invoke publish`; replaced on each publish.\n")
