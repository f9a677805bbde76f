"""Options and profiles -> matrix: pure logic, no processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.matrix.build import build_matrix
from harness.matrix.model import Matrix
from harness.matrix.options import ConfigError, parse_duration, parse_ints

SERVERS = ["gunicorn", "uwsgi", "cheroot"]
APPS = ["raw", "flask"]


PROFILES_TEXT = """
[quick]
servers = ["gunicorn", "uwsgi"]
apps = ["raw"]
connections = [10, 100]
duration = "5s"
warmup = "1s"
repeats = 2
threads = 2

[incomplete]
servers = ["gunicorn"]
"""


@pytest.fixture(autouse=True, scope="module")
def _profiles(tmp_path_factory: pytest.TempPathFactory) -> None:
    global PROFILES
    PROFILES = tmp_path_factory.mktemp("profiles") / "profiles.toml"
    PROFILES.write_text(PROFILES_TEXT)


PROFILES = Path("unset")


def matrix(profile: str = "quick", **overrides: object) -> Matrix:
    return build_matrix(profile, dict(overrides), SERVERS, APPS, profile_file=PROFILES)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("180", 180.0), ("180s", 180.0), ("3m", 180.0), ("500ms", 0.5), ("1h", 3600.0), (7, 7.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--duration") == seconds


@pytest.mark.parametrize("text", ["-5", "5x", "", "m", "1.2.3s"])
def test_bad_durations_name_the_option(text: str) -> None:
    with pytest.raises(ConfigError, match="^--duration: "):
        parse_duration(text, "--duration")


def test_lists_are_comma_separated() -> None:
    assert parse_ints("10, 100,500", "--connections") == [10, 100, 500]


def test_profile_expands_repeat_major() -> None:
    m = matrix()
    assert len(m.cells) == 2 * 1 * 2 * 2
    # Every cell is measured once before any is repeated: repeats spread over time.
    assert [c.repeat for c in m.cells] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert m.duration_s == 5.0 and m.warmup_s == 1.0


def test_overrides_win() -> None:
    m = matrix(servers="cheroot", connections="4,8", duration="2s", repeats="1")
    assert [c.key for c in m.cells] == [
        "cheroot/raw/plaintext/c4-r1",
        "cheroot/raw/plaintext/c8-r1",
    ]


def test_shuffle_is_reproducible_with_a_seed() -> None:
    a = matrix(shuffle=True, seed=42)
    b = matrix(shuffle=True, seed=42)
    assert a.cells == b.cells and a.seed == 42
    assert sorted(c.key for c in a.cells) == sorted(c.key for c in matrix().cells)


def test_unshuffled_seedless_shuffle_records_a_seed() -> None:
    assert matrix(shuffle=True).seed is not None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"servers": "nginx"},
            "--servers: unknown server 'nginx' (known: gunicorn, uwsgi, cheroot)",
        ),
        ({"apps": "django"}, "--apps: unknown app 'django' (known: raw, flask)"),
        ({"connections": "1,10", "threads": "2"}, "--connections: 1 is fewer than --threads 2"),
        ({"duration": "-1"}, "--duration: duration must not be negative, got '-1'"),
        ({"duration": "0"}, "--duration: must be positive, got '0'"),
        ({"connections": "ten"}, "--connections: 'ten' is not a whole number"),
        ({"repeats": "0"}, "--repeats: 0 is below the minimum of 1"),
        ({"server_cpus": "0", "client_cpus": "0"}, "server and wrk CPUs must be disjoint"),
        (
            {"workloads": "plaintext,session", "workers": "2"},
            "--workers 2 with the session workload: each worker process keeps its own",
        ),
    ],
)
def test_bad_options_are_one_clear_line(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        matrix(**overrides)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_profile_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown profile 'nope'.*known: quick, incomplete"):
        matrix("nope")


def test_missing_setting_names_option() -> None:
    with pytest.raises(ConfigError, match="^--apps: not set by profile 'incomplete'"):
        matrix("incomplete")


def test_shipped_profiles_are_valid() -> None:
    from harness.matrix.apps import APPS as KNOWN_APPS
    from harness.matrix.build import load_profile
    from harness.matrix.servers import SERVERS as KNOWN_SERVERS

    for name in ("quick", "seed", "frameworks", "smoke"):
        load_profile(name)
        m = build_matrix(name, {}, list(KNOWN_SERVERS), list(KNOWN_APPS))
        assert m.cells
    seed = build_matrix("seed", {}, list(KNOWN_SERVERS), list(KNOWN_APPS))
    assert seed.connections == (10, 25, 50, 100, 200, 300, 400, 500)
    # The study's question to a stated precision: 3 to 6 interleaved 20 s repeats, 3 h.
    assert (seed.duration_s, seed.warmup_s, seed.repeats) == (20.0, 5.0, 3)
    assert (seed.precision, seed.max_repeats, seed.max_time_s) == (0.02, 6, 3 * 3600)
    quick = build_matrix("quick", {}, list(KNOWN_SERVERS), list(KNOWN_APPS))
    assert quick.repeats >= 3  # every quick number has an interval


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"connections": "10,10"}, "--connections: 10 is given twice (each value once)"),
        ({"connections": "10,010"}, "--connections: 10 is given twice"),
        ({"servers": "gunicorn,uwsgi,gunicorn"}, "--servers: gunicorn is given twice"),
        ({"apps": "raw, raw"}, "--apps: raw is given twice"),
        ({"workloads": "plaintext,plaintext"}, "--workloads: plaintext is given twice"),
        ({"server_cpus": "0,0", "client_cpus": "1"}, "--server-cpus: 0 is given twice"),
    ],
)
def test_a_value_given_twice_is_refused(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        matrix(**overrides)
    assert str(err.value) == message or str(err.value).startswith(message)


def test_session_mix_weights_may_repeat() -> None:
    assert matrix(session_mix="40,40,20").session_mix == "40,40,20"


def _profile_file(tmp_path: Path, body: str) -> Path:
    """The test profiles with `body` after them (before them when it has top-level keys)."""
    path = tmp_path / "mine.toml"
    path.write_text(body + PROFILES_TEXT if not body.startswith("[") else PROFILES_TEXT + body)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "[typo]\nconections = [10]\n",
            "profile [typo]: unknown key 'conections' (did you mean 'connections'?)",
        ),
        (
            '[b]\nshuffle = "false"\n',
            "profile [b]: shuffle: expected true or false (a TOML boolean, unquoted), "
            "found 'false'",
        ),
        (
            '[b]\nignore_preflight = "no"\n',
            "profile [b]: ignore_preflight: expected true or false (a TOML boolean, unquoted)",
        ),
        ('[b]\nrepeats = "3"\n', "profile [b]: repeats: expected a whole number, found '3'"),
        ("[b]\nrepeats = 1.5\n", "profile [b]: repeats: expected a whole number, found 1.5"),
        ("[b]\nthreads = true\n", "profile [b]: threads: expected a whole number, found True"),
        (
            '[b]\nconnections = [10, "x"]\n',
            "profile [b]: connections: expected a list of whole numbers",
        ),
        ("[b]\nservers = [1]\n", "profile [b]: servers: expected a list of names"),
        ("[b]\nduration = true\n", "profile [b]: duration: expected seconds, or a duration"),
        ("[b.nested]\nx = 1\n", "profile [b]: unknown key 'nested'"),
        ("top = 1\n", "profile [top]: expected a table, found 1"),
    ],
)
def test_profiles_are_checked_against_the_schema(tmp_path: Path, body: str, message: str) -> None:
    path = _profile_file(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        build_matrix("quick", {}, SERVERS, APPS, profile_file=path)
    assert str(err.value).startswith(f"{path}: {message}"), str(err.value)
    assert "\n" not in str(err.value)


def test_toml_booleans_are_booleans(tmp_path: Path) -> None:
    path = _profile_file(tmp_path, "[b]\nshuffle = false\nignore_preflight = true\n")
    m = build_matrix("quick", {}, SERVERS, APPS, profile_file=path)
    assert m.shuffle is False
    overridden = {"servers": "gunicorn", "apps": "raw", "connections": "4", "duration": "1",
                  "repeats": "1", "threads": "1"}  # fmt: skip
    b = build_matrix("b", overridden, SERVERS, APPS, profile_file=path)
    assert b.shuffle is False and b.ignore_preflight is True


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('argv = ["x"]\nworker_model = "w"\nstop_signl = "SIGINT"\n',
         "[custom_servers.x]: unknown key 'stop_signl' (did you mean 'stop_signal'?)"),
        ('argv = "x"\nworker_model = "w"\n',
         "[custom_servers.x]: argv: expected a non-empty list of strings, found 'x'"),
        ('argv = ["x"]\n', "[custom_servers.x]: 'worker_model' is required"),
        ('argv = ["x"]\nworker_model = "w"\nsettings = { a = 1 }\n',
         "[custom_servers.x]: settings: expected a table of strings"),
        ('argv = ["x"]\nworker_model = "w"\nstop_signal = "SIGNOPE"\n',
         "[custom_servers.x]: stop_signal: unknown signal 'SIGNOPE'"),
        ('argv = ["x", "--port={prt}"]\nworker_model = "w"\n',
         "[custom_servers.x]: argv: unknown placeholder {prt} (known: {python} {host}"),
    ],
)  # fmt: skip
def test_custom_servers_are_checked_against_the_schema(
    tmp_path: Path, table: str, message: str
) -> None:
    from harness.matrix.customservers import load_custom_servers

    path = _profile_file(tmp_path, "[custom_servers.x]\n" + table)
    with pytest.raises(ConfigError) as err:
        load_custom_servers(path)
    assert str(err.value).startswith(f"{path}: {message}"), str(err.value)


def test_custom_servers_file_is_not_a_profile(tmp_path: Path) -> None:
    from harness.matrix.customservers import load_custom_servers

    path = _profile_file(
        tmp_path, '[custom_servers.x]\nargv = ["{python}", "{port}"]\nworker_model = "w"\n'
    )
    assert load_custom_servers(path)["x"].argv_template == ("{python}", "{port}")
    assert build_matrix("quick", {}, SERVERS, APPS, profile_file=path).servers == (
        "gunicorn",
        "uwsgi",
    )
