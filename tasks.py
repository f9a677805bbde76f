"""wsgi-baseline tasks: thin wrappers that parse options and call `harness`.

`invoke --list` shows them; `invoke TASK --help` documents every option (also when the
task takes positional arguments: harness/cli/invoketask.py). One vocabulary across tasks
(README, "Using it"): `-r/--raw DIR` the raw directory, `--run ID` one run in it,
`-o/--out PATH` what a task writes besides raw/, `-p/--profile NAME`; durations are
`180`, `180s` or `3m` everywhere. Options not given take the user's defaults
(`wsgi-baseline.toml`, or `[tool.wsgi-baseline]` in pyproject.toml: harness/cli/config.py).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from invoke import Context, Exit

from harness.cli.invoketask import cli_task as task
from harness.errors import UserError
from harness.paths import DOCS_DIR as DOCS
from harness.paths import RAW_DIR as RAW
from harness.paths import REPO_ROOT as ROOT
from harness.paths import SITE_DIR as SITE

RAW_HELP = "raw directory (default: raw/)"


def _fail(message: str, code: int = 2) -> Exit:
    return Exit(f"error: {message}", code=code)


@contextmanager
def _user_errors(interrupted: str = "interrupted") -> Iterator[None]:
    """The one place an error the user can fix becomes one line and exit code 2
    (harness.errors.UserError); Ctrl-C is exit code 130; bugs keep their traceback."""
    try:
        yield
    except UserError as e:
        raise _fail(str(e), e.exit_code) from None
    except KeyboardInterrupt:
        raise _fail(interrupted, code=130) from None


def _raw(raw: str) -> Path:
    return Path(raw) if raw else RAW


# --- Measuring: bench, calibrate, runs, summary -----------------------------------------


@task(
    optional=["resume"],
    iterable=["client_host"],
    old_names={"raw": ["out"]},
    help={
        "profile": "named matrix from harness/matrix/profiles.toml: quick (default), seed, "
        "frameworks, …",
        "profile-file": "TOML file holding the profiles (default: harness/matrix/profiles.toml); "
        "keep your own profiles in a file of yours and name it here",
        "servers": "comma-separated server ids, e.g. gunicorn,uwsgi",
        "apps": "comma-separated app ids: raw, flask, cherrypy, falcon, bottle",
        "workloads": "comma-separated workloads: plaintext (GET /), json (GET /json)",
        "connections": "comma-separated wrk connection counts, e.g. 10,100,500",
        "duration": "measured time per cell: 180, 180s or 3m",
        "warmup": "unmeasured wrk load before each cell: 30, 30s, 0 for none",
        "repeats": "how many times each cell is measured",
        "threads": "wrk threads (at most the connection count)",
        "timeout": "wrk --timeout: slower responses count as timeouts (default 2s)",
        "workers": "server worker processes (the same budget for every server)",
        "server-threads": "threads per worker for servers that have threads",
        "server-cpus": "CPUs the server is pinned to, e.g. 0 (default: first half)",
        "client-cpus": "CPUs wrk is pinned to, e.g. 1 (default: second half)",
        "raw": "raw directory the run goes to (default: raw/; --out is its old name)",
        "name": "name of a new run: its id is <time>-<name> (default: the profile's name); "
        "letters, digits, . _ -",
        "resume": "continue an unfinished run: its id, or the newest matching one",
        "new": "start a new run even if a matching unfinished run exists",
        "shuffle": "measure the cells in random order (the seed is recorded)",
        "seed": "seed for --shuffle (default: drawn and recorded)",
        "server-metrics": "also run every app wrapped in the Prometheus timing middleware "
        "(app id <app>+metrics) and store the server-side latency histogram per cell",
        "ignore-preflight": "measure even a server/app whose preflight check failed "
        "(recorded with the cell)",
        "session-mix": "session workload: GET,POST,DELETE weights (default 80,15,5)",
        "session-keys": "session workload: keys per wrk thread (default 1000)",
        "session-seed": "session workload: seed of the request mix (default 1)",
        "server-host": "run the servers on user@host[:port] over SSH (default: local)",
        "client-host": "run wrk on user@host[:port] (default: local); repeat for several "
        "clients started together, whose figures are merged",
        "ssh-key": "private key file for SSH (default: the SSH agent and ~/.ssh keys)",
        "known-hosts": "known_hosts file the host keys are checked against "
        "(default: ~/.ssh/known_hosts)",
        "insecure-host-keys": "do not check SSH host keys (recorded in run.json)",
        "remote-dir": "directory on remote hosts for the code and virtualenv "
        "(default: wsgi-baseline in the login directory)",
        "remote-venv": "existing virtualenv on the server host to use instead of making one",
        "precision": "adaptive repeats: after --repeats (at least 3), measure a cell again "
        "while its 95 % interval is wider than this share of its mean, e.g. 2%",
        "max-repeats": "with --precision: at most this many repeats per cell (default 10)",
        "max-time": "with --precision: add no round of repeats that would pass this wall "
        "time, e.g. 20m",
        "no-calibrate": "do not measure the client ceiling (wrk against nginx) at the start "
        "and end of the run (recorded)",
        "dry-run": "print the matrix, its cell count and estimated wall time; start nothing",
        "export-json": "also write the summary printed at the end as JSON to this file",
        "export-markdown": "also write that summary as GitHub-flavoured markdown to this file",
        "rates": "also measure open-loop cells at these offered rates: shares of each cell's "
        "closed-loop req/s in this run (25%,50%,100%) or req/s (5000); latency corrected "
        "for coordinated omission (harness/bench/lua/openloop.lua)",
    },
)
def bench(
    c: Context,
    profile: str = "quick",
    profile_file: str = "",
    servers: str = "",
    apps: str = "",
    workloads: str = "",
    connections: str = "",
    duration: str = "",
    warmup: str = "",
    repeats: str = "",
    threads: str = "",
    timeout: str = "",
    workers: str = "",
    server_threads: str = "",
    server_cpus: str = "",
    client_cpus: str = "",
    raw: str = "",
    name: str = "",
    resume: str | None = None,
    new: bool = False,
    shuffle: bool = False,
    seed: str = "",
    server_metrics: bool = False,
    ignore_preflight: bool = False,
    session_mix: str = "",
    session_keys: str = "",
    session_seed: str = "",
    server_host: str = "",
    client_host: list[str] | None = None,
    ssh_key: str = "",
    known_hosts: str = "",
    insecure_host_keys: bool = False,
    remote_dir: str = "",
    remote_venv: str = "",
    precision: str = "",
    max_repeats: str = "",
    max_time: str = "",
    no_calibrate: bool = False,
    dry_run: bool = False,
    export_json: str = "",
    export_markdown: str = "",
    rates: str = "",
) -> None:
    """Run the server × app × connections matrix with wrk into raw/<run-id>/.

    Ends with a summary in the terminal (servers ranked per app and connection level, with
    their 95 % intervals, repeats and flags) and the run id on stdout."""
    from harness.bench.remote.session import remote_bench
    from harness.bench.run import run_bench
    from harness.bench.runsetup import registry
    from harness.cli.cellline import flags_suffix, prepare
    from harness.cli.console import console_for
    from harness.cli.summaryout import report_run
    from harness.matrix.apps import APPS
    from harness.matrix.build import build_matrix, load_profile
    from harness.matrix.customservers import load_custom_servers
    from harness.matrix.hosts import plan_hosts
    from harness.paths import PROFILES_FILE
    from harness.raw.store import check_run_name

    overrides = {
        "servers": servers or None,
        "apps": apps or None,
        "workloads": workloads or None,
        "connections": connections or None,
        "duration": duration or None,
        "warmup": warmup or None,
        "repeats": repeats or None,
        "threads": threads or None,
        "timeout": timeout or None,
        "workers": workers or None,
        "server_threads": server_threads or None,
        "server_cpus": server_cpus or None,
        "client_cpus": client_cpus or None,
        "shuffle": True if shuffle or seed else None,
        "seed": None,
        "server_metrics": True if server_metrics else None,
        "ignore_preflight": True if ignore_preflight else None,
        "session_mix": session_mix or None,
        "session_keys": session_keys or None,
        "session_seed": session_seed or None,
        "precision": precision or None,
        "max_repeats": max_repeats or None,
        "max_time": max_time or None,
        "calibrate": False if no_calibrate else None,
        "rates": rates or None,
    }
    if seed:
        try:
            overrides["seed"] = int(seed)
        except ValueError:
            raise _fail(f"--seed: {seed!r} is not a whole number") from None
    path = Path(profile_file) if profile_file else PROFILES_FILE
    console = console_for(sys.stderr)
    with _user_errors("interrupted; run the same command again to resume"):
        run_name = check_run_name(name) if name else None
        registered = registry(load_custom_servers(path))
        hosts = plan_hosts(
            load_profile(profile, path), server_host, client_host, ssh_key, known_hosts,
            insecure_host_keys, remote_dir, remote_venv,
        )  # fmt: skip
        matrix = build_matrix(
            profile, overrides, list(registered), list(APPS), path,
            split_cpus=hosts is None or hosts.shared_machine,
        )  # fmt: skip
        if dry_run:
            from harness.bench.run import dry_run as describe

            print(describe(matrix, remote=hosts is not None))
            return
        prepare()
        with remote_bench(hosts, matrix, lambda m: console.print(m, markup=False)) as remote:
            run_id = run_bench(
                matrix, _raw(raw), registered, resume=resume or False, fresh=new,
                console=console, remote=remote, name=run_name, annotate=flags_suffix,
            )  # fmt: skip
    with _user_errors():
        report_run(_raw(raw) / run_id, console, export_json, export_markdown)
    print(run_id)


@task(
    help={
        "raw": RAW_HELP,
        "run": "the run to sum up (default: the newest in --raw)",
        "export-json": "also write the summary as JSON to this file (- for stdout)",
        "export-markdown": "also write it as GitHub-flavoured markdown to this file (- for stdout)",
    }
)
def summary(
    c: Context, run: str = "", raw: str = "", export_json: str = "", export_markdown: str = ""
) -> None:
    """Print the summary `invoke bench` ends with, for any run.

    Servers ranked per app and connection level with their 95 % intervals, repeats and
    flags; --export-json / --export-markdown write it too."""
    from harness.cli.console import console_for
    from harness.cli.summaryout import report_run
    from harness.raw.listing import find_run, run_ids

    raw_dir = _raw(raw)
    with _user_errors():
        run_dir = find_run(raw_dir, run or (run_ids(raw_dir) or [""])[-1])
        report_run(run_dir, console_for(sys.stderr), export_json, export_markdown, strict=True)


@task(
    help={
        "raw": RAW_HELP,
        "json": "print the list as JSON (one object per run) instead of a table",
    }
)
def runs(c: Context, raw: str = "", json: bool = False) -> None:
    """List the runs in raw/: id, profile, status, cells done of planned, host, start."""
    import dataclasses

    from harness.cli.runlist import render_runs
    from harness.raw.listing import list_runs

    found = list_runs(_raw(raw))
    if json:
        import json as json_module

        print(json_module.dumps([dataclasses.asdict(r) for r in found], indent=2))
        return
    print(render_runs(found, _raw(raw)))


@task(
    help={
        "run": "the run to record the ceiling with, e.g. 20261126T190539Z-quick "
        "(default: none: the ceiling is printed, not recorded)",
        "raw": RAW_HELP,
        "connections": "wrk connections (default: the run's highest level, else 100)",
        "duration": "seconds of load: 10, 10s or 1m (default 10s)",
        "threads": "wrk threads (default: the run's, else 1)",
    },
)
def calibrate(
    c: Context,
    run: str = "",
    raw: str = "",
    connections: int = 0,
    duration: str = "10s",
    threads: int = 0,
) -> None:
    """Measure the client ceiling: what wrk drives here, with the run's pinning, against nginx.

    Recorded with a run only when it is named (--run): a ceiling measured now is not that
    of a run measured elsewhere or earlier unless you say it is."""
    import tempfile

    from harness.bench.calibrate import calibrate as measure
    from harness.matrix.build import default_pinning
    from harness.matrix.options import parse_duration
    from harness.raw.listing import find_run
    from harness.raw.records import read_run

    raw_dir = _raw(raw)
    with _user_errors():
        seconds = parse_duration(duration, "--duration")
        run_dir = find_run(raw_dir, run) if run else None
    if seconds < 1 or seconds != int(seconds):
        raise _fail(f"--duration: wrk takes whole seconds, at least 1, got {duration!r}")
    settings: dict = {}
    if run_dir is not None:
        meta = read_run(run_dir / "run.json")
        if meta.hosts:
            where = (meta.hosts.get("plan") or {}).get("server", "?")
            raise _fail(
                f"--run: {run} was measured on other hosts (server {where});"
                " calibrate runs wrk and nginx on this machine, which would not be that run's "
                "ceiling (a run on other hosts measures it on them at its start and end)"
            )
        settings = dict(meta.settings)
    server_cpus, client_cpus = default_pinning()
    with _user_errors(), tempfile.TemporaryDirectory(prefix="calibrate-") as tmp:
        out = run_dir if run_dir is not None else Path(tmp)
        record = measure(
            out / "calibration.json",
            connections=connections or max(settings.get("connections") or [100]),
            duration_s=int(seconds),
            threads=threads or settings.get("threads") or 1,
            client_cpus=settings.get("client_cpus", client_cpus),
            server_cpus=settings.get("server_cpus", server_cpus),
        )
    rps = record.get("requests_per_sec")
    if run_dir is None:
        print(f"wrk drives {rps} req/s against nginx here (not recorded: --run RUN records it)")
    else:
        print(f"{run}: wrk drives {rps} req/s against nginx")


# --- Importing: import-logs, import-metrics ----------------------------------------------


@task(
    old_names={"raw": ["out"]},
    help={
        "src": "directory of plain wrk outputs (one subdirectory per repeat allowed)",
        "pattern": "file name pattern, e.g. '{server}.{connections}.log'",
        "raw": "raw directory to add the run to (default: raw/; --out is its old name)",
        "strict": "refuse the import if any file does not match (default: skip and list it)",
    },
)
def import_logs(c: Context, src: str, pattern: str, raw: str = "", strict: bool = False) -> None:
    """Turn a directory of plain wrk outputs (an older study's logs) into a raw run."""
    from harness.raw.importlogs import import_logs as do_import

    with _user_errors():
        run_id = do_import(
            Path(src), pattern, _raw(raw), strict=strict,
            note=lambda m: print(m, file=sys.stderr),
        )  # fmt: skip
    print(run_id)


@task(
    help={
        "wrk": "the wrk output of the measurement",
        "prom": "Prometheus text: one file (a delta) or two comma-separated (before,after)",
        "run": "id of the run to add the cell to in --raw (created if new), e.g. "
        "imported-kask; a folder (raw/imported-kask) is still understood",
        "raw": RAW_HELP,
        "server": "server id to file the cell under",
        "app": "app id to file the cell under",
        "workload": "workload name (default: imported)",
        "repeat": "repeat number (default 1; a cell imported before needs it: 2, 3, …)",
        "lua-json": "our Lua report beside the wrk output, if there is one",
        "note": "free text kept with the cell",
        "ignore-counts": "import even when the histogram's request count and wrk's disagree "
        "(checked by default: more than 10 % apart means other scrapes or another load)",
    },
)
def import_metrics(
    c: Context,
    wrk: str,
    prom: str,
    run: str,
    server: str,
    app: str,
    raw: str = "",
    workload: str = "imported",
    repeat: int = 0,
    lua_json: str = "",
    note: str = "",
    ignore_counts: bool = False,
) -> None:
    """Add a service's Prometheus histogram dump(s) and the matching wrk output to a run."""
    from harness.raw.metricsimport import import_metrics as do_import
    from harness.raw.store import check_run_name

    with _user_errors():
        if "/" in run:  # the old form: the run's folder
            if raw:
                raise _fail("--run: give the run's id with --raw, not its folder")
            run_dir = Path(run)
        else:
            run_dir = _raw(raw) / check_run_name(run, "--run")
        sidecar = do_import(
            [Path(p) for p in prom.split(",") if p],
            Path(wrk),
            run_dir,
            server=server,
            app=app,
            workload=workload,
            repeat=repeat or None,
            lua_json=Path(lua_json) if lua_json else None,
            note=note,
            check_counts=not ignore_counts,
        )
    print(sidecar)


# --- Results: export, compare -------------------------------------------------------------


@task(
    help={
        "raw": RAW_HELP,
        "out": "directory for results.csv and results.jsonl (default: export/)",
        "skip-bad": "skip files that cannot be parsed (they are listed) instead of stopping",
    },
)
def export(c: Context, raw: str = "", out: str = "export", skip_bad: bool = False) -> None:
    """Write the whole tidy table as CSV (opens in any spreadsheet) and JSON lines."""
    from harness.tables.export import export_raw

    with _user_errors():
        done = export_raw(_raw(raw), Path(out), skip_bad=skip_bad)
    for error in done.skipped:
        print(f"skipped: {error}", file=sys.stderr)
    for path in done.written:
        print(path)


@task(
    positional=["run_a", "run_b"],
    old_names={"markdown": ["out"]},
    help={
        "run-a": "the run before (A), e.g. 20261126T150626Z-quick",
        "run-b": "the run after (B): ratios are B over A",
        "raw": RAW_HELP,
        "json": "print the comparison as JSON on stdout instead of building the site",
        "markdown": "write the comparison as GitHub-flavoured markdown (for a pull request) "
        "to this file, - for stdout, instead of building the site (--out is its old name)",
        "factor": "a change counts when B/A is beyond this factor either way and outside "
        "the noise (default 1.1, as asv continuous); a regression makes the exit code 1",
        "runs": "runs the site shows besides the comparison: latest, all, or run ids",
    },
)
def compare(
    c: Context,
    run_a: str,
    run_b: str,
    raw: str = "",
    json: bool = False,
    markdown: str = "",
    factor: str = "1.1",
    runs: str = "latest",
) -> None:
    """Compare two runs cell by cell: req/s and p99 ratios, noise, metadata.

    Builds the site's comparison page, or prints JSON (--json) or writes plain markdown
    (--markdown FILE) instead; the exit code is 1 when a regression beyond --factor is
    found (asv continuous)."""
    import json as json_module

    from harness.cli.comparison import compare_runs, to_json, to_markdown
    from harness.cli.output import write_output
    from harness.raw.listing import find_run

    try:
        threshold = float(factor)
    except ValueError:
        threshold = 0.0
    if not threshold > 1:
        raise _fail(f"--factor: expected a number above 1, e.g. 1.1, got {factor!r}")
    raw_dir = _raw(raw)
    with _user_errors():
        dirs = find_run(raw_dir, run_a, "RUN_A"), find_run(raw_dir, run_b, "RUN_B")
        found = compare_runs(*dirs, factor=threshold)
    if json:
        print(json_module.dumps(to_json(found), indent=2))
    if markdown:
        with _user_errors():
            write_output(markdown, to_markdown(found), "--markdown")
    if not (json or markdown):
        from harness.pages.comparepage import compare_page
        from harness.site.build import build_site as build

        with _user_errors():
            site = build(raw_dir, DOCS, SITE, runs=runs, compare=[(run_a, run_b)])
        print(site / compare_page(run_a, run_b).replace(".md", ".html"))
        again = f"invoke build-site --compare {run_a}:{run_b}"
        again += f" --raw {raw}" if raw else ""
        print(f"to keep this comparison in later builds: {again}", file=sys.stderr)
    regressions = found.changes("regression")
    if regressions:
        raise Exit(
            f"{len(regressions)} regression(s) beyond ×{threshold:g} outside the noise",
            code=1,
        )


# --- Checks and the tool's own performance: test, perf ------------------------------------


@task(
    old_names={"fast": ["f"]},
    help={
        "fast": "only the quick tests: no real servers, wrk, site builds or browser "
        "(well under a minute; CI runs everything)",
        "k": "only the tests matching this pytest -k expression",
        "m": "only the tests matching this pytest -m marker expression (slow, site)",
    },
)
def test(c: Context, fast: bool = False, k: str = "", m: str = "") -> None:
    """Run lint, type checks, the layering contracts and the test suite."""
    import shlex

    py = sys.executable
    c.run(f"{py} -m ruff check harness tests tasks.py", pty=False)
    c.run(f"{py} -m ruff format --check harness tests tasks.py", pty=False)
    c.run(f"{py} -m mypy harness", pty=False)
    c.run(f"{Path(py).parent / 'lint-imports'}", pty=False)
    markers = [f"({m})"] if m else []
    if fast:
        markers.append("not slow and not site")
    args = ["-q", "-ra", "--durations=15"]
    if markers:
        args += ["-m", " and ".join(markers)]
    if k:
        args += ["-k", k]
    c.run(f"{py} -m pytest {shlex.join(args)}", pty=False)


@task(
    help={
        "size": "comma-separated numbers of cells, e.g. 288 or 1000,10000 (default: 288)",
        "out": "where to write the figures (default: .harness-cache/perf.json, not tracked; "
        "--out docs/about/perf.json to update the site's page)",
        "bench": "also time real 10 s cells with invoke bench, one per installed server of "
        "the quick profile (needs wrk; about 90 s)",
        "no-bench": "the default now (kept for scripts that said it)",
        "repeats": "runs of the no-change build and of bare mkdocs per size (median kept)",
        "fidelity": "also set the harness against a hand-run wrk, in interleaved pairs and "
        "in pairs run at once on the same CPUs (fidelity_ratio, fidelity_together_ratio; "
        "12 pairs of each: about 6 minutes)",
        "fidelity-pairs": "pairs for --fidelity (default 12; more narrow its interval)",
        "answer": "also time a seed-like subset with fixed 3 × 60 s cells and with "
        "--precision 2 % (time_to_answer; about 45 minutes)",
        "open-loop": "also measure the open-loop client (--rates) against nginx: its "
        "highest accurate rate and latency floor per rate, 3 repeats (about 4 minutes)",
        "fresh": "do not carry over from --out the sections this run does not measure "
        "(fidelity, time to answer, open loop, bench cells); by default they are kept, "
        "marked with the time they were measured",
    },
)
def perf(
    c: Context,
    size: str = "288",
    out: str = "",
    bench: bool = False,
    no_bench: bool = False,
    repeats: int = 3,
    fidelity: bool = False,
    fidelity_pairs: int = 12,
    answer: bool = False,
    open_loop: bool = False,
    fresh: bool = False,
) -> None:
    """Measure the harness itself: parse, table, site builds, RSS.

    Cold and no-change build-site with each site engine beside its floor; real bench
    cells only with --bench."""
    from harness.pages.perfpage import engine_rows
    from harness.perf.run import run_perf

    try:
        sizes = [int(s) for s in size.split(",") if s.strip()]
    except ValueError:
        raise _fail(f"--size: expected whole numbers, got {size!r}") from None
    if not sizes or min(sizes) < 1:
        raise _fail("--size: at least one size of 1 cell or more")
    if bench and no_bench:
        raise _fail("--bench and --no-bench: give one")
    path = Path(out) if out else ROOT / ".harness-cache" / "perf.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = run_perf(
        sizes, path, bench=bench, repeats=max(1, repeats), fidelity=fidelity, answer=answer,
        fidelity_pairs=fidelity_pairs,
        open_loop=open_loop, fresh=fresh,
    )  # fmt: skip
    for name, at in (doc.get("carried_over") or {}).items():
        print(f"{name}: carried over from {path} (measured {at}); --fresh drops it")
    for t in doc["targets"]:
        floor = f", floor {t['floor']}" if t["floor"] != "—" else ""
        print(f"{t['what']}: {t['measured']} (target {t['target']}{floor}): {t['met']}")
    for conns, rps in ((doc.get("open_loop") or {}).get("highest_accurate_rps") or {}).items():
        print(f"open-loop client, {conns} connections: highest accurate rate {rps} req/s")
    for s in doc["sizes"]:
        for e in engine_rows(s):
            print(
                f"{e['engine']}, {e['cells']:,} cells: cold {e['cold']} s (floor "
                f"{e['cold_floor']} s), no change {e['nochange']} s (floor {e['floor']} s)"
            )
    print(path)


# --- Report site (harness/site/: build, engine, publish) -------------------------------


@task(
    iterable=["compare"],
    help={
        "raw": RAW_HELP,
        "runs": "runs to show: latest (newest complete run), all, or comma-separated run ids",
        "compare": "also compare run A with run B, as RUN_A:RUN_B (repeatable); the newest "
        "two complete runs of one profile are compared anyway",
        "engine": "site generator: mkdocs (default) or zensical (pip install -e "
        "'.[site-engines]'); both read the same generated config",
        "strict-raw": "fail if any raw file cannot be read (default: leave it out, show it "
        "on the Errors page and list it here)",
        "site-url": "where the site will be served, e.g. https://org.github.io/project/: "
        "404.html and sitemap.xml then work under that path (recorded in site/)",
    },
)
def build_site(
    c: Context,
    raw: str = "",
    runs: str = "latest",
    compare: list[str] | None = None,
    engine: str = "",
    strict_raw: bool = False,
    site_url: str = "",
) -> None:
    """Render docs/ from raw/ (tables, charts, pages) and build site/ with --strict."""
    from harness.site.build import build_site as build
    from harness.site.engine import DEFAULT_ENGINE

    pairs = [_compare_pair(p) for p in compare or []]
    with _user_errors():
        site = build(
            _raw(raw), DOCS, SITE, runs, pairs, engine=engine or DEFAULT_ENGINE,
            strict_raw=strict_raw, note=lambda m: print(m, file=sys.stderr),
            site_url=site_url or None,
        )  # fmt: skip
    print(site)


def _compare_pair(text: str) -> tuple[str, str]:
    a, sep, b = text.partition(":")
    if not sep or not a.strip() or not b.strip() or ":" in b:
        raise _fail(f"--compare: expected RUN_A:RUN_B, got {text!r}")
    return a.strip(), b.strip()


@task(
    help={
        "raw": RAW_HELP,
        "runs": "runs to show: latest, all, or comma-separated run ids",
        "addr": "address to serve on (default: 127.0.0.1:8000)",
    }
)
def serve_site(
    c: Context, raw: str = "", runs: str = "latest", addr: str = "127.0.0.1:8000"
) -> None:
    """Render docs/ from raw/ and preview the site with `mkdocs serve` (Ctrl-C stops it)."""
    from harness.site.build import serve_site as serve

    with _user_errors():
        try:
            code = serve(_raw(raw), DOCS, SITE, runs=runs, addr=addr)
        except KeyboardInterrupt:  # Ctrl-C is how a preview ends
            code = 0
    if code not in (0, -2, 130):  # -2, 130: mkdocs stopped by the same Ctrl-C
        raise _fail(f"mkdocs serve exited with code {code}", code=1)
    print("stopped", file=sys.stderr)


@task(
    help={
        "target": "a git remote (URL or repository path: pushed to its gh-pages branch) "
        "or a directory (the site is copied there)",
        "message": "commit message for a gh-pages push",
        "site-url": "where the site will be served, e.g. https://org.github.io/project/; "
        "site/ is built again for it first when it was built for another address",
    }
)
def publish(
    c: Context, target: str, message: str = "Publish the wsgi-baseline site", site_url: str = ""
) -> None:
    """Put the built site/ where stakeholders read it (run build-site first).

    A target holding this site already is left as it is (no empty commit)."""
    from harness.site.publish import build_again_for
    from harness.site.publish import publish as put

    with _user_errors():
        if build_again_for(site_url or None, DOCS, SITE, note=lambda m: print(m, file=sys.stderr)):
            print(f"built site/ again for {site_url}")
        print(put(SITE, target, message, site_url=site_url or None))


@task
def update_golden(c: Context) -> None:
    """Regenerate tests/golden/ from tests/fixtures/site_raw/; review the diff like code."""
    from harness.site.build import update_golden as update

    for path in update():
        print(path.relative_to(ROOT))
