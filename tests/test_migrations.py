"""The warehouse schema as the migrations build it, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import io
import re
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from psycopg.sql import Literal
from sqlalchemy.engine import Engine

from etl import resources
from etl.errors import InstallationError, SchemaMismatch, WarehouseUnavailable
from etl.queries import bind_parameters, read_queries
from etl.warehouse import db, schema, sqlfiles, types
from etl.warehouse.daily import save_daily_totals, task_day
from etl.warehouse.load import TaskLoader
from etl.warehouse.types import NaiveDatetimeError

SPEC_TABLES = {
    "zvms",
    "tasks",
    "task_vpgs",
    "task_hosts",
    "task_sites",
    "task_flr_sessions",
    "vpgs",
    "hosts",
    "sites",
    "flr_sessions",
    "task_states",
    "task_types",
    "task_status_changes",
    "sync_cursors",
    "etl_runs",
    "rejected_tasks",
    "verifications",
    "recovery_operations",
    "recovery_operation_steps",
    "rejected_recovery_operations",
    "task_daily_totals",
    "vpg_daily_tests",
}
DAILY_TABLES = {"task_daily_totals", "vpg_daily_tests"}
"""Added by revisions 0008 and 0009."""
RECOVERY_TABLES = {
    "recovery_operations",
    "recovery_operation_steps",
    "rejected_recovery_operations",
}
VIEWS = {
    "v_tasks",
    "v_task_daily",
    "v_failover_tests",
    "v_open_tasks",
    "v_etl_health",
    "v_task_vpgs",
    "v_recovery_operations",
}
VIEWS_0004 = VIEWS - {"v_recovery_operations"}
DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb")


def as_utc(value: Any) -> datetime:
    """A timestamp read through raw SQL (a view): SQLite gives text, MariaDB naive UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def rows(engine: Engine, sql: str) -> list[sa.Row[Any]]:
    with engine.connect() as connection:
        return list(connection.exec_driver_sql(sql))


# --- revisions and the migration cycle ----------------------------------------------------


def test_single_head() -> None:
    heads = ScriptDirectory.from_config(db.alembic_config()).get_heads()
    assert heads == [db.head_revision()]


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    db.upgrade(database_url)
    assert db.current_revision(database_url) == db.head_revision()
    assert _objects(database_url) == (SPEC_TABLES | {"alembic_version"}, VIEWS)

    db.downgrade(database_url, "base")
    assert db.current_revision(database_url) is None
    assert _objects(database_url) == ({"alembic_version"}, set())

    db.upgrade(database_url)
    assert db.current_revision(database_url) == db.head_revision()
    assert _objects(database_url) == (SPEC_TABLES | {"alembic_version"}, VIEWS)


def _columns(table: str, **columns: sa.types.TypeEngine[Any]) -> sa.TableClause:
    return sa.table(table, *(sa.column(name, type_) for name, type_ in columns.items()))


def _fill_revision_0001(url: str, at: datetime) -> None:
    """Rows of every kind a revision-0001 warehouse held, written as that revision's code
    wrote them (on SQLite, whole-second timestamps without their fraction)."""
    utc, text, integer = types.UtcDateTime(), sa.Text(), sa.Integer()
    entity: dict[str, sa.types.TypeEngine[Any]] = {
        "href": text,
        "first_seen_at": utc,
        "last_seen_at": utc,
    }
    engine = db.make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                _columns("zvms", name=text, url=text, added_at=utc).insert(),
                [{"name": "nyc", "url": "https://nyc:9669", "added_at": at}],
            )
            connection.execute(
                _columns("task_types", name=text, first_seen_at=utc).insert(),
                [{"name": "FailOverTest", "first_seen_at": at}],
            )
            task = _columns(
                "tasks",
                task_identifier=text,
                zvm=text,
                task_id=text,
                type=text,
                state=integer,
                started_at=utc,
                completed_at=utc,
                duration_seconds=sa.Double(),
                payload=types.Json(),
                payload_hash=text,
                first_seen_at=utc,
                last_seen_at=utc,
                last_changed_at=utc,
            )
            connection.execute(
                task.insert(),
                [
                    {
                        "task_identifier": "t1.s",
                        "zvm": "nyc",
                        "task_id": "t1",
                        "type": "FailOverTest",
                        "state": 6,
                        "started_at": at,
                        "completed_at": at + timedelta(seconds=90),
                        "duration_seconds": 90.0,
                        "payload": {"TaskIdentifier": "t1.s", "Initiator": "José"},
                        "payload_hash": "h1",
                        "first_seen_at": at,
                        "last_seen_at": at,
                        "last_changed_at": at,
                    }
                ],
            )
            for table, key, value in (
                ("vpgs", "vpg_identifier", "vpg-1"),
                ("hosts", "host_identifier", "host-1"),
                ("sites", "site_identifier", "site-1"),
            ):
                connection.execute(
                    _columns(table, **{key: text}, **entity).insert(),
                    [{key: value, "href": f"/{value}", "first_seen_at": at, "last_seen_at": at}],
                )
                connection.execute(
                    _columns(f"task_{table}", task_identifier=text, **{key: text}).insert(),
                    [{"task_identifier": "t1.s", key: value}],
                )
            connection.execute(
                _columns(
                    "task_status_changes",
                    task_identifier=text,
                    observed_at=utc,
                    state=integer,
                    progress=integer,
                ).insert(),
                [{"task_identifier": "t1.s", "observed_at": at, "state": 6, "progress": 100}],
            )
            connection.execute(
                _columns("sync_cursors", zvm=text, cursor=text, value=utc, updated_at=utc).insert(),
                [{"zvm": "nyc", "cursor": "started", "value": at, "updated_at": at}],
            )
            if engine.dialect.name == "sqlite":
                for table, columns in (
                    ("tasks", ("started_at", "first_seen_at", "last_seen_at", "last_changed_at")),
                    ("vpgs", ("first_seen_at", "last_seen_at")),
                    ("task_status_changes", ("observed_at",)),
                    ("sync_cursors", ("value", "updated_at")),
                ):
                    for column in columns:
                        connection.exec_driver_sql(
                            f"UPDATE {table} SET {column} = substr({column}, 1, 19)"
                        )
    finally:
        engine.dispose()


def test_upgrade_in_place_keeps_the_data_of_revision_0001(database_url: str) -> None:
    at = datetime(2031, 3, 1, 9, 5, tzinfo=UTC)
    db.upgrade(database_url, "0001")
    _fill_revision_0001(database_url, at)
    tables = ["tasks", "vpgs", "hosts", "sites", "task_vpgs", "task_hosts", "task_sites"]
    tables += ["task_status_changes", "sync_cursors", "zvms"]

    def counts(engine: Engine) -> dict[str, int]:
        with engine.connect() as connection:
            return {
                t: connection.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in tables
            }

    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    try:
        assert counts(engine) == dict.fromkeys(tables, 1)
        with engine.connect() as connection:
            # Equal instants compare equal with bound values (SQLite's stored text fixed).
            task = connection.execute(
                sa.select(schema.tasks).where(schema.tasks.c.started_at == at)
            ).one()
            assert (task.task_identifier, task.completed_at) == ("t1.s", at + timedelta(seconds=90))
            assert task.payload == {"TaskIdentifier": "t1.s", "Initiator": "José"}
            cursor = connection.execute(
                sa.select(schema.sync_cursors.c.value).where(schema.sync_cursors.c.value >= at)
            ).scalar_one()
            assert cursor == at
            vpg = connection.execute(sa.select(schema.vpgs)).one()
            assert (vpg.vpg_identifier, vpg.first_seen_at, vpg.href) == ("vpg-1", at, "/vpg-1")
            assert (vpg.name, vpg.zvm, vpg.listed_at, vpg.unlisted_at) == (None,) * 4
            zvm = connection.execute(sa.select(schema.zvms)).one()
            assert (zvm.added_at, zvm.names_refreshed_at, zvm.names_error) == (at, None, None)
            (view,) = connection.exec_driver_sql("SELECT * FROM v_task_vpgs").all()
            assert (view.task_identifier, view.vpg_identifier, view.vpg_name) == (
                "t1.s",
                "vpg-1",
                None,
            )
            (test,) = connection.exec_driver_sql("SELECT * FROM v_failover_tests").all()
            assert (test.vpg_identifier, test.outcome) == ("vpg-1", "succeeded")
        assert db.drift(database_url) == []
        db.downgrade(database_url, "0001")
        assert counts(engine) == dict.fromkeys(tables, 1)
    finally:
        engine.dispose()


def _objects(url: str) -> tuple[set[str], set[str]]:
    engine = db.make_engine(url)
    try:
        inspector = sa.inspect(engine)
        return set(inspector.get_table_names()), set(inspector.get_view_names())
    finally:
        engine.dispose()


def test_no_drift_between_metadata_and_migrations(warehouse_url: str) -> None:
    assert db.drift(warehouse_url) == []
    # The same through env.py, as `zvm-etl db check` and `alembic check` run it.
    command.check(db.alembic_config(warehouse_url))


def test_every_spec_table_is_in_the_metadata() -> None:
    assert set(schema.metadata.tables) == SPEC_TABLES


def test_task_states_are_seeded(warehouse: Engine) -> None:
    with warehouse.connect() as connection:
        seeded = connection.execute(
            sa.select(schema.task_states).order_by(schema.task_states.c.state)
        ).all()
    assert [(s, n, bool(f)) for s, n, f in seeded] == [
        (state, name, state in schema.FINAL_STATES) for state, name in schema.TASK_STATES.items()
    ]
    assert {4, 5, 6} == schema.FINAL_STATES


def test_offline_sql_for_every_database() -> None:
    for url in ("postgresql+psycopg://u@h/d", "mysql+pymysql://u@h/d", "sqlite:///x.db"):
        out = io.StringIO()
        config = db.alembic_config(url)
        config.output_buffer = out
        command.upgrade(config, "head", sql=True)
        script = out.getvalue()
        assert "CREATE TABLE tasks" in script, url
        assert "INSERT INTO task_states" in script, url
        assert "VIEW v_etl_health AS" in script, url


# --- column types ------------------------------------------------------------------------


def test_utc_datetime_round_trips_aware_with_milliseconds(warehouse: Engine) -> None:
    zvms = schema.zvms
    moscow = datetime(2024, 3, 1, 15, 4, 5, 123000, tzinfo=timezone(timedelta(hours=3)))
    precise = datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    with warehouse.begin() as connection:
        connection.execute(
            zvms.insert(),
            [
                {"name": "msk", "url": "https://msk", "added_at": moscow},
                {"name": "utc", "url": "https://utc", "added_at": precise},
            ],
        )
    with warehouse.connect() as connection:
        got = dict(connection.execute(sa.select(zvms.c.name, zvms.c.added_at)).all())
        found = connection.execute(
            sa.select(zvms.c.name).where(zvms.c.added_at == moscow)
        ).scalar_one()
    assert got == {"msk": moscow, "utc": precise}
    assert got["msk"].tzinfo is UTC and got["msk"].hour == 12
    assert got["msk"].microsecond == 123000 and got["utc"].microsecond == 999999
    assert found == "msk"


def test_naive_datetime_is_refused(warehouse: Engine) -> None:
    with (
        pytest.raises(sa.exc.StatementError, match="naive datetime") as caught,
        warehouse.begin() as connection,
    ):
        connection.execute(
            schema.zvms.insert().values(name="x", url="https://x", added_at=datetime(2024, 1, 1))
        )
    assert isinstance(caught.value.orig, NaiveDatetimeError)


def test_json_payload_round_trips_as_a_dict(warehouse: Engine) -> None:
    payload = {
        "TaskIdentifier": "a.b",
        "Status": {"State": 6, "Progress": 2147483647},
        "RelatedEntities": {"Vpgs": [{"identifier": "v1", "rel": None}], "Hosts": None},
        "InitiatedBy": 'Zürich ✓ "quoted" \\ backslash',
        "IsCancellable": False,
        "Generation": 2**53 + 1,
        "Ratio": 0.5,
    }
    now = datetime.now(UTC)
    _insert_task(
        warehouse, "a.b", type_="FlrJournalUnmount", state=6, started_at=now, payload=payload
    )
    with warehouse.connect() as connection:
        stored = connection.execute(sa.select(schema.tasks.c.payload)).scalar_one()
    assert isinstance(stored, dict)
    assert stored == payload


def test_keys_compare_exactly_on_every_database(warehouse: Engine) -> None:
    now = datetime.now(UTC)
    with warehouse.begin() as connection:
        connection.execute(
            schema.zvms.insert(),
            [{"name": n, "url": "https://z", "added_at": now} for n in ("nyc", "NYC")],
        )
        matched = connection.execute(
            sa.select(sa.func.count()).where(schema.zvms.c.name == "nyc")
        ).scalar_one()
    assert matched == 1


# --- views and analyst queries -----------------------------------------------------------


def test_every_view_and_query_runs_on_an_empty_warehouse(warehouse: Engine) -> None:
    for view in VIEWS:
        assert rows(warehouse, f"SELECT * FROM {view}") == []
    for query in read_queries():
        with warehouse.connect() as connection:
            sql = sa.text(query.sql(dialect=warehouse.dialect.name))
            assert connection.execute(sql, bind_parameters(query, {})).all() == []


def test_views_with_data(warehouse: Engine) -> None:
    sample = _load_sample(warehouse)
    t0, now = sample["t0"], datetime.now(UTC)

    tasks = {r.task_identifier: r for r in rows(warehouse, "SELECT * FROM v_tasks")}
    assert set(tasks) == {"t1.s", "t2.s", "t3.s", "t4.s"}
    assert tasks["t1.s"].state_name == "Completed" and bool(tasks["t1.s"].is_final)
    assert tasks["t3.s"].state_name == "WaitingForUserInput" and not tasks["t3.s"].is_final
    assert tasks["t1.s"].duration_seconds == pytest.approx(90.5)
    assert as_utc(tasks["t1.s"].started_at) == t0

    daily = {
        (str(r.day), r.type, r.state): (r.tasks, r.failures, r.avg_duration_seconds)
        for r in rows(warehouse, "SELECT * FROM v_task_daily")
    }
    expected_days = Counter((t.date().isoformat(), ty, st) for t, ty, st in sample["started"])
    assert {k: v[0] for k, v in daily.items()} == dict(expected_days)
    failed_key = ((t0 + timedelta(seconds=10)).date().isoformat(), "Move", 4)
    assert daily[failed_key][1] == 1 and daily[failed_key][2] == pytest.approx(20.25)

    (test,) = rows(warehouse, "SELECT * FROM v_failover_tests")
    assert (test.vpg_identifier, test.vpg_name, test.task_identifier, test.outcome) == (
        "vpg-1",
        "Finance 01",
        "t1.s",
        "succeeded",
    )
    assert test.vpg_priority == 2
    by_task = {
        (r.task_identifier, r.vpg_name, r.priority, r.state_name)
        for r in rows(warehouse, "SELECT * FROM v_task_vpgs")
    }
    assert by_task == {
        ("t1.s", "Finance 01", 2, "Completed"),
        ("t2.s", "NYC DC 2", 1, "Failed"),
        ("t3.s", "NYC DC 2", 1, "WaitingForUserInput"),
        ("t4.s", "Finance 01", 2, "Completed"),
    }
    assert test.duration_seconds == pytest.approx(90.5)

    (open_task,) = rows(warehouse, "SELECT * FROM v_open_tasks")
    assert open_task.task_identifier == "t3.s" and open_task.state_name == "WaitingForUserInput"
    expected_age = (now - (t0 + timedelta(seconds=30))).total_seconds()
    assert float(open_task.age_seconds) == pytest.approx(expected_age, abs=60)

    (health,) = rows(warehouse, "SELECT * FROM v_etl_health")
    assert health.zvm == "nyc"
    assert (health.last_run_id, health.last_run_status) == (sample["failed_run"], "failed")
    assert health.last_run_trigger == "schedule" and health.last_run_error == "boom"
    assert health.last_success_run_id == sample["good_run"]
    assert as_utc(health.last_success_at) == t0 + timedelta(seconds=210)
    assert as_utc(health.started_cursor) == t0 + timedelta(seconds=30)
    assert as_utc(health.completed_cursor) == t0 + timedelta(seconds=400)
    assert health.open_tasks == 1
    newest = t0 + timedelta(seconds=400)
    assert float(health.lag_seconds) == pytest.approx((now - newest).total_seconds(), abs=60)
    since_success = (now - (t0 + timedelta(seconds=210))).total_seconds()
    assert float(health.seconds_since_last_success) == pytest.approx(since_success, abs=60)


def test_analyst_queries_with_data(warehouse: Engine) -> None:
    sample = _load_sample(warehouse)
    dialect = warehouse.dialect.name

    def query(name: str) -> list[sa.Row[Any]]:
        return rows(warehouse, sqlfiles.query_sql(name, dialect=dialect))

    evidence = query("failover_tests_this_quarter")
    assert [(r.vpg_name, r.vpg_identifier, r.tests, r.has_successful_test) for r in evidence] == [
        ("Café Orders", "vpg-3", 0, 0),  # listed, never tested: first
        ("NYC DC 2", "vpg-2", 0, 0),
        ("Finance 01", "vpg-1", 1, 1),
    ]  # vpg-gone is no longer listed
    rates = {(r.zvm, r.type): r for r in query("failure_rate_by_type_and_zvm")}
    assert float(rates["nyc", "Move"].failure_rate) == pytest.approx(0.5)
    assert rates["nyc", "Move"].failed_tasks == 1
    assert float(rates["nyc", "FailOverTest"].failure_rate) == 0
    (move,) = query("move_durations")
    assert (move.vpg_identifier, move.vpg_name, move.moves) == ("vpg-1", "Finance 01", 1)
    assert move.max_duration_seconds == pytest.approx(300.0)
    (waiting,) = query("waiting_for_user_input")
    assert waiting.task_identifier == "t3.s"
    assert as_utc(waiting.waiting_since) == sample["at"](100)


def _quarter_start(now: datetime) -> datetime:
    return datetime(now.year, 3 * ((now.month - 1) // 3) + 1, 1, tzinfo=UTC)


def _insert_task(
    engine: Engine,
    identifier: str,
    *,
    type_: str,
    state: int,
    started_at: datetime,
    duration: float | None = None,
    vpg: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """One task of ZVM ``nyc`` (created with its type and VPG when missing)."""
    completed = started_at + timedelta(seconds=duration) if duration is not None else None
    with engine.begin() as connection:
        for table, key, value in (
            (schema.zvms, "name", "nyc"),
            (schema.task_types, "name", type_),
            (schema.vpgs, "vpg_identifier", vpg),
        ):
            if (
                value is None
                or connection.execute(sa.select(table).where(table.c[key] == value)).first()
            ):
                continue
            extras: dict[str, dict[str, Any]] = {
                "zvms": {"url": "https://zvm-nyc:9669", "added_at": started_at},
                "task_types": {"first_seen_at": started_at},
                "vpgs": {"first_seen_at": started_at, "last_seen_at": started_at},
            }
            extra = extras[table.name]
            connection.execute(table.insert().values({key: value, **extra}))
        connection.execute(
            schema.tasks.insert().values(
                task_identifier=identifier,
                zvm="nyc",
                task_id=identifier.split(".", 1)[0],
                site_identifier=identifier.split(".", 1)[1],
                type=type_,
                state=state,
                progress=100 if completed else 50,
                started_at=started_at,
                completed_at=completed,
                started_utc_offset_minutes=0,
                duration_seconds=duration,
                payload=payload or {"TaskIdentifier": identifier},
                payload_hash="0" * 64,
                first_seen_at=started_at,
                last_seen_at=started_at,
                last_changed_at=started_at,
            )
        )
        if vpg is not None:
            connection.execute(
                schema.task_vpgs.insert().values(task_identifier=identifier, vpg_identifier=vpg)
            )
        # What a pass does after writing a task and its links: recount its day's summaries
        # (from revision 0009 on; the older revisions' tests insert into fewer tables).
        if sa.inspect(connection).has_table("vpg_daily_tests"):
            save_daily_totals(connection, {"nyc": {task_day(started_at)}})


def _load_sample(engine: Engine) -> dict[str, Any]:
    """Four tasks of ZVM nyc, two runs and its cursors, all within the current quarter.

    Times are offsets in seconds from ``t0``: t3 (FailOver) started at 30, was seen
    InProgress at 40 and WaitingForUserInput from 100 on; the cursors are at 30 and 400.
    """
    now = datetime.now(UTC)
    t0 = max(now - timedelta(hours=1), _quarter_start(now)).replace(microsecond=250000)

    def at(seconds: float) -> datetime:
        return t0 + timedelta(seconds=seconds)

    tasks = [  # identifier, type, state, start, duration, vpg
        ("t1.s", "FailOverTest", 6, 0, 90.5, "vpg-1"),
        ("t2.s", "Move", 4, 10, 20.25, "vpg-2"),
        ("t3.s", "FailOver", 2, 30, None, "vpg-2"),
        ("t4.s", "Move", 6, 40, 300.0, "vpg-1"),
    ]
    for identifier, type_, state, start, duration, vpg in tasks:
        _insert_task(
            engine,
            identifier,
            type_=type_,
            state=state,
            started_at=at(start),
            duration=duration,
            vpg=vpg,
        )
    changes = [(40, 1, 10), (100, 2, 50), (160, 2, 60)]
    with engine.begin() as connection:
        # Names: two VPGs of the tasks are listed, one listed VPG has no task, and one that
        # the ZVM no longer lists keeps its name.
        vpgs = schema.vpgs
        for vpg, name, priority in (("vpg-1", "Finance 01", 2), ("vpg-2", "NYC DC 2", 1)):
            connection.execute(
                vpgs.update()
                .where(vpgs.c.vpg_identifier == vpg)
                .values(name=name, priority=priority, zvm="nyc", listed_at=at(5))
            )
        for identifier, name, unlisted in (
            ("vpg-3", "Café Orders", None),
            ("vpg-gone", "Zürich Payroll", at(6)),
        ):
            connection.execute(
                vpgs.insert().values(
                    vpg_identifier=identifier,
                    name=name,
                    priority=0,
                    zvm="nyc",
                    first_seen_at=at(5),
                    last_seen_at=at(5),
                    listed_at=at(5),
                    unlisted_at=unlisted,
                )
            )
        connection.execute(
            schema.task_status_changes.insert(),
            [
                {"task_identifier": "t3.s", "observed_at": at(t), "state": s, "progress": p}
                for t, s, p in changes
            ],
        )
        runs = schema.etl_runs
        good = _pk(
            connection.execute(
                runs.insert().values(
                    zvm="nyc",
                    trigger="sync",
                    status="succeeded",
                    started_at=at(200),
                    finished_at=at(210),
                    tasks_received=4,
                )
            )
        )
        failed = _pk(
            connection.execute(
                runs.insert().values(
                    zvm="nyc",
                    trigger="schedule",
                    status="failed",
                    error="boom",
                    started_at=at(300),
                    finished_at=at(305),
                )
            )
        )
        connection.execute(
            schema.sync_cursors.insert(),
            [
                {"zvm": "nyc", "cursor": name, "value": at(t), "updated_at": now}
                for name, t in (("started", 30), ("completed", 400))
            ],
        )
    return {
        "t0": t0,
        "at": at,
        "started": [(at(start), type_, state) for _, type_, state, start, _, _ in tasks],
        "good_run": good,
        "failed_run": failed,
    }


def _pk(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def test_run_counters_default_to_zero_and_checks_hold(warehouse: Engine) -> None:
    now = datetime.now(UTC)
    runs = schema.etl_runs
    with warehouse.begin() as connection:
        connection.execute(schema.zvms.insert().values(name="nyc", url="https://z", added_at=now))
        run_id = _pk(
            connection.execute(
                runs.insert().values(
                    zvm="nyc", trigger="backfill", status="running", started_at=now
                )
            )
        )
        run = connection.execute(sa.select(runs).where(runs.c.run_id == run_id)).one()
    assert (run.retries, run.requests, run.tasks_received, run.tasks_rejected) == (0, 0, 0, 0)
    # MariaDB reports a failed CHECK as an OperationalError, the others as IntegrityError.
    with pytest.raises(sa.exc.DBAPIError, match="ck_etl_runs_trigger"), warehouse.begin() as c:
        c.execute(runs.insert().values(zvm="nyc", trigger="cron", status="running", started_at=now))
    with pytest.raises(sa.exc.IntegrityError), warehouse.begin() as connection:
        connection.execute(
            runs.insert().values(zvm="nowhere", trigger="sync", status="running", started_at=now)
        )


def test_revision_0004_adds_the_verifications_table_and_removes_it_down(
    database_url: str,
) -> None:
    db.upgrade(database_url, "0003")
    before = SPEC_TABLES - {"verifications"} - RECOVERY_TABLES - DAILY_TABLES
    before |= {"alembic_version"}
    assert _objects(database_url) == (before, VIEWS_0004)
    db.upgrade(database_url)
    now = datetime.now(UTC)
    table = schema.verifications
    engine = db.make_engine(database_url)
    try:
        with engine.begin() as connection:
            row = {"zvm": "nyc", "started_at": now, "finished_at": now, "status": "complete"}
            key = _pk(connection.execute(table.insert().values(**row)))
            kept = connection.execute(sa.select(table).where(table.c.id == key)).one()
        assert (kept.days_checked, kept.zvm_tasks, kept.purged_by_zvm, kept.rejected) == (0,) * 4
        assert (kept.since, kept.until, kept.error) == (None, None, None)
        # MariaDB reports a failed CHECK as an OperationalError, the others as IntegrityError.
        with (
            pytest.raises(sa.exc.DBAPIError, match="ck_verifications_status"),
            engine.begin() as connection,
        ):
            connection.execute(table.insert().values(**(row | {"status": "partial"})))
    finally:
        engine.dispose()
    db.downgrade(database_url, "0003")
    assert _objects(database_url) == (before, VIEWS_0004)
    db.upgrade(database_url)
    assert db.drift(database_url) == []


def test_revision_0005_adds_the_recovery_report_and_removes_it_down(database_url: str) -> None:
    db.upgrade(database_url, "0004")
    before = SPEC_TABLES - RECOVERY_TABLES - DAILY_TABLES | {"alembic_version"}
    assert _objects(database_url) == (before, VIEWS_0004)
    at = datetime(2031, 3, 1, 9, 5, tzinfo=UTC)
    engine = db.make_engine(database_url)
    zvms = _columns("zvms", name=sa.Text(), url=sa.Text(), added_at=types.UtcDateTime())
    try:
        with engine.begin() as connection:
            connection.execute(zvms.insert().values(name="nyc", url="https://nyc", added_at=at))
        db.upgrade(database_url)
        assert _objects(database_url) == (SPEC_TABLES | {"alembic_version"}, VIEWS)
        operations, steps = schema.recovery_operations, schema.recovery_operation_steps
        operation = {
            "zvm": "nyc",
            "operation_identifier": "op-1",
            "vpg_name": "Finance 01",
            "recovery_type": "FailoverTest",
            "started_at": at,
            "rto_seconds": 125.0,
            "status": "Success",
            "payload": {"RecoveryOperationIdentifier": "op-1"},
            "payload_hash": "0" * 64,
            "first_seen_at": at,
            "last_seen_at": at,
            "last_changed_at": at,
        }
        step = {"zvm": "nyc", "operation_identifier": "op-1", "result": "Failed"}
        with engine.begin() as connection:
            zvm = connection.execute(sa.select(schema.zvms)).one()
            assert (zvm.name, zvm.recovery_report_read_at, zvm.recovery_report_error) == (
                "nyc",
                None,
                None,
            )
            connection.execute(operations.insert().values(**operation))
            connection.execute(steps.insert(), [step | {"step_number": n} for n in (1, 2)])
        [row] = rows(engine, "SELECT * FROM v_recovery_operations")
        assert (row.operation_identifier, row.vpg_name, row.outcome) == (
            "op-1",
            "Finance 01",
            "succeeded",
        )
        assert (row.steps, row.failed_steps, row.rto_seconds, row.task_identifier) == (
            2,
            2,
            125.0,
            None,
        )
        # MariaDB reports a failed CHECK as an OperationalError, the others as IntegrityError.
        with (
            pytest.raises(sa.exc.DBAPIError, match="ck_recovery_operations_vpg_link"),
            engine.begin() as connection,
        ):
            connection.execute(
                operations.insert().values(
                    **(operation | {"operation_identifier": "op-2", "vpg_link": "guess"})
                )
            )
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(
                steps.insert().values(**(step | {"operation_identifier": "op-9", "step_number": 1}))
            )
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(operations.insert().values(**operation))  # the same operation
    finally:
        engine.dispose()
    db.downgrade(database_url, "0004")
    assert _objects(database_url) == (before, VIEWS_0004)
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.select(zvms.c.name)).scalars().all() == ["nyc"]
        assert rows(engine, "SELECT zvm FROM v_etl_health") == [("nyc",)]
    finally:
        engine.dispose()
    db.upgrade(database_url)
    assert db.drift(database_url) == []


_TASK_INDEXES_0006 = {"ix_tasks_type", "ix_tasks_completed_at"}
_TASK_INDEXES_0007 = {
    "ix_tasks_type_state_started_at",
    "ix_tasks_started_at_zvm_type_state_duration_seconds",
}
_VIEWS_0007 = {
    # The views 0007 replaces, and what of them is compared (no "now"-based column).
    "v_failover_tests": "SELECT * FROM v_failover_tests",
    "v_open_tasks": "SELECT task_identifier, state, state_name, type FROM v_open_tasks",
    "v_etl_health": "SELECT zvm, open_tasks FROM v_etl_health",
}


def _task_indexes(engine: Engine) -> set[str]:
    return {str(ix["name"]) for ix in sa.inspect(engine).get_indexes("tasks")}


def _views_0007(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    return {
        name: sorted((tuple(row) for row in rows(engine, sql)), key=repr)
        for name, sql in _VIEWS_0007.items()
    }


def test_revision_0007_swaps_the_task_indexes_and_keeps_the_views_rows(database_url: str) -> None:
    db.upgrade(database_url, "0006")
    start = datetime(2031, 3, 1, tzinfo=UTC)
    engine = db.make_engine(database_url)
    try:
        tasks = (
            ("FailOverTest", 6, "vpg-1"),
            ("failovertest", 4, "vpg-1"),  # another casing is still a test
            ("FailOverTest", 1, None),
            ("StopFailOverTest", 6, "vpg-1"),
            ("Move", 2, "vpg-2"),
            ("Login", 7, None),
            ("Login", 6, None),
        )
        for number, (type_, state, vpg) in enumerate(tasks):
            final = state in schema.FINAL_STATES
            _insert_task(
                engine,
                f"t{number}.s",
                type_=type_,
                state=state,
                started_at=start + timedelta(minutes=number),
                duration=60.0 + number if final else None,
                vpg=vpg,
            )
        before = _views_0007(engine)
        assert sorted(row[3] for row in before["v_failover_tests"]) == ["t0.s", "t1.s", "t2.s"]
        assert before["v_etl_health"] == [("nyc", 3)]
        assert _task_indexes(engine) >= _TASK_INDEXES_0006

        db.upgrade(database_url)
        assert _views_0007(engine) == before
        indexes = _task_indexes(engine)
        assert indexes >= _TASK_INDEXES_0007
        assert not _TASK_INDEXES_0006 & indexes

        db.downgrade(database_url, "0006")
        assert _views_0007(engine) == before
        indexes = _task_indexes(engine)
        assert indexes >= _TASK_INDEXES_0006
        assert not _TASK_INDEXES_0007 & indexes
    finally:
        engine.dispose()
    db.upgrade(database_url)
    assert db.drift(database_url) == []


def _plan(connection: sa.Connection, name: str) -> str:
    """PostgreSQL's plan for ready query or view ``name`` as an export reads it."""
    from etl.export import resolve

    source = resolve(connection, name)
    assert isinstance(source.statement, sa.ClauseElement)
    compiled = source.statement.compile(dialect=connection.dialect)
    bound = {**compiled.params, **source.params}
    return "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {compiled}", bound))


def test_the_analyst_indexes_are_in_the_plans_that_need_them_on_postgresql(
    warehouse: Engine,
) -> None:
    if warehouse.dialect.name != "postgresql":
        pytest.skip("the plans are PostgreSQL's (the partial index exists only there)")
    start = datetime.now(UTC) - timedelta(days=3)
    for number in range(40):
        type_, state = (("FailOverTest", 6), ("Move", 4), ("Login", 6), ("Move", 3))[number % 4]
        _insert_task(
            warehouse,
            f"t{number}.s",
            type_=type_,
            state=state,
            started_at=start + timedelta(minutes=number),
            duration=10.0 + number if state != 3 else None,
            vpg="vpg-1",
        )
    with warehouse.begin() as connection:
        changes = schema.task_status_changes
        connection.execute(
            changes.insert(),
            [
                {"task_identifier": f"t{n}.s", "observed_at": start, "state": 3}
                for n in range(3, 40, 4)
            ],
        )
    with warehouse.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        # A few rows: the planner would rather read the tables. The question is only
        # whether an index serves the statement when the tables are large.
        connection.exec_driver_sql("SET enable_seqscan = off")
        expected = {
            "dr_test_evidence": "ix_tasks_type_state_started_at",
            "v_failover_tests": "ix_tasks_type_state_started_at",
            "v_task_daily": "ix_tasks_started_at_zvm_type_state_duration_seconds",
            "waiting_time": "ix_task_status_changes_waiting",
            "v_open_tasks": "ix_tasks_open",
        }
        plans = {name: _plan(connection, name) for name in expected}
    missing = {name: plans[name] for name, index in expected.items() if index not in plans[name]}
    assert not missing, missing


# --- the schema check --------------------------------------------------------------------


def test_check_schema_on_an_empty_database(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        with pytest.raises(SchemaMismatch) as caught:
            db.check_schema(engine)
        message = str(caught.value)
        assert "has no schema (no alembic_version table)" in message
        assert message.endswith("run `zvm-etl db upgrade`.")
        assert message.startswith("The warehouse at ")

        db.upgrade(database_url)
        db.check_schema(engine)

        db.downgrade(database_url, "base")
        with pytest.raises(SchemaMismatch, match=r"has no schema .*downgraded to base.*upgrade`"):
            db.check_schema(engine)

        db.upgrade(database_url)
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff99'")
        with pytest.raises(SchemaMismatch) as caught:
            db.check_schema(engine)
        head = db.head_revision()
        assert f"is at revision ffff99, newer than this code knows (head {head})" in str(
            caught.value
        )
        assert "upgrade zvm-task-etl or point it at another warehouse" in str(caught.value)
    finally:
        engine.dispose()


def test_check_schema_when_behind(warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    current = db.head_revision()
    monkeypatch.setattr(db, "head_revision", lambda: "0099")
    engine = db.make_engine(warehouse_url)
    try:
        with pytest.raises(SchemaMismatch) as caught:
            db.check_schema(engine)
    finally:
        engine.dispose()
    assert (
        f"is at revision {current}, this version of zvm-task-etl needs 0099: "
        "run `zvm-etl db upgrade`." in str(caught.value)
    )


def test_unreachable_warehouse_masks_the_password() -> None:
    engine = db.make_engine("postgresql+psycopg://etl:s3cret@127.0.0.1:1/warehouse")
    try:
        with pytest.raises(WarehouseUnavailable) as caught:
            db.check_schema(engine)
    finally:
        engine.dispose()
    message = str(caught.value)
    assert "s3cret" not in message
    assert "postgresql+psycopg://etl:***@127.0.0.1:1/warehouse" in message
    assert "Check that the database server is running" in message
    with pytest.raises(WarehouseUnavailable, match="cannot connect to the warehouse at sqlite"):
        db.current_revision("sqlite:////nonexistent-dir/warehouse.db")
    with pytest.raises(WarehouseUnavailable, match="not a database URL"):
        db.make_engine("no-scheme")


# --- SQL files and where they are --------------------------------------------------------


def test_every_view_and_query_renders_for_every_dialect() -> None:
    assert sqlfiles.view_names() == VIEWS
    for dialect in DIALECTS:
        for view in VIEWS:
            assert sqlfiles.view_select(view, 1, dialect=dialect).lstrip().startswith("--")
        for query in sqlfiles.query_names():
            assert "SELECT" in sqlfiles.query_sql(query, dialect=dialect)
    assert "UTC_TIMESTAMP" in sqlfiles.view_select("v_open_tasks", 1, dialect="mariadb")
    assert sqlfiles.create_view_sql("v_tasks", 1, dialect="mariadb").startswith(
        "CREATE SQL SECURITY INVOKER VIEW v_tasks AS"
    )
    with pytest.raises(InstallationError, match=r"v_tasks\.v99\.sql does not exist"):
        sqlfiles.view_select("v_tasks", 99, dialect="sqlite")
    with pytest.raises(InstallationError, match="not for oracle"):
        sqlfiles.view_select("v_tasks", 1, dialect="oracle")
    with pytest.raises(ValueError, match="not a valid"):
        sqlfiles.drop_view_sql("v; DROP TABLE tasks")


def test_one_file_per_view_and_query_with_the_differences_as_macros() -> None:
    sql = resources.sql_dir()
    # (sql/roles/ holds the read-only role scripts: plain SQL run by psql and mariadb.)
    folders = (sql / "views", sql / "queries", sql / "roles")
    assert not [p for p in sql.rglob("*.sql") if p.parent not in folders]
    macros = set(sqlfiles.MACROS["sqlite"])
    assert all(set(names) == macros for names in sqlfiles.MACROS.values())
    health = {d: sqlfiles.view_select("v_etl_health", 1, dialect=d) for d in DIALECTS}
    assert "GREATEST(cs.value, cc.value)" in health["postgresql"]
    assert "COALESCE(GREATEST(cs.value, cc.value), cs.value, cc.value)" in health["mysql"]
    assert "COALESCE(MAX(cs.value, cc.value), cs.value, cc.value)" in health["sqlite"]
    assert not any("${" in text for text in health.values())


def test_resources_in_the_source_checkout() -> None:
    root = Path(__file__).resolve().parent.parent
    assert resources.migrations_dir() == root / "migrations"
    assert resources.sql_dir() == root / "sql"


def test_resources_in_an_installed_wheel(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    package = site / "etl"
    (package / "_resources" / "migrations").mkdir(parents=True)
    (package / "_resources" / "migrations" / "env.py").touch()
    (package / "_resources" / "sql" / "views").mkdir(parents=True)
    # A stray top-level migrations/ from some other distribution must not be taken.
    (site / "migrations").mkdir()
    (site / "migrations" / "env.py").touch()
    assert resources.migrations_dir(package_dir=package) == package / "_resources" / "migrations"
    assert resources.sql_dir(package_dir=package) == package / "_resources" / "sql"


def test_resources_missing(tmp_path: Path) -> None:
    with pytest.raises(InstallationError, match="reinstall the package"):
        resources.migrations_dir(package_dir=tmp_path / "etl")


def test_daily_view_counts_utc_days_whatever_the_session_zone(warehouse: Engine) -> None:
    late = datetime(2024, 5, 31, 23, 30, tzinfo=UTC)  # already June 1st in Tokyo
    _insert_task(warehouse, "late.s", type_="Move", state=6, started_at=late, duration=1.0)
    set_zone = {
        "postgresql": "SET TIME ZONE 'Asia/Tokyo'",
        "mysql": "SET time_zone = '+09:00'",
    }.get(warehouse.dialect.name)
    with warehouse.connect() as connection:
        if set_zone:
            connection.exec_driver_sql(set_zone)
        (day,) = connection.exec_driver_sql("SELECT day FROM v_task_daily").scalars()
    assert str(day) == "2024-05-31"


def test_open_tasks_are_found_through_their_partial_index_on_postgresql(
    warehouse: Engine,
) -> None:
    start = datetime(2031, 3, 1, tzinfo=UTC)
    for number, state in enumerate((6, 1, 4, 2, 6, 7, 5, 3, 0)):
        _insert_task(
            warehouse,
            f"t{number}.s",
            type_="Move",
            state=state,
            started_at=start + timedelta(minutes=number),
        )
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    with warehouse.connect() as connection:
        loader = TaskLoader(connection, zvm="nyc", run_id=0, now=start + timedelta(days=1))
        sa.event.listen(connection, "before_cursor_execute", record)
        found = loader.open_tasks(started_since=start, not_seen_since=start + timedelta(days=1))
        sa.event.remove(connection, "before_cursor_execute", record)
        assert found == ["t1.s", "t3.s", "t5.s", "t7.s", "t8.s"]  # oldest first
        indexes = {ix["name"] for ix in sa.inspect(connection).get_indexes("tasks")}
        if warehouse.dialect.name != "postgresql":
            assert "ix_tasks_open" not in indexes  # PostgreSQL only (see schema.ix_tasks_open)
            return
        states = ", ".join(str(state) for state in schema.OPEN_STATES)
        definition = connection.exec_driver_sql(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_tasks_open'"
        ).scalar_one()
        assert definition.endswith(f"(zvm, started_at) WHERE (state = ANY (ARRAY[{states}]))")
        # The loader's own statement matches the index's predicate: with no statistics yet,
        # and with the plan a long-running scheduler's prepared statement ends up with (a
        # generic plan, made without the parameters' values). The table scan is ruled out
        # so that the tiny table does not hide the choice.
        connection.exec_driver_sql("SET enable_seqscan = off")
        connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        [(statement, parameters)] = statements
        names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", statement)))
        prepared = re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m[1]) + 1}", statement)
        connection.exec_driver_sql(f"PREPARE open_tasks AS {prepared}")
        driver = connection.connection.driver_connection
        arguments = ", ".join(Literal(parameters[name]).as_string(driver) for name in names)
        explain = f"EXPLAIN EXECUTE open_tasks({arguments})"
        plan = "\n".join(row[0] for row in connection.exec_driver_sql(explain))
        assert "ix_tasks_open" in plan, plan
