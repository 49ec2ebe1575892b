"""``zvm-etl schedule`` stopped by signals, as systemd and Kubernetes stop it: real processes.

A pass is caught in the middle (the simulated ZVM answers slowly) and the process gets
SIGTERM: it lets the pass finish and exits 0 (the warehouse then matches the ZVM); a second
SIGTERM, or a pass longer than ``sync.shutdown_grace``, ends it at once, and then nothing of
the pass is committed but the windows it finished (each with the cursors that cover it):
the next pass marks its run abandoned and loads the rest.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from etl.sync import RunResult
from etl.warehouse.runs import ABANDONED
from tests import syncing
from tests.service import PASSWORD, Proc, runs, start_sim, write_config
from tests.syncing import assert_converged, assert_no_task_skipped
from zvm_simulator import Simulator

SLOW_PASS: dict[str, Any] = {"interval": "1h", "backfill_window": "3h"}
"""With task_retention 1d: a first pass of 11 requests, each as slow as the ZVM's latency."""


def _in_the_middle_of_a_pass(proc: Proc) -> None:
    proc.wait_for(lambda line: "first pass, loading history" in line)


def _pass_after_a_crash(config_path: Path, engine: Engine) -> RunResult:
    """One pass in this process, once the dead process's lock is gone (at once on SQLite;
    a database server notices the closed connection within moments)."""
    from etl.config import load_config

    config = load_config(config_path, env={"ETL_TEST_PASSWORD": PASSWORD})
    for _ in range(50):
        result = syncing.one_pass(config, engine)
        if result.status != "skipped":
            return result
        time.sleep(0.1)
    raise AssertionError("the killed process's lock was never released")


def _nothing_committed_then_recovered(config_path: Path, engine: Engine, sim: Simulator) -> None:
    sim.faults.latency = 0
    [row] = runs(engine)
    assert row.status == "running" and row.finished_at is None
    # Only whole windows were committed, each with the cursors that cover it.
    assert_no_task_skipped(engine, sim)
    result = _pass_after_a_crash(config_path, engine)
    assert result.succeeded, result.error
    first, second = runs(engine)
    assert first.status == "failed" and first.error == ABANDONED
    assert second.status == "succeeded"
    assert_converged(engine, sim)


def test_sigterm_lets_the_running_pass_finish_then_exits_0(
    warehouse: Engine, warehouse_url: str, tmp_path: Path
) -> None:
    sim = start_sim(days=1, tasks_per_hour=40)
    sim.faults.latency = 0.1
    try:
        config = write_config(tmp_path / "config.yaml", {"sim": sim}, warehouse_url, **SLOW_PASS)
        proc = Proc(["schedule"], config)
        _in_the_middle_of_a_pass(proc)
        proc.send(signal.SIGTERM)
        assert proc.wait() == 0, proc.output
        events = proc.json_lines()
        [summary] = [e for e in events if e.get("event") == "pass"]
        assert summary["status"] == "succeeded" and summary["tasks_inserted"] > 0
        stopping = [e for e in events if e.get("event") == "stopping"]
        assert stopping and stopping[0]["running"] == ["sim"]
        assert events[-1]["message"] == "stopped cleanly: every running pass finished; exiting 0"
        assert PASSWORD not in proc.output
        [row] = runs(warehouse)
        assert row.status == "succeeded" and row.trigger == "schedule"
        assert_converged(warehouse, sim)
    finally:
        sim.stop()


def test_a_second_signal_exits_at_once_keeping_only_whole_windows(
    warehouse: Engine, warehouse_url: str, tmp_path: Path
) -> None:
    sim = start_sim(days=1, tasks_per_hour=40)
    sim.faults.latency = 0.3
    try:
        config = write_config(tmp_path / "config.yaml", {"sim": sim}, warehouse_url, **SLOW_PASS)
        proc = Proc(["schedule"], config)
        _in_the_middle_of_a_pass(proc)
        proc.send(signal.SIGTERM)
        proc.wait_for(lambda line: "received SIGTERM: stopping" in line)
        proc.send(signal.SIGTERM)
        assert proc.wait() == 128 + signal.SIGTERM, proc.output
        last = proc.json_lines()[-1]
        assert last["event"] == "exit" and "exiting at once (status 143)" in last["message"]
        _nothing_committed_then_recovered(config, warehouse, sim)
    finally:
        sim.stop()


def test_a_pass_longer_than_the_shutdown_grace_is_abandoned_safely(
    warehouse: Engine, warehouse_url: str, tmp_path: Path
) -> None:
    sim = start_sim(days=1, tasks_per_hour=40)
    sim.faults.latency = 0.3
    try:
        config = write_config(
            tmp_path / "config.yaml",
            {"sim": sim},
            warehouse_url,
            shutdown_grace="0.5s",
            **SLOW_PASS,
        )
        proc = Proc(["schedule"], config, json_logs=False)
        _in_the_middle_of_a_pass(proc)
        proc.send(signal.SIGINT)
        assert proc.wait() == 5, proc.output
        assert "received SIGINT: stopping" in proc.output
        assert "stopped: the pass(es) over sim did not finish within 0.5s" in proc.output
        _nothing_committed_then_recovered(config, warehouse, sim)
    finally:
        sim.stop()
