"""Where the repository's folders and the harness's data files are: one place for all.

Computed from this file, so the same code finds them in a checkout and in the copy the
bench uploads to a remote host. Nothing here touches the disk.
"""

from __future__ import annotations

from pathlib import Path

HARNESS = Path(__file__).resolve().parent
REPO_ROOT = HARNESS.parent
APPS_DIR = REPO_ROOT / "apps"
RAW_DIR = REPO_ROOT / "raw"
DOCS_DIR = REPO_ROOT / "docs"
SITE_DIR = REPO_ROOT / "site"
TEMPLATES_DIR = REPO_ROOT / "site_templates"
BASE_CONFIG = REPO_ROOT / "mkdocs.yml"
PYPROJECT = REPO_ROOT / "pyproject.toml"
PROFILES_FILE = HARNESS / "matrix" / "profiles.toml"
LUA_DIR = HARNESS / "bench" / "lua"
LAUNCHERS_DIR = HARNESS / "serving" / "launchers"
# Test data the site's golden pages and the perf synthesiser are made from.
TEST_FIXTURES = REPO_ROOT / "tests" / "fixtures"
GOLDEN_RAW = TEST_FIXTURES / "site_raw"
GOLDEN_DIR = REPO_ROOT / "tests" / "golden"
