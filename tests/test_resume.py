"""Interrupted work resumes: a first pass, a catch-up or a backfill that stops after some
windows keeps what it committed and the next attempt goes on from there, so repeated
interruptions still converge. On every database."""

from __future__ import annotations

import itertools
import os
import random
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.config import ZvmConfig
from etl.errors import ZvmConnectionError
from etl.passes import backfill_cursor
from etl.sync import backfill_zvm
from etl.warehouse import schema
from etl.warehouse.engine import make_engine
from etl.warehouse.load import read_cursors
from etl.zvm.answers import TaskList
from etl.zvm.client import TaskFilters, ZvmClient
from tests.service import wait_until
from tests.syncing import PASSWORD, assert_converged, make_config, one_pass, snapshot, start_sim
from zvm_simulator import Simulator

pytestmark = pytest.mark.sim(seed=31, days=2, tasks_per_hour=60)
"""The ``sim`` fixture (conftest.py) of every test here."""


class FailingClient(ZvmClient):
    """A real client whose ``fail_at``-th task list (counting from 1) fails as if the ZVM
    went away; every list it asks for is recorded."""

    def __init__(self, zvm: ZvmConfig, *, fail_at: int | None, asked: list[TaskFilters]) -> None:
        super().__init__(zvm)
        self.fail_at = fail_at
        self.asked = asked

    def fetch_task_list(self, filters: TaskFilters | None = None) -> TaskList:
        self.asked.append(filters or TaskFilters())
        if self.fail_at is not None and len(self.asked) == self.fail_at:
            raise ZvmConnectionError(f"cannot connect to ZVM {self.zvm.name}: simulated outage")
        return super().fetch_task_list(filters)


def factory(fail_at: int | None, asked: list[TaskFilters]) -> Any:
    return lambda zvm: FailingClient(zvm, fail_at=fail_at, asked=asked)


def cursors(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return read_cursors(conn, "sim")


def runs(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(schema.etl_runs).order_by(schema.etl_runs.c.run_id)))


def test_an_interrupted_first_pass_keeps_its_windows_and_the_next_goes_on(
    sim: Simulator, warehouse: Engine
) -> None:
    url = warehouse.url.render_as_string(hide_password=False)
    since = (sim.now() - timedelta(days=2, hours=1)).isoformat()
    config = make_config(sim, url, backfill_window="6h", backfill_since=since)
    asked: list[TaskFilters] = []
    failed = one_pass(config, warehouse, client_factory=factory(5, asked))
    assert failed.failed and "simulated outage" in (failed.error or "")
    # Windows 1-4 (6h each) are committed, with the cursors that cover them and the run's
    # counts so far.
    committed = cursors(warehouse)
    fourth = asked[3].started_after
    assert fourth is not None and committed["started"] >= fourth
    [run] = runs(warehouse)
    assert run.status == "failed" and run.tasks_inserted > 0
    with warehouse.connect() as conn:
        held = conn.execute(sa.select(sa.func.count()).select_from(schema.tasks)).scalar_one()
    assert held == run.tasks_inserted
    asked.clear()
    resumed = one_pass(config, warehouse, client_factory=factory(None, asked))
    assert resumed.succeeded
    # It went on from the committed cursor (minus the overlap), not from the beginning.
    first = asked[0].started_after
    assert first == (committed["started"] - config.sync.overlap).replace(microsecond=0)
    assert resumed.counts.inserted + run.tasks_inserted >= len(sim.ground_truth()) - 5
    assert_converged(warehouse, sim)


def test_a_first_pass_interrupted_in_history_the_zvm_no_longer_holds_still_moves_on(
    sim: Simulator, warehouse: Engine
) -> None:
    """The ZVM holds two days; the first pass starts at the configured 30-day retention.
    Interrupted before it reached the first task, it has still moved the cursors to the end
    of the last window it read, so the next run starts there, not 30 days back again; the
    empty windows widened, so the month took a handful of requests, not sixty."""
    url = warehouse.url.render_as_string(hide_password=False)
    config = make_config(sim, url, backfill_window="12h", zvm_keys={"task_retention": "30d"})
    asked: list[TaskFilters] = []
    failed = one_pass(config, warehouse, client_factory=factory(5, asked))
    assert failed.failed and failed.counts.received == 0
    # Windows 1-4 (everything before the retention, then 12h, 24h and 48h: all empty) are
    # committed; the cursors stand at the end of the fourth.
    assert [f.started_after is None for f in asked[:2]] == [True, False]
    third_end, fourth = asked[2].started_before, asked[3].started_before
    assert third_end is not None and fourth is not None
    assert fourth - third_end == timedelta(hours=48)
    assert cursors(warehouse) == {"started": fourth, "completed": fourth}
    asked.clear()
    resumed = one_pass(config, warehouse, client_factory=factory(None, asked))
    assert resumed.succeeded
    assert asked[0].started_after == fourth - config.sync.overlap
    assert_converged(warehouse, sim)
    windows = [f for f in asked if f.completed_after is None]
    # 12-hour windows from the cursor (26.5 days back) to now would be 53; widening to 4
    # days over the 24 empty days, then 12 hours over the 2 days of history, makes 15.
    assert len(windows) < 20


def test_a_catch_up_after_a_long_gap_goes_in_windows_and_resumes(
    sim: Simulator, warehouse: Engine
) -> None:
    url = warehouse.url.render_as_string(hide_password=False)
    config = make_config(sim, url, backfill_window="2h")
    assert one_pass(config, warehouse).succeeded
    sim.advance(timedelta(hours=9))  # a ZVM unreachable for nine hours, say
    clock = sim.now  # this host's clock moved on as much as the ZVM's
    asked: list[TaskFilters] = []
    assert one_pass(config, warehouse, client_factory=factory(3, asked), clock=clock).failed
    assert [f.started_before is not None for f in asked[:2]] == [True, True]  # bounded windows
    asked.clear()
    resumed = one_pass(config, warehouse, client_factory=factory(None, asked), clock=clock)
    assert resumed.succeeded
    completed_query = asked[-1]
    assert completed_query.completed_after is not None
    assert completed_query.started_before is not None  # only tasks older than the windows
    assert_converged(warehouse, sim)


def test_an_interrupted_backfill_resumes_after_its_last_committed_window(
    sim: Simulator, warehouse: Engine
) -> None:
    url = warehouse.url.render_as_string(hide_password=False)
    config = make_config(sim, url, backfill_window="4h")
    since = (sim.now() - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    until = since + timedelta(hours=20)
    zvm = config.zvms[0]
    asked: list[TaskFilters] = []
    result = backfill_zvm(
        warehouse, zvm, config.sync, since=since, until=until, client_factory=factory(3, asked)
    )
    assert result.failed
    progress = cursors(warehouse)[backfill_cursor(since, until)]
    assert progress == asked[1].started_before  # two windows committed
    assert "started" not in cursors(warehouse)  # a backfill never moves the cursors
    asked.clear()
    result = backfill_zvm(
        warehouse, zvm, config.sync, since=since, until=until, client_factory=factory(None, asked)
    )
    assert result.succeeded
    assert asked[0].started_after == progress - timedelta(seconds=1)  # the next window
    assert backfill_cursor(since, until) not in cursors(warehouse)  # done: forgotten
    with warehouse.connect() as conn:
        started = list(conn.execute(sa.select(schema.tasks.c.started_at)).scalars())
    expected = [
        t for t in sim.ground_truth() if t.get("TaskIdentifier")
    ]  # every generated task has one
    assert started and min(started) >= since - timedelta(seconds=1)
    assert max(started) <= until + timedelta(seconds=1)
    assert len(started) <= len(expected)


def _write_config(path: Path, sim: Simulator, warehouse_url: str) -> None:
    path.write_text(
        f"warehouse:\n  url: {warehouse_url}\n"
        f"zvms:\n  - name: sim\n    url: {sim.url}\n    username: admin\n"
        "    password: ${SIM_PASSWORD}\n    retry_for: 30s\n    task_retention: 30d\n"
        "sync:\n  backfill_window: 8h\n  overlap: 10m\n"
        f"  backfill_since: {(sim.now() - timedelta(days=3, hours=1)).isoformat()}\n"
    )


@pytest.mark.slow
def test_passes_killed_after_each_committed_window_still_converge(
    warehouse: Engine, warehouse_url: str, tmp_path: Path
) -> None:
    """The kill loop: a ZVM with faults on (a 503 on a fifth of the calls, a slow answer
    on every call); each `zvm-etl sync` is killed with SIGKILL as soon as it committed one
    more window than the last one did, until one finishes. Each attempt gets further, so
    it converges, and the warehouse then equals the ZVM's ground truth."""
    sim = start_sim(seed=33, days=3, tasks_per_hour=40)
    sim.faults.error_rate = 0.2
    sim.faults.retry_after = 0.05
    sim.faults.latency = 0.2
    # Reads that never wait for the passes' write transactions (SQLite: a deferred begin).
    reader = make_engine(warehouse_url, sqlite_begin="DEFERRED")
    try:
        config_path = tmp_path / "config.yaml"
        _write_config(config_path, sim, warehouse_url)
        env = os.environ | {"SIM_PASSWORD": PASSWORD, "ZVM_ETL_CONFIG": str(config_path)}
        env.pop("ZVM_ETL_WAREHOUSE_URL", None)
        command = [sys.executable, "-m", "etl", "sync"]
        attempts, kills, reached = 0, 0, []
        while attempts < 60:
            attempts += 1
            before = cursors(reader).get("started")
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

            def moved(before: Any = before, process: subprocess.Popen[bytes] = process) -> bool:
                now = cursors(reader).get("started")
                return process.poll() is not None or (now is not None and now != before)

            wait_until(moved, timeout=120, what="a window committed or the pass ended")
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait(timeout=60)
            reached.append(cursors(reader).get("started"))
            if process.returncode == 0:
                break
        assert process.returncode == 0, f"no pass finished in {attempts} attempts"
        assert kills >= 5, "the passes finished before they could be killed: make them slower"
        moments = [moment for moment in reached if moment is not None]
        assert moments == sorted(moments)  # always forward
        sim.faults.reset()
        final = subprocess.run(command, env=env, capture_output=True, text=True)
        assert final.returncode == 0, final.stderr
        assert_converged(warehouse, sim)
        statuses = [run.status for run in runs(warehouse)]
        assert "running" not in statuses and statuses.count("succeeded") >= 2
        # No task twice, no status change twice (the primary keys say so), nothing lost.
        contents = snapshot(warehouse)
        assert len(contents["tasks"]) == len({row[0] for row in contents["tasks"]})
    finally:
        reader.dispose()
        sim.stop()


def _last_run(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(schema.etl_runs.c.run_id))).scalar() or 0)


def _committed_after(engine: Engine, run_id: int) -> bool:
    """A run newer than ``run_id`` has committed a window: its etl_runs row counts the
    requests of what it committed, whatever the window held."""
    runs = schema.etl_runs
    query = sa.select(runs.c.run_id).where(runs.c.run_id > run_id, runs.c.requests > 0)
    with engine.connect() as conn:
        return conn.execute(query.limit(1)).first() is not None


_START = re.compile(r"(?:loading history from|catching up from) (\S+) in up to")


@pytest.mark.slow
def test_a_first_pass_killed_again_and_again_starts_later_each_time_and_converges(
    warehouse: Engine, warehouse_url: str, tmp_path: Path
) -> None:
    """A ZVM holding two days of tasks and answering 503 to a fifth of the calls; the
    first pass starts at the configured 10-day retention, so it begins with days of empty
    windows. Eight times, `zvm-etl sync` is killed with SIGKILL soon after it committed a
    window, whatever the window held (at a varied point after it, so kills land in empty
    and busy windows alike); then one runs to the end, the faults still on. Every run logs
    where it starts: each starts later than the one before (the second may start up to an
    overlap before the first, whose first window read everything older than its start),
    and the warehouse then equals the ZVM's tasks."""
    sim = start_sim(seed=37, days=2, tasks_per_hour=20)
    sim.faults.error_rate = 0.2
    sim.faults.retry_after = 0.05
    sim.faults.latency = 0.2
    reader = make_engine(warehouse_url, sqlite_begin="DEFERRED")
    pause = random.Random(37)
    try:
        config_path = tmp_path / "config.yaml"
        config_path.write_text(
            f"warehouse:\n  url: {warehouse_url}\n"
            f"zvms:\n  - name: sim\n    url: {sim.url}\n    username: admin\n"
            "    password: ${SIM_PASSWORD}\n    retry_for: 30s\n    task_retention: 10d\n"
            "sync:\n  backfill_window: 12h\n  overlap: 2m\n"
        )
        env = os.environ | {"SIM_PASSWORD": PASSWORD, "ZVM_ETL_CONFIG": str(config_path)}
        env.pop("ZVM_ETL_WAREHOUSE_URL", None)
        command = [sys.executable, "-m", "etl", "sync"]
        starts: list[datetime] = []
        for attempt in range(8):
            log_path = tmp_path / f"run-{attempt}.log"
            last = _last_run(reader)
            with log_path.open("wb") as log_file:
                process = subprocess.Popen(
                    command, env=env, stdout=subprocess.DEVNULL, stderr=log_file
                )

                def committed(last: int = last, process: subprocess.Popen[bytes] = process) -> bool:
                    return process.poll() is not None or _committed_after(reader, last)

                wait_until(committed, timeout=120, what="a window committed or the pass ended")
                time.sleep(pause.uniform(0, 0.3))  # a varied kill point, not a deadline
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=60)
            assert process.returncode == -signal.SIGKILL, "a pass ended before it was killed"
            found = _START.search(log_path.read_text())
            assert found, log_path.read_text()
            starts.append(datetime.fromisoformat(found.group(1)))
        final = subprocess.run(command, env=env, capture_output=True, text=True)
        found = _START.search(final.stderr)
        assert found, final.stderr
        starts.append(datetime.fromisoformat(found.group(1)))
        # The first run's first window is open at the start (anything older than the
        # retention, up to the logged start): a kill right after it leaves the cursor at that
        # start, and the next run begins an overlap before it, having read all that is older.
        assert starts[1] >= starts[0] - timedelta(minutes=2), starts
        assert all(a < b for a, b in itertools.pairwise(starts[1:])), starts
        assert final.returncode == 0, final.stderr
        assert_converged(warehouse, sim)
        statuses = [run.status for run in runs(warehouse)]
        assert statuses[-1] == "succeeded" and "running" not in statuses
    finally:
        reader.dispose()
        sim.stop()
