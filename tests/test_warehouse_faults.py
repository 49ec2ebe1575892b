"""The warehouse failing under a pass: a deadlock, a lock held too long, a read-only
database, a full disk, a connection lost in the middle of a transaction.

Each fault is the database's own: a trigger that raises the real error code (PostgreSQL's
SQLSTATE, MariaDB's error number, as a deadlock or a full disk would), a session setting
that makes the database read-only, a lock this test really holds, SQLite's page limit, a
connection really terminated. In every case the pass rolls back what it had not committed,
the cursors do not move past what was committed, the error says what happened and what to
do, and the next pass recovers by itself (the warehouse then equals the ZVM's ground truth).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.warehouse import schema
from etl.warehouse.db import make_engine
from etl.warehouse.faults import CONFLICT_ATTEMPTS, classify
from tests.service import runs, task_count, wait_until
from tests.syncing import (
    advance,
    assert_converged,
    assert_no_task_skipped,
    cursors,
    make_config,
    one_pass,
)
from zvm_simulator import Simulator

pytestmark = pytest.mark.sim(days=1, tasks_per_hour=20)
"""The ``sim`` fixture (conftest.py) of every test here."""

DEADLOCK: dict[str, str | int] = {"postgresql": "40P01", "mysql": 1213}
DISK_FULL: dict[str, str | int] = {"postgresql": "53100", "mysql": 1114}


def fault_trigger(engine: Engine, table: str, code: str | int, *, times: int | None) -> None:
    """A trigger on ``table`` that raises the database's error ``code`` on every insert, or
    on the first ``times`` rows only (counted by a sequence: sequences are not rolled back,
    so the count survives the failed transaction)."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("CREATE SEQUENCE fault_seq")
            when = "TRUE" if times is None else f"nextval('fault_seq') <= {times}"
            conn.exec_driver_sql(
                "CREATE FUNCTION fault_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF {when} THEN RAISE EXCEPTION USING ERRCODE = '{code}', "
                "MESSAGE = 'injected by the test'; END IF; RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER fault BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION fault_fn()"
            )
        else:
            conn.exec_driver_sql("CREATE SEQUENCE fault_seq")
            when = "TRUE" if times is None else f"NEXTVAL(fault_seq) <= {times}"
            conn.exec_driver_sql(
                f"CREATE TRIGGER fault BEFORE INSERT ON {table} FOR EACH ROW BEGIN "
                f"IF {when} THEN SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = {code}, "
                "MESSAGE_TEXT = 'injected by the test'; END IF; END"
            )


def drop_fault_trigger(engine: Engine, table: str) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"DROP TRIGGER fault ON {table}")
            conn.exec_driver_sql("DROP FUNCTION fault_fn()")
        else:
            conn.exec_driver_sql("DROP TRIGGER fault")
        conn.exec_driver_sql("DROP SEQUENCE fault_seq")


@contextmanager
def session_setting(url: str, *statements: str) -> Iterator[Engine]:
    """An engine whose every new connection first runs ``statements`` (after the ETL's own
    set-up), as an administrator's setting on the server would."""
    engine = make_engine(url)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for statement in statements:
                cursor.execute(statement)
        finally:
            cursor.close()
        if engine.dialect.name == "postgresql":
            dbapi_connection.commit()  # psycopg opened a transaction for the SET

    try:
        yield engine
    finally:
        engine.dispose()


def servers_only(warehouse: Engine, why: str) -> None:
    if warehouse.dialect.name == "sqlite":
        pytest.skip(why)


def test_a_deadlock_victim_is_run_again_at_once(
    warehouse: Engine, warehouse_url: str, sim: Simulator
) -> None:
    servers_only(warehouse, "SQLite has one writer at a time (BEGIN IMMEDIATE): no deadlocks")
    config = make_config(sim, warehouse_url)
    fault_trigger(warehouse, "tasks", DEADLOCK[warehouse.dialect.name], times=1)
    result = one_pass(config, warehouse)
    assert result.status == "succeeded"
    victim, retried = runs(warehouse)
    assert victim.status == "failed" and retried.status == "succeeded"
    assert "victim of a deadlock" in victim.error
    assert "retried at once" in victim.error
    assert_converged(warehouse, sim)


def test_a_pass_that_keeps_losing_deadlocks_gives_up_and_the_next_recovers(
    warehouse: Engine, warehouse_url: str, sim: Simulator
) -> None:
    servers_only(warehouse, "SQLite has one writer at a time (BEGIN IMMEDIATE): no deadlocks")
    config = make_config(sim, warehouse_url)
    fault_trigger(warehouse, "tasks", DEADLOCK[warehouse.dialect.name], times=None)
    result = one_pass(config, warehouse)
    assert result.status == "failed"
    assert result.error is not None and "victim of a deadlock" in result.error
    attempts = runs(warehouse)
    assert [row.status for row in attempts] == ["failed"] * CONFLICT_ATTEMPTS
    assert task_count(warehouse) == 0
    assert_no_task_skipped(warehouse, sim)

    drop_fault_trigger(warehouse, "tasks")
    assert one_pass(config, warehouse).status == "succeeded"
    assert_converged(warehouse, sim)


def test_a_lock_held_too_long_fails_the_pass_and_the_next_recovers(
    warehouse: Engine, warehouse_url: str, sim: Simulator
) -> None:
    config = make_config(sim, warehouse_url)
    assert one_pass(config, warehouse).status == "succeeded"
    before = cursors(warehouse)
    advance(sim, 90)
    short_wait = {
        "sqlite": "PRAGMA busy_timeout = 500",
        "postgresql": "SET lock_timeout = '500ms'",
        "mysql": "SET SESSION innodb_lock_wait_timeout = 1",
    }[warehouse.dialect.name]
    holder = warehouse.connect()  # another session, holding a lock the pass needs
    try:
        if warehouse.dialect.name == "sqlite":
            holder.execute(sa.select(1))  # BEGIN IMMEDIATE: the database's one write lock
        else:
            holder.execute(sa.select(schema.sync_cursors).with_for_update()).all()
        with session_setting(warehouse_url, short_wait) as impatient:
            result = one_pass(config, impatient)
    finally:
        holder.rollback()
        holder.close()
    assert result.status == "failed"
    assert result.error is not None
    assert "gave up waiting for a lock another session holds" in result.error
    assert "find the session that holds locks" in result.error
    assert cursors(warehouse) == before

    assert one_pass(config, warehouse).status == "succeeded"
    assert_converged(warehouse, sim)
    assert all(row.status != "running" for row in runs(warehouse))


def test_a_read_only_warehouse_fails_the_pass_with_what_to_do(
    warehouse: Engine, warehouse_url: str, sim: Simulator
) -> None:
    config = make_config(sim, warehouse_url)
    read_only = {
        "sqlite": "PRAGMA query_only = ON",
        "postgresql": "SET default_transaction_read_only = on",
        "mysql": "SET SESSION TRANSACTION READ ONLY",
    }[warehouse.dialect.name]
    with session_setting(warehouse_url, read_only) as replica:
        result = one_pass(config, replica)
    assert result.status == "failed"
    error = result.error
    assert error is not None and "is read-only" in error
    assert "point warehouse.url at a writable primary" in error
    assert task_count(warehouse) == 0 and cursors(warehouse) == {}

    assert one_pass(config, warehouse).status == "succeeded"
    assert_converged(warehouse, sim)


def test_a_full_disk_rolls_the_window_back_and_the_next_pass_recovers(
    warehouse: Engine, warehouse_url: str, sim: Simulator
) -> None:
    config = make_config(sim, warehouse_url)
    assert one_pass(config, warehouse).status == "succeeded"
    before, held = cursors(warehouse), task_count(warehouse)
    advance(sim, 600)  # ten hours of new tasks: more pages than the database may grow by
    if warehouse.dialect.name == "sqlite":
        with warehouse.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        with session_setting(warehouse_url, f"PRAGMA max_page_count = {pages}") as full:
            result = one_pass(config, full)
    else:
        fault_trigger(warehouse, "tasks", DISK_FULL[warehouse.dialect.name], times=None)
        result = one_pass(config, warehouse)
        drop_fault_trigger(warehouse, "tasks")
    assert result.status == "failed"
    assert result.error is not None and "ran out of space" in result.error
    assert "free space on the database's disk" in result.error
    assert "its cursors did not move" in result.error
    assert cursors(warehouse) == before and task_count(warehouse) == held

    assert one_pass(config, warehouse).status == "succeeded"
    assert_converged(warehouse, sim)


def test_a_connection_lost_mid_transaction_fails_the_pass_and_the_next_recovers(
    warehouse: Engine, warehouse_url: str, sim: Simulator
) -> None:
    servers_only(warehouse, "SQLite is a file in this process: there is no connection to lose")
    config = make_config(sim, warehouse_url)
    killer: threading.Thread | None = None
    with warehouse.begin() as conn:
        conn.exec_driver_sql("CREATE SEQUENCE fault_seq")
        if warehouse.dialect.name == "postgresql":
            # The pass's own server process is terminated while it inserts its first task.
            conn.exec_driver_sql(
                "CREATE FUNCTION fault_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF nextval('fault_seq') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid());"
                " PERFORM pg_sleep(60); END IF; RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER fault BEFORE INSERT ON tasks "
                "FOR EACH ROW EXECUTE FUNCTION fault_fn()"
            )
        else:
            # The first insert waits; this test kills its connection meanwhile.
            conn.exec_driver_sql(
                "CREATE TRIGGER fault BEFORE INSERT ON tasks FOR EACH ROW BEGIN "
                "IF NEXTVAL(fault_seq) = 1 THEN DO SLEEP(120); END IF; END"
            )
            database = warehouse.url.database

            def sleeping() -> list[int]:
                with warehouse.connect() as admin:
                    return list(
                        admin.execute(
                            sa.text(
                                "SELECT id FROM information_schema.processlist "
                                "WHERE db = :db AND state = 'User sleep'"
                            ),
                            {"db": database},
                        ).scalars()
                    )

            def kill() -> None:
                wait_until(lambda: bool(sleeping()), what="the pass's insert to start waiting")
                with warehouse.connect() as admin:
                    for session in sleeping():
                        admin.exec_driver_sql(f"KILL {int(session)}")

            killer = threading.Thread(target=kill, daemon=True)
            killer.start()
    result = one_pass(config, warehouse)
    if killer is not None:
        killer.join(timeout=120)
        assert not killer.is_alive()
    assert result.status == "failed"
    assert result.error is not None
    assert "Check that the database server is running" in result.error
    assert "unfinished window was not kept" in result.error
    assert task_count(warehouse) == 0
    assert_no_task_skipped(warehouse, sim)

    drop_fault_trigger(warehouse, "tasks")
    assert one_pass(config, warehouse).status == "succeeded"
    assert_converged(warehouse, sim)
    assert all(row.status != "running" for row in runs(warehouse))


def test_classify_reads_each_database_s_own_error_code(warehouse: Engine) -> None:
    """The codes the table in etl.warehouse.faults names, raised for real by each database."""
    name = warehouse.dialect.name
    with warehouse.connect() as conn:
        if name == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")
            with pytest.raises(sa.exc.DBAPIError) as caught:
                conn.execute(sa.delete(schema.tasks))
            fault = classify(caught.value)
            assert fault is not None and fault.kind == "read_only"
            return
        for code, kind in [
            (DEADLOCK[name], "conflict"),
            (DISK_FULL[name], "disk_full"),
            ({"postgresql": "25006", "mysql": 1290}[name], "read_only"),
            ({"postgresql": "55P03", "mysql": 1205}[name], "lock_timeout"),
            ({"postgresql": "42501", "mysql": 1142}[name], "denied"),
            ({"postgresql": "23505", "mysql": 1062}[name], "other"),
        ]:
            if name == "postgresql":
                statement = (
                    f"DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '{code}', MESSAGE = 'x'; END $$"
                )
            else:
                statement = (
                    f"BEGIN NOT ATOMIC SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = {code}, "
                    "MESSAGE_TEXT = 'x'; END"
                )
            with pytest.raises(sa.exc.DBAPIError) as caught:
                conn.exec_driver_sql(statement)
            conn.rollback()
            fault = classify(caught.value)
            assert fault is not None and fault.kind == kind, (code, fault)
            assert fault.retry_at_once == (kind == "conflict")
