"""A known warehouse for the analyst layer's tests: two ZVMs, five VPGs, tasks, waits, runs.

Everything is inserted directly (names included), at times relative to now, so the ready
queries' answers can be worked out by hand; ``task_daily_totals`` and ``vpg_daily_tests``
are then counted from the tasks, as a pass does. The scenario, with what each part is for:

- VPGs: ``vpg-a`` "Finance ERP" (nyc, High), ``vpg-b`` "Médical Records ✓" (nyc, Medium),
  ``vpg-c`` never listed (no name; only lon's tasks name it), ``vpg-d`` "Old CRM" (nyc,
  deleted: unlisted), ``vpg-e`` "Never Tested" (lon, Low).
- Sites (:data:`SITES`): ``site-nyc`` "New York DC" and ``site-lon`` "London – Docklands"
  are listed; ``site-x``, the recovery site of vpg-b, never was (no name).
- FailOverTest tasks (:data:`FAILOVER_TESTS`): a success 10 and 40 days ago on vpg-a, a
  failure 5 days ago and a success 120 days ago on vpg-b, a success 20 days ago on vpg-c,
  one on the deleted vpg-d.
- Moves of nyc in two past ISO weeks (:data:`WEEKLY_MOVES`): week A has 3 failures of 4
  (two "Timeout", one "Disk full"), week B none of 2.
- InstallVra tasks of lon with durations 10, 20, 30, 40 and 100 s (percentiles), and one
  MoveCommit of 5000 s three days ago (the slowest task).
- Waits (task_status_changes): ``w1`` waited 1200 s for user input and was paused 600 s,
  then completed; ``w2`` has waited 300 s so far and still waits.
- ETL runs of nyc: three passes two days ago (one failed; 2 rejected records), one
  yesterday.
- Recovery operations (:data:`RECOVERY_OPERATIONS`): the Recovery Report's RTO of ft1
  (75 s, where its task took 120 s), of the failed ft3, of the failover w1 (600 s of its
  1900 s: the rest was waiting for the commit), two more tests of vpg-a on ft1's day with
  no task (45 s and 135 s, for the percentiles), one 100 days ago, and a move of lon whose
  VPG could not be found (reported as "Gone VPG").
- Verifications (:data:`VERIFICATIONS`): nyc proven complete 30 hours ago, then found
  incomplete 6 hours ago (one day, 3 tasks missing in the warehouse); lon failed 5 hours
  ago and was never proven complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.warehouse import schema
from etl.warehouse.daily import save_daily_totals, task_day

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)

VPGS = [  # identifier, name, priority, zvm, unlisted, protected site, recovery site
    ("vpg-a", "Finance ERP", 2, "nyc", False, "site-nyc", "site-lon"),
    ("vpg-b", "Médical Records ✓", 1, "nyc", False, "site-nyc", "site-x"),
    ("vpg-c", None, None, None, False, None, None),
    ("vpg-d", "Old CRM", 0, "nyc", True, "site-nyc", "site-lon"),
    ("vpg-e", "Never Tested", 0, "lon", False, "site-lon", "site-nyc"),
]
SITES = [  # identifier, name, zvm, is_local
    ("site-nyc", "New York DC", "nyc", True),
    ("site-lon", "London – Docklands", "lon", True),
    ("site-x", None, None, None),
]


VERIFICATIONS = [  # zvm, hours ago, status, days differing, missing in the warehouse, error
    ("nyc", 30, "complete", 0, 0, None),
    ("nyc", 6, "incomplete", 1, 3, None),
    ("lon", 5, "failed", 0, 0, "ZVM lon at https://lon:9669 answered GET /v1/tasks with 503"),
]


@dataclass(frozen=True)
class Task:
    identifier: str
    zvm: str
    type: str
    state: int
    started_at: datetime
    duration: float | None
    initiated_by: str | None
    vpgs: tuple[str, ...] = ()
    reason: str = ""


def _week_start(moment: datetime) -> datetime:
    monday = moment - timedelta(days=moment.weekday())
    return monday.replace(hour=0, minute=0, second=0)


WEEK_A = _week_start(NOW) - 14 * DAY
WEEK_B = _week_start(NOW) - 7 * DAY

FAILOVER_TESTS = [
    Task("ft1.s", "nyc", "FailOverTest", 6, NOW - 10 * DAY, 120.0, "José Álvarez", ("vpg-a",)),
    Task("ft2.s", "nyc", "FailOverTest", 6, NOW - 40 * DAY, 300.0, "admin", ("vpg-a",)),
    Task("ft3.s", "nyc", "FailOverTest", 4, NOW - 5 * DAY, 60.0, "admin", ("vpg-b",), "Peer down"),
    Task("ft4.s", "nyc", "FailOverTest", 6, NOW - 120 * DAY, 200.0, "admin", ("vpg-b",)),
    Task("ft5.s", "lon", "FailOverTest", 6, NOW - 20 * DAY, 90.0, "svc", ("vpg-c",)),
    Task("ft6.s", "nyc", "FailOverTest", 6, NOW - 15 * DAY, 80.0, "admin", ("vpg-d",)),
]
WEEKLY_MOVES = [
    Task(
        "mA1.s", "nyc", "Move", 4, WEEK_A + DAY + timedelta(hours=9), 100.0, "admin", (), "Timeout"
    ),
    Task(
        "mA2.s", "nyc", "Move", 4, WEEK_A + DAY + timedelta(hours=10), 110.0, "admin", (), "Timeout"
    ),
    Task("mA3.s", "nyc", "Move", 4, WEEK_A + 2 * DAY, 120.0, "admin", (), "Disk full"),
    Task("mA4.s", "nyc", "Move", 6, WEEK_A + 3 * DAY, 400.0, "José Álvarez"),
    Task("mB1.s", "nyc", "Move", 6, WEEK_B + 2 * DAY, 200.0, "admin"),
    Task("mB2.s", "nyc", "Move", 5, WEEK_B + 3 * DAY, 210.0, "admin"),
]
INSTALL_DURATIONS = [10.0, 20.0, 30.0, 40.0, 100.0]
INSTALLS = [
    Task(f"iv{i}.s", "lon", "InstallVra", 6, NOW - (i + 1) * DAY, d, "svc")
    for i, d in enumerate(INSTALL_DURATIONS)
]
SLOW = Task("slow.s", "nyc", "MoveCommit", 6, NOW - 3 * DAY, 5000.0, "José Álvarez", ("vpg-a",))
W1_START = NOW - 2 * DAY
W2_START = NOW - 1 * DAY
WAITS = [
    Task("w1.s", "nyc", "FailOver", 6, W1_START, 1900.0, "admin", ("vpg-a",)),
    Task("w2.s", "lon", "Move", 2, W2_START, None, "svc", ("vpg-c",)),
]
W1_CHANGES = [(0, 1), (60, 2), (660, 2), (1260, 1), (1300, 3), (1900, 6)]  # seconds, state
W2_CHANGES = [(0, 1), (100, 2)]
W2_LAST_SEEN = W2_START + timedelta(seconds=400)
TASKS = [*FAILOVER_TESTS, *WEEKLY_MOVES, *INSTALLS, SLOW, *WAITS]


@dataclass(frozen=True)
class Operation:
    identifier: str
    zvm: str
    vpg: str | None
    vpg_name: str
    task: str | None
    type: str
    started_at: datetime
    rto: float
    status: str


RECOVERY_OPERATIONS = [
    Operation(
        "op-ft1",
        "nyc",
        "vpg-a",
        "Finance ERP",
        "ft1.s",
        "FailoverTest",
        NOW - 10 * DAY,
        75.0,
        "Success",
    ),
    Operation(
        "op-ft3",
        "nyc",
        "vpg-b",
        "Médical Records",
        "ft3.s",
        "FailoverTest",
        NOW - 5 * DAY,
        40.0,
        "Fail",
    ),
    Operation(
        "op-w1", "nyc", "vpg-a", "Finance ERP", "w1.s", "Failover", W1_START, 600.0, "Success"
    ),
    Operation(
        "op-a2",
        "nyc",
        "vpg-a",
        "Finance ERP",
        None,
        "FailoverTest",
        NOW - 10 * DAY - timedelta(minutes=1),
        45.0,
        "Success",
    ),
    Operation(
        "op-a3",
        "nyc",
        "vpg-a",
        "Finance ERP",
        None,
        "FailoverTest",
        NOW - 10 * DAY + timedelta(minutes=1),
        135.0,
        "Success",
    ),
    Operation(
        "op-old", "nyc", "vpg-a", "Finance", None, "FailoverTest", NOW - 100 * DAY, 130.0, "Success"
    ),
    Operation("op-gone", "lon", None, "Gone VPG", None, "Move", NOW - 3 * DAY, 50.0, "Success"),
]

RUN_DAY = (NOW - 2 * DAY).replace(hour=10, minute=0, second=0)
RUNS = [  # started, seconds, status, rejected records
    (RUN_DAY, 60, "succeeded", 0),
    (RUN_DAY + timedelta(minutes=5), 30, "failed", 0),
    (RUN_DAY + timedelta(minutes=10), 60, "succeeded", 2),
    (RUN_DAY + timedelta(hours=23), 60, "succeeded", 0),
]


def load_scenario(engine: Engine) -> None:
    """Insert the scenario (see the module docstring) into an empty, migrated warehouse."""
    long_ago = NOW - 400 * DAY
    with engine.begin() as connection:
        connection.execute(
            schema.zvms.insert(),
            [{"name": n, "url": f"https://{n}:9669", "added_at": long_ago} for n in ("nyc", "lon")],
        )
        connection.execute(
            schema.task_types.insert(),
            [{"name": t, "first_seen_at": long_ago} for t in sorted({t.type for t in TASKS})],
        )
        connection.execute(
            schema.sites.insert(),
            [
                {
                    "site_identifier": key,
                    "first_seen_at": long_ago,
                    "last_seen_at": NOW,
                    "name": name,
                    "is_local": is_local,
                    "zvm": zvm,
                    "listed_at": NOW if zvm else None,
                }
                for key, name, zvm, is_local in SITES
            ],
        )
        connection.execute(
            schema.vpgs.insert(),
            [
                {
                    "vpg_identifier": key,
                    "first_seen_at": long_ago,
                    "last_seen_at": NOW,
                    "name": name,
                    "priority": priority,
                    "zvm": zvm,
                    "listed_at": NOW if zvm else None,
                    "unlisted_at": NOW - DAY if unlisted else None,
                    "protected_site_identifier": protected,
                    "recovery_site_identifier": recovery,
                }
                for key, name, priority, zvm, unlisted, protected, recovery in VPGS
            ],
        )
        connection.execute(schema.tasks.insert(), [_task_row(t) for t in TASKS])
        connection.execute(
            schema.task_vpgs.insert(),
            [{"task_identifier": t.identifier, "vpg_identifier": v} for t in TASKS for v in t.vpgs],
        )
        # What a pass does after writing tasks and their links: count their days into
        # task_daily_totals and vpg_daily_tests.
        days: dict[str, set[date]] = {}
        for task in TASKS:
            days.setdefault(task.zvm, set()).add(task_day(task.started_at))
        save_daily_totals(connection, days)
        changes = [("w1.s", W1_START, W1_CHANGES), ("w2.s", W2_START, W2_CHANGES)]
        connection.execute(
            schema.task_status_changes.insert(),
            [
                {
                    "task_identifier": key,
                    "observed_at": start + timedelta(seconds=offset),
                    "state": state,
                    "progress": None,
                }
                for key, start, steps in changes
                for offset, state in steps
            ],
        )
        for started, seconds, status, rejected in RUNS:
            result = connection.execute(
                schema.etl_runs.insert().values(
                    zvm="nyc",
                    trigger="schedule",
                    started_at=started,
                    finished_at=started + timedelta(seconds=seconds),
                    status=status,
                    tasks_received=10 if status == "succeeded" else 0,
                    tasks_rejected=rejected,
                )
            )
            run_id = result.inserted_primary_key[0]  # type: ignore[index]
            for number in range(rejected):
                connection.execute(
                    schema.rejected_tasks.insert().values(
                        run_id=run_id,
                        zvm="nyc",
                        received_at=started,
                        reason="no identifier",
                        payload=f'{{"bad": {number}}}',
                    )
                )
        connection.execute(
            schema.recovery_operations.insert(),
            [
                {
                    "zvm": op.zvm,
                    "operation_identifier": op.identifier,
                    "vpg_identifier": op.vpg,
                    "vpg_link": "reported" if op.vpg else None,
                    "vpg_name": op.vpg_name,
                    "recovery_type": op.type,
                    "started_at": op.started_at,
                    "ended_at": op.started_at + timedelta(seconds=op.rto + 30),
                    "rto_seconds": op.rto,
                    "status": op.status,
                    "task_identifier": op.task,
                    "task_match_seconds": 0.0 if op.task else None,
                    "payload": {"RecoveryOperationIdentifier": op.identifier},
                    "payload_hash": "0" * 64,
                    "first_seen_at": NOW,
                    "last_seen_at": NOW,
                    "last_changed_at": NOW,
                }
                for op in RECOVERY_OPERATIONS
            ],
        )
        connection.execute(
            schema.recovery_operation_steps.insert(),
            [
                {
                    "zvm": op.zvm,
                    "operation_identifier": op.identifier,
                    "step_number": number,
                    "result": "Failed" if op.status == "Fail" and number == 2 else "Success",
                    "execution_seconds": op.rto / 2,
                }
                for op in RECOVERY_OPERATIONS
                for number in (1, 2)
            ],
        )
        connection.execute(
            schema.verifications.insert(),
            [
                {
                    "zvm": zvm,
                    "started_at": NOW - timedelta(hours=hours, minutes=1),
                    "finished_at": NOW - timedelta(hours=hours),
                    "since": None if error else NOW - 14 * DAY,
                    "until": None if error else NOW - timedelta(hours=hours + 1),
                    "status": status,
                    "days_checked": 0 if error else 14,
                    "days_differing": differing,
                    "missing_in_warehouse": missing,
                    "error": error,
                }
                for zvm, hours, status, differing, missing, error in VERIFICATIONS
            ],
        )


def _task_row(task: Task) -> dict[str, Any]:
    completed = (
        task.started_at + timedelta(seconds=task.duration) if task.duration is not None else None
    )
    last_seen = W2_LAST_SEEN if task.identifier == "w2.s" else completed or task.started_at
    return {
        "task_identifier": task.identifier,
        "zvm": task.zvm,
        "task_id": task.identifier.split(".")[0],
        "site_identifier": "s",
        "type": task.type,
        "state": task.state,
        "progress": 100 if completed else 50,
        "initiated_by": task.initiated_by,
        "complete_reason": task.reason,
        "started_at": task.started_at,
        "completed_at": completed,
        "duration_seconds": task.duration,
        "payload": {"TaskIdentifier": task.identifier},
        "payload_hash": "0" * 64,
        "first_seen_at": task.started_at,
        "last_seen_at": last_seen,
        "last_changed_at": last_seen,
    }


def as_utc(value: Any) -> datetime:
    """A timestamp as read through raw SQL: text on SQLite, naive on MariaDB."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime), value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def run_query(engine: Engine, name: str, **params: Any) -> list[sa.Row[Any]]:
    """Ready query ``name`` with its defaults overridden by ``params``."""
    from etl.queries import bind_parameters, read_query

    query = read_query(name)
    with engine.connect() as connection:
        result = connection.execute(
            sa.text(query.sql(dialect=engine.dialect.name)), bind_parameters(query, params)
        )
        return list(result)
