"""The cell sequence (harness/bench/cell.py) on a fake host: no process is started.

Every step can be made to fail; each failure must end as a `failed` sidecar naming the
step, whatever ran must be ended (`end_cell`), nothing measured before the failure may
be lost, and a success must write the same files a real host's cell has.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from harness.bench.cell import measure_cell
from harness.bench.host import (
    HostError,
    HostLost,
    Measurement,
    ScrapeFailed,
    ServerStart,
    ServerStop,
    WrkOutput,
)
from harness.matrix.model import Cell, Matrix
from harness.raw.preflight import ANNOUNCED_CLOSE, PreflightResult
from harness.raw.records import read_cell
from harness.raw.samples import encode_samples
from harness.raw.store import RunStore
from harness.tables.dataset import load_runs

WRK = Path(__file__).parent / "fixtures" / "wrk"
STDOUT = (WRK / "wrk410-with-report-lua.txt").read_bytes()
REPORT = (WRK / "wrk410-with-report-lua.lua.json").read_bytes()
SAMPLES = encode_samples([], interval_s=0.25, port=1, server_pid=1, sampler_cpu_s=0.0)
OK_CHECKS = [("status", True, "200"), ("keep_alive", True, "two requests answered")]
MATRIX = Matrix(
    profile="fake", servers=("srv",), apps=("raw",), workloads=("plaintext",),
    connections=(10,), repeats=1, duration_s=5.0, warmup_s=1.0, threads=1, timeout_s=2.0,
    workers=1, server_threads=1,
)  # fmt: skip
CELL = Cell("srv", "raw", "plaintext", 10, 1)


def _out(connections: int = 10, **change: object) -> WrkOutput:
    out = WrkOutput(None, connections, ("wrk", "-c10"), STDOUT, REPORT, 0, False, "")
    return replace(out, **change)  # type: ignore[arg-type]


class FakeHost:
    """A CellHost that records the steps it was asked to do and fails where told."""

    def __init__(self, fail: str = "", clients: int = 1, app_metrics: bool = False) -> None:
        self.fail, self.clients = fail, clients
        self.calls: list[str] = []
        self.ended = 0

    @property
    def where(self) -> dict[str, object]:
        return {"server_host": "fake-server"} if self.fail != "local" else {}

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if self.fail == f"{name}:lost":
            raise HostLost(f"fake: connection lost in {name}")
        if self.fail == f"{name}:error":
            raise HostError(f"fake: {name} failed")
        if self.fail == f"{name}:interrupt":
            raise KeyboardInterrupt

    def start_server(self, cell: Cell, log: Path) -> ServerStart:
        self._step("start")
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("server says hello\n")
        if self.fail == "start":
            return ServerStart(
                ("srv",), {}, 1024, failure="server did not start: exited with code 1",
                exit_code=1, stderr_tail="address in use",
            )  # fmt: skip
        return ServerStart(("srv",), {"A": "1"}, 1024, "http://127.0.0.1:1", 0.05)

    def preflight(self, workload: str) -> PreflightResult:
        self._step("preflight")
        if self.fail == "preflight":
            checks = [("status", False, "HTTP 500, expected 200")]
            return PreflightResult(False, checks, "status: HTTP 500, expected 200")
        if self.fail == "preflight-close":
            checks = [*OK_CHECKS[:1], ("keep_alive", False, ANNOUNCED_CLOSE)]
            return PreflightResult(False, checks, f"keep_alive: {ANNOUNCED_CLOSE}")
        return PreflightResult(True, OK_CHECKS, None)

    def run_wrk(self, cell: Cell, url: str, seconds: float, measured: bool) -> Measurement:
        self._step("measure" if measured else "warmup")
        share = cell.connections // self.clients
        outs = [_out(share, host=f"client{i}" if self.clients > 1 else None)
                for i in range(1, self.clients + 1)]  # fmt: skip
        if not measured:
            return Measurement(tuple(replace(o, report=None) for o in outs))
        if self.fail == "wrk-exit":
            outs[0] = replace(outs[0], exit_code=1, stderr="unable to connect\n", stdout=b"")
        if self.fail == "wrk-timeout":
            outs[0] = replace(outs[0], timed_out=True)
        return Measurement(tuple(outs), SAMPLES)

    def scrape(self, path: Path) -> str:
        self._step("scrape")
        if self.fail == "scrape":
            raise ScrapeFailed(f"{path.name}: connection refused")
        path.write_text("# no histograms\n")
        return ""

    def stop_server(self) -> ServerStop:
        self._step("stop")
        if self.fail == "crash":
            return ServerStop(3, True, False, "Traceback: boom")
        return ServerStop(-9, False, True, "bye")

    def end_cell(self) -> None:
        self.ended += 1


def _measure(tmp_path: Path, host: FakeHost, matrix: Matrix = MATRIX, cell: Cell = CELL):
    store = RunStore(tmp_path, "20261207T000000Z-fake")
    outcome = measure_cell(host, store, matrix, cell)
    return outcome, read_cell(store.cell_files(cell)["sidecar"]), store.cell_files(cell)


def test_a_sound_cell_walks_every_step_once_and_writes_its_files(tmp_path: Path) -> None:
    host = FakeHost()
    outcome, rec, files = _measure(tmp_path, host)
    assert host.calls == ["start", "preflight", "warmup", "measure", "stop"]
    assert host.ended == 1
    assert outcome.status == "ok" and rec.status == "ok" and rec.reason is None
    assert outcome.requests_per_sec is not None
    assert files["stdout"].read_bytes() == STDOUT and files["lua_json"].read_bytes() == REPORT
    assert files["warmup"].read_bytes() == STDOUT and files["samples"].is_file()
    assert set(rec.files) == {"stdout", "lua_json", "warmup", "samples"}
    assert rec.url == "http://127.0.0.1:1/" and rec.server_host == "fake-server"
    assert rec.server_stop == "sigkill-after-measurement" and rec.server_exit_code == -9
    assert rec.duration_configured_s == 5.0 and rec.warmup_configured_s == 1.0
    assert rec.preflight is not None and rec.preflight.ok


def test_no_warmup_means_no_warmup_step(tmp_path: Path) -> None:
    host = FakeHost()
    _, rec, files = _measure(tmp_path, host, replace(MATRIX, warmup_s=0.0))
    assert "warmup" not in host.calls and not files["warmup"].exists() and rec.ok


@pytest.mark.parametrize(
    ("fail", "steps", "reason"),
    [
        ("start", ["start"], "server did not start: exited with code 1"),
        ("start:error", ["start"], "host failure during the cell: fake: start failed"),
        ("preflight", ["start", "preflight"], "preflight: status: HTTP 500, expected 200"),
        (
            "preflight:lost",
            ["start", "preflight"],
            "lost the connection during the cell: fake: connection lost in preflight",
        ),
        (
            "warmup:lost",
            ["start", "preflight", "warmup"],
            "lost the connection during the cell: fake: connection lost in warmup",
        ),
        (
            "measure:error",
            ["start", "preflight", "warmup", "measure"],
            "host failure during the cell: fake: measure failed",
        ),
        (
            "wrk-exit",
            ["start", "preflight", "warmup", "measure", "stop"],
            "wrk exited with code 1: unable to connect",
        ),
        (
            "wrk-timeout",
            ["start", "preflight", "warmup", "measure", "stop"],
            "wrk did not finish in time and was killed",
        ),
        (
            "crash",
            ["start", "preflight", "warmup", "measure", "stop"],
            "server exited with code 3 during the measurement",
        ),
        (
            "stop:lost",
            ["start", "preflight", "warmup", "measure", "stop"],
            "lost the connection during the cell: fake: connection lost in stop",
        ),
    ],
)
def test_a_failure_at_each_step_is_a_failed_cell_that_says_where(
    tmp_path: Path, fail: str, steps: list[str], reason: str
) -> None:
    host = FakeHost(fail)
    outcome, rec, _ = _measure(tmp_path, host)
    assert host.calls == steps  # nothing after the failure is attempted
    assert host.ended >= 1  # whatever ran is stopped
    assert (outcome.status, outcome.reason) == ("failed", reason)
    assert (rec.status, rec.reason) == ("failed", reason)
    assert rec.ended_at is not None and not rec.interrupted


def test_a_failed_start_keeps_the_servers_own_words(tmp_path: Path) -> None:
    _, rec, _ = _measure(tmp_path, FakeHost("start"))
    assert rec.server_exit_code == 1 and rec.server_stderr_tail == "address in use"
    assert rec.server_argv == ("srv",)


def test_a_host_lost_after_the_start_keeps_the_servers_log_tail(tmp_path: Path) -> None:
    _, rec, _ = _measure(tmp_path, FakeHost("measure:lost"))
    assert rec.server_stderr_tail == "server says hello"


def test_what_was_measured_before_a_crash_is_kept(tmp_path: Path) -> None:
    _, rec, files = _measure(tmp_path, FakeHost("crash"))
    assert files["stdout"].read_bytes() == STDOUT  # wrk's output stays, verbatim
    assert rec.server_stderr_tail == "Traceback: boom" and rec.server_stop is None


def test_an_announced_close_is_measured_and_one_that_blocks_can_be_ignored(
    tmp_path: Path,
) -> None:
    _, rec, _ = _measure(tmp_path / "a", FakeHost("preflight-close"))
    assert rec.ok and rec.preflight is not None and not rec.preflight.ok
    assert rec.preflight.blocking is None
    host = FakeHost("preflight")
    _, rec, _ = _measure(tmp_path / "b", host, replace(MATRIX, ignore_preflight=True))
    assert rec.ok and rec.preflight is not None and rec.preflight.ignored
    assert "measure" in host.calls


def test_a_failed_scrape_is_recorded_and_does_not_fail_the_cell(tmp_path: Path) -> None:
    cell = Cell("srv", "raw+metrics", "plaintext", 10, 1)
    host = FakeHost("scrape")
    _, rec, _ = _measure(tmp_path, host, replace(MATRIX, apps=("raw+metrics",)), cell)
    assert host.calls == ["start", "preflight", "warmup", "scrape", "measure", "scrape", "stop"]
    assert rec.ok
    assert rec.metrics_errors == (
        "c10-r1.metrics.before.prom: connection refused",
        "c10-r1.metrics.after.prom: connection refused",
    )


def test_ctrl_c_mid_cell_records_it_interrupted_and_stops_what_ran(tmp_path: Path) -> None:
    host = FakeHost("measure:interrupt")
    store = RunStore(tmp_path, "20261207T000000Z-fake")
    with pytest.raises(KeyboardInterrupt):
        measure_cell(host, store, MATRIX, CELL)
    rec = read_cell(store.cell_files(CELL)["sidecar"])
    assert host.ended == 1 and rec.interrupted and rec.status == "failed"
    assert not store.is_finished(CELL)  # measured again on resume


def test_an_unavailable_server_never_reaches_the_host(tmp_path: Path) -> None:
    host = FakeHost()
    store = RunStore(tmp_path, "20261207T000000Z-fake")
    outcome = measure_cell(host, store, MATRIX, CELL, {"srv": "not installed"})
    assert host.calls == [] and outcome.reason == "srv unavailable: not installed"


def test_several_clients_are_kept_apart_and_merged(tmp_path: Path) -> None:
    host = FakeHost(clients=2)
    outcome, rec, files = _measure(tmp_path, host)
    assert rec.ok and outcome.requests_per_sec and "(merged)" in outcome.requests_per_sec
    assert not files["stdout"].exists()  # no wrk printed the merged figures
    merged = json.loads(files["lua_json"].read_text())
    assert merged["requests"] == 2 * json.loads(REPORT)["requests"]
    assert rec.clients is not None and [c["host"] for c in rec.clients] == ["client1", "client2"]
    for i in (1, 2):
        assert files["sidecar"].with_suffix(f".client{i}.txt").read_bytes() == STDOUT
        assert files["sidecar"].with_suffix(f".client{i}.warmup.txt").is_file()


def test_a_fake_run_loads_into_the_table(tmp_path: Path) -> None:
    """The sidecar the sequence writes is what the table stage reads."""
    _measure(tmp_path, FakeHost())
    store = RunStore(tmp_path, "20261207T000000Z-fake")
    meta = {"format_version": 2, "kind": "run", "run_id": store.run_id, "profile": "fake"}
    store.run_json.write_text(json.dumps(meta))
    table = load_runs(tmp_path)
    assert list(table["status"]) == ["ok"] and table["requests"].iloc[0] > 0
    assert table["duration_configured_s"].iloc[0] == 5.0


@pytest.mark.parametrize("fail", ["start:error", "preflight:lost", "measure:lost", "stop:lost"])
def test_a_lost_host_is_the_infrastructures_failure_and_measured_again(
    tmp_path: Path, fail: str
) -> None:
    """Not a result: recorded as the infrastructure's and not finished, so --resume
    measures it again; a failure of the server's own is a result and stays."""
    store = RunStore(tmp_path, "20261207T000000Z-fake")
    outcome = measure_cell(FakeHost(fail), store, MATRIX, CELL)
    rec = read_cell(store.cell_files(CELL)["sidecar"])
    assert rec.status == "failed" and rec.infrastructure and outcome.infrastructure
    assert not store.is_finished(CELL)
    store.run_json.write_text(
        json.dumps({"format_version": 2, "kind": "run", "run_id": store.run_id})
    )
    table = load_runs(tmp_path)
    row = table.iloc[0]
    assert bool(row["infrastructure"]) and row["server_host"] == "fake-server"
    # Pages warn of it as the infrastructure's failure, not the server's.
    from harness.tables import summary

    stats = summary.cell_stats(table)
    warned = summary.warnings(stats, summary.error_rates(table, stats))
    assert list(warned["kind"]) == ["lost"]
    assert warned["detail"].iloc[0].startswith("1 of 1 repeats lost to a host or link")


@pytest.mark.parametrize("fail", ["start", "crash", "wrk-exit", "preflight"])
def test_a_servers_own_failure_is_a_finished_result(tmp_path: Path, fail: str) -> None:
    store = RunStore(tmp_path, "20261207T000000Z-fake")
    measure_cell(FakeHost(fail), store, MATRIX, CELL)
    rec = read_cell(store.cell_files(CELL)["sidecar"])
    assert rec.status == "failed" and not rec.infrastructure
    assert "infrastructure" not in json.loads(store.cell_files(CELL)["sidecar"].read_text())
    assert store.is_finished(CELL)
