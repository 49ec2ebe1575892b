"""What the dashboards show: five dashboards of panels, each a SQL query on the warehouse.

A panel's SQL is written once for PostgreSQL and MariaDB/MySQL. It is a template in three
layers, expanded in this order:

1. the warehouse's own per-database macros (``${seconds_since("t.started_at")}``, see
   :mod:`etl.warehouse.sqlfiles`), expanded here by :func:`panel_sql` for one database;
2. ``READY``, replaced by :func:`panel_sql` with a ready query of ``sql/queries/``
   (:attr:`Panel.ready`) as that database runs it, its parameters bound to the dashboard's
   variables: ``:days`` becomes ``$days`` and ``:zvm`` becomes ``''`` (every ZVM; the
   panel filters on ``$zvm`` around it, so several ZVMs can be chosen);
3. Grafana's macros (``$__timeFilter(col)``, ``$__timeGroupAlias(col,'1d')``) and the
   dashboard's variables (``$zvm``, ``$vpg``, ``$days``), left for Grafana to expand when
   the panel runs. ``$zvm`` and ``$vpg`` are multi-value variables, which Grafana's SQL data
   sources write as a quoted, comma-separated list: always used as ``IN ($zvm)``.

Panels read views, ready queries and the summary table ``task_daily_totals``, never the
raw payload. ORDER BY is always on the
outside: MariaDB ignores the order of a derived table. A time-series panel returns a
``time`` column (Grafana's "Time series" format needs one) and is ordered by it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from etl.warehouse.sqlfiles import query_sql, render

__all__ = [
    "DASHBOARDS",
    "DIALECTS",
    "VARIABLES",
    "Dashboard",
    "Panel",
    "Variable",
    "panel_sql",
    "ready_sql",
    "variable_sql",
]

DIALECTS = ("postgresql", "mysql")
"""The databases the dashboards are generated for (MariaDB uses ``mysql``)."""

Kind = Literal["table", "timeseries", "stat", "barchart"]
READY = "READY"
_PARAMETER = re.compile(r"(?<![:\w]):([a-z_]+)\b")
_BINDINGS = {"days": "$days", "zvm": "''"}


@dataclass(frozen=True)
class Variable:
    """A dashboard variable: a query on the warehouse (``query``) or fixed ``options``."""

    name: str
    label: str
    description: str
    query: str = ""
    options: tuple[str, ...] = ()
    default: str = ""

    @property
    def multi(self) -> bool:
        """Query variables choose any number of values ("All" by default)."""
        return bool(self.query)


@dataclass(frozen=True)
class Panel:
    """One chart or table: its SQL template (see the module docstring) and the columns its
    visualization needs (a table's columns, a chart's axes)."""

    title: str
    kind: Kind
    sql: str
    columns: tuple[str, ...]
    description: str
    ready: str | None = None
    width: int = 24
    height: int = 8

    @property
    def time_series(self) -> bool:
        return self.kind == "timeseries"


@dataclass(frozen=True)
class Dashboard:
    slug: str
    title: str
    description: str
    variables: tuple[str, ...]
    panels: tuple[Panel, ...]
    time_from: str = "now-30d"


VARIABLES = {
    "zvm": Variable(
        "zvm",
        "ZVM",
        "The ZVMs to show (zvms.name).",
        query="SELECT name FROM zvms ORDER BY name",
    ),
    "vpg": Variable(
        "vpg",
        "VPG",
        "The VPGs to show: their last known name, else their identifier; those of the chosen "
        "ZVMs and those no ZVM ever listed.",
        query=(
            "SELECT COALESCE(name, vpg_identifier) AS __text, vpg_identifier AS __value "
            "FROM vpgs WHERE zvm IN ($zvm) OR zvm IS NULL ORDER BY 1"
        ),
    ),
    "days": Variable(
        "days",
        "Look-back (days)",
        "The look-back of the ready queries (their days parameter), counted back from now.",
        options=("30", "90", "180", "365"),
        default="90",
    ),
}


def _in_range(source: str, column: str = "started_at", *, where: str = "") -> str:
    """``FROM source WHERE ...``: the rows whose ``column`` is in the dashboard's time range,
    of the chosen ZVMs, and (``where``) that meet a further condition."""
    condition = f" AND {where}" if where else ""
    return f"FROM {source}\nWHERE $__timeFilter({column}) AND zvm IN ($zvm){condition}\n"


DAILY_TOTALS = "task_daily_totals"
"""The per-day summary the passes keep equal to ``tasks``: a month of a busy site is a few
thousand rows there against a million tasks. Its days are UTC days, so a time range that
starts or ends inside a day counts that whole day."""

TABLE_ROWS = 1000
"""The most rows a table panel of tasks shows, newest first: a table of a month of tasks
(hundreds of thousands of rows) is neither readable nor quick to send to a browser."""

_ANY_VPG = "(vpg_identifier IN ($vpg) OR vpg_identifier IS NULL)"
_EVIDENCE_FILTER = "(e.zvm IN ($zvm) OR e.zvm IS NULL) AND e.vpg_identifier IN ($vpg)"

DR_TESTS = Dashboard(
    "dr-tests",
    "ZVM tasks: DR-test evidence",
    "Per VPG: when it last had a successful failover test, never-tested VPGs first, its RTO "
    "(from the ZVM's Recovery Report, else the test failover's duration), and every test in "
    "the time range. From the ready query dr_test_evidence and the view v_failover_tests.",
    ("zvm", "vpg", "days"),
    (
        Panel(
            "VPGs without a successful test in the look-back",
            "stat",
            f"SELECT COUNT(*) AS untested_vpgs FROM ({READY}\n) AS e\n"
            f"WHERE e.tested_in_window = 0 AND {_EVIDENCE_FILTER}",
            ("untested_vpgs",),
            "VPGs whose last successful FailOverTest started more than $days days ago, or "
            "never: the gaps an auditor asks about.",
            ready="dr_test_evidence",
            width=8,
            height=6,
        ),
        Panel(
            "Tested VPGs in the look-back",
            "stat",
            f"SELECT COUNT(*) AS tested_vpgs FROM ({READY}\n) AS e\n"
            f"WHERE e.tested_in_window = 1 AND {_EVIDENCE_FILTER}",
            ("tested_vpgs",),
            "VPGs with a successful FailOverTest started in the last $days days.",
            ready="dr_test_evidence",
            width=8,
            height=6,
        ),
        Panel(
            "Failed tests in the look-back",
            "stat",
            f"SELECT COALESCE(SUM(e.failed_tests_in_window), 0) AS failed_tests "
            f"FROM ({READY}\n) AS e\nWHERE {_EVIDENCE_FILTER}",
            ("failed_tests",),
            "FailOverTest tasks that failed in the last $days days, over the chosen VPGs.",
            ready="dr_test_evidence",
            width=8,
            height=6,
        ),
        Panel(
            "DR-test evidence per VPG (never tested first)",
            "table",
            "SELECT COALESCE(e.vpg_name, e.vpg_identifier) AS vpg, e.zvm, e.priority_name, "
            "e.protected_site_name, e.recovery_site_name, e.tested_in_window, "
            "e.tests_in_window, e.failed_tests_in_window, e.last_success_started_at, "
            "e.days_since_last_success, "
            "e.last_success_rto_seconds AS rto_seconds, e.last_success_rto_source AS rto_source, "
            "e.last_success_initiated_by\n"
            f"FROM ({READY}\n) AS e\nWHERE {_EVIDENCE_FILTER}\n"
            "ORDER BY e.tested_in_window, "
            "CASE WHEN e.last_success_started_at IS NULL THEN 0 ELSE 1 END, "
            "e.last_success_started_at, COALESCE(e.vpg_name, e.vpg_identifier)",
            (
                "vpg",
                "zvm",
                "tested_in_window",
                "last_success_started_at",
                "days_since_last_success",
                "rto_seconds",
                "rto_source",
            ),
            "One row per VPG its ZVM still lists. tested_in_window is 1 when its last "
            "successful test started within the look-back. rto_seconds is that test's RTO from "
            "the ZVM's Recovery Report, else the test failover's duration (rto_source says "
            "which: recovery_report or task_duration).",
            ready="dr_test_evidence",
            height=10,
        ),
        Panel(
            "DR tests per day by outcome",
            "timeseries",
            "SELECT $__timeGroupAlias(started_at,'1d'), "
            "SUM(CASE WHEN outcome = 'succeeded' THEN 1 ELSE 0 END) AS succeeded, "
            "SUM(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END) AS failed, "
            "SUM(CASE WHEN outcome NOT IN ('succeeded', 'failed') THEN 1 ELSE 0 END) AS other\n"
            + _in_range("v_failover_tests", where=_ANY_VPG)
            + "GROUP BY 1\nORDER BY 1",
            ("time", "succeeded", "failed", "other"),
            "FailOverTest tasks started each UTC day, by outcome (other: stopped or running).",
        ),
        Panel(
            "DR tests in the time range",
            "table",
            "SELECT started_at, COALESCE(vpg_name, vpg_identifier) AS vpg, zvm, outcome, "
            "duration_seconds, initiated_by, complete_reason, task_identifier\n"
            + _in_range("v_failover_tests", where=_ANY_VPG)
            + f"ORDER BY started_at DESC, task_identifier\nLIMIT {TABLE_ROWS}",
            ("started_at", "vpg", "outcome", "duration_seconds", "initiated_by"),
            "FailOverTest tasks and the VPGs they name, the newest "
            f"{TABLE_ROWS:,} of the time range first: which VPG was tested when, by whom, and "
            "whether the test failover succeeded (zvm-etl export v_failover_tests lists them "
            "all).",
            height=10,
        ),
    ),
    time_from="now-90d",
)

TASK_VOLUME = Dashboard(
    "task-volume",
    "ZVM tasks: volume and failures",
    "How many tasks each ZVM ran per day, how many failed, which types fail most and why. "
    "From the table task_daily_totals (kept equal to tasks by every pass), the view v_tasks "
    "and the ready query failure_rate_by_week.",
    ("zvm", "days"),
    (
        Panel(
            "Tasks and failures per day",
            "timeseries",
            "SELECT $__timeGroupAlias(day,'1d'), SUM(tasks) AS tasks, "
            "SUM(CASE WHEN state = 4 THEN tasks ELSE 0 END) AS failures\n"
            + _in_range(DAILY_TOTALS, "day")
            + "GROUP BY 1\nORDER BY 1",
            ("time", "tasks", "failures"),
            "Tasks started each UTC day, and those of them in state Failed.",
            width=12,
        ),
        Panel(
            "Failures per day by task type",
            "timeseries",
            "SELECT $__timeGroupAlias(day,'1d'), type, SUM(tasks) AS failures\n"
            + _in_range(DAILY_TOTALS, "day", where="state = 4")
            + "GROUP BY 1, type\nORDER BY 1, type",
            ("time", "type", "failures"),
            "Failed tasks started each UTC day, one series per task type.",
            width=12,
        ),
        Panel(
            "Failure rate by task type",
            "table",
            "SELECT type, zvm, COUNT(*) AS finished_tasks, "
            "SUM(CASE WHEN state = 4 THEN 1 ELSE 0 END) AS failed_tasks, "
            "ROUND(1.0 * SUM(CASE WHEN state = 4 THEN 1 ELSE 0 END) / COUNT(*), 4) "
            "AS failure_rate, "
            "MAX(CASE WHEN state = 4 THEN started_at END) AS last_failure_at\n"
            + _in_range("v_tasks", where="state IN (4, 5, 6)")
            + "GROUP BY type, zvm\nORDER BY failure_rate DESC, failed_tasks DESC, type, zvm",
            ("type", "zvm", "finished_tasks", "failed_tasks", "failure_rate"),
            "Finished tasks (Failed, Stopped, Completed) started in the time range; Stopped "
            "is not a failure.",
        ),
        Panel(
            "Weekly failure rate and reasons",
            "table",
            "SELECT w.week_start, w.iso_week, w.zvm, w.type, w.finished_tasks, "
            "w.failed_tasks, w.failure_rate, w.reason_1, w.reason_1_failures, w.reason_2, "
            "w.reason_2_failures, w.reason_3, w.reason_3_failures\n"
            f"FROM ({READY}\n) AS w\nWHERE w.zvm IN ($zvm)\n"
            "ORDER BY w.week_start DESC, w.failure_rate DESC, w.zvm, w.type",
            ("week_start", "zvm", "type", "failure_rate", "reason_1"),
            "ISO weeks (UTC) of the look-back: the failure rate per ZVM and task type and the "
            "three commonest reasons of the week's failures.",
            ready="failure_rate_by_week",
            height=10,
        ),
    ),
)

OPEN_TASKS = Dashboard(
    "open-tasks",
    "ZVM tasks: open and stuck",
    "What is running, waiting or paused right now and for how long, and which tasks waited "
    "for user input. From the view v_open_tasks and the ready queries waiting_for_user_input "
    "and waiting_time.",
    ("zvm", "days"),
    (
        Panel(
            "Open tasks",
            "stat",
            "SELECT COUNT(*) AS open_tasks FROM v_open_tasks WHERE zvm IN ($zvm)",
            ("open_tasks",),
            "Tasks not in a final state.",
            width=6,
            height=6,
        ),
        Panel(
            "Waiting for user input",
            "stat",
            "SELECT COUNT(*) AS waiting_tasks FROM v_open_tasks WHERE zvm IN ($zvm) AND state = 2",
            ("waiting_tasks",),
            "Open tasks in WaitingForUserInput: a failover or move waiting for its commit.",
            width=6,
            height=6,
        ),
        Panel(
            "Open tasks by type",
            "barchart",
            "SELECT type, COUNT(*) AS open_tasks\nFROM v_open_tasks\nWHERE zvm IN ($zvm)\n"
            "GROUP BY type\nORDER BY open_tasks DESC, type",
            ("type", "open_tasks"),
            "Open tasks per task type.",
            width=12,
            height=6,
        ),
        Panel(
            "Open tasks, oldest first",
            "table",
            "SELECT started_at, age_seconds, zvm, type, state_name, progress, initiated_by, "
            "is_cancellable, last_seen_at, task_identifier\n"
            "FROM v_open_tasks\nWHERE zvm IN ($zvm)\nORDER BY started_at, task_identifier",
            ("started_at", "age_seconds", "zvm", "type", "state_name"),
            "age_seconds is now minus started_at. A task the ZVM stopped returning long ago "
            "(last_seen_at) may have been purged while open.",
            height=10,
        ),
        Panel(
            "Stuck waiting for user input",
            "table",
            "SELECT s.waiting_since, s.age_seconds, s.zvm, s.type, s.progress, "
            "s.initiated_by, s.started_at, s.task_identifier\n"
            f"FROM ({READY}\n) AS s\nWHERE s.zvm IN ($zvm)\n"
            "ORDER BY s.started_at, s.task_identifier",
            ("waiting_since", "age_seconds", "zvm", "type"),
            "Open tasks in WaitingForUserInput, oldest first; waiting_since is the first "
            "observation of the current stretch in that state.",
            ready="waiting_for_user_input",
        ),
        Panel(
            "Longest waits in the look-back",
            "table",
            "SELECT w.total_waiting_seconds, w.waiting_for_user_input_seconds, "
            "w.paused_seconds, w.still_waiting, w.zvm, w.type, w.state_name, "
            "w.initiated_by, w.started_at, w.vpg_names, w.task_identifier\n"
            f"FROM ({READY}\n) AS w\nWHERE w.zvm IN ($zvm)\n"
            "ORDER BY w.total_waiting_seconds DESC, w.task_identifier",
            ("total_waiting_seconds", "still_waiting", "zvm", "type"),
            "Tasks started in the look-back that were ever seen waiting for user input or "
            "paused, and for how long (precise to about one sync interval).",
            ready="waiting_time",
        ),
    ),
)

INITIATORS = Dashboard(
    "initiators",
    "ZVM tasks: who does what",
    "Who starts which tasks, on which ZVMs, and what they did to which VPG. From the table "
    "task_daily_totals (kept equal to tasks by every pass) and the view v_task_vpgs.",
    ("zvm", "vpg"),
    (
        Panel(
            "Tasks per initiator",
            "barchart",
            "SELECT COALESCE(initiated_by, '(none)') AS initiator, SUM(tasks) AS tasks, "
            "SUM(CASE WHEN state = 4 THEN tasks ELSE 0 END) AS failed_tasks\n"
            + _in_range(DAILY_TOTALS, "day")
            + "GROUP BY COALESCE(initiated_by, '(none)')\nORDER BY tasks DESC, initiator",
            ("initiator", "tasks", "failed_tasks"),
            "Tasks started on the UTC days of the time range per initiator (InitiatedBy; "
            "System for the ZVM's own).",
            width=12,
        ),
        Panel(
            "Tasks per day by initiator",
            "timeseries",
            "SELECT $__timeGroupAlias(day,'1d'), "
            "COALESCE(initiated_by, '(none)') AS initiator, SUM(tasks) AS tasks\n"
            + _in_range(DAILY_TOTALS, "day")
            + "GROUP BY 1, COALESCE(initiated_by, '(none)')\nORDER BY 1, initiator",
            ("time", "initiator", "tasks"),
            "Tasks started each UTC day, one series per initiator.",
            width=12,
        ),
        Panel(
            "Who ran what",
            "table",
            "SELECT COALESCE(initiated_by, '(none)') AS initiator, type, SUM(tasks) AS tasks, "
            "SUM(CASE WHEN state = 4 THEN tasks ELSE 0 END) AS failed_tasks, "
            "COUNT(DISTINCT zvm) AS zvms, MIN(first_started_at) AS first_started_at, "
            "MAX(last_started_at) AS last_started_at\n"
            + _in_range(DAILY_TOTALS, "day")
            + "GROUP BY COALESCE(initiated_by, '(none)'), type\n"
            "ORDER BY tasks DESC, initiator, type",
            ("initiator", "type", "tasks", "failed_tasks", "last_started_at"),
            "One row per initiator and task type on the UTC days of the time range.",
            height=10,
        ),
        Panel(
            "What was done to each VPG, and by whom",
            "table",
            "SELECT started_at, COALESCE(vpg_name, vpg_identifier) AS vpg, type, state_name, "
            "initiated_by, duration_seconds, zvm, task_identifier\n"
            + _in_range("v_task_vpgs", where="vpg_identifier IN ($vpg)")
            + f"ORDER BY started_at DESC, task_identifier, vpg\nLIMIT {TABLE_ROWS}",
            ("started_at", "vpg", "type", "state_name", "initiated_by"),
            f"Tasks that name a VPG (failovers, tests, moves, edits...), the newest {TABLE_ROWS:,} "
            "of the time range first: narrow the range or the VPGs for older ones (zvm-etl "
            "export v_task_vpgs lists them all).",
            height=10,
        ),
    ),
)

ETL_HEALTH = Dashboard(
    "etl-health",
    "ZVM tasks: ETL health",
    "Is the ETL working for every ZVM, how fresh is the data, and is the history proven "
    "complete. From the view v_etl_health, the table etl_runs and the ready queries "
    "etl_health_daily and completeness.",
    ("zvm", "days"),
    (
        Panel(
            "Longest time since a successful pass",
            "stat",
            "SELECT MAX(seconds_since_last_success) AS seconds_since_last_success\n"
            "FROM v_etl_health WHERE zvm IN ($zvm)",
            ("seconds_since_last_success",),
            "Over the chosen ZVMs, the longest time since a pass succeeded: alert when it "
            "grows past a few sync intervals.",
            width=8,
            height=6,
        ),
        Panel(
            "ZVMs whose last verification was not complete",
            "stat",
            f"SELECT COUNT(*) AS not_complete FROM ({READY}\n) AS c\n"
            "WHERE c.zvm IN ($zvm) AND c.last_status <> 'complete'",
            ("not_complete",),
            "ZVMs whose last zvm-etl verify found tasks missing or failed.",
            ready="completeness",
            width=8,
            height=6,
        ),
        Panel(
            "Open tasks",
            "stat",
            "SELECT COALESCE(SUM(open_tasks), 0) AS open_tasks FROM v_etl_health "
            "WHERE zvm IN ($zvm)",
            ("open_tasks",),
            "Tasks not in a final state, over the chosen ZVMs.",
            width=8,
            height=6,
        ),
        Panel(
            "ETL per ZVM",
            "table",
            "SELECT zvm, last_run_status, last_run_started_at, last_run_finished_at, "
            "last_success_at, seconds_since_last_success, started_cursor, completed_cursor, "
            "lag_seconds, open_tasks, last_run_error\n"
            "FROM v_etl_health\nWHERE zvm IN ($zvm)\nORDER BY zvm",
            ("zvm", "last_run_status", "last_success_at", "seconds_since_last_success"),
            "The last pass and the last successful pass of each ZVM, its cursors (sync_cursors) "
            "and lag_seconds: how old the newest task information is.",
        ),
        Panel(
            "History proven complete (zvm-etl verify)",
            "table",
            "SELECT c.zvm, c.last_verified_at, c.last_status, c.last_days_differing, "
            "c.last_missing_in_warehouse, c.last_missing_on_zvm, c.last_purged_by_zvm, "
            "c.proven_complete_at, c.proven_complete_until, "
            "c.seconds_since_proven_complete, c.last_error\n"
            f"FROM ({READY}\n) AS c\nWHERE c.zvm IN ($zvm)\nORDER BY c.zvm",
            ("zvm", "last_verified_at", "last_status", "proven_complete_at"),
            "Per ZVM, its last verification and the last one that found the history "
            "complete (table verifications). Run zvm-etl verify nightly.",
            ready="completeness",
        ),
        Panel(
            "Passes per day",
            "timeseries",
            "SELECT $__timeGroupAlias(started_at,'1d'), "
            "SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) AS succeeded, "
            "SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed\n"
            + _in_range("etl_runs")
            + "GROUP BY 1\nORDER BY 1",
            ("time", "succeeded", "failed"),
            "Passes (etl_runs) started each UTC day, by outcome.",
            width=12,
        ),
        Panel(
            "Tasks loaded per day",
            "timeseries",
            "SELECT $__timeGroupAlias(started_at,'1d'), SUM(tasks_received) AS received, "
            "SUM(tasks_inserted) AS inserted, SUM(tasks_updated) AS updated, "
            "SUM(tasks_rejected) AS rejected\n" + _in_range("etl_runs") + "GROUP BY 1\nORDER BY 1",
            ("time", "received", "inserted", "updated", "rejected"),
            "What the passes of each UTC day received from the ZVMs and wrote.",
            width=12,
        ),
        Panel(
            "ETL health per day",
            "table",
            "SELECT d.day, d.zvm, d.runs, d.succeeded_runs, d.failed_runs, d.tasks_received, "
            "d.new_rejected_records, d.requests, d.retries, d.avg_pass_seconds, "
            "d.max_lag_seconds\n"
            f"FROM ({READY}\n) AS d\nWHERE d.zvm IN ($zvm)\nORDER BY d.day DESC, d.zvm",
            ("day", "zvm", "runs", "failed_runs", "max_lag_seconds"),
            "One row per UTC day of the look-back and ZVM with passes; max_lag_seconds is the "
            "longest time between two successful passes ending that day.",
            ready="etl_health_daily",
            height=10,
        ),
    ),
)

DASHBOARDS = (DR_TESTS, TASK_VOLUME, OPEN_TASKS, INITIATORS, ETL_HEALTH)
"""Every dashboard, in the order they are listed."""


def ready_sql(name: str, *, dialect: str) -> str:
    """Ready query ``name`` for ``dialect`` as a subquery: its comment lines and final
    semicolon left out, ``:days`` bound to ``$days`` and ``:zvm`` to ``''`` (every ZVM).
    Raises ValueError when it has another parameter, which no dashboard variable binds."""
    lines = query_sql(name, dialect=dialect).strip().rstrip(";").splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("--"))
    unbound = sorted({p for p in _PARAMETER.findall(text) if p not in _BINDINGS})
    if unbound:
        raise ValueError(
            f"the ready query {name} has parameters no dashboard variable binds: "
            f"{', '.join(unbound)}; bind them in etl/dashboards/panels.py"
        )
    return _PARAMETER.sub(lambda m: _BINDINGS[m.group(1)], text)


def panel_sql(panel: Panel, *, dialect: str) -> str:
    """The SQL Grafana runs for ``panel`` on ``dialect``, Grafana's macros and variables
    still in it (see the module docstring)."""
    text = render(panel.sql, dialect=dialect)
    if panel.ready is None:
        if READY in text:
            raise ValueError(f"the panel {panel.title!r} uses {READY} but names no ready query")
        return text
    return text.replace(READY, "\n" + ready_sql(panel.ready, dialect=dialect))


def variable_sql(variable: Variable, *, dialect: str) -> str:
    """The query of a query variable for ``dialect`` (the same on both databases today)."""
    return render(variable.query, dialect=dialect)
