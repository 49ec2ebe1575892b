"""Per-dialect bulk upserts: PostgreSQL and SQLite ``ON CONFLICT``, MySQL ``ON DUPLICATE KEY``.

One statement is built per (table, shape) and executed with a list of parameter sets, so
the driver sends many rows per round trip: never one round trip per row. On PostgreSQL a
batch of more than :data:`COPY_THRESHOLD` rows goes through ``COPY`` into a temporary
staging table and one ``INSERT ... SELECT ... ON CONFLICT``, the fastest path it has.
Callers pass plain dicts whose keys are the table's column names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import Connection, Table, any_, bindparam, func, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import ColumnElement, Executable
from sqlalchemy.types import TypeEngine

from etl.warehouse.types import Json, UtcDateTime

__all__ = ["PreparedRows", "chunked", "insert_new", "row_preparer", "select_in", "upsert"]

T = TypeVar("T")

IN_CHUNK = 900
"""Keys per ``IN (...)`` list: under every driver's parameter limit, big enough to be cheap."""


SQLITE_KEYS = 10_000
"""Keys per look-up on SQLite, where they go as one JSON array (one parameter)."""


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
    statement = _statement(conn, table, key, update, keep)
    if conn.dialect.name == "postgresql":
        # One multi-row statement: the driver's executemany would send one per row.
        conn.execute(statement.values(list(rows)))  # type: ignore[attr-defined]
        return
    conn.execute(statement, list(rows))


def insert_new(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]] | Callable[[], Sequence[dict[str, Any]]],
    *,
    key: Sequence[str],
    prepared: PreparedRows | None = None,
) -> None:
    """Insert ``rows`` that the caller believes are new (their keys were not in the table
    when it looked, in this transaction).

    On PostgreSQL they are copied straight into the table (the fastest path there is);
    should some exist after all (another ZVM's pass loading the same task meanwhile), the
    copy is undone to a savepoint and the rows go through :func:`upsert`, which keeps the
    existing ones. ``prepared``, the same rows already in the driver's form, is what is
    sent then (PostgreSQL and SQLite); with it, ``rows`` may be a function that makes the
    dicts, called only when they are needed. Elsewhere this is :func:`upsert` with nothing
    to update.
    """
    if prepared is not None and not prepared.rows:
        return
    dicts = rows if not callable(rows) else None

    def as_dicts() -> Sequence[dict[str, Any]]:
        return dicts if dicts is not None else cast(Callable[[], Sequence[dict[str, Any]]], rows)()

    if prepared is None and not as_dicts():
        return
    if prepared is not None and conn.dialect.name == "sqlite":
        _sqlite_upsert(conn, table, [], key=key, update=(), keep=(), prepared=prepared)
        return
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg":
        upsert(conn, table, as_dicts(), key=key)
        return
    savepoint = conn.begin_nested()
    try:
        _copy(conn, f'"{table.name}"', table, [] if prepared else as_dicts(), prepared=prepared)
    except DBAPIError as exc:
        savepoint.rollback()
        if getattr(exc.orig, "sqlstate", None) != "23505":  # unique_violation
            raise
        upsert(conn, table, as_dicts(), key=key)
    else:
        savepoint.commit()


def _processed(
    conn: Connection, table: Table, names: list[str], rows: Sequence[dict[str, Any]]
) -> list[list[Any]]:
    """Rows as value lists in ``names`` order, through each column's own bind processing
    (aware UTC datetimes to the stored form, JSON to text)."""
    processors = [_bulk_processor(table.c[name].type, conn.dialect) for name in names]
    return [
        [
            row[name] if process is None else process(row[name])
            for name, process in zip(names, processors, strict=True)
        ]
        for row in rows
    ]


def _bulk_processor(type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """How a bulk write turns one column's Python value into what the driver sends.

    Timestamps take a fast path (hundreds of thousands go by in a first pass) that gives
    exactly what the type's own processing gives: on SQLite the one text format every Core
    statement binds (``YYYY-MM-DD HH:MM:SS.ffffff``, so text comparisons between stored and
    bound values hold), elsewhere the aware UTC datetime. Naive datetimes are refused, as
    :class:`~etl.warehouse.types.UtcDateTime` refuses them. Other types use the dialect's
    own processing (on SQLite its types do the writing, so stored text matches bound text).
    """
    if isinstance(type_, UtcDateTime):
        sqlite_text = dialect.name == "sqlite"
        naive_text = dialect.name in ("mysql", "mariadb")

        def timestamp(value: datetime | None) -> Any:
            if value is None:
                return None
            offset = value.utcoffset()
            if offset is None:
                return type_.process_bind_param(value, dialect)  # raises NaiveDatetimeError
            if offset:
                value = value.astimezone(UTC)
            if sqlite_text:
                return value.replace(tzinfo=None).isoformat(" ", "microseconds")
            return value.replace(tzinfo=None) if naive_text else value

        return timestamp
    if dialect.name == "sqlite":
        return type_.dialect_impl(dialect).bind_processor(dialect)
    return type_.bind_processor(dialect)


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
    prepared: PreparedRows | None = None,
) -> None:
    """SQLite: one prepared statement, the driver's executemany (a loop in C); the values
    are ``prepared``'s when given."""
    names = list(prepared.columns) if prepared is not None else list(rows[0])
    quoted = ", ".join(f'"{name}"' for name in names)
    marks = ", ".join("?" for _ in names)
    conflict = _conflict_clause(table, key, update, keep)
    conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({quoted}) VALUES ({marks}) {conflict}',
        prepared.rows
        if prepared is not None
        else [tuple(values) for values in _processed(conn, table, names, rows)],
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
    # TRUNCATE, not DELETE: deleted rows stay in the table until the transaction ends, and
    # every later batch of a long transaction would scan them again.
    conn.exec_driver_sql(f'TRUNCATE "{stage}"')
    _copy(conn, f'"{stage}"', table, rows)
    conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM "{stage}" '
        + _conflict_clause(table, key, update, keep)
    )


COPY_CHUNK = 2000
"""Rows formatted and sent to the server at a time by :func:`_copy`."""


def _copy(
    conn: Connection,
    target: str,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    prepared: PreparedRows | None = None,
) -> None:
    """COPY ``rows`` (dicts with ``table``'s column names) into ``target`` (quoted), or
    ``prepared``: the same rows already formatted (:func:`copy_lines`), sent as they are.

    The rows go in COPY's text format, written here (:func:`_copy_formatter`): one string
    per chunk of rows, not one driver call per value, which made formatting the costliest
    part of a first load on the client. A column of a type without a formatter goes
    through the driver's own row writer instead.
    """
    names = list(prepared.columns) if prepared is not None else list(rows[0])
    quoted = ", ".join(f'"{name}"' for name in names)
    driver = conn.connection.driver_connection
    assert driver is not None
    statement = f"COPY {target} ({quoted}) FROM STDIN"
    formatters = [_copy_formatter(table.c[name].type) for name in names]
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            if prepared is not None:
                for lines in chunked(prepared.rows, COPY_CHUNK):
                    copy.write("".join(lines).encode())
                return
            if None in formatters:
                for values in _processed(conn, table, names, rows):
                    copy.write_row(values)
                return
            format_row = copy_lines(table, names)
            for chunk in chunked(rows, COPY_CHUNK):
                copy.write("".join([format_row([row[n] for n in names]) for row in chunk]).encode())
    except conn.dialect.loaded_dbapi.Error as exc:
        # The driver's own error, raised as SQLAlchemy raises every other database error.
        raise DBAPIError(statement, None, exc, hide_parameters=True) from exc


@dataclass(frozen=True)
class PreparedRows:
    """Rows of a table already in the form the driver sends, their values in ``columns``
    order: COPY text lines (``\\n`` included) on PostgreSQL, tuples of bound values on
    SQLite. Made by :func:`row_preparer` away from the writer (on the thread that
    normalizes), so that the writer only sends them."""

    columns: tuple[str, ...]
    rows: list[Any]


def row_preparer(
    table: Table, columns: Sequence[str], dialect: Dialect
) -> Callable[[Sequence[Any]], Any]:
    """A function making the :class:`PreparedRows` row of a row of ``table`` whose values
    come in ``columns`` order, for ``dialect`` (PostgreSQL or SQLite)."""
    if dialect.name == "postgresql":
        return copy_lines(table, columns)
    processors = []
    for name in columns:
        process = _bulk_processor(table.c[name].type, dialect)
        if isinstance(table.c[name].type, UtcDateTime):
            process = _remember_last(process)
        processors.append(process)

    def row(values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if process is None else process(value)
            for process, value in zip(processors, values, strict=True)
        )

    return row


def copy_lines(table: Table, columns: Sequence[str]) -> Callable[[Sequence[Any]], str]:
    """A function giving the COPY text line (``\\n`` included) of a row of ``table`` whose
    values come in ``columns`` order. Raises TypeError for a column of a type without a
    COPY formatter."""
    formatters = [_copy_formatter(table.c[name].type) for name in columns]
    if None in formatters:
        raise TypeError(f"no COPY text formatter for a column of {table.name}")
    format_ = cast(list[Callable[[Any], str]], formatters)
    last: list[Any] = [None, "\\N"]

    def line(values: Sequence[Any]) -> str:
        texts = []
        for function, value in zip(format_, values, strict=True):
            if function is _copy_timestamp and value is last[0]:
                texts.append(last[1])  # the pass's own moment, in every row: formatted once
                continue
            text = function(value)
            if function is _copy_timestamp:
                last[0], last[1] = value, text
            texts.append(text)
        return "\t".join(texts) + "\n"

    return line


def _remember_last(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """``process`` giving its last result again for the same value object: the pass's own
    moment is in every row (first seen, last seen...), and is converted once."""
    if process is None:
        return None
    last: list[Any] = [None, None]

    def remembered(value: Any) -> Any:
        if value is not last[0] or value is None:
            last[0], last[1] = value, process(value)
        return last[1]

    return remembered


def _copy_text(value: str | None) -> str:
    if value is None:
        return "\\N"
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value


def _copy_integer(value: int | None) -> str:
    return "\\N" if value is None else str(int(value))


def _copy_float(value: float | None) -> str:
    return "\\N" if value is None else repr(float(value))


def _copy_boolean(value: bool | None) -> str:
    if value is None:
        return "\\N"
    return "t" if value else "f"


def _copy_timestamp(value: datetime | None) -> str:
    if value is None:
        return "\\N"
    if value.utcoffset() is None:
        UtcDateTime().process_bind_param(value, _POSTGRESQL)  # raises NaiveDatetimeError
    return value.isoformat(" ")  # the offset written: the server stores the instant


def _copy_json(value: Any) -> str:
    if value is None:
        return "\\N"
    text = orjson.dumps(value).decode()  # an orjson.Fragment goes as it is
    # Compact JSON holds no raw tab or line break (they are escaped in its strings).
    return text.replace("\\", "\\\\") if "\\" in text else text


_POSTGRESQL: Dialect = postgresql.dialect()  # type: ignore[no-untyped-call]


def _copy_formatter(type_: TypeEngine[Any]) -> Callable[[Any], str] | None:
    """How a value of ``type_`` is written in PostgreSQL's COPY text format (``\\N`` for
    null, backslash escapes in text), or None when no formatter is written for it."""
    if isinstance(type_, UtcDateTime):
        return _copy_timestamp
    if isinstance(type_, Json):
        return _copy_json
    python: type[Any] | None
    try:
        python = type_.python_type
    except NotImplementedError:
        python = None
    formatters: dict[type[Any] | None, Callable[[Any], str]] = {
        str: _copy_text,
        bool: _copy_boolean,
        int: _copy_integer,
        float: _copy_float,
    }
    return formatters.get(python)


def select_in(
    conn: Connection,
    table: Table,
    key: str,
    values: Sequence[Any],
    columns: Iterable[str],
) -> Iterator[tuple[Any, ...]]:
    """Rows of ``table`` whose ``key`` is in ``values``: one query per chunk, not per value.

    On PostgreSQL the keys go as one array parameter (``= ANY(:keys)``), one query for
    them all: a list of hundreds of parameters costs more to prepare than to run.
    """
    selected: list[ColumnElement[Any]] = [table.c[name] for name in columns]
    if conn.dialect.name == "postgresql":
        keys = bindparam("keys", type_=postgresql.ARRAY(table.c[key].type))
        statement = select(*selected).where(table.c[key] == any_(keys))
        if values:
            yield from (tuple(row) for row in conn.execute(statement, {"keys": list(values)}))
        return
    if conn.dialect.name == "sqlite":
        # One statement of constant text per call, the keys as one JSON array: a list of
        # hundreds of parameters is compiled again for every chunk.
        listed = select(func.json_each(bindparam("keys")).table_valued("value").c.value)
        statement = select(*selected).where(table.c[key].in_(listed.scalar_subquery()))
        for chunk in chunked(values, SQLITE_KEYS):
            rows = conn.execute(statement, {"keys": orjson.dumps(list(chunk)).decode()})
            yield from (tuple(row) for row in rows)
        return
    statement = select(*selected).where(table.c[key].in_(bindparam("keys", expanding=True)))
    for chunk in chunked(values):
        yield from (tuple(row) for row in conn.execute(statement, {"keys": list(chunk)}))
