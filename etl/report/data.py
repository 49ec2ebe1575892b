"""What the report shows, read from the warehouse's views and ready queries.

Every figure on the page comes from a view or a ready query, read through the same code as
``zvm-etl export`` (:func:`etl.export.resolve`), so what the page shows is what an export
of the same name gives, with the same filters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from etl.export import read_frame, resolve
from etl.warehouse.engine import connect

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DR_TEST_DAYS", "ReportData", "read_report_data"]

DR_TEST_DAYS = 90
"""A VPG whose last successful failover test is older than this is a gap on the page."""


@dataclass(frozen=True)
class ReportData:
    """The frames behind each section of the report, for one period and ZVM filter."""

    since: datetime
    generated_at: datetime
    zvm: str | None
    days: int
    daily: pd.DataFrame  # tasks_per_day (v_task_daily's rows, from task_daily_totals)
    weekly_failures: pd.DataFrame  # failure_rate_by_week
    durations: pd.DataFrame  # duration_percentiles
    dr_tests: pd.DataFrame  # dr_test_evidence (DR_TEST_DAYS)
    initiators: pd.DataFrame  # tasks_by_initiator
    health: pd.DataFrame  # v_etl_health
    health_daily: pd.DataFrame  # etl_health_daily
    completeness: pd.DataFrame  # completeness
    slowest: pd.DataFrame  # slowest_tasks


def read_report_data(
    engine: Engine, *, since: datetime, zvm: str | None = None, now: datetime | None = None
) -> ReportData:
    """Read every section's rows: the period is ``since`` to now (the database's "now" for
    the queries, whose look-back is the period rounded up to whole days)."""
    generated_at = now or datetime.now(UTC)
    days = max(1, math.ceil((generated_at - since).total_seconds() / 86400))
    period = {"days": days}
    with connect(engine) as connection:

        def query(name: str, **params: int) -> pd.DataFrame:
            return read_frame(connection, resolve(connection, name, zvm=zvm, params=params))

        def view(name: str) -> pd.DataFrame:
            return read_frame(connection, resolve(connection, name, zvm=zvm))

        return ReportData(
            since=since,
            generated_at=generated_at,
            zvm=zvm,
            days=days,
            daily=query("tasks_per_day", **period),
            weekly_failures=query("failure_rate_by_week", **period),
            durations=query("duration_percentiles", **period),
            dr_tests=query("dr_test_evidence", days=DR_TEST_DAYS),
            initiators=query("tasks_by_initiator", **period),
            health=view("v_etl_health"),
            health_daily=query("etl_health_daily", **period),
            completeness=query("completeness"),
            slowest=query("slowest_tasks", **period, limit=10),
        )
