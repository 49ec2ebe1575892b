"""The sync under stress: random lifecycles and pass timings (Hypothesis), and SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from etl.warehouse import schema
from tests.service import wait_until
from tests.syncing import (
    PASSWORD,
    assert_converged,
    make_config,
    one_pass,
    reset,
    snapshot,
    start_sim,
)


@pytest.mark.slow
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(min_value=0, max_value=2**31),
    steps=st.lists(st.floats(min_value=0, max_value=180), min_size=1, max_size=5),
    overlap=st.sampled_from(["0s", "1m", "10m"]),
    date_style=st.sampled_from(["windows", "appliance"]),
)
def test_the_warehouse_always_converges_to_the_zvm(
    warehouse: Engine,
    warehouse_url: str,
    seed: int,
    steps: list[float],
    overlap: str,
    date_style: str,
) -> None:
    reset(warehouse)
    sim = start_sim(seed=seed, days=0.5, tasks_per_hour=150, date_style=date_style)
    try:
        config = make_config(sim, warehouse_url, overlap=overlap)
        assert one_pass(config, warehouse).succeeded
        assert_converged(warehouse, sim)
        for minutes in steps:
            sim.advance(timedelta(minutes=minutes))
            result = one_pass(config, warehouse)
            assert result.succeeded, result.error
            assert_converged(warehouse, sim)
    finally:
        sim.stop()


def _write_config(path: Path, sim_url: str, warehouse_url: str) -> None:
    path.write_text(
        "warehouse:\n"
        f"  url: {warehouse_url}\n"
        "zvms:\n"
        "  - name: sim\n"
        f"    url: {sim_url}\n"
        "    username: admin\n"
        "    password: ${SIM_PASSWORD}\n"
        "sync:\n"
        "  backfill_window: 12h\n"
    )


def _cursor_not_ahead(engine: Engine) -> None:
    with engine.connect() as conn:
        started = conn.execute(
            sa.select(schema.sync_cursors.c.value).where(schema.sync_cursors.c.cursor == "started")
        ).scalar_one()
        newest = conn.execute(sa.select(sa.func.max(schema.tasks.c.started_at))).scalar_one()
    assert started == newest


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_equals_an_uninterrupted_run(
    warehouse: Engine, warehouse_url: str, tmp_path: Path
) -> None:
    sim = start_sim(seed=21, days=3, tasks_per_hour=80)
    sim.faults.latency = 0.03
    try:
        config_path = tmp_path / "config.yaml"
        _write_config(config_path, sim.url, warehouse_url)
        env = os.environ | {"SIM_PASSWORD": PASSWORD, "ZVM_ETL_CONFIG": str(config_path)}
        env.pop("ZVM_ETL_WAREHOUSE_URL", None)
        command = [sys.executable, "-m", "etl", "sync"]

        base = len(sim.requests)
        subprocess.run(command, env=env, check=True, capture_output=True)
        uninterrupted_requests = len(sim.requests) - base
        expected = snapshot(warehouse)
        assert len(expected["tasks"]) > 100
        _cursor_not_ahead(warehouse)
        reset(warehouse)

        chance = random.Random(7)
        killed = 0
        for _ in range(5):
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            # A random point of the pass, counted in requests the ZVM answered (never in
            # seconds): at most a quarter of a whole pass, so the first three attempts,
            # which each have more than half of it left to do, are always killed.
            start, point = len(sim.requests), chance.randint(1, uninterrupted_requests // 4)

            def reached(start: int = start, point: int = point, proc: Any = process) -> bool:
                return len(sim.requests) - start >= point or proc.poll() is not None

            wait_until(reached, timeout=120, what="the pass to reach its kill point")
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed += 1
            process.wait()
        assert killed >= 3, "the pass ended before most kills: make it slower"
        finished = subprocess.run(command, env=env, capture_output=True, text=True)
        assert finished.returncode == 0, finished.stderr
        assert snapshot(warehouse) == expected
        _cursor_not_ahead(warehouse)
        with warehouse.connect() as conn:
            statuses = list(conn.execute(sa.select(schema.etl_runs.c.status)).scalars())
        assert statuses.count("succeeded") >= 1
        assert_converged(warehouse, sim)
    finally:
        sim.stop()


def test_failed_run_error_has_no_secret(warehouse: Engine, warehouse_url: str) -> None:
    sim = start_sim(seed=2)
    try:
        config = make_config(sim, warehouse_url)
        sim.faults.error_rate = 1.0
        sim.faults.retry_after = 0.05
        short = config.zvms[0].model_copy(update={"retry_for": timedelta(seconds=0.3)})
        result = one_pass(config.model_copy(update={"zvms": [short]}), warehouse)
        assert not result.succeeded
        with warehouse.connect() as conn:
            error = conn.execute(sa.select(schema.etl_runs.c.error)).scalar_one()
        assert "gave up on GET /v1/tasks/types" in error and PASSWORD not in error
    finally:
        sim.stop()
