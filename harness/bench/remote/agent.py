"""Bench side, on a server or client host: the process agent the controller drives.

Run as `python -m harness.bench.remote.agent <command> …` from the copy of the code on the
host (standard library only, so a client's plain python3 runs it). It talks JSON lines
on stdout and listens on stdin. For `serve` and `run` it starts one process in its own
session (harness.bench.runner: process group, PR_SET_PDEATHSIG, CPUs, open-files limit) and is
its watchdog: when stdin closes — the SSH session ended, the controller died — or when
the controller has said nothing (not even its `ping`) for `--silence-limit` seconds — the
link went silent — it kills the whole group before exiting. Meanwhile it says
`{"event": "alive"}` every `--heartbeat` seconds, so the controller can tell a silent
link from a long wait (harness/bench/remote/limits.py). Commands:

    facts [--servers a,b] [--apps x,y]   host facts, versions, what cannot run here
    port HOST                            a free TCP port on HOST's address
    preflight HOST PORT PATH BODY CTYPE  harness.bench.preflight from here (a client's view)
    serve … -- ARGV                      start, poll URL until 200, then obey `sample PATH`
                                         / `unsample` (harness.bench.sampler) until `stop`, stop
    run … -- ARGV                        wait for `go`, run to completion, stdout to a file
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.bench import hostinfo, runner
from harness.bench.remote.agentlink import Controller, emit


def _env(pairs: list[str]) -> dict[str, str]:
    return dict(p.split("=", 1) for p in pairs)


def _cpus(text: str) -> list[int] | None:
    return [int(c) for c in text.split(",")] if text else None


def facts(args: argparse.Namespace) -> int:
    out: dict[str, Any] = {
        "facts": hostinfo.host_facts(),
        "python": hostinfo.python_version(),
        "python_executable": sys.executable,
        "uid": os.getuid(),
        "psutil": hostinfo.package_version("psutil"),
        "wrk": hostinfo.wrk_version(),
        "wrk_path": hostinfo.wrk_path(),
        "versions": {},
        "unavailable": {},
    }
    if args.servers or args.apps:
        from harness.matrix.apps import APPS
        from harness.matrix.servers import SERVERS
        from harness.matrix.serverspec import check_available, package_versions

        for sid in filter(None, args.servers.split(",")):
            out["versions"][sid] = package_versions(SERVERS[sid])[SERVERS[sid].package]
            reason = check_available(SERVERS[sid])
            if reason:
                out["unavailable"][sid] = reason
        from harness.matrix.workloads import PROMETHEUS_DIST, base_app_id, is_instrumented

        for aid in filter(None, args.apps.split(",")):
            dist = APPS[base_app_id(aid)].framework_package
            if dist:
                out["versions"][aid] = hostinfo.package_version(dist)
                if out["versions"][aid] is None:
                    out["unavailable"][aid] = f"framework package {dist!r} is not installed"
            if is_instrumented(aid) and hostinfo.package_version(PROMETHEUS_DIST) is None:
                out["unavailable"][aid] = f"{PROMETHEUS_DIST!r} (--server-metrics) is not installed"
    print(json.dumps(out))
    return 0


def serve(args: argparse.Namespace) -> int:
    controller = Controller(args.heartbeat, args.silence_limit)
    if args.metrics_dir:
        from harness.serving.metrics import multiproc_env

        multiproc_env(Path(args.metrics_dir))  # fresh: an old file would count twice
    server = runner.start_server(
        args.argv,
        _env(args.env),
        hostinfo.REPO_ROOT,
        Path(args.log),
        args.stop_signal,
        _cpus(args.cpus),
        args.nofile,
    )
    try:
        emit(event="started", pid=server.proc.pid, pgid=server.pgid)
        try:
            seconds = runner.wait_ready(server, args.ready_url, args.ready_timeout)
        except runner.LaunchError as e:
            emit(event="failed", reason=str(e), code=runner.stop_server(server))
            return 1
        emit(event="ready", seconds=seconds)
        line = _serve_commands(controller, server, args.port, args.ready_url)
        if controller.gone and line == "":
            _note(Path(args.log), f"{controller.gone}: the agent stops the server")
        crashed = server.proc.poll()
        if line == "stop" and crashed is None:
            # The measurement is over: no graceful stop, as on one host (bench._measure).
            emit(event="exited", code=runner.end_server(server), crashed=None, killed=True)
            return 0
        # On EOF nobody waits for a graceful stop: the watchdog case, be quick.
        code = runner.stop_server(server, grace_s=10.0 if line == "stop" else 2.0)
        emit(event="exited", code=code, crashed=crashed)
        return 0
    finally:
        runner.kill_group(server.pgid, server.proc)


def _note(log: Path, text: str) -> None:
    """A line of the agent's own in the server's log, which comes home with the cell."""
    try:
        with log.open("a") as f:
            f.write(f"[wsgi-baseline agent] {text}\n")
    except OSError:
        pass


def _serve_commands(
    controller: Controller, server: runner.ServerProcess, port: int, origin: str
) -> str | None:
    """Obey `sample PATH` / `unsample` / `scrape PATH` until `stop` or the controller is
    gone; return that last line. `scrape` fetches the server's /metrics here."""
    sampler: Any = None
    path = ""
    while True:
        line = controller.next()
        if line and line.startswith("scrape "):
            emit(event="scraped", error=_scrape(origin.rstrip("/") + "/metrics", line[7:]))
        elif line and line.startswith("sample "):
            from harness.bench.sampler import Sampler  # psutil: only the server's virtualenv has it

            path = line.split(" ", 1)[1]
            sampler = Sampler(server.pgid, _wrk_towards(port), port).__enter__()
        elif line == "unsample" and sampler is not None:
            from harness.bench.sampler import write_samples

            sampler.__exit__(None, None, None)
            write_samples(Path(path), sampler)
            sampler = None
            emit(event="sampled")
        else:
            if sampler is not None:
                sampler.__exit__(None, None, None)
            return line


def _scrape(url: str, path: str) -> str | None:
    """Keep /metrics verbatim at `path`; the error as text (data for the sidecar) or None."""
    from harness.bench.servermetrics import scrape_to

    try:
        scrape_to(url, Path(path))
    except Exception as e:  # noqa: BLE001 - any scrape failure is data, not a crash
        return f"{Path(path).name}: {e}"
    return None


def _wrk_towards(port: int) -> Any:
    """A getter for a wrk on this host loading our port: found when the client is this
    machine too; on a separate client host there is none and wrk's columns stay None.
    Looked for at most once a second: listing every process costs milliseconds."""
    import psutil

    looked_at: list[float] = [-1.0]  # when it last looked
    found: list[int | None] = [None]  # and what it found

    def get() -> int | None:
        now = time.monotonic()
        if now - looked_at[0] >= 1.0:
            looked_at[0], found[0] = now, None
            for p in psutil.process_iter(["name", "cmdline"]):
                cmdline = p.info["cmdline"] or []
                if p.info["name"] == "wrk" and any(f":{port}/" in a for a in cmdline):
                    found[0] = int(p.pid)
                    break
        return found[0]

    return get


def preflight(args: argparse.Namespace) -> int:
    """The harness's preflight from this host (a client's view of the server)."""
    from harness.bench.preflight import preflight as check

    body = base64.b64decode(args.body_b64)
    result = check(args.host, args.port, args.path, body, args.content_type)
    print(json.dumps({"ok": result.ok, "checks": result.checks, "reason": result.reason}))
    return 0


def run(args: argparse.Namespace) -> int:
    controller = Controller(args.heartbeat, args.silence_limit)
    if args.wait_go:
        emit(event="waiting")
        if controller.next() != "go":
            return 2
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    err_path = Path(args.out + ".stderr")
    with open(args.out, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            args.argv,
            env={**os.environ, **_env(args.env)},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            preexec_fn=runner.child_setup(_cpus(args.cpus), args.nofile),
        )
    try:
        started = time.monotonic()
        emit(event="started", pid=proc.pid, pgid=proc.pid)
        deadline = started + args.limit
        timed_out = False
        usage = None
        while (usage := _reap_with_usage(proc)) is None:
            if time.monotonic() > deadline:
                timed_out = True
                break
            if controller.next(0.1) == "":
                return 3  # the controller is gone (closed or silent), so is the measurement
        wall = time.monotonic() - started
        runner.kill_group(proc.pid, proc)
        proc.wait()
        tail = err_path.read_bytes()[-4000:].decode("utf-8", "replace")
        cpu = None if usage is None else round(usage.ru_utime + usage.ru_stime, 3)
        emit(
            event="exited",
            code=proc.returncode,
            timed_out=timed_out,
            stderr=tail,
            cpu_s=cpu,  # wrk's own CPU time (wait4): no sampler watches a client host
            wall_s=round(wall, 3),
        )
        return 0
    finally:
        runner.kill_group(proc.pid, proc)
        err_path.unlink(missing_ok=True)


def _reap_with_usage(proc: subprocess.Popen[bytes]) -> Any:
    """The exited process's resource usage (reaped through wait4, so its CPU time is
    known), or None while it runs. Popen learns the exit code too."""
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid == 0:
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench.remote.agent")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("facts")
    f.add_argument("--servers", default="")
    f.add_argument("--apps", default="")
    sub.add_parser("port").add_argument("host")
    pf = sub.add_parser("preflight")
    for name in ("host", "port", "path", "body_b64", "content_type"):
        pf.add_argument(name, type=int if name == "port" else str)
    for name in ("serve", "run"):
        s = sub.add_parser(name)
        s.add_argument("--nofile", type=int, required=True)
        s.add_argument("--cpus", default="")
        s.add_argument("--env", action="append", default=[])
        # The watchdog's bounds (harness/bench/remote/limits.py); 0: no silence limit.
        s.add_argument("--heartbeat", type=float, default=2.0)
        s.add_argument("--silence-limit", type=float, default=0.0)
        s.add_argument("argv", nargs="+")
    serve_p, run_p = sub.choices["serve"], sub.choices["run"]
    serve_p.add_argument("--log", required=True)
    serve_p.add_argument("--port", type=int, required=True)
    serve_p.add_argument("--stop-signal", type=int, default=int(signal.SIGTERM))
    serve_p.add_argument("--ready-url", required=True)
    serve_p.add_argument("--ready-timeout", type=float, default=30.0)
    serve_p.add_argument("--metrics-dir", default="")  # prometheus multiprocess dir
    run_p.add_argument("--out", required=True)
    run_p.add_argument("--limit", type=float, required=True)
    run_p.add_argument("--wait-go", action="store_true")
    args = p.parse_args(argv)
    # SIGTERM/SIGHUP (e.g. `kill -TERM -- -PGID` of the agent) end in the finally blocks.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    if args.command == "port":
        print(runner.free_port(args.host))
        return 0
    commands = {"facts": facts, "serve": serve, "run": run, "preflight": preflight}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
