"""One runner per ZVM across processes, on every database: real concurrent processes.

Several ``sync`` and ``schedule`` processes against one warehouse never run passes over the
same ZVM at the same time (the ``etl_runs`` intervals of a ZVM never overlap); the loser
skips the ZVM with a log line and exits 0. A process killed by SIGKILL mid-pass leaves a
``running`` row that the next pass marks failed as abandoned.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from sqlalchemy.engine import Engine

from etl.warehouse.db import make_engine
from etl.warehouse.locks import zvm_lock
from etl.warehouse.runs import ABANDONED
from tests.service import (
    PASSWORD,
    Proc,
    assert_no_overlap,
    runs,
    start_sim,
    task_count,
    wait_until,
    write_config,
)
from tests.syncing import assert_converged, assert_no_task_skipped


def test_the_lock_is_exclusive_across_connections(warehouse_url: str) -> None:
    first, second = make_engine(warehouse_url), make_engine(warehouse_url)
    try:
        with zvm_lock(first, "nyc") as taken:
            assert taken
            with zvm_lock(second, "nyc") as again:
                assert not again
            with zvm_lock(second, "lon") as other:
                assert other, "a lock on one ZVM blocked another"
        with zvm_lock(second, "nyc") as after:
            assert after, "the lock was not released"
    finally:
        first.dispose()
        second.dispose()


def test_a_sync_whose_zvm_is_locked_elsewhere_skips_it_and_exits_0(
    warehouse: Engine, warehouse_url: str, tmp_path: Path
) -> None:
    sim = start_sim(days=1)
    try:
        config = write_config(tmp_path / "config.yaml", {"sim": sim}, warehouse_url)
        with zvm_lock(warehouse, "sim") as taken:
            assert taken
            proc = Proc(["sync"], config)
            assert proc.wait() == 0, proc.output
        [skipped] = [e for e in proc.json_lines() if e.get("event") == "pass"]
        assert skipped["status"] == "skipped" and skipped["zvm"] == "sim"
        assert "another process is running a pass over it" in skipped["message"]
        assert runs(warehouse) == [] and task_count(warehouse) == 0
    finally:
        sim.stop()


def test_concurrent_sync_and_schedule_processes_never_overlap(
    warehouse: Engine, warehouse_url: str, tmp_path: Path
) -> None:
    sim = start_sim(days=1, tasks_per_hour=40)
    sim.faults.latency = 0.1  # every pass takes a second or so: the processes collide
    try:
        config = write_config(tmp_path / "config.yaml", {"sim": sim}, warehouse_url, interval="1s")
        schedulers = [Proc(["schedule"], config) for _ in range(2)]
        syncs = [Proc(["sync"], config) for _ in range(3)]
        codes = [proc.wait() for proc in syncs]
        wait_until(lambda: len(runs(warehouse, "sim")) >= 4, what="four passes")
        for proc in schedulers:
            proc.send(signal.SIGTERM)
        codes += [proc.wait() for proc in schedulers]
        everyone = syncs + schedulers
        assert codes == [0] * 5, "\n---\n".join(proc.output for proc in everyone)

        rows = runs(warehouse, "sim")
        assert_no_overlap(rows)
        assert all(row.status == "succeeded" for row in rows), [r.error for r in rows]
        assert {row.trigger for row in rows} <= {"sync", "schedule"}
        outcomes = [
            entry["status"]
            for proc in everyone
            for entry in proc.json_lines()
            if entry.get("event") == "pass"
        ]
        assert outcomes.count("succeeded") == len(rows)
        assert "skipped" in outcomes, "the processes never collided: make the passes slower"
        assert all(PASSWORD not in proc.output for proc in everyone)
        sim.faults.latency = 0
        assert_converged(warehouse, sim)
    finally:
        sim.stop()


def test_a_killed_pass_is_marked_abandoned_by_the_next(
    warehouse: Engine, warehouse_url: str, tmp_path: Path
) -> None:
    sim = start_sim(days=1, tasks_per_hour=40)
    sim.faults.latency = 0.3
    try:
        config = write_config(
            tmp_path / "config.yaml", {"sim": sim}, warehouse_url, backfill_window="3h"
        )
        victim = Proc(["sync"], config)
        victim.wait_for(lambda line: "first pass, loading history" in line)
        victim.send(signal.SIGKILL)
        assert victim.wait() == -signal.SIGKILL
        [row] = runs(warehouse)
        assert row.status == "running"
        assert_no_task_skipped(warehouse, sim)  # whole windows only, with their cursors

        sim.faults.latency = 0
        for _ in range(50):  # a database server notices the dead connection within moments
            after = Proc(["--log-format", "text", "sync"], config, json_logs=False)
            assert after.wait() == 0, after.output
            if "skipped" not in after.output:
                break
            time.sleep(0.1)
        assert "ZVM sim: marked 1 abandoned run(s) as failed" in after.output
        killed, recovered = runs(warehouse)
        assert killed.run_id == row.run_id
        assert killed.status == "failed" and killed.error == ABANDONED
        assert killed.finished_at is not None
        assert recovered.status == "succeeded"
        assert_no_overlap([killed, recovered])
        assert_converged(warehouse, sim)
    finally:
        sim.stop()


def test_two_syncs_at_once_split_the_zvms_and_run_each_pass_once(
    warehouse: Engine, warehouse_url: str, tmp_path: Path
) -> None:
    sims = {f"z{i}": start_sim(seed=40 + i, days=0.5, tasks_per_hour=30) for i in range(6)}
    for sim in sims.values():
        sim.faults.latency = 0.1  # passes of a second or so: the two processes overlap
    try:
        config = write_config(tmp_path / "config.yaml", sims, warehouse_url)
        first, second = Proc(["sync"], config), Proc(["sync"], config)
        assert [first.wait(), second.wait()] == [0, 0], first.output + second.output
        done = runs(warehouse)
        assert sorted(row.zvm for row in done) == sorted(sims), "a ZVM was synced twice or never"
        assert all(row.status == "succeeded" for row in done)
        skipped = [
            entry["message"]
            for proc in (first, second)
            for entry in proc.json_lines()
            if entry.get("event") == "pass" and entry["status"] == "skipped"
        ]
        assert len(skipped) == len(sims)  # each ZVM: one process ran it, the other skipped
        for sim in sims.values():
            assert_converged(warehouse, sim)
    finally:
        for sim in sims.values():
            sim.stop()
