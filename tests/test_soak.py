"""``make soak`` (``scripts/soak.py``): its rules, its verification, and a short soak.

The fast tests check that the verification finds what it must (a lost task, a changed one,
a repeated status row, a run left running), the memory rule, and the simulator's fault
counts the summary prints. The ``slow`` one runs the whole soak for 20 seconds, as CI
does, on SQLite and, when ``ZVM_ETL_TEST_POSTGRES_URL`` is set, on PostgreSQL.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.warehouse import schema
from scripts.soak import (
    MB,
    FaultPlan,
    SoakOptions,
    rss_verdict,
    run_soak,
    summary,
    verify_zvm,
)
from tests.syncing import make_config, one_pass, start_sim
from zvm_simulator import Simulator

pytestmark = pytest.mark.sim(seed=4, days=0.5)
"""The ``sim`` fixture (conftest.py) of every test here."""

BRIDGES = (
    schema.task_vpgs,
    schema.task_hosts,
    schema.task_sites,
    schema.task_flr_sessions,
    schema.task_status_changes,
)


def _loaded(sim: Simulator, warehouse: Engine, warehouse_url: str) -> None:
    sim.faults.malformed_rate = 0.05
    config = make_config(sim, warehouse_url)
    assert one_pass(config, warehouse).succeeded
    sim.advance(timedelta(minutes=20))
    assert one_pass(config, warehouse).succeeded


def test_a_converged_warehouse_passes(
    sim: Simulator, warehouse: Engine, warehouse_url: str
) -> None:
    _loaded(sim, warehouse, warehouse_url)
    report = verify_zvm(warehouse, "sim", sim)
    assert report.violations == []
    assert report.tasks > 0 and report.malformed > 0
    # Every malformed task has a row (verify_zvm checks each record); one that was still
    # running at the first pass and had moved on by the second has one row per version.
    assert report.rejected_rows >= report.malformed
    assert report.runs == {"succeeded": 2}


def test_the_verification_finds_what_went_wrong(
    sim: Simulator, warehouse: Engine, warehouse_url: str
) -> None:
    _loaded(sim, warehouse, warehouse_url)
    t, s, runs = schema.tasks, schema.task_status_changes, schema.etl_runs
    with warehouse.begin() as conn:
        lost, changed, repeated = conn.execute(
            sa.select(t.c.task_identifier).order_by(t.c.task_identifier).limit(3)
        ).scalars()
        for table in BRIDGES:
            conn.execute(sa.delete(table).where(table.c.task_identifier == lost))
        conn.execute(sa.delete(t).where(t.c.task_identifier == lost))
        conn.execute(sa.update(t).where(t.c.task_identifier == changed).values(progress=-1))
        last = conn.execute(
            sa.select(s).where(s.c.task_identifier == repeated).order_by(s.c.observed_at.desc())
        ).first()
        assert last is not None
        again = last._asdict() | {"observed_at": last.observed_at + timedelta(seconds=1)}
        conn.execute(sa.insert(s).values(again))
        conn.execute(
            sa.update(runs)
            .where(runs.c.run_id == sa.select(sa.func.max(runs.c.run_id)).scalar_subquery())
            .values(status="running", finished_at=None)
        )
        conn.execute(sa.delete(schema.rejected_tasks))
    problems = verify_zvm(warehouse, "sim", sim).violations
    expected = [
        f"sim: 1 tasks the ZVM holds are not in the warehouse (lost) (e.g. {lost})",
        f"sim: 1 tasks differ from the ZVM's version (e.g. {changed})",
        f"sim: 1 tasks have a repeated status row (e.g. {repeated})",
        "sim: 1 etl_runs rows are left running",
        "malformed records are not in rejected_tasks",
    ]
    for fragment in expected:
        assert any(fragment in problem for problem in problems), (fragment, problems)


def test_the_memory_rule_compares_the_last_quarter_with_the_first_after_warm_up() -> None:
    # 100 s sampled every second: 25 s of warm-up (ignored, however high), then quarters.
    def samples(first: int, last: int) -> list[tuple[float, int]]:
        rss = [900 * MB] * 25 + [first * MB] * 19 + [(first + last) // 2 * MB] * 37
        return [(float(at), value) for at, value in enumerate(rss + [last * MB] * 19)]

    flat = rss_verdict(samples(100, 140), limit_mb=50, duration=100)
    assert (flat.first_quarter, flat.last_quarter) == (100 * MB, 140 * MB)
    assert flat.growth == 40 * MB and flat.violation is None
    assert flat.peak == 900 * MB and flat.final == 140 * MB
    grown = rss_verdict(samples(100, 151), limit_mb=50, duration=100)
    assert grown.violation is not None and "51.0 MB" in grown.violation
    too_short = rss_verdict([(0.0, MB), (1.0, 2 * MB)], limit_mb=50, duration=2)
    assert too_short.growth is None and too_short.violation is None


def test_the_simulator_counts_the_faults_it_injects() -> None:
    simulator = start_sim(days=0.1)
    try:
        faults = simulator.faults
        faults.error_rate = 1.0
        faults.latency = 0.001
        faults.missing_listings = {"/v1/vras"}
        with httpx.Client(base_url=simulator.url) as http:
            assert http.get("/v1/tasks").status_code == 503
            faults.reset()
            assert faults.missing_listings == set()
            assert http.get("/v1/tasks").status_code == 401
        counts = faults.injected.snapshot()
        assert counts["error"] == 1 and counts["latency"] == 1
        assert counts["drop"] == counts["session_expired"] == 0
    finally:
        simulator.stop()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_short_soak_loses_nothing(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'soak.db'}"
    else:
        url = os.environ.get("ZVM_ETL_TEST_POSTGRES_URL", "")
        if not url:
            pytest.skip("ZVM_ETL_TEST_POSTGRES_URL is not set")
    options = SoakOptions(
        url=url,
        seconds=20,
        retry_for="2s",
        faults=FaultPlan(session_max_requests=10, expire_every=5, outage_every=None),
    )
    result = run_soak(options)
    text = summary(result)
    assert result.ok, text
    assert result.passes["succeeded"] >= len(options.zvms), text
    assert [final.status for final in result.final_passes] == ["succeeded"] * 3
    # Every request is delayed, and each ZVM's first pass reads the listings.
    for kind in ("latency", "missing_listing", "failing_listing"):
        assert result.faults[kind] > 0, text
    assert sum(z.tasks for z in result.zvms) > 0
    assert result.rss is not None and result.rss.samples >= 20
    assert "OK: every task of every ZVM" in text
