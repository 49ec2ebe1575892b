"""``zvm-etl verify`` through the library: a simulated ZVM over real HTTP, a warehouse filled
by real passes, on every database. The expected answers come from the simulator's ground
truth, normalized, never from the code under test. (The command itself: test_cli.py.)"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.config import Config, parse_config
from etl.sync import backfill_all, sync_all
from etl.verify import SECOND, Seen, Verification, normalize_seen, verify_all
from etl.warehouse import schema
from tests.syncing import (
    PASSWORD,
    delete_tasks,
    expected_tasks,
    make_config,
    one_pass,
    snapshot,
    start_sim,
)
from zvm_simulator import Simulator

pytestmark = pytest.mark.sim(seed=21, days=2, tasks_per_hour=30)
"""The ``sim`` fixture (conftest.py) of every test here."""


def verify(config: Config, engine: Engine, **kw: Any) -> Verification:
    [result] = verify_all(config, engine=engine, **kw)
    return result


def recorded(engine: Engine) -> list[Any]:
    """The verifications rows, oldest first."""
    table = schema.verifications
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c.id)))


def state(engine: Engine) -> dict[str, Any]:
    """Everything but the verifications rows, etl_runs included: what verify must not touch."""
    tables = snapshot(engine, skip=set())
    tables.pop("verifications")
    with engine.connect() as conn:
        runs = conn.execute(sa.select(schema.etl_runs).order_by(schema.etl_runs.c.run_id))
        tables["etl_runs"] = [tuple(map(repr, row)) for row in runs]
    return tables


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def ids_started_on(engine: Engine, day: date) -> list[str]:
    tasks = schema.tasks
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(tasks.c.task_identifier)
                .where(tasks.c.started_at >= midnight(day))
                .where(tasks.c.started_at < midnight(day) + timedelta(days=1))
                .order_by(tasks.c.task_identifier)
            ).scalars()
        )


def test_normalize_seen_keeps_what_a_malformed_record_still_tells() -> None:
    started = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    good = {
        "TaskIdentifier": "t1.s",
        "Type": "FailOverTest",
        "Status": {"State": 6, "Progress": 100},
        "Started": "/Date(1772357400000+0300)/",
        "Completed": "/Date(1772357460000+0300)/",
    }
    seen = normalize_seen(good)
    assert seen == Seen("t1.s", started, started + timedelta(minutes=1), malformed=False)
    bad_state = good | {"Status": {"State": 42}}
    assert normalize_seen(bad_state) == Seen("t1.s", started, None, malformed=True)
    unset = good | {"Status": {"State": 42}, "Started": "/Date(-62135596800000)/"}
    assert normalize_seen(unset) == Seen("t1.s", None, None, malformed=True)
    nameless = {k: v for k, v in good.items() if k != "TaskIdentifier"}
    assert normalize_seen(nameless) == Seen(None, started, None, malformed=True)
    assert normalize_seen([1, 2]) == Seen(None, None, None, malformed=True)


def test_a_complete_warehouse_verifies_complete_day_by_day_and_nothing_else_changes(
    sim: Simulator, warehouse: Engine, warehouse_url: str
) -> None:
    # Tasks on the edges of UTC days and of the 5-hour windows: each belongs to the day of
    # its own start and is counted once, whichever windows return it.
    yesterday = midnight(sim.now().date() - timedelta(days=1))
    for moment in (
        yesterday,
        yesterday - timedelta(milliseconds=1),
        yesterday + timedelta(hours=5),
        yesterday + timedelta(hours=5, seconds=-1),
    ):
        sim.add_task(started=moment, duration=timedelta(seconds=5))
    config = make_config(sim, warehouse_url, backfill_window="5h")
    assert one_pass(config, warehouse).succeeded
    before = state(warehouse)

    result = verify(config, warehouse)
    assert result.status == "complete", result.differing
    good, _bad = expected_tasks(sim)
    cursor = max(task.started_at for task in good.values())
    assert result.cursor == result.until == cursor
    oldest = min(task.started_at for task in good.values())
    assert result.oldest_on_zvm == oldest and result.since == midnight(oldest.date())
    per_day = Counter(task.started_at.date() for task in good.values())
    assert [day.day for day in result.days] == sorted(per_day)
    assert {day.day: day.zvm_tasks for day in result.days} == per_day
    assert {day.day: day.warehouse_tasks for day in result.days} == per_day
    assert result.days[-1].partial and result.days[-1].end == cursor
    assert not any(day.differs or day.purged_by_zvm or day.rejected for day in result.days)
    [row] = recorded(warehouse)
    assert (row.zvm, row.status, row.error) == ("sim", "complete", None)
    assert (row.since, row.until) == (result.since, cursor)
    assert (row.days_checked, row.days_differing) == (len(per_day), 0)
    assert row.zvm_tasks == row.warehouse_tasks == len(good)
    assert (row.missing_in_warehouse, row.missing_on_zvm, row.purged_by_zvm) == (0, 0, 0)
    assert row.id == result.id and row.finished_at >= row.started_at
    assert state(warehouse) == before  # no task, cursor, entity or run written

    # Tasks started after the last pass are not in the warehouse yet, and are no gap.
    sim.advance(timedelta(minutes=90))
    later = verify(config, warehouse)
    assert later.status == "complete" and later.until == cursor
    assert later.total("zvm_tasks") == len(good)

    # One day asked for; and a range after the cursor compares nothing.
    day = sorted(per_day)[1]
    one = verify(config, warehouse, since=midnight(day), until=midnight(day) + timedelta(days=1))
    assert [d.day for d in one.days] == [day] and one.days[0].zvm_tasks == per_day[day]
    after = verify(config, warehouse, since=cursor + timedelta(hours=1))
    assert after.status == "complete" and after.days == [] and after.note
    assert state(warehouse) == before


@pytest.fixture
def synced(sim: Simulator, warehouse: Engine, warehouse_url: str) -> Config:
    """The configuration of ``sim``, whose history a first pass has loaded."""
    config = make_config(sim, warehouse_url)
    assert one_pass(config, warehouse).succeeded
    return config


def test_deleted_tasks_are_listed_by_day_and_the_printed_backfill_repairs_them(
    sim: Simulator, warehouse: Engine, synced: Config
) -> None:
    config = synced
    day = sim.now().date() - timedelta(days=1)
    lost = ids_started_on(warehouse, day)[5:8]
    other = ids_started_on(warehouse, sim.now().date())[:1]
    delete_tasks(warehouse, lost + other)

    result = verify(config, warehouse)
    assert result.status == "incomplete"
    differing = {d.day: d for d in result.differing}
    assert set(differing) == {day, sim.now().date()}
    assert differing[day].missing_in_warehouse == lost
    assert differing[sim.now().date()].missing_in_warehouse == other
    assert differing[day].zvm_tasks == differing[day].warehouse_tasks + 3
    assert not differing[day].missing_on_zvm
    repair = f"zvm-etl backfill --zvm sim --since {day} --until {day + timedelta(days=1)}"
    assert differing[day].repair("sim") == repair
    row = recorded(warehouse)[-1]
    assert (row.status, row.days_differing, row.missing_in_warehouse) == ("incomplete", 2, 4)

    for gap in differing.values():  # what each printed repair command does
        [done] = backfill_all(
            config, since=midnight(gap.day), until=midnight(gap.day + timedelta(days=1))
        )
        assert done.succeeded, done.error
    again = verify(config, warehouse)
    assert again.status == "complete" and again.total("missing_in_warehouse") == 0
    assert recorded(warehouse)[-1].status == "complete"


def test_tasks_the_zvm_purged_are_reported_as_purged_not_missing(
    warehouse: Engine, warehouse_url: str
) -> None:
    sim = start_sim(seed=5, days=2, retention=timedelta(days=1))
    try:
        config = make_config(sim, warehouse_url)
        assert one_pass(config, warehouse).succeeded
        sim.advance(timedelta(hours=12))  # tasks that ended more than a day ago vanish
        assert one_pass(config, warehouse).succeeded
        result = verify(config, warehouse)
        good, _bad = expected_tasks(sim)
        assert result.status == "complete", result.differing
        assert result.oldest_on_zvm == min(task.started_at for task in good.values())
        tasks = schema.tasks
        with warehouse.connect() as conn:
            held = set(
                conn.execute(
                    sa.select(tasks.c.task_identifier).where(
                        tasks.c.started_at >= result.since, tasks.c.started_at <= result.until
                    )
                ).scalars()
            )
        purged = [i for day in result.days for i in day.purged_by_zvm]
        assert purged and set(purged) == held - set(good)
        assert result.total("missing_on_zvm") == 0
        row = recorded(warehouse)[-1]
        assert (row.status, row.purged_by_zvm, row.missing_on_zvm) == ("complete", len(purged), 0)

        # A task that vanished while open (no end to compare) and started before the oldest
        # task the ZVM holds was purged too.
        assert result.since and result.oldest_on_zvm and result.since < result.oldest_on_zvm
        copy_task(warehouse, purged[0], "vanished-while-open", completed_at=None, state=1)
        with warehouse.begin() as conn:
            started = result.since + (result.oldest_on_zvm - result.since) / 2
            conn.execute(
                tasks.update()
                .where(tasks.c.task_identifier == "vanished-while-open")
                .values(started_at=started)
            )
        again = verify(config, warehouse)
        assert again.status == "complete"
        assert "vanished-while-open" in [i for day in again.days for i in day.purged_by_zvm]
    finally:
        sim.stop()


def compared(started: datetime | None, since: datetime, until: datetime) -> bool:
    """Whether verify compares a malformed record that started at ``started``."""
    return started is None or since <= started <= until


def copy_task(engine: Engine, model: str, identifier: str, **values: Any) -> None:
    """A task row like ``model``'s under another identifier (no bridge rows)."""
    tasks = schema.tasks
    with engine.begin() as conn:
        row = conn.execute(sa.select(tasks).where(tasks.c.task_identifier == model)).one()
        copy = dict(row._mapping) | {"task_identifier": identifier, "task_id": identifier}
        conn.execute(tasks.insert().values(**(copy | values)))


def test_a_task_only_the_warehouse_holds_and_the_zvm_never_purged_is_missing_on_the_zvm(
    sim: Simulator, warehouse: Engine, synced: Config
) -> None:
    day = sim.now().date() - timedelta(days=1)
    copy_task(warehouse, ids_started_on(warehouse, day)[10], "not-from-this-zvm")
    result = verify(synced, warehouse)
    assert result.status == "incomplete"
    [differing] = result.differing
    assert differing.day == day and differing.missing_on_zvm == ["not-from-this-zvm"]
    assert differing.repair("sim") is None  # a backfill never removes a task
    assert recorded(warehouse)[-1].missing_on_zvm == 1


def test_malformed_records_in_rejected_tasks_are_not_missing(
    sim: Simulator, warehouse: Engine, warehouse_url: str
) -> None:
    sim.faults.malformed_rate = 0.05
    config = make_config(sim, warehouse_url)
    assert one_pass(config, warehouse).succeeded
    _good, bad = expected_tasks(sim)
    assert any(r.task_identifier for r in bad) and not all(r.task_identifier for r in bad)
    result = verify(config, warehouse)
    assert result.status == "complete", result.differing
    assert result.since is not None and result.until is not None
    # Malformed records are compared when they started in the range verified (a ZVM's
    # newest records may have started after the cursor, which only valid tasks move); one
    # without a readable start goes to the day of the window that returned it.
    keyed = sorted(
        r.task_identifier
        for r in bad
        if r.task_identifier
        and compared(normalize_seen(orjson.loads(r.raw)).started, result.since, result.until)
    )
    assert keyed
    assert sorted(i for day in result.days for i in day.rejected) == keyed
    unkeyed = [normalize_seen(orjson.loads(r.raw)) for r in bad if not r.task_identifier]
    assert all(seen.started is not None for seen in unkeyed)  # only the identifier is broken
    in_range = [
        seen
        for seen in unkeyed
        if seen.started is not None and result.since - SECOND <= seen.started <= result.until
    ]
    assert in_range and result.unidentified == len(in_range)
    assert recorded(warehouse)[-1].rejected == len(keyed)

    # A malformed record the ETL never kept is missing like any task.
    kept = schema.rejected_tasks
    with warehouse.begin() as conn:
        conn.execute(kept.delete().where(kept.c.task_identifier == keyed[0]))
    again = verify(config, warehouse)
    assert again.status == "incomplete"
    assert [i for day in again.differing for i in day.missing_in_warehouse] == [keyed[0]]


def test_a_zvm_that_fails_mid_verification_is_recorded_failed_and_the_others_verified(
    sim: Simulator, warehouse: Engine, warehouse_url: str
) -> None:
    other = start_sim(seed=22, days=1)
    try:
        keys = {"retry_for": "1s", "task_retention": "3d"}
        zvms = [
            make_config(each, warehouse_url, zvm_keys=keys | {"name": name}).zvms[0]
            for name, each in (("failing", sim), ("fine", other))
        ]
        config = make_config(sim, warehouse_url).model_copy(update={"zvms": zvms})
        for zvm in ("failing", "fine"):
            [result] = sync_all(config, engine=warehouse, names=[zvm])
            assert result.succeeded, result.error
        before = state(warehouse)
        # The search for the oldest task takes three answers (the history before the
        # 3-day retention, then two days), the first day's comparison a fourth; then the
        # ZVM goes down for good.
        sim.faults.outage_after = 4
        sim.faults.retry_after = 0
        failing, fine = verify_all(config, engine=warehouse)
        assert failing.status == "failed" and failing.days  # it had compared some days
        assert "ZVM failing" in (failing.error or "") and "503" in (failing.error or "")
        assert PASSWORD not in (failing.error or "")
        assert fine.status == "complete"
        rows = {row.zvm: row for row in recorded(warehouse)}
        assert rows["failing"].status == "failed" and rows["failing"].error == failing.error
        assert rows["fine"].status == "complete" and rows["fine"].error is None
        assert state(warehouse) == before
    finally:
        other.stop()


def test_a_zvm_never_synced_is_incomplete_without_asking_it(
    sim: Simulator, warehouse: Engine, warehouse_url: str
) -> None:
    config = parse_config(
        {
            "warehouse": {"url": warehouse_url},
            "zvms": [{"name": "new", "url": sim.url, "username": "admin", "password": PASSWORD}],
        },
        env={},
    )
    sim.clear_requests()
    result = verify(config, warehouse)
    assert result.status == "incomplete" and result.days == []
    error = result.error or ""
    assert "never synced" in error and "run `zvm-etl sync --zvm new`, then verify again" in error
    assert sim.requests == []
    [row] = recorded(warehouse)
    assert (row.zvm, row.status, row.days_checked) == ("new", "incomplete", 0)
    assert row.error == result.error
