"""The incremental sync against the simulator over real HTTP, on every warehouse database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from etl.errors import SchemaMismatch
from etl.sync import backfill_all, plan_windows, sync_all
from etl.warehouse import db, schema
from tests.syncing import (
    PASSWORD,
    advance,
    assert_converged,
    expected_tasks,
    full_snapshot,
    make_config,
    one_pass,
    snapshot,
    start_sim,
)
from zvm_simulator import Simulator

pytestmark = pytest.mark.sim(seed=11, tasks_per_hour=40)
"""The ``sim`` fixture (conftest.py) of every test here."""


def runs(engine: Engine) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(schema.etl_runs).order_by(schema.etl_runs.c.run_id)))


def test_first_pass_loads_all_history_then_passes_converge(
    sim: Simulator, warehouse: Engine, warehouse_url: str
) -> None:
    config = make_config(sim, warehouse_url)
    first = one_pass(config, warehouse)
    assert first.succeeded, first.error
    good, _bad = expected_tasks(sim)
    assert first.counts.inserted == len(good) > 50
    assert first.counts.received == len(good)
    assert_converged(warehouse, sim)

    for minutes in (7, 45, 180):
        advance(sim, minutes)
        result = one_pass(config, warehouse)
        assert result.succeeded, result.error
        assert_converged(warehouse, sim)
    [row] = runs(warehouse)[-1:]
    assert row.status == "succeeded" and row.trigger == "sync"
    assert row.tasks_received == result.counts.received
    assert row.tasks_inserted + row.tasks_updated + row.tasks_unchanged == row.tasks_received
    with warehouse.connect() as conn:
        site = conn.execute(sa.select(schema.zvms.c.site_identifier)).scalar_one()
        types = dict(
            conn.execute(
                sa.select(schema.task_types.c.name, schema.task_types.c.listed_by_zvm)
            ).all()
        )
    assert site == next(iter(good.values())).site_identifier
    assert types["FailOverTest"] is True


def test_second_pass_without_change_changes_nothing(
    sim: Simulator, warehouse: Engine, warehouse_url: str
) -> None:
    config = make_config(sim, warehouse_url)
    assert one_pass(config, warehouse).succeeded
    before = full_snapshot(warehouse)
    second = one_pass(config, warehouse)
    assert second.succeeded
    assert (second.counts.inserted, second.counts.updated) == (0, 0)
    assert second.counts.unchanged == second.counts.received > 0
    assert full_snapshot(warehouse) == before
    assert [r.status for r in runs(warehouse)] == ["succeeded", "succeeded"]


def test_incremental_passes_fetch_only_new_changed_or_open(
    sim: Simulator, warehouse: Engine, warehouse_url: str
) -> None:
    config = make_config(sim, warehouse_url)
    assert one_pass(config, warehouse).succeeded
    with warehouse.connect() as conn:
        open_ids = set(
            conn.execute(
                sa.select(schema.tasks.c.task_identifier).where(
                    schema.tasks.c.state.not_in([4, 5, 6])
                )
            ).scalars()
        )
        cursor = conn.execute(
            sa.select(schema.sync_cursors.c.value).where(schema.sync_cursors.c.cursor == "started")
        ).scalar_one()
    advance(sim, 10)
    sim.clear_requests()
    assert one_pass(config, warehouse).succeeded
    lists = [r for r in sim.requests if r.path == "/v1/tasks"]
    assert len(lists) == 2, lists
    assert all(r.params for r in lists), "an unfiltered /v1/tasks fetches the whole history"
    started_after = datetime.fromisoformat(lists[0].params["startedafterdate"])
    assert started_after == (cursor - timedelta(minutes=10)).replace(microsecond=0)
    assert "completedafterdate" in lists[1].params
    by_id = {
        r.path.removeprefix("/v1/tasks/")
        for r in sim.requests
        if r.path.startswith("/v1/tasks/") and r.path != "/v1/tasks/types"
    }
    assert by_id <= open_ids


def test_tasks_purged_by_the_zvm_stay(warehouse: Engine, warehouse_url: str) -> None:
    sim = start_sim(seed=4, days=1, retention=timedelta(hours=20))
    try:
        config = make_config(sim, warehouse_url)
        assert one_pass(config, warehouse).succeeded
        held = set(expected_tasks(sim)[0])
        sim.advance(timedelta(hours=10))
        assert one_pass(config, warehouse).succeeded
        purged = held - set(expected_tasks(sim)[0])
        assert purged, "the simulator purged nothing: the test proves nothing"
        with warehouse.connect() as conn:
            kept = set(conn.execute(sa.select(schema.tasks.c.task_identifier)).scalars())
        assert held <= kept
        assert_converged(warehouse, sim)
    finally:
        sim.stop()


def test_status_changes_are_recorded_while_tasks_run(
    sim: Simulator, warehouse: Engine, warehouse_url: str
) -> None:
    config = make_config(sim, warehouse_url)
    for _ in range(12):
        assert one_pass(config, warehouse).succeeded
        advance(sim, 3)
    with warehouse.connect() as conn:
        changes = conn.execute(
            sa.select(schema.task_status_changes.c.task_identifier, sa.func.count()).group_by(
                schema.task_status_changes.c.task_identifier
            )
        ).all()
        tasks = conn.execute(sa.select(sa.func.count()).select_from(schema.tasks)).scalar_one()
    assert len(changes) == tasks  # the first observation of every task
    assert any(count > 1 for _, count in changes), "no task was seen changing state or progress"


def test_bad_records_are_rejected_and_the_rest_loads(warehouse: Engine, warehouse_url: str) -> None:
    sim = start_sim(seed=5)
    try:
        sim.faults.malformed_rate = 0.1
        config = make_config(sim, warehouse_url)
        result = one_pass(config, warehouse)
        assert result.succeeded
        good, bad = expected_tasks(sim)
        assert result.counts.rejected == len(bad) > 0
        assert result.counts.inserted == len(good)
        assert_converged(warehouse, sim)
        with warehouse.connect() as conn:
            reasons = set(conn.execute(sa.select(schema.rejected_tasks.c.reason)).scalars())
        assert any("outside the documented states" in r for r in reasons), reasons
        assert any("Started" in r for r in reasons), reasons
        assert any("no TaskIdentifier" in r for r in reasons), reasons
        # Received again through the overlap, they are not stored twice.
        stored = len(full_snapshot(warehouse)["rejected_tasks"])
        assert one_pass(config, warehouse).succeeded
        assert len(full_snapshot(warehouse)["rejected_tasks"]) == stored
    finally:
        sim.stop()


@pytest.mark.parametrize(
    ("skew", "offset"),
    [(timedelta(minutes=-15), 180), (timedelta(minutes=15), 180), (timedelta(0), 330)],
    ids=["zvm-15min-behind", "zvm-15min-ahead", "zone+05:30"],
)
def test_clock_skew_and_odd_zones_lose_nothing(
    warehouse: Engine, warehouse_url: str, skew: timedelta, offset: int
) -> None:
    sim = start_sim(seed=3, clock_skew=skew, utc_offset_minutes=offset, tasks_per_hour=120, days=1)
    try:
        config = make_config(sim, warehouse_url, overlap="2m")
        for minutes in (0, 4, 1, 9, 3):
            advance(sim, minutes)
            assert one_pass(config, warehouse).succeeded
            assert_converged(warehouse, sim)
    finally:
        sim.stop()


def test_faults_are_survived(warehouse: Engine, warehouse_url: str) -> None:
    sim = start_sim(seed=8)
    try:
        sim.faults.error_rate = 0.3
        sim.faults.retry_after = 0.01
        sim.faults.drop_rate = 0.3
        sim.faults.session_max_requests = 3
        # What is tested is surviving the faults, not the retry budget: a budget no busy
        # machine can use up (a loaded CI host once needed 25 s for two attempts).
        config = make_config(sim, warehouse_url, zvm_keys={"retry_for": "10m"})
        for _ in range(3):
            result = one_pass(config, warehouse)
            assert result.succeeded, result.error
            advance(sim, 20)
        assert result.retries > 0
        sim.faults.reset()
        assert one_pass(config, warehouse).succeeded
        assert_converged(warehouse, sim)
    finally:
        sim.stop()


def test_a_pass_that_cannot_finish_changes_nothing_and_is_recorded(
    sim: Simulator, warehouse: Engine, warehouse_url: str
) -> None:
    config = make_config(sim, warehouse_url)
    assert one_pass(config, warehouse).succeeded
    advance(sim, 30)
    before = snapshot(warehouse)
    # The types and the first list succeed; every later request fails until retries run out.
    sim.faults.session_max_requests = None
    config = config.model_copy(
        update={"zvms": [config.zvms[0].model_copy(update={"retry_for": timedelta(seconds=1)})]}
    )
    sim.faults.error_rate = 1.0
    sim.faults.retry_after = 0.2
    result = one_pass(config, warehouse)
    assert not result.succeeded
    assert "gave up on GET" in (result.error or "")
    assert snapshot(warehouse) == before
    last = runs(warehouse)[-1]
    assert last.status == "failed" and last.finished_at is not None
    assert "HTTP 503" in last.error and PASSWORD not in last.error
    sim.faults.reset()
    assert one_pass(config, warehouse).succeeded
    assert_converged(warehouse, sim)


def test_wrong_password_fails_the_pass_with_a_clear_error(
    sim: Simulator, warehouse: Engine, warehouse_url: str
) -> None:
    config = make_config(sim, warehouse_url)
    wrong = config.zvms[0].model_copy(update={"password": SecretStr("nope")})
    result = one_pass(config.model_copy(update={"zvms": [wrong]}), warehouse)
    assert not result.succeeded
    assert "refused the login of user 'admin'" in (result.error or "")
    assert "nope" not in (result.error or "")


def test_sync_refuses_a_warehouse_without_schema(sim: Simulator, database_url: str) -> None:
    config = make_config(sim, database_url)
    with pytest.raises(SchemaMismatch, match="zvm-etl db upgrade"):
        sync_all(config)
    db.upgrade(database_url)
    db.downgrade(database_url, "base")
    with pytest.raises(SchemaMismatch, match="zvm-etl db upgrade"):
        sync_all(config)


def test_backfill_reloads_a_window_and_never_moves_cursors(
    sim: Simulator, warehouse: Engine, warehouse_url: str
) -> None:
    config = make_config(sim, warehouse_url, backfill_window="6h")
    since = sim.now() - timedelta(days=1)
    [result] = backfill_all(
        config, since=since, until=sim.now() - timedelta(hours=2), engine=warehouse
    )
    assert result.succeeded and result.trigger == "backfill"
    good, _ = expected_tasks(sim)
    in_window = {
        i for i, t in good.items() if since <= t.started_at <= sim.now() - timedelta(hours=2)
    }
    with warehouse.connect() as conn:
        loaded = set(conn.execute(sa.select(schema.tasks.c.task_identifier)).scalars())
        assert not conn.execute(sa.select(schema.sync_cursors)).all()
    assert loaded == in_window
    assert one_pass(config, warehouse).succeeded
    with warehouse.connect() as conn:
        cursors = dict(
            conn.execute(sa.select(schema.sync_cursors.c.cursor, schema.sync_cursors.c.value)).all()
        )
    [again] = backfill_all(config, since=since - timedelta(days=1), engine=warehouse)
    assert again.succeeded and again.counts.inserted == 0
    with warehouse.connect() as conn:
        after = dict(
            conn.execute(sa.select(schema.sync_cursors.c.cursor, schema.sync_cursors.c.value)).all()
        )
    assert after == cursors


def test_plan_windows_cover_the_range_and_overlap_by_a_second() -> None:
    start = datetime(2025, 1, 1, 0, 0, 0, 250_000, tzinfo=UTC)
    windows = plan_windows(start, start + timedelta(days=3, hours=5), timedelta(days=1))
    assert windows[0] == (
        start.replace(microsecond=0),
        start.replace(microsecond=0) + timedelta(days=1),
    )
    assert windows[-1][1] is None and len(windows) == 4
    for (_, before), (after, _) in itertools.pairwise(windows):
        assert before is not None and after == before - timedelta(seconds=1)
    opened = plan_windows(start, start + timedelta(hours=1), timedelta(days=1), open_start=True)
    assert opened == [
        (None, start.replace(microsecond=0)),
        (start.replace(microsecond=0) - timedelta(seconds=1), None),
    ]
    closed = plan_windows(start, start + timedelta(days=2), timedelta(days=1), open_end=False)
    assert closed[-1][1] == start.replace(microsecond=0) + timedelta(days=2, seconds=1)


def test_a_task_on_a_window_boundary_is_loaded_once(warehouse: Engine, warehouse_url: str) -> None:
    sim = start_sim(seed=13, days=0.5, tasks_per_hour=10)
    try:
        since = (sim.now() - timedelta(hours=10)).replace(minute=0, second=0, microsecond=0)
        config = make_config(
            sim, warehouse_url, backfill_window="1h", backfill_since=since.isoformat()
        )
        boundary = since + timedelta(hours=5)
        for offset in (-1000, -1, 0, 1, 1000):
            sim.add_task(
                started=boundary + timedelta(milliseconds=offset), duration=timedelta(seconds=5)
            )
        result = one_pass(config, warehouse)
        assert result.succeeded
        good, _ = expected_tasks(sim)
        wanted = {i for i, t in good.items() if t.started_at >= since}
        assert result.counts.received == result.counts.inserted == len(wanted)
        with warehouse.connect() as conn:
            loaded = set(conn.execute(sa.select(schema.tasks.c.task_identifier)).scalars())
        assert loaded == wanted
    finally:
        sim.stop()


def test_loading_is_set_based_not_a_round_trip_per_task(
    warehouse: Engine, warehouse_url: str
) -> None:
    sim = start_sim(seed=12, days=1, tasks_per_hour=400)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    sa.event.listen(warehouse, "before_cursor_execute", count)
    try:
        config = make_config(sim, warehouse_url)
        result = one_pass(config, warehouse)
        assert result.succeeded and result.counts.inserted > 5000
        first = len(statements)
        statements.clear()
        advance(sim, 30)
        second = one_pass(config, warehouse)
        assert second.succeeded and second.counts.received > 200
    finally:
        sa.event.remove(warehouse, "before_cursor_execute", count)
        sim.stop()
    assert first < result.counts.inserted / 25, (
        f"{first} statements for {result.counts.inserted} tasks"
    )
    # A few statements per table and transaction (the window's, then the last one), however
    # many tasks: never one per task. (The Recovery Report's read adds about a dozen.)
    assert len(statements) < 100 < second.counts.received, statements
