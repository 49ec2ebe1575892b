"""Keeping ``task_daily_totals`` and ``vpg_daily_tests`` equal to ``tasks``: recompute the
days a pass wrote into.

``task_daily_totals`` holds, per (zvm, UTC day of started_at, type, state, initiated_by),
the count and durations of the tasks: what a dashboard of a month or a year reads instead
of every task (a month of a busy site is close to a million rows; its totals, a few
thousand). It is a summary of ``tasks``, never a source, so it must never disagree with it:

- the loader notes each (zvm, day) it inserts a task into, or changes a task in (both the
  day before and the day after the change, under the ZVM the stored row names), with
  :func:`task_day`;
- before the transaction commits, :func:`save_daily_totals` deletes those days' rows and
  writes them again with one ``INSERT ... SELECT ... GROUP BY`` over ``tasks`` per run of
  consecutive days (an index range of ``ix_tasks_zvm_started_at``).

``vpg_daily_tests`` holds, per (zvm, VPG, UTC day), the failover tests that name the VPG
(``task_vpgs``): what the DR-test evidence reads instead of every test of the history. It
is recounted with the totals, for the same days, the same way (a task's links are written
with it, so a changed link is a changed task).

The rows therefore become visible with the tasks they count, in the same commit, and a
failed pass rolls both back. Recomputing (rather than adding the new tasks' counts) keeps
the totals right whatever changed: a task that moved from running to failed leaves one
row and joins another. Two passes that recompute the same ZVM's days (a task two ZVMs
both report) take turns: each first locks that ZVM's ``zvms`` row (PostgreSQL, MariaDB;
SQLite has one writer at a time), so the second recounts after the first has committed.

Migrations 0008 and 0009 filled the tables from the tasks already stored when they were
created.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    Select,
    case,
    delete,
    func,
    literal_column,
    select,
)

from etl.warehouse import schema
from etl.warehouse.sqlfiles import render

__all__ = ["DayKeys", "exact_sum", "save_daily_totals", "task_day"]

DayKeys = dict[str, set[date]]
"""The days to recompute, by ZVM (``tasks.zvm``)."""

_TOTALS = (
    "zvm",
    "day",
    "type",
    "state",
    "initiated_by",
    "tasks",
    "completed_tasks",
    "duration_seconds_sum",
    "duration_seconds_max",
    "first_started_at",
    "last_started_at",
)


def task_day(started_at: datetime) -> date:
    """The UTC day a task started on (the ``day`` of its ``task_daily_totals`` row)."""
    return started_at.astimezone(UTC).date()


def _day_runs(days: Iterable[date]) -> Iterator[tuple[date, date]]:
    """Consecutive days as (first, last) pairs, in order."""
    run: list[date] = []
    for day in sorted(set(days)):
        if run and day - run[-1] != timedelta(days=1):
            yield run[0], run[-1]
            run = []
        run.append(day)
    if run:
        yield run[0], run[-1]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def exact_sum(seconds: ColumnElement[Any]) -> ColumnElement[Any]:
    """The sum of durations in seconds as whole milliseconds, then in seconds: the same
    value whatever order the database adds the rows in.

    ``duration_seconds`` is a double whose value is a number of milliseconds (the ZVM's
    dates have that precision), and a plain ``SUM`` of doubles depends on the order of the
    rows (PostgreSQL adds them in the order it reads them, which changes as rows move), so
    two recounts of the same tasks could differ in the last digits. Summing the rounded
    milliseconds is exact (whole numbers below 2**53 are exact doubles), so a recount gives
    the same value as the first count, and that value is the nearest double to the true sum.
    """
    return func.sum(func.round(seconds * 1000)) / 1000


def _totals_select(conn: Connection, zvm: str, first: date, last: date) -> Select[Any]:
    tasks = schema.tasks
    day = literal_column(
        render('${utc_day("tasks.started_at")}', dialect=conn.dialect.name), type_=Date()
    )
    columns = (tasks.c.zvm, day, tasks.c.type, tasks.c.state, tasks.c.initiated_by)
    return (
        select(
            *columns,
            func.count(),
            func.count(tasks.c.duration_seconds),
            exact_sum(tasks.c.duration_seconds),
            func.max(tasks.c.duration_seconds),
            func.min(tasks.c.started_at),
            func.max(tasks.c.started_at),
        )
        .where(
            tasks.c.zvm == zvm,
            tasks.c.started_at >= _midnight(first),
            tasks.c.started_at < _midnight(last + timedelta(days=1)),
        )
        .group_by(*columns)
    )


_TESTS = (
    "zvm",
    "day",
    "vpg_identifier",
    "tests",
    "succeeded_tests",
    "failed_tests",
    "last_started_at",
    "last_success_started_at",
    "last_success_completed_at",
)


def _failover_test_types() -> Select[Any]:
    """The spellings of FailOverTest in ``task_types`` (casing has varied between ZVM
    versions): ``tasks.type IN`` this finds the tests through the index on
    (type, state, started_at)."""
    task_types = schema.task_types
    return select(task_types.c.name).where(func.lower(task_types.c.name) == "failovertest")


def _tests_select(conn: Connection, zvm: str, first: date, last: date) -> Select[Any]:
    tasks, task_vpgs = schema.tasks, schema.task_vpgs
    day = literal_column(
        render('${utc_day("tasks.started_at")}', dialect=conn.dialect.name), type_=Date()
    )
    succeeded = tasks.c.state == 6
    columns = (tasks.c.zvm, day, task_vpgs.c.vpg_identifier)
    return (
        select(
            *columns,
            func.count(),
            func.count(case((succeeded, 1))),
            func.count(case((tasks.c.state == 4, 1))),
            func.max(tasks.c.started_at),
            func.max(case((succeeded, tasks.c.started_at))),
            func.max(case((succeeded, tasks.c.completed_at))),
        )
        .select_from(tasks.join(task_vpgs, task_vpgs.c.task_identifier == tasks.c.task_identifier))
        .where(
            tasks.c.zvm == zvm,
            tasks.c.started_at >= _midnight(first),
            tasks.c.started_at < _midnight(last + timedelta(days=1)),
            tasks.c.type.in_(_failover_test_types()),
        )
        .group_by(*columns)
    )


def _lock_zvms(conn: Connection, zvms: Iterable[str]) -> None:
    """Lock the ``zvms`` rows of the ZVMs whose days are recomputed, in name order."""
    if conn.dialect.name == "sqlite":
        return
    names = sorted(zvms)
    if names:
        zvm_table = schema.zvms
        conn.execute(
            select(zvm_table.c.name)
            .where(zvm_table.c.name.in_(names))
            .order_by(zvm_table.c.name)
            .with_for_update()
        ).all()


def save_daily_totals(conn: Connection, days: Mapping[str, set[date]]) -> None:
    """Write again the ``task_daily_totals`` and ``vpg_daily_tests`` rows of ``days`` (by
    ZVM) from ``tasks`` and ``task_vpgs``, in the caller's transaction (see the module
    docstring). Call it after the tasks' links are written."""
    days = {zvm: set(values) for zvm, values in days.items() if values}
    if not days:
        return
    _lock_zvms(conn, days)
    for zvm in sorted(days):
        for first, last in _day_runs(days[zvm]):
            for table, columns, make_select in (
                (schema.task_daily_totals, _TOTALS, _totals_select),
                (schema.vpg_daily_tests, _TESTS, _tests_select),
            ):
                conn.execute(
                    delete(table).where(table.c.zvm == zvm, table.c.day.between(first, last))
                )
                conn.execute(
                    table.insert().from_select(list(columns), make_select(conn, zvm, first, last))
                )
