"""Per-dialect bulk upserts: PostgreSQL and SQLite ``ON CONFLICT``, MySQL ``ON DUPLICATE KEY``.

One statement is built per (table, shape) and executed with a list of parameter sets, so
the driver sends many rows per round trip: never one round trip per row. On PostgreSQL a
batch of more than :data:`COPY_THRESHOLD` rows goes through ``COPY`` into a temporary
staging table and one ``INSERT ... SELECT ... ON CONFLICT``, the fastest path it has.
Callers pass plain dicts whose keys are the table's column names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, bindparam, func, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import ColumnElement, Executable

__all__ = ["chunked", "select_in", "upsert"]

T = TypeVar("T")

IN_CHUNK = 900
"""Keys per ``IN (...)`` list: under every driver's parameter limit, big enough to be cheap."""


def chunked(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _statement(
    conn: Connection,
    table: Table,
    key: Sequence[str],
    update: Sequence[str],
    keep: Sequence[str],
) -> Executable:
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        module: Any = postgresql if dialect == "postgresql" else sqlite
        insert = module.insert(table)
        if not update and not keep:
            return insert.on_conflict_do_nothing(index_elements=list(key))  # type: ignore[no-any-return]
        values = {name: insert.excluded[name] for name in update}
        values |= {name: func.coalesce(insert.excluded[name], table.c[name]) for name in keep}
        return insert.on_conflict_do_update(index_elements=list(key), set_=values)  # type: ignore[no-any-return]
    if dialect in ("mysql", "mariadb"):
        insert = mysql.insert(table)
        # "Do nothing" is written as a no-op assignment: INSERT IGNORE would also swallow
        # errors that are not duplicates (a too-long value, a broken foreign key).
        names = update if update or keep else [key[0]]
        assignments: dict[str, Any] = {name: insert.inserted[name] for name in names}
        assignments |= {name: func.coalesce(insert.inserted[name], table.c[name]) for name in keep}
        return insert.on_duplicate_key_update(assignments)
    raise NotImplementedError(f"upserts are not written for the {dialect} dialect")


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str],
    update: Sequence[str] = (),
    keep: Sequence[str] = (),
) -> None:
    """Insert ``rows``; on a key conflict set the ``update`` columns (none: keep the row)
    and the ``keep`` columns unless the new value is null (the known one is kept then).

    Every row must carry the same keys. Runs inside the caller's transaction.
    """
    if not rows:
        return
    if (
        len(rows) > COPY_THRESHOLD
        and conn.dialect.name == "postgresql"
        and conn.dialect.driver == "psycopg"
    ):
        _copy_upsert(conn, table, rows, key=key, update=update, keep=keep)
        return
    if conn.dialect.name == "sqlite":
        _sqlite_upsert(conn, table, rows, key=key, update=update, keep=keep)
        return
    conn.execute(_statement(conn, table, key, update, keep), list(rows))


def _processed(
    conn: Connection, table: Table, names: list[str], rows: Sequence[dict[str, Any]]
) -> list[list[Any]]:
    """Rows as value lists in ``names`` order, through each column's own bind processing
    (aware UTC datetimes to the stored form, JSON to text)."""
    dialect = conn.dialect
    # On SQLite the dialect's own types do the writing: its DATETIME writes one text format
    # (YYYY-MM-DD HH:MM:SS.ffffff, fraction included), the one every Core statement binds,
    # so text comparisons between stored and bound values hold.
    types = [
        table.c[name].type.dialect_impl(dialect) if dialect.name == "sqlite" else table.c[name].type
        for name in names
    ]
    processors = [type_.bind_processor(dialect) for type_ in types]
    return [
        [
            row[name] if process is None else process(row[name])
            for name, process in zip(names, processors, strict=True)
        ]
        for row in rows
    ]


def _conflict_clause(
    table: Table, key: Sequence[str], update: Sequence[str], keep: Sequence[str]
) -> str:
    conflict = ", ".join(f'"{name}"' for name in key)
    if not update and not keep:
        return f"ON CONFLICT ({conflict}) DO NOTHING"
    assignments = [f'"{name}" = excluded."{name}"' for name in update]
    assignments += [
        f'"{name}" = COALESCE(excluded."{name}", "{table.name}"."{name}")' for name in keep
    ]
    return f"ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(assignments)}"


def _sqlite_upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str],
    update: Sequence[str],
    keep: Sequence[str],
) -> None:
    """SQLite: one prepared statement, the driver's executemany (a loop in C)."""
    names = list(rows[0])
    quoted = ", ".join(f'"{name}"' for name in names)
    marks = ", ".join("?" for _ in names)
    conflict = _conflict_clause(table, key, update, keep)
    conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({quoted}) VALUES ({marks}) {conflict}',
        [tuple(values) for values in _processed(conn, table, names, rows)],
    )


COPY_THRESHOLD = 100
"""PostgreSQL batches larger than this are loaded with COPY."""


def _copy_upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str],
    update: Sequence[str],
    keep: Sequence[str],
) -> None:
    """PostgreSQL: COPY ``rows`` into a temporary copy of ``table``, then merge them with
    one INSERT ... SELECT ... ON CONFLICT. The staging table lives for the transaction."""
    names = list(rows[0])
    stage = f"stage_{table.name}"
    quoted = ", ".join(f'"{name}"' for name in names)
    conn.exec_driver_sql(
        f'CREATE TEMPORARY TABLE IF NOT EXISTS "{stage}" '
        f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP'
    )
    # DELETE, not TRUNCATE: on a small table it is far cheaper, and it runs once a batch.
    conn.exec_driver_sql(f'DELETE FROM "{stage}"')
    driver = conn.connection.driver_connection
    assert driver is not None
    statement = f'COPY "{stage}" ({quoted}) FROM STDIN'
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for values in _processed(conn, table, names, rows):
                copy.write_row(values)
    except conn.dialect.loaded_dbapi.Error as exc:
        # The driver's own error, raised as SQLAlchemy raises every other database error.
        raise DBAPIError(statement, None, exc, hide_parameters=True) from exc
    conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM "{stage}" '
        + _conflict_clause(table, key, update, keep)
    )


def select_in(
    conn: Connection,
    table: Table,
    key: str,
    values: Sequence[Any],
    columns: Iterable[str],
) -> Iterator[tuple[Any, ...]]:
    """Rows of ``table`` whose ``key`` is in ``values``: one query per chunk, not per value."""
    selected: list[ColumnElement[Any]] = [table.c[name] for name in columns]
    statement = select(*selected).where(table.c[key].in_(bindparam("keys", expanding=True)))
    for chunk in chunked(values):
        yield from (tuple(row) for row in conn.execute(statement, {"keys": list(chunk)}))
