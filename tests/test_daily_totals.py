"""task_daily_totals always equals a GROUP BY over tasks, and vpg_daily_tests the failover
tests counted from tasks and task_vpgs, on the three databases: after a first pass, while
tasks change state over incremental passes, after a backfill, and after migrations 0008
and 0009 fill them from the tasks already stored. The ready queries read from them give
the answers the tasks give."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.sync import backfill_all
from etl.warehouse import db, schema
from etl.warehouse.daily import task_day
from etl.warehouse.sqlfiles import query_sql, render
from tests.analyst import as_utc
from tests.syncing import advance, make_config, one_pass
from zvm_simulator import Simulator

pytestmark = pytest.mark.sim(seed=23, days=3, tasks_per_hour=40)
"""The ``sim`` fixture (conftest.py): three days of history, a few thousand tasks."""

Totals = dict[tuple[Any, ...], tuple[Any, ...]]


def _key(zvm: str, day: Any, type_: str, state: int, initiated_by: str | None) -> tuple[Any, ...]:
    return (zvm, str(day), type_, state, initiated_by)


def _values(*values: Any, exact: bool = False) -> tuple[Any, ...]:
    """The values of one row; ``exact`` keeps the sum as stored, else it is rounded to the
    millisecond (a plain SUM of doubles differs in its last digits with the row order)."""
    tasks, completed, total, longest, first, last = values
    if total is not None and not exact:
        total = round(float(total), 3)
    return (tasks, completed, total, longest, first, last)


def totals_from_tasks(engine: Engine) -> Totals:
    """What task_daily_totals must hold, computed from tasks by the database itself."""
    t = schema.tasks
    day: sa.ColumnElement[Any] = sa.literal_column(
        render('${utc_day("tasks.started_at")}', dialect=engine.dialect.name)
    )
    keys = (t.c.zvm, day, t.c.type, t.c.state, t.c.initiated_by)
    statement = sa.select(
        *keys,
        sa.func.count(),
        sa.func.count(t.c.duration_seconds),
        sa.func.sum(t.c.duration_seconds),
        sa.func.max(t.c.duration_seconds),
        sa.func.min(t.c.started_at),
        sa.func.max(t.c.started_at),
    ).group_by(*keys)
    with engine.connect() as conn:
        return {_key(*row[:5]): _values(*row[5:]) for row in conn.execute(statement)}


def stored_totals(engine: Engine) -> Totals:
    d = schema.task_daily_totals
    columns = [c for c in d.c if c.name != "id"]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*columns)).all()
    # Stored sums are exact to the millisecond (daily.exact_sum): no rounding here, so a
    # sum that depended on the order the rows were added in would not match.
    stored = {_key(*row[:5]): _values(*row[5:], exact=True) for row in rows}
    assert len(stored) == len(rows), "two rows for one (zvm, day, type, state, initiated_by)"
    return stored


def assert_totals_match(engine: Engine) -> Totals:
    expected = totals_from_tasks(engine)
    stored = stored_totals(engine)
    wrong = {k: (stored.get(k), v) for k, v in expected.items() if stored.get(k) != v}
    extra = set(stored) - set(expected)
    assert not wrong and not extra, (wrong, extra)
    return stored


def vpg_tests_from_tasks(engine: Engine) -> Totals:
    """What vpg_daily_tests must hold, counted here in Python from tasks and task_vpgs."""
    t, tv = schema.tasks, schema.task_vpgs
    with engine.connect() as conn:
        links = conn.execute(sa.select(tv.c.task_identifier, tv.c.vpg_identifier)).all()
        tasks = {
            row.task_identifier: row
            for row in conn.execute(
                sa.select(
                    t.c.task_identifier,
                    t.c.zvm,
                    t.c.type,
                    t.c.state,
                    t.c.started_at,
                    t.c.completed_at,
                )
            )
        }
    expected: dict[tuple[Any, ...], list[Any]] = {}
    for task_identifier, vpg_identifier in links:
        task = tasks[task_identifier]
        if task.type.lower() != "failovertest":
            continue
        started_at = as_utc(task.started_at)
        key = (task.zvm, vpg_identifier, str(task_day(started_at)))
        row = expected.setdefault(key, [0, 0, 0, started_at, None, None])
        row[0] += 1
        row[1] += task.state == 6
        row[2] += task.state == 4
        row[3] = max(row[3], started_at)
        if task.state == 6:
            completed_at = as_utc(task.completed_at)
            row[4] = max(row[4] or started_at, started_at)
            row[5] = max(row[5] or completed_at, completed_at)
    return {key: tuple(row) for key, row in expected.items()}


def stored_vpg_tests(engine: Engine) -> Totals:
    d = schema.vpg_daily_tests
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*(c for c in d.c if c.name != "id"))).all()
    stored = {
        (zvm, vpg, str(day)): (
            int(tests),
            int(succeeded),
            int(failed),
            as_utc(last),
            *(None if value is None else as_utc(value) for value in successes),
        )
        for zvm, vpg, day, tests, succeeded, failed, last, *successes in rows
    }
    assert len(stored) == len(rows), "two rows for one (zvm, vpg_identifier, day)"
    return stored


def assert_vpg_tests_match(engine: Engine) -> Totals:
    expected = vpg_tests_from_tasks(engine)
    stored = stored_vpg_tests(engine)
    assert stored == expected
    return stored


def states_by_task(engine: Engine) -> dict[str, int]:
    t = schema.tasks
    with engine.connect() as conn:
        return {i: s for i, s in conn.execute(sa.select(t.c.task_identifier, t.c.state))}


def test_totals_equal_the_tasks_after_every_pass(
    sim: Simulator, warehouse: Engine, warehouse_url: str
) -> None:
    config = make_config(sim, warehouse_url)
    assert one_pass(config, warehouse).succeeded
    first = assert_totals_match(warehouse)
    days = {key[1] for key in first}
    assert len(days) >= 3 and sum(v[0] for v in first.values()) > 1000
    assert any(v[1] < v[0] for v in first.values()), "no open task: the test proves less"
    tests = assert_vpg_tests_match(warehouse)
    assert len({key[1] for key in tests}) > 1, "failover tests of one VPG at most"
    assert any(v[1] for v in tests.values()) and any(v[2] for v in tests.values())
    before = states_by_task(warehouse)
    # At 40 tasks an hour, every advance brings new tasks (5 minutes could bring none).
    for minutes in (30, 90, 240):
        advance(sim, minutes)
        result = one_pass(config, warehouse)
        assert result.succeeded, result.error
        assert result.counts.inserted + result.counts.updated > 0
        assert_totals_match(warehouse)
        assert_vpg_tests_match(warehouse)
    after = states_by_task(warehouse)
    moved = [i for i, state in before.items() if after[i] != state]
    assert moved, "no task changed state between passes: the recount was not exercised"
    assert_tasks_per_day_is_the_daily_view(warehouse)
    assert_weekly_failures_count_the_tasks(warehouse)
    assert_initiators_count_the_tasks(warehouse)
    assert_dr_evidence_counts_the_tests(warehouse)
    assert_failure_rates_count_the_tasks(warehouse)


def assert_tasks_per_day_is_the_daily_view(engine: Engine) -> None:
    """The ready query tasks_per_day (read from the totals) gives v_task_daily's rows."""

    def rows(sql: str, **params: Any) -> dict[tuple[Any, ...], tuple[Any, ...]]:
        with engine.connect() as conn:
            found = conn.execute(sa.text(sql), params).mappings().all()
        return {
            (str(r["day"]), r["zvm"], r["type"], r["state"]): (
                r["state_name"],
                int(r["tasks"]),
                int(r["failures"]),
                r["avg_duration_seconds"],
                r["max_duration_seconds"],
            )
            for r in found
        }

    query = query_sql("tasks_per_day", dialect=engine.dialect.name)
    expected = rows("SELECT * FROM v_task_daily")
    assert len(expected) > 50
    got = rows(query, days=3650, zvm="")
    assert {k: (*v[:3], v[4]) for k, v in got.items()} == {
        k: (*v[:3], v[4]) for k, v in expected.items()
    }
    # The average: the exact millisecond sum over the count here, an AVG of doubles there.
    averages = [(got[k][3], v[3]) for k, v in expected.items()]
    assert [a is None for a, _ in averages] == [b is None for _, b in averages]
    known = [(a, b) for a, b in averages if b is not None]
    assert [a for a, _ in known] == pytest.approx([b for _, b in known], rel=1e-9)


def test_a_backfill_and_a_pass_without_change_keep_the_totals(
    sim: Simulator, warehouse: Engine, warehouse_url: str
) -> None:
    config = make_config(sim, warehouse_url, backfill_window="6h")
    since = sim.now() - timedelta(days=2)
    [result] = backfill_all(
        config, since=since, until=sim.now() - timedelta(hours=5), engine=warehouse
    )
    assert result.succeeded, result.error
    assert_totals_match(warehouse)
    assert_vpg_tests_match(warehouse)
    assert one_pass(config, warehouse).succeeded
    totals = assert_totals_match(warehouse)
    tests = assert_vpg_tests_match(warehouse)
    summaries = (schema.task_daily_totals, schema.vpg_daily_tests)
    with warehouse.connect() as conn:
        ids = [set(conn.execute(sa.select(table.c.id)).scalars()) for table in summaries]
    result = one_pass(config, warehouse)
    assert result.succeeded and (result.counts.inserted, result.counts.updated) == (0, 0)
    # Nothing new or changed: no day is recounted (the rows are the same rows).
    with warehouse.connect() as conn:
        assert [set(conn.execute(sa.select(table.c.id)).scalars()) for table in summaries] == ids
    assert stored_totals(warehouse) == totals
    assert stored_vpg_tests(warehouse) == tests


@pytest.mark.parametrize(
    ("revision", "table"), [("0008", "task_daily_totals"), ("0009", "vpg_daily_tests")]
)
def test_the_revision_fills_its_summary_from_the_stored_tasks(
    sim: Simulator, database_url: str, revision: str, table: str
) -> None:
    assert_match, stored = {
        "task_daily_totals": (assert_totals_match, stored_totals),
        "vpg_daily_tests": (assert_vpg_tests_match, stored_vpg_tests),
    }[table]
    config = make_config(sim, database_url)
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    try:
        assert one_pass(config, engine).succeeded
        expected = assert_match(engine)
        assert expected
        db.downgrade(database_url, f"{int(revision) - 1:04d}")
        with engine.connect() as conn:
            assert not sa.inspect(conn).has_table(table)
        db.upgrade(database_url)
        assert stored(engine) == expected
        assert db.drift(database_url) == []
    finally:
        engine.dispose()


def assert_weekly_failures_count_the_tasks(engine: Engine) -> None:
    """failure_rate_by_week (its counts read from the totals) counts the finished tasks of
    each ISO week, ZVM and type as the tasks themselves give them (counted here in Python)."""
    t = schema.tasks
    with engine.connect() as conn:
        tasks = conn.execute(sa.select(t.c.started_at, t.c.zvm, t.c.type, t.c.state)).all()
        sql = query_sql("failure_rate_by_week", dialect=engine.dialect.name)
        rows = conn.execute(sa.text(sql), {"days": 3650, "zvm": ""}).all()
    expected: dict[tuple[str, str, str, str], list[int]] = {}
    for started_at, zvm, type_, state in tasks:
        if state not in (4, 5, 6):
            continue
        day = task_day(as_utc(started_at))
        year, week, _ = day.isocalendar()
        monday = day - timedelta(days=day.weekday())
        counts = expected.setdefault((str(monday), f"{year}-W{week:02d}", zvm, type_), [0, 0])
        counts[0] += 1
        counts[1] += state == 4
    got = {
        (str(r.week_start), r.iso_week, r.zvm, r.type): [int(r.finished_tasks), int(r.failed_tasks)]
        for r in rows
    }
    assert len(expected) > 10 and any(v[1] for v in expected.values())
    assert got == expected


def assert_initiators_count_the_tasks(engine: Engine) -> None:
    """tasks_by_initiator (whole days from the totals, the first day's part from tasks)
    counts the tasks started since its look-back's start, which falls inside a day."""
    t = schema.tasks
    dialect = engine.dialect.name
    sql = query_sql("tasks_by_initiator", dialect=dialect)
    cut_a_day = False
    for days in (1, 2):
        since_sql = render(f'SELECT ${{days_ago("{days}")}}', dialect=dialect)
        with engine.connect() as conn:
            since = as_utc(conn.execute(sa.text(since_sql)).scalar_one())
            tasks = conn.execute(
                sa.select(t.c.started_at, t.c.initiated_by, t.c.type, t.c.state)
            ).all()
            rows = conn.execute(sa.text(sql), {"days": days, "zvm": ""}).all()
        expected: dict[tuple[str | None, str], list[int]] = {}
        for started_at, initiated_by, type_, state in tasks:
            started_at = as_utc(started_at)
            if started_at.date() == since.date() and started_at < since:
                cut_a_day = True  # the first day has tasks the look-back leaves out
            if started_at >= since:
                counts = expected.setdefault((initiated_by, type_), [0, 0])
                counts[0] += 1
                counts[1] += state == 4
        got = {(r.initiated_by, r.type): [int(r.tasks), int(r.failed_tasks)] for r in rows}
        assert got == expected, days
    assert cut_a_day, "the look-backs start where no task of their day is left out"


def assert_dr_evidence_counts_the_tests(engine: Engine) -> None:
    """dr_test_evidence (its tests from vpg_daily_tests, the first day's part from tasks)
    gives each VPG its last successful test ever and its tests and failed tests since its
    look-back's start, which falls inside a day, as the tasks give them (counted here)."""
    t, tv = schema.tasks, schema.task_vpgs
    dialect = engine.dialect.name
    sql = query_sql("dr_test_evidence", dialect=dialect)
    cut_a_day = False
    for days in (1, 2):
        since_sql = render(f'SELECT ${{days_ago("{days}")}}', dialect=dialect)
        with engine.connect() as conn:
            since = as_utc(conn.execute(sa.text(since_sql)).scalar_one())
            tests = conn.execute(
                sa.select(tv.c.vpg_identifier, t.c.task_identifier, t.c.state, t.c.started_at)
                .join(t, t.c.task_identifier == tv.c.task_identifier)
                .where(sa.func.lower(t.c.type) == "failovertest")
            ).all()
            rows = conn.execute(sa.text(sql), {"days": days, "zvm": ""}).all()
        expected: dict[str, list[Any]] = {}
        for vpg, task_identifier, state, started_at in tests:
            started_at = as_utc(started_at)
            found = expected.setdefault(vpg, [0, 0, None])
            if started_at.date() == since.date() and started_at < since:
                cut_a_day = True  # the first day has tests the look-back leaves out
            if started_at >= since:
                found[0] += 1
                found[1] += state == 4
            if state == 6 and (found[2] is None or (started_at, task_identifier) > found[2]):
                found[2] = (started_at, task_identifier)
        got: dict[str, list[Any]] = {
            r.vpg_identifier: [
                int(r.tests_in_window),
                int(r.failed_tests_in_window),
                None
                if r.last_success_task_identifier is None
                else (as_utc(r.last_success_started_at), r.last_success_task_identifier),
            ]
            for r in rows
        }
        assert len(rows) == len(got) and len(got) > 1
        assert sum(v[0] for v in got.values()) > 0 and any(v[1] != 0 for v in got.values())
        assert got == {vpg: expected.get(vpg, [0, 0, None]) for vpg in got}, days
    assert cut_a_day, "the look-backs start where no test of their day is left out"


def assert_failure_rates_count_the_tasks(engine: Engine) -> None:
    """failure_rate_by_type_and_zvm (read from the totals) counts the finished tasks and
    failures of each ZVM and type, and their first and last failure, as the tasks give
    them (counted here in Python)."""
    t = schema.tasks
    with engine.connect() as conn:
        tasks = conn.execute(sa.select(t.c.zvm, t.c.type, t.c.state, t.c.started_at)).all()
        sql = query_sql("failure_rate_by_type_and_zvm", dialect=engine.dialect.name)
        rows = conn.execute(sa.text(sql)).all()
    expected: dict[tuple[str, str], list[Any]] = {}
    for zvm, type_, state, started_at in tasks:
        if state not in (4, 5, 6):
            continue
        found = expected.setdefault((zvm, type_), [0, 0, None, None])
        found[0] += 1
        if state == 4:
            started_at = as_utc(started_at)
            found[1] += 1
            found[2] = min(found[2] or started_at, started_at)
            found[3] = max(found[3] or started_at, started_at)
    got = {
        (r.zvm, r.type): [
            int(r.finished_tasks),
            int(r.failed_tasks),
            None if r.first_failure_at is None else as_utc(r.first_failure_at),
            None if r.last_failure_at is None else as_utc(r.last_failure_at),
        ]
        for r in rows
    }
    assert len(expected) > 10 and any(v[1] > 1 for v in expected.values())
    assert got == expected
    for r in rows:
        assert float(r.failure_rate) == pytest.approx(
            round(int(r.failed_tasks) / int(r.finished_tasks), 4), abs=1e-9
        )
    rates = [(float(r.failure_rate), int(r.failed_tasks)) for r in rows]
    assert rates == sorted(rates, reverse=True)
