"""Per-dialect bulk upserts, small batches and large ones (COPY on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect, Engine

from etl.normalize import TaskRecord, normalize_task
from etl.warehouse import schema
from etl.warehouse.load import TaskLoader, prepare_tasks
from etl.warehouse.types import NaiveDatetimeError, UtcDateTime
from etl.warehouse.upsert import COPY_THRESHOLD, _bulk_processor, insert_new, upsert

T0 = datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def rows(count: int, *, href: str, at: datetime) -> list[dict[str, object]]:
    return [
        {
            "vpg_identifier": f"vpg-{i}",
            "href": f"{href}/{i}",
            "first_seen_at": at,
            "last_seen_at": at,
        }
        for i in range(count)
    ]


@pytest.mark.parametrize("count", [5, COPY_THRESHOLD + 50])
def test_upsert_inserts_updates_and_keeps(warehouse: Engine, count: int) -> None:
    later = T0 + timedelta(hours=1)
    with warehouse.begin() as conn:
        upsert(conn, schema.vpgs, rows(count, href="a", at=T0), key=["vpg_identifier"])
        # Do nothing on conflict: the first version stays.
        upsert(conn, schema.vpgs, rows(count, href="b", at=later), key=["vpg_identifier"])
    with warehouse.connect() as conn:
        stored = conn.execute(sa.select(schema.vpgs).order_by(schema.vpgs.c.vpg_identifier)).all()
    assert len(stored) == count
    assert all(r.href.startswith("a/") and r.last_seen_at == T0 for r in stored)
    with warehouse.begin() as conn:
        upsert(
            conn,
            schema.vpgs,
            rows(count + 3, href="c", at=later),
            key=["vpg_identifier"],
            update=["href", "last_seen_at"],
        )
    with warehouse.connect() as conn:
        stored = conn.execute(sa.select(schema.vpgs)).all()
    assert len(stored) == count + 3
    assert all(r.href.startswith("c/") and r.last_seen_at == later for r in stored)
    assert {r.first_seen_at for r in stored} == {T0, later}


def test_a_failed_batch_rolls_back_with_its_transaction(warehouse: Engine) -> None:
    bad = rows(COPY_THRESHOLD + 10, href="x", at=T0)
    bad[-1]["first_seen_at"] = None  # the column is NOT NULL
    with pytest.raises(sa.exc.DBAPIError), warehouse.begin() as conn:
        upsert(conn, schema.vpgs, bad, key=["vpg_identifier"])
    with warehouse.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.vpgs)).scalar_one() == 0


@pytest.mark.parametrize("count", [5, COPY_THRESHOLD + 50])
def test_keep_columns_are_never_blanked(warehouse: Engine, count: int) -> None:
    named = [r | {"name": f"VPG {i}"} for i, r in enumerate(rows(count, href="a", at=T0))]
    unnamed = [r | {"name": None} for r in rows(count, href="b", at=T0)]
    with warehouse.begin() as conn:
        upsert(conn, schema.vpgs, named, key=["vpg_identifier"])
        upsert(conn, schema.vpgs, unnamed, key=["vpg_identifier"], update=["href"], keep=["name"])
    with warehouse.connect() as conn:
        stored = conn.execute(sa.select(schema.vpgs.c.name, schema.vpgs.c.href)).all()
    assert all(name.startswith("VPG ") and href.startswith("b/") for name, href in stored)


@pytest.mark.parametrize("count", [5, COPY_THRESHOLD + 50])
def test_insert_new_falls_back_to_an_upsert_when_some_rows_exist(
    warehouse: Engine, count: int
) -> None:
    with warehouse.begin() as conn:
        upsert(conn, schema.vpgs, rows(3, href="first", at=T0), key=["vpg_identifier"])
        # Believed new, but three exist (another pass loaded them meanwhile): no error, the
        # existing rows stay as they were and the others are added.
        insert_new(conn, schema.vpgs, rows(count, href="second", at=T0), key=["vpg_identifier"])
    with warehouse.connect() as conn:
        query = sa.select(schema.vpgs.c.vpg_identifier, schema.vpgs.c.href)
        stored = {identifier: href for identifier, href in conn.execute(query)}
    assert len(stored) == count
    assert [stored[f"vpg-{i}"] for i in range(3)] == ["first/0", "first/1", "first/2"]


moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2999, 12, 31), timezones=st.timezones()
)


@settings(max_examples=300, deadline=None)
@given(moment=moments)
def test_bulk_timestamps_are_written_as_the_column_type_binds_them(moment: datetime) -> None:
    """The bulk path's fast timestamp writer gives what the type's own processing gives."""
    column_type = UtcDateTime()
    dialects: list[Dialect] = [
        sqlite.dialect(),
        postgresql.psycopg.dialect(),  # type: ignore[no-untyped-call]
        mysql.pymysql.dialect(),
    ]
    for dialect in dialects:
        fast = _bulk_processor(column_type, dialect)
        assert fast is not None
        # What a Core statement binds: the type's processing, then (SQLite) its text format.
        reference = column_type.dialect_impl(dialect).bind_processor(dialect)
        if dialect.name == "sqlite":
            assert reference is not None
            expected = reference(moment)
        else:
            expected = column_type.process_bind_param(moment, dialect)
        assert fast(moment) == expected
    with pytest.raises(NaiveDatetimeError):
        writer = _bulk_processor(column_type, sqlite.dialect())
        assert writer is not None
        writer(datetime(2025, 1, 1))


def _awkward_task(i: int) -> dict[str, object]:
    """A raw task whose text needs every escape COPY's text format has."""
    texts = ["tab\there", "line\nbreak\r\n", "back\\slash \\N", 'Zürich ☃ "q"', "", "plain"]
    return {
        "TaskIdentifier": f"{i:08d}-task.site-{i % 3}",
        "Type": ["FailOverTest", "Move", "Type\\with\tescapes"][i % 3],
        "Status": {"State": i % 8, "Progress": None if i % 5 == 0 else i % 101},
        "InitiatedBy": texts[i % len(texts)],
        "CompleteReason": None if i % 4 == 0 else texts[(i + 1) % len(texts)],
        "IsCancellable": [True, False, None][i % 3],
        "Started": f"/Date({1_733_000_000_000 + i * 61_001}+0300)/",
        "Completed": None if i % 7 == 0 else f"/Date({1_733_000_000_000 + i * 61_001 + i}-0500)/",
        "Link": {"href": f"https://zvm/v1/tasks/{i}\\x", "identifier": f"{i}"},
        "RelatedEntities": {
            "Vpgs": [{"identifier": f"vpg\t{i % 4}", "href": "h\\1"}],
            "Sites": [{"identifier": f"site-{i % 3}", "href": None}, {"identifier": "s2"}],
            "Hosts": [],
        },
        "Extra": {"nested": ["a\\b", "c\nd", 1.5e-7, -(2**40)]},
    }


def _stored(conn: sa.Connection) -> dict[str, list[tuple[object, ...]]]:
    tables = [schema.tasks, schema.task_vpgs, schema.task_sites, schema.task_status_changes]
    return {
        table.name: sorted(tuple(row) for row in conn.execute(sa.select(table))) for table in tables
    }


def _bound_by_the_driver(conn: sa.Connection, records: list[TaskRecord], now: datetime) -> None:
    """The reference: the same rows as plain INSERTs, every value bound by the driver."""
    conn.execute(
        schema.task_types.insert(),
        [
            {"name": t, "listed_by_zvm": False, "first_seen_at": now}
            for t in {r.type for r in records}
        ],
    )
    for attribute, table, bridge, key in (
        ("vpgs", schema.vpgs, schema.task_vpgs, "vpg_identifier"),
        ("sites", schema.sites, schema.task_sites, "site_identifier"),
    ):
        found = {i: h for r in records for i, h in getattr(r, attribute)}
        conn.execute(
            table.insert(),
            [
                {key: i, "href": h, "first_seen_at": now, "last_seen_at": now}
                for i, h in found.items()
            ],
        )
        links = [(r.task_identifier, i) for r in records for i, _ in getattr(r, attribute)]
        if attribute == "vpgs":
            conn.execute(schema.tasks.insert(), [_task_row(r, now) for r in records])
        conn.execute(bridge.insert(), [{"task_identifier": t, key: i} for t, i in links])
    conn.execute(
        schema.task_status_changes.insert(),
        [
            {"task_identifier": r.task_identifier, "observed_at": now}
            | {"state": r.state, "progress": r.progress}
            for r in records
        ],
    )


def _task_row(record: TaskRecord, now: datetime) -> dict[str, object]:
    row = {c.name: getattr(record, c.name, None) for c in schema.tasks.columns}
    row |= {"zvm": "z", "payload": orjson.loads(record.payload)}
    return row | {"first_seen_at": now, "last_seen_at": now, "last_changed_at": now}


def test_rows_prepared_ahead_store_exactly_what_the_driver_binds(warehouse: Engine) -> None:
    """The COPY text (PostgreSQL) and value tuples (SQLite) made ahead of the writer, and
    the COPY formatter for dict rows, store the same values as the driver's own binding:
    text with tabs, line breaks and backslashes, nulls, booleans, dates given with offsets,
    payloads with escapes."""
    records = []
    for i in range(COPY_THRESHOLD + 60):
        record = normalize_task(_awkward_task(i))
        assert isinstance(record, TaskRecord), record
        records.append(record)
    now = datetime(2026, 12, 5, 12, 0, 0, 123456, tzinfo=UTC)
    prepared = prepare_tasks(records, zvm="z", now=now, dialect=warehouse.dialect)
    results = []
    for way in ("driver", "prepared", "dicts"):
        with warehouse.connect() as conn, conn.begin() as transaction:
            conn.execute(schema.zvms.insert().values(name="z", url="https://z", added_at=now))
            if way == "driver":
                _bound_by_the_driver(conn, records, now)
            else:
                loader = TaskLoader(conn, zvm="z", run_id=0, now=now)
                loader.save_tasks(records, prepared=prepared if way == "prepared" else None)
            results.append(_stored(conn))
            transaction.rollback()
    assert len(results[0]["tasks"]) == len(records)
    assert len(results[0]["task_sites"]) > len(records)
    assert results[1] == results[0]
    assert results[2] == results[0]
