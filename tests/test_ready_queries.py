"""Every ready query of sql/queries/, on every database, against the known scenario.

The expected answers are worked out from the scenario's definition (tests/analyst.py), by
hand or with plain Python over its task list, never by running SQL.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.errors import ExportError
from etl.queries import bind_parameters, read_queries, read_query
from etl.warehouse.sqlfiles import query_names, query_sql
from tests.analyst import (
    DAY,
    FAILOVER_TESTS,
    INSTALL_DURATIONS,
    NOW,
    RECOVERY_OPERATIONS,
    RUN_DAY,
    TASKS,
    WEEK_A,
    WEEK_B,
    as_utc,
    load_scenario,
    run_query,
)

NEW_QUERIES = {
    "completeness",
    "dr_test_evidence",
    "duration_percentiles",
    "etl_health_daily",
    "failure_rate_by_week",
    "rto_per_vpg",
    "slowest_tasks",
    "tasks_by_initiator",
    "tasks_per_day",
    "vpg_activity",
    "waiting_time",
}


@pytest.fixture
def scenario(warehouse: Engine) -> Engine:
    load_scenario(warehouse)
    return warehouse


def test_every_query_declares_what_it_binds() -> None:
    assert set(query_names()) >= NEW_QUERIES
    for query in read_queries():
        assert query.question.endswith("?"), query.name
        bound = set(sa.text(query_sql(query.name, dialect="sqlite")).compile().params)
        assert bound == set(query.parameters), query.name
        if query.name in NEW_QUERIES:
            assert query.grain, query.name


def test_parameters_are_checked() -> None:
    query = read_query("dr_test_evidence")
    assert bind_parameters(query, {}) == {"days": 90, "zvm": ""}
    assert bind_parameters(query, {"days": "30", "zvm": "nyc"}) == {"days": 30, "zvm": "nyc"}
    with pytest.raises(ExportError, match=r"no parameter dayz; it takes: days \(default 90\)"):
        bind_parameters(query, {"dayz": "3"})
    with pytest.raises(ExportError, match="parameter days takes a whole number >= 0, not '-3'"):
        bind_parameters(query, {"days": "-3"})


def test_dr_test_evidence(scenario: Engine) -> None:
    rows = run_query(scenario, "dr_test_evidence")
    # The deleted vpg-d is left out; never tested first, then the oldest last success.
    assert [r.vpg_identifier for r in rows] == ["vpg-e", "vpg-b", "vpg-c", "vpg-a"]
    by_vpg = {r.vpg_identifier: r for r in rows}
    a, b, c, e = (by_vpg[k] for k in ("vpg-a", "vpg-b", "vpg-c", "vpg-e"))
    assert (a.vpg_name, a.priority_name, a.zvm) == ("Finance ERP", "High", "nyc")
    assert (a.protected_site_name, a.recovery_site_name) == ("New York DC", "London – Docklands")
    assert (b.protected_site_name, b.recovery_site_name) == ("New York DC", None)  # never listed
    assert (c.protected_site_name, c.recovery_site_name) == (None, None)
    assert (e.protected_site_name, e.recovery_site_name) == ("London – Docklands", "New York DC")
    assert (a.tested_in_window, a.tests_in_window, a.failed_tests_in_window) == (1, 2, 0)
    assert a.last_success_task_identifier == "ft1.s"
    assert a.last_success_duration_seconds == pytest.approx(120.0)
    assert a.last_success_initiated_by == "José Álvarez"
    assert as_utc(a.last_success_started_at) == NOW - timedelta(days=10)
    assert float(a.days_since_last_success) == pytest.approx(10, abs=0.01)
    assert b.vpg_name == "Médical Records ✓"
    assert (b.tested_in_window, b.tests_in_window, b.failed_tests_in_window) == (0, 1, 1)
    assert as_utc(b.last_success_started_at) == NOW - timedelta(days=120)
    assert (c.vpg_name, c.zvm, c.tested_in_window) == (None, "lon", 1)  # zvm from its tasks
    assert e.last_success_task_identifier is None and e.tested_in_window == 0
    # The RTO the Recovery Report measured where the test's operation is known (ft1: 75 s
    # of a 120 s task), else the task's duration, saying which.
    rto = {r.vpg_identifier: (r.last_success_rto_seconds, r.last_success_rto_source) for r in rows}
    assert rto == {
        "vpg-a": (75.0, "recovery_report"),
        "vpg-b": (200.0, "task_duration"),
        "vpg-c": (90.0, "task_duration"),
        "vpg-e": (None, None),
    }
    longer = {
        r.vpg_identifier: r.tested_in_window
        for r in run_query(scenario, "dr_test_evidence", days=200)
    }
    assert longer == {"vpg-a": 1, "vpg-b": 1, "vpg-c": 1, "vpg-e": 0}
    lon = run_query(scenario, "dr_test_evidence", zvm="lon")
    assert [r.vpg_identifier for r in lon] == ["vpg-e", "vpg-c"]


def test_failover_tests_this_quarter_names_vpgs_and_sites(scenario: Engine) -> None:
    rows = run_query(scenario, "failover_tests_this_quarter")
    # Every VPG still listed (vpg-c, known only from tasks, too; deleted vpg-d left out);
    # vpg-e, never tested, comes first whatever the date within the quarter.
    assert rows[0].vpg_identifier == "vpg-e" and rows[0].tests == 0
    by_vpg = {r.vpg_identifier: r for r in rows}
    assert set(by_vpg) == {"vpg-a", "vpg-b", "vpg-c", "vpg-e"}
    names = {
        key: (r.vpg_name, r.protected_site_name, r.recovery_site_name) for key, r in by_vpg.items()
    }
    assert names == {
        "vpg-a": ("Finance ERP", "New York DC", "London – Docklands"),
        "vpg-b": ("Médical Records ✓", "New York DC", None),
        "vpg-c": (None, None, None),
        "vpg-e": ("Never Tested", "London – Docklands", "New York DC"),
    }
    # The quarter's successful tests: their report RTO where an operation is linked to the
    # task, else the task's duration, worked out from the scenario's lists.
    quarter = NOW.replace(month=(NOW.month - 1) // 3 * 3 + 1, day=1, hour=0, minute=0, second=0)
    reported = {op.task: op.rto for op in RECOVERY_OPERATIONS if op.task}
    for key, row in by_vpg.items():
        tests = [
            t for t in FAILOVER_TESTS if key in t.vpgs and t.state == 6 and t.started_at >= quarter
        ]
        values = [reported.get(t.identifier, t.duration or 0.0) for t in tests]
        linked = sum(t.identifier in reported for t in tests)
        source = (
            None
            if not tests
            else "recovery_report"
            if linked == len(tests)
            else "task_duration"
            if linked == 0
            else "mixed"
        )
        assert (row.max_rto_seconds, row.rto_source) == (max(values, default=None), source), key


def test_failure_rate_by_week(scenario: Engine) -> None:
    rows = run_query(scenario, "failure_rate_by_week")
    moves = {str(r.week_start): r for r in rows if (r.zvm, r.type) == ("nyc", "Move")}
    week_a, week_b = WEEK_A.date().isoformat(), WEEK_B.date().isoformat()
    assert set(moves) == {week_a, week_b}
    a = moves[week_a]
    assert (a.finished_tasks, a.failed_tasks, float(a.failure_rate)) == (4, 3, 0.75)
    assert (a.reason_1, a.reason_1_failures, a.reason_2, a.reason_2_failures) == (
        "Timeout",
        2,
        "Disk full",
        1,
    )
    assert a.reason_3 is None
    iso_year, iso_week, _ = WEEK_A.isocalendar()
    assert a.iso_week == f"{iso_year}-W{iso_week:02d}"
    b = moves[week_b]
    assert (b.finished_tasks, b.failed_tasks, float(b.failure_rate), b.reason_1) == (2, 0, 0, None)
    weeks = [str(r.week_start) for r in rows]
    assert weeks == sorted(weeks, reverse=True)
    assert all(r.zvm == "lon" for r in run_query(scenario, "failure_rate_by_week", zvm="lon"))
    # Whole weeks back to the one holding the day `days` ago: week B's Monday, not week A.
    days = (NOW.date() - WEEK_B.date()).days
    short = {
        (str(r.week_start), r.type) for r in run_query(scenario, "failure_rate_by_week", days=days)
    }
    assert (week_b, "Move") in short and (week_a, "Move") not in short


def test_duration_percentiles_are_percentile_cont(scenario: Engine) -> None:
    rows = {r.type: r for r in run_query(scenario, "duration_percentiles")}
    install = rows["InstallVra"]
    assert install.tasks == len(INSTALL_DURATIONS)
    expected = np.percentile(INSTALL_DURATIONS, [25, 50, 75, 90, 95, 99])  # linear = cont
    got = [
        install.p25_seconds,
        install.median_seconds,
        install.p75_seconds,
        install.p90_seconds,
        install.p95_seconds,
        install.p99_seconds,
    ]
    assert [float(v) for v in got] == pytest.approx(list(expected))
    assert (float(install.min_seconds), float(install.max_seconds)) == (10.0, 100.0)
    single = rows["MoveCommit"]  # one task: every percentile is its duration
    assert float(single.median_seconds) == float(single.p99_seconds) == 5000.0
    native = _native_percentiles(scenario, "InstallVra")
    if native is not None:  # the database's own percentile_cont agrees
        assert [float(v) for v in got] == pytest.approx(native)
    assert "InstallVra" not in {
        r.type for r in run_query(scenario, "duration_percentiles", zvm="nyc")
    }


def test_rto_per_vpg(scenario: Engine) -> None:
    rows = run_query(scenario, "rto_per_vpg")
    names = {"vpg-a": "Finance ERP"}  # the VPG's last known name, not the reported one
    groups: dict[tuple[str, str | None, str, str, str], list[float]] = {}
    for op in RECOVERY_OPERATIONS:
        if op.status == "Success":
            name = names.get(op.vpg or "", op.vpg_name)
            month = op.started_at.strftime("%Y-%m")
            groups.setdefault((op.zvm, op.vpg, name, op.type, month), []).append(op.rto)
    got = {(r.zvm, r.vpg_identifier, r.vpg_name, r.recovery_type, r.month): r for r in rows}
    assert set(got) == set(groups)
    for group, values in groups.items():
        row = got[group]
        expected = [len(values), min(values), *np.percentile(values, [50, 90]), max(values)]
        found = [row.operations, row.min_rto_seconds, row.p50_rto_seconds, row.p90_rto_seconds]
        assert [float(v) for v in (*found, row.max_rto_seconds)] == pytest.approx(expected), group
        assert (row.rto_target_seconds, row.operations_over_target) == (None, None)
    # vpg-a's three tests within a minute of ft1: 45, 75 and 135 s (one month unless those
    # two minutes straddle the turn of a month, when the loop above checked them apart).
    months = {(NOW - 10 * DAY + timedelta(minutes=m)).strftime("%Y-%m") for m in (-1, 1)}
    if len(months) == 1:
        day = got[("nyc", "vpg-a", "Finance ERP", "FailoverTest", months.pop())]
        p50, p90 = float(day.p50_rto_seconds), float(day.p90_rto_seconds)
        assert day.operations == 3 and [p50, p90] == pytest.approx([75.0, 123.0])
    # Named VPGs first, the one that could not be found ("Gone VPG", lon) after them.
    assert [r.vpg_identifier for r in rows][-1] is None
    tests = run_query(scenario, "rto_per_vpg", recovery_type="failovertest", target_seconds=100)
    assert {r.recovery_type for r in tests} == {"FailoverTest"}
    over = {r.month: (r.rto_target_seconds, r.operations_over_target) for r in tests}
    assert over[(NOW - 10 * DAY + timedelta(minutes=1)).strftime("%Y-%m")] == (100, 1)  # 135 s
    assert [r.zvm for r in run_query(scenario, "rto_per_vpg", zvm="lon")] == ["lon"]
    assert {r.month for r in run_query(scenario, "rto_per_vpg", days=30)} == {
        op.started_at.strftime("%Y-%m")
        for op in RECOVERY_OPERATIONS
        if op.status == "Success" and op.started_at >= NOW - 30 * DAY
    }


def _native_percentiles(engine: Engine, task_type: str) -> list[float] | None:
    fractions = (0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
    if engine.dialect.name == "postgresql":
        columns = ", ".join(
            f"percentile_cont({f}) WITHIN GROUP (ORDER BY duration_seconds)" for f in fractions
        )
        sql = f"SELECT {columns} FROM tasks WHERE type = :t AND state = 6"
    elif engine.dialect.name in ("mysql", "mariadb"):
        columns = ", ".join(
            f"PERCENTILE_CONT({f}) WITHIN GROUP (ORDER BY duration_seconds) OVER ()"
            for f in fractions
        )
        sql = f"SELECT DISTINCT {columns} FROM tasks WHERE type = :t AND state = 6"
    else:
        return None
    with engine.connect() as connection:
        row = connection.execute(sa.text(sql), {"t": task_type}).one()
    return [float(v) for v in row]


def test_slowest_tasks(scenario: Engine) -> None:
    rows = run_query(scenario, "slowest_tasks", limit=3)
    assert len(rows) == 3
    first = rows[0]
    assert (first.task_identifier, first.vpg_names, first.initiated_by) == (
        "slow.s",
        "Finance ERP",
        "José Álvarez",
    )
    assert float(first.duration_seconds) == 5000.0 and first.state_name == "Completed"
    assert float(first.type_median_seconds) == 5000.0
    durations = [float(r.duration_seconds) for r in rows]
    recent = sorted(
        (
            t.duration
            for t in TASKS
            if t.duration is not None and t.started_at >= NOW - timedelta(days=30)
        ),
        reverse=True,
    )
    assert durations == recent[:3]
    unnamed = [
        r for r in run_query(scenario, "slowest_tasks", limit=100) if r.task_identifier == "ft5.s"
    ]
    assert unnamed[0].vpg_names == "vpg-c"  # no name known: the identifier


def test_tasks_by_initiator(scenario: Engine) -> None:
    rows = run_query(scenario, "tasks_by_initiator", days=400)
    expected = Counter((t.initiated_by, t.type) for t in TASKS)
    assert {(r.initiated_by, r.type): r.tasks for r in rows} == dict(expected)
    totals = Counter(t.initiated_by for t in TASKS)
    assert all(r.initiator_tasks == totals[r.initiated_by] for r in rows)
    assert rows[0].initiated_by == totals.most_common(1)[0][0]
    failed = Counter((t.initiated_by, t.type) for t in TASKS if t.state == 4)
    assert {(r.initiated_by, r.type): r.failed_tasks for r in rows if r.failed_tasks} == dict(
        failed
    )


def test_tasks_per_day(scenario: Engine) -> None:
    """The rows of v_task_daily for the days of the look-back, read from the totals."""
    first_day = (NOW - 30 * DAY).date()
    recent = [t for t in TASKS if t.started_at.date() >= first_day]
    assert recent and len(recent) < len(TASKS)  # the look-back leaves some out
    rows = run_query(scenario, "tasks_per_day")
    keys = [(str(r.day), r.zvm, r.type, r.state) for r in rows]
    assert keys == sorted(keys)
    groups: dict[tuple[str, str, str, int], list[float | None]] = {}
    for t in recent:
        groups.setdefault((t.started_at.date().isoformat(), t.zvm, t.type, t.state), []).append(
            t.duration
        )
    assert {k: int(r.tasks) for k, r in zip(keys, rows, strict=True)} == {
        k: len(v) for k, v in groups.items()
    }
    for key, row in zip(keys, rows, strict=True):
        durations = [d for d in groups[key] if d is not None]
        assert int(row.failures) == (len(groups[key]) if key[3] == 4 else 0)
        if durations:
            assert float(row.avg_duration_seconds) == pytest.approx(np.mean(durations))
            assert float(row.max_duration_seconds) == pytest.approx(max(durations))
        else:
            assert row.avg_duration_seconds is None and row.max_duration_seconds is None
    lon = run_query(scenario, "tasks_per_day", zvm="lon", days=400)
    assert sum(int(r.tasks) for r in lon) == sum(1 for t in TASKS if t.zvm == "lon")
    assert {r.zvm for r in lon} == {"lon"}


def test_waiting_time(scenario: Engine) -> None:
    rows = run_query(scenario, "waiting_time")
    assert [r.task_identifier for r in rows] == ["w1.s", "w2.s"]
    w1, w2 = rows
    assert float(w1.waiting_for_user_input_seconds) == pytest.approx(1200, abs=0.01)
    assert float(w1.paused_seconds) == pytest.approx(600, abs=0.01)
    assert float(w1.total_waiting_seconds) == pytest.approx(1800, abs=0.01)
    assert (w1.still_waiting, w1.state_name, w1.vpg_names) == (0, "Completed", "Finance ERP")
    assert float(w2.waiting_for_user_input_seconds) == pytest.approx(300, abs=0.01)
    assert (w2.still_waiting, w2.state_name) == (1, "WaitingForUserInput")
    assert [r.task_identifier for r in run_query(scenario, "waiting_time", zvm="lon")] == ["w2.s"]


def test_vpg_activity(scenario: Engine) -> None:
    rows = run_query(scenario, "vpg_activity")
    expected = Counter((v, t.type) for t in TASKS for v in t.vpgs)
    got = {(r.vpg_identifier, r.type): r.tasks for r in rows if r.type is not None}
    assert got == dict(expected)
    (idle,) = [r for r in rows if r.vpg_identifier == "vpg-e"]
    assert (idle.type, idle.tasks, idle.vpg_tasks, idle.vpg_last_activity_at) == (None, 0, 0, None)
    assert rows[-1].vpg_identifier == "vpg-e"  # no activity: last
    a_rows = [r for r in rows if r.vpg_identifier == "vpg-a"]
    assert {r.vpg_tasks for r in a_rows} == {sum(1 for t in TASKS if "vpg-a" in t.vpgs)}
    assert as_utc(a_rows[0].vpg_last_activity_at) == max(
        t.started_at for t in TASKS if "vpg-a" in t.vpgs
    )
    (deleted,) = [r for r in rows if r.vpg_identifier == "vpg-d"]
    assert deleted.vpg_unlisted_at is not None and deleted.vpg_name == "Old CRM"
    assert rows[0].vpg_identifier == max((t.started_at, v) for t in TASKS for v in t.vpgs)[1]


def test_etl_health_daily(scenario: Engine) -> None:
    rows = run_query(scenario, "etl_health_daily")
    assert [(str(r.day), r.zvm) for r in rows] == [
        ((RUN_DAY + timedelta(days=1)).date().isoformat(), "nyc"),
        (RUN_DAY.date().isoformat(), "nyc"),
    ]
    later, first = rows
    assert (first.runs, first.succeeded_runs, first.failed_runs) == (3, 2, 1)
    assert (first.new_rejected_records, first.rejected_in_passes) == (2, 2)
    assert float(first.max_lag_seconds) == pytest.approx(600)  # 10:01 -> 10:11
    assert as_utc(first.last_success_at) == RUN_DAY + timedelta(minutes=11)
    assert (later.runs, later.failed_runs, later.new_rejected_records) == (1, 0, 0)
    assert float(later.max_lag_seconds) == pytest.approx((23 * 60 - 10) * 60)
    assert run_query(scenario, "etl_health_daily", zvm="lon") == []


def test_completeness(scenario: Engine) -> None:
    lon, nyc = run_query(scenario, "completeness")
    assert (nyc.zvm, nyc.last_status, nyc.last_days_differing) == ("nyc", "incomplete", 1)
    assert nyc.last_missing_in_warehouse == 3 and nyc.last_error is None
    assert as_utc(nyc.last_verified_at) == NOW - timedelta(hours=6)
    assert as_utc(nyc.proven_complete_at) == NOW - timedelta(hours=30)
    assert as_utc(nyc.proven_complete_since) == NOW - timedelta(days=14)
    assert as_utc(nyc.proven_complete_until) == NOW - timedelta(hours=31)
    since_scenario = (datetime.now(UTC) - NOW).total_seconds()  # "now" is the database's
    assert (
        30 * 3600 - 1 <= float(nyc.seconds_since_proven_complete) <= 30 * 3600 + since_scenario + 1
    )
    assert (lon.zvm, lon.last_status, lon.proven_complete_at) == ("lon", "failed", None)
    assert "503" in lon.last_error and lon.seconds_since_proven_complete is None
    assert [r.zvm for r in run_query(scenario, "completeness", zvm="nyc")] == ["nyc"]
