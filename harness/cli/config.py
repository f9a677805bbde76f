"""Command-line stage: the user's own defaults for the tasks' options -> one `UserConfig`.

Found, first match wins: the file `$WSGI_BASELINE_CONFIG` names (empty: none at all);
else `wsgi-baseline.toml` in the current directory, else the `[tool.wsgi-baseline]`
table of its `pyproject.toml`; else the same two in the checkout (beside `raw/`).
Keys are option names (`raw`, `profile`, `profile-file`, `duration`, …; dashes or
underscores); top-level keys apply to every task that has the option, a table named
after a task (`[tool.wsgi-baseline.bench]`) to that task only, and wins. A value given
on the command line wins over both. Relative paths are relative to the config file.
An unknown key, task or a value of the wrong type is a `ConfigFileError` naming the
file and the key: a typo is never silently a default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.paths import REPO_ROOT

ENV = "WSGI_BASELINE_CONFIG"
FILE_NAME = "wsgi-baseline.toml"
TOOL_TABLE = "wsgi-baseline"
# Options whose value is a path: made relative to the config file, not the cwd.
PATH_OPTIONS = frozenset(
    {"raw", "out", "profile_file", "ssh_key", "known_hosts", "export_json", "export_markdown"}
)


class ConfigFileError(UserError):
    """A config file that cannot be read or names what does not exist."""


@dataclass(frozen=True)
class UserConfig:
    """Defaults by task (`""`: every task), keys with underscores; `path`: where from."""

    path: Path | None = None
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def default(self, task: str, option: str) -> Any:
        """The user's default of `option` for `task` (dashed or not), or None."""
        task = task.replace("-", "_")
        for scope in (task, ""):
            if option in self.values.get(scope, {}):
                return self.values[scope][option]
        return None

    def where(self, task: str, option: str) -> str:
        scope = task.replace("-", "_")
        table = f"[{scope}] " if option in self.values.get(scope, {}) else ""
        return f"{self.path}: {table}{option.replace('_', '-')}"


def find_config(cwd: Path | None = None) -> tuple[Path, Mapping[str, Any]] | None:
    """The config file in effect and its table of defaults, or None."""
    named = os.environ.get(ENV)
    if named is not None:
        if not named:
            return None
        path = Path(named)
        if not path.is_file():
            raise ConfigFileError(f"${ENV}: no file {path}")
        return path, _read(path, table=path.name == "pyproject.toml")
    for folder in dict.fromkeys([Path(cwd or Path.cwd()).resolve(), REPO_ROOT]):
        if (folder / FILE_NAME).is_file():
            return folder / FILE_NAME, _read(folder / FILE_NAME, table=False)
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            found = _read(pyproject, table=True)
            if found:
                return pyproject, found
    return None


def _read(path: Path, table: bool) -> Mapping[str, Any]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigFileError(f"{path}: cannot read: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigFileError(f"{path}: not valid TOML: {e}") from None
    if table:
        found = doc.get("tool", {}).get(TOOL_TABLE, {})
        if not isinstance(found, dict):
            raise ConfigFileError(f"{path}: [tool.{TOOL_TABLE}] must be a table")
        return found
    return doc


def load_config(options: Mapping[str, Mapping[str, type]], cwd: Path | None = None) -> UserConfig:
    """The user's defaults, checked against `options` (task -> option -> the type of its
    value, names with underscores), with relative paths made absolute."""
    found = find_config(cwd)
    if found is None:
        return UserConfig()
    path, doc = found
    every = {name: kind for opts in options.values() for name, kind in opts.items()}
    values: dict[str, dict[str, Any]] = {"": {}}
    for key, value in doc.items():
        name = key.replace("-", "_")
        if isinstance(value, dict) and name in options:
            values[name] = {
                k.replace("-", "_"): _checked(path, f"[{key}] {k}", k, v, options[name])
                for k, v in value.items()
            }
        elif isinstance(value, dict):
            known = ", ".join(sorted(t.replace("_", "-") for t in options))
            raise ConfigFileError(f"{path}: [{key}]: no such task (tasks: {known})")
        else:
            values[""][name] = _checked(path, key, key, value, every)
    return UserConfig(path, _absolute(path, values))


def _checked(path: Path, where: str, key: str, value: Any, kinds: Mapping[str, type]) -> Any:
    name = key.replace("-", "_")
    if name not in kinds:
        raise ConfigFileError(f"{path}: {where}: no such option")
    kind = kinds[name]
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:  # text options take numbers too: `duration = 180`, `repeats = 3`
        ok = isinstance(value, str | int | float) and not isinstance(value, bool)
        value = str(value) if ok else value
    if not ok:
        raise ConfigFileError(f"{path}: {where}: expected {_kind_name(kind)}, got {value!r}")
    return value


def _kind_name(kind: type) -> str:
    names = {bool: "true or false", int: "a whole number", float: "a number"}
    return names.get(kind, "a string or a number")


def _absolute(path: Path, values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    base = path.resolve().parent
    return {
        scope: {
            k: str(base / Path(v).expanduser())
            if k in PATH_OPTIONS and isinstance(v, str) and v
            else v
            for k, v in opts.items()
        }
        for scope, opts in values.items()
    }
