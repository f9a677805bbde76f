"""Matrix stage: the profile file's schema — which keys a profile and a custom server
may have, and what TOML type each takes.

`check_profile` and `check_custom_server` take one table as `tomllib` read it and raise
a `ConfigError` naming the file, the table and the key for an unknown key (with the
nearest known one) or a value of the wrong type. Only types are checked here; what a
value means (a known server, a positive duration) is checked where it is used
(harness/matrix/build.py, customservers.py, hosts.py). A boolean is only a TOML
boolean: `shuffle = "false"` is an error, not true.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.matrix.options import ConfigError

# A check takes the value and says whether it has the type, plus how to name that type.
Check = tuple[Callable[[Any], bool], str]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_list(item: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and all(item(x) for x in v)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _either(*checks: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: any(c(v) for c in checks)


NAMES: Check = (_either(_is_str, _is_list(_is_str)), "a list of names, or a comma-separated string")
WHOLE: Check = (_is_int, "a whole number")
WHOLES: Check = (
    _either(_is_int, _is_str, _is_list(_is_int)),
    "a list of whole numbers, or a comma-separated string",
)
DURATION: Check = (_either(_is_number, _is_str), 'seconds, or a duration such as "30s" or "3m"')
BOOLEAN: Check = (lambda v: isinstance(v, bool), "true or false (a TOML boolean, unquoted)")
TEXT: Check = (_is_str, "a string")
TEXTS: Check = (_either(_is_str, _is_list(_is_str)), "a list of strings")

# Every key a profile may set; the command-line option of the same name overrides it.
PROFILE_KEYS: dict[str, Check] = {
    "servers": NAMES,
    "apps": NAMES,
    "workloads": NAMES,
    "connections": WHOLES,
    "duration": DURATION,
    "warmup": DURATION,
    "timeout": DURATION,
    "repeats": WHOLE,
    "threads": WHOLE,
    "workers": WHOLE,
    "server_threads": WHOLE,
    "server_cpus": WHOLES,
    "client_cpus": WHOLES,
    "shuffle": BOOLEAN,
    "seed": WHOLE,
    "server_metrics": BOOLEAN,
    "ignore_preflight": BOOLEAN,
    "session_mix": WHOLES,
    "session_keys": WHOLE,
    "session_seed": WHOLE,
    # Adaptive repeats and the client ceiling (harness/matrix/precision.py).
    "precision": (_either(_is_number, _is_str), 'a share of the mean, such as "2%" or 0.02'),
    "max_repeats": WHOLE,
    "max_time": DURATION,
    "calibrate": BOOLEAN,
    # Open-loop cells at these offered rates (harness/matrix/build.py: parse_rates).
    "rates": (
        _either(_is_str, _is_list(_either(_is_str, _is_number))),
        'a list of rates such as ["25%", "50%", 5000], or a comma-separated string',
    ),
    # The hosts of a run (harness/matrix/hosts.py).
    "server_host": TEXT,
    "client_hosts": TEXTS,
    "ssh_key": TEXT,
    "known_hosts": TEXT,
    "insecure_host_keys": BOOLEAN,
    "remote_dir": TEXT,
    "remote_venv": TEXT,
}

# A `[custom_servers.<id>]` table (harness/matrix/customservers.py).
CUSTOM_SERVER_KEYS: dict[str, Check] = {
    "argv": (
        lambda v: isinstance(v, list) and bool(v) and all(isinstance(a, str) for a in v),
        "a non-empty list of strings",
    ),
    "worker_model": (_is_str, "a string saying how the server handles requests"),
    "package": TEXT,
    "stop_signal": TEXT,
    "settings": (
        lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
        "a table of strings (setting = why it was chosen)",
    ),
}
CUSTOM_SERVER_REQUIRED = ("argv", "worker_model")


def _shown(value: Any) -> str:
    return repr(value) if not isinstance(value, dict) else "a table"


def check_table(
    path: Path, where: str, table: Any, schema: Mapping[str, Check], required: tuple[str, ...] = ()
) -> None:
    """`table` has only keys of `schema`, each of its type, and every `required` one."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {where}: expected a table, found {_shown(table)}")
    for key, value in table.items():
        if key not in schema:
            near = difflib.get_close_matches(key, list(schema), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"{path}: {where}: unknown key {key!r}{hint}")
        accepts, expected = schema[key]
        if not accepts(value):
            raise ConfigError(f"{path}: {where}: {key}: expected {expected}, found {_shown(value)}")
    for key in required:
        if key not in table:
            raise ConfigError(f"{path}: {where}: {key!r} is required")


def check_profile(path: Path, name: str, table: Any) -> None:
    check_table(path, f"profile [{name}]", table, PROFILE_KEYS)


def check_custom_server(path: Path, sid: str, table: Any) -> None:
    check_table(path, f"[custom_servers.{sid}]", table, CUSTOM_SERVER_KEYS, CUSTOM_SERVER_REQUIRED)
