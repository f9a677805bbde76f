"""Bench side: what can wrk drive on this host? (`invoke calibrate`)

`calibrate(out_path, connections, duration_s, threads, client_cpus, server_cpus)` starts
Debian's nginx with a generated config in a temporary directory (127.0.0.1, a free port,
the benchmark body `Hello, World!` as text/plain with Content-Length, keep-alive, no
access log, one process: `daemon off; master_process off`), pinned like a server under
test, checks it with harness.bench.preflight, runs wrk against it pinned like a cell, samples
both CPUs, and writes `out_path` (e.g. raw/<run-id>/calibration.json) with wrk's stdout
beside it byte for byte. nginx answers far faster than any WSGI server, so the req/s
here is the client's ceiling: a cell near it measured wrk, not the server.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.bench import hostinfo, runner
from harness.bench.preflight import preflight
from harness.bench.sampler import Sampler, child_named
from harness.errors import UserError
from harness.matrix.model import listen_backlog, nofile_needed, wrk_limit_s
from harness.parse.wrk import RawFormatError, parse_wrk
from harness.paths import LUA_DIR
from harness.raw.documents import CALIBRATION_FORMAT_VERSION
from harness.raw.samples import summarize
from harness.raw.store import utc_now, write_atomic, write_json

NGINX = "/usr/sbin/nginx"
BODY = b"Hello, World!"
LUA_REPORT = LUA_DIR / "report.lua"
WRK_TIMEOUT_S = 2.0  # wrk's default --timeout, which the calibration keeps
# Format history: 1 — first version.

CONF = """\
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections {worker_connections}; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_timeout 75s;
    keepalive_requests 100000000;
    server {{
        listen 127.0.0.1:{port} backlog={backlog};
        location / {{
            default_type text/plain;
            return 200 "Hello, World!";
        }}
    }}
}}
"""


class CalibrationError(UserError):
    """nginx is missing, does not start or fails its preflight; the message says which."""


def nginx_version(nginx: str = NGINX) -> str | None:
    """`nginx version: nginx/1.22.1` -> `nginx/1.22.1` (nginx prints it on stderr)."""
    try:
        out = subprocess.run([nginx, "-v"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stderr or out.stdout).strip().rpartition(": ")[2] or None


@dataclass(frozen=True)
class Nginx:
    """A running nginx of `nginx_server`: where it answers and how it was started."""

    server: runner.ServerProcess
    port: int
    argv: list[str]
    conf: str
    preflight: dict[str, Any]
    prefix: Path  # its temporary directory, removed on exit

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@contextmanager
def nginx_server(
    connections: int, server_cpus: Sequence[int] | None, nginx: str = NGINX
) -> Iterator[Nginx]:
    """nginx with the generated config in a temporary directory, pinned like a server
    under test, checked (preflight) and stopped on exit; CalibrationError if it cannot."""
    if shutil.which(nginx) is None:
        raise CalibrationError(
            f"nginx: {nginx} not found (install it: apt-get install nginx-light)"
        )
    nofile = nofile_needed(connections)
    runner.check_nofile(nofile)
    with tempfile.TemporaryDirectory(prefix="wsgi-baseline-nginx-") as tmp:
        port = runner.free_port()
        conf = CONF.format(
            tmp=tmp, port=port, nofile=nofile,
            backlog=listen_backlog(connections, hostinfo.somaxconn()),
            worker_connections=connections + 64,
        )  # fmt: skip
        (Path(tmp) / "nginx.conf").write_text(conf)
        argv = [nginx, "-p", tmp, "-c", f"{tmp}/nginx.conf", "-e", f"{tmp}/error.log"]
        server = runner.start_server(
            argv, {}, Path(tmp), Path(tmp) / "stderr.log", signal.SIGTERM, server_cpus, nofile
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            try:
                runner.wait_ready(server, url, timeout_s=10)
            except runner.LaunchError as e:
                raise CalibrationError(
                    f"nginx did not start: {e}: {server.stderr_tail(5)}"
                ) from None
            check = preflight("127.0.0.1", port, "/", BODY, "text/plain")
            if not check.ok:
                raise CalibrationError(f"nginx failed its preflight: {check.reason}")
            yield Nginx(
                server, port, argv, conf, {"ok": check.ok, "reason": check.reason}, Path(tmp)
            )
        finally:
            runner.stop_server(server)


def calibrate(
    out_path: Path,
    connections: int,
    duration_s: int,
    threads: int,
    client_cpus: Sequence[int] | None,
    server_cpus: Sequence[int] | None,
    nginx: str = NGINX,
    wrk: str = "wrk",
    when: str = "on request",
) -> dict[str, Any]:
    """Measure wrk against nginx; write and return the calibration record."""
    nofile = nofile_needed(connections)
    record: dict[str, Any] = {
        "format_version": CALIBRATION_FORMAT_VERSION,
        "kind": "calibration",
        "when": when,  # start or end of a run, or `invoke calibrate` (on request)
        "started_at": utc_now(),
        "nginx_version": nginx_version(nginx),
        "connections": connections,
        "threads": threads,
        "duration_s": duration_s,
        "client_cpus": list(client_cpus) if client_cpus else None,
        "server_cpus": list(server_cpus) if server_cpus else None,
        "nofile_limit": nofile,
    }
    stdout_path, lua_path = out_path.with_suffix(".txt"), out_path.with_suffix(".lua.json")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with nginx_server(connections, server_cpus, nginx) as ng:
        record.update(nginx_argv=ng.argv, nginx_conf=ng.conf, preflight=ng.preflight)
        wrk_argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--latency"]
        wrk_argv += ["-s", str(LUA_REPORT), ng.url]
        lua_path.unlink(missing_ok=True)
        with Sampler(ng.server.pgid, child_named(Path(wrk).name), ng.port) as sampler:
            run = runner.run_wrk(
                wrk_argv, {"WSGI_BASELINE_REPORT": str(lua_path)}, client_cpus, nofile,
                limit_s=wrk_limit_s(duration_s, WRK_TIMEOUT_S),
            )  # fmt: skip
    write_atomic(stdout_path, run.stdout)
    samples = summarize(sampler.samples)
    files = {"stdout": stdout_path.name}
    if lua_path.exists():
        files["lua_json"] = lua_path.name
    record.update(
        wrk_argv=wrk_argv, wrk_exit_code=run.exit_code, wrk_stderr=run.stderr[-2000:],
        wrk_cpu_pct_mean=samples["wrk_cpu_pct_mean"], wrk_cpu_pct_max=samples["wrk_cpu_pct_max"],
        nginx_cpu_pct_mean=samples["server_cpu_pct_mean"], ended_at=utc_now(),
        files=files,
    )  # fmt: skip
    record.update(_figures(run))
    write_json(out_path, record)
    return record


def _figures(run: runner.WrkRun) -> dict[str, Any]:
    try:
        r = parse_wrk(run.stdout.decode("utf-8", "replace"))
    except RawFormatError as e:
        return {"status": "failed", "reason": f"wrk output not readable: {e}"}
    return {
        "status": "ok" if run.exit_code == 0 else "failed",
        "reason": None if run.exit_code == 0 else f"wrk exited with code {run.exit_code}",
        "requests": r.requests,
        "requests_per_sec": r.requests_per_sec,
        "latency_avg_ms": r.latency_avg_ms,
        "latency_max_ms": r.latency_max_ms,
        "latency_p99_ms": r.latency_percentiles_ms.get(99.0),
        "errors": {
            "connect": r.errors_connect, "read": r.errors_read, "write": r.errors_write,
            "timeout": r.errors_timeout, "non_2xx_3xx": r.non_2xx_3xx,
        },
    }  # fmt: skip
