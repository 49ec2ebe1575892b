"""Per-dialect bulk upserts: PostgreSQL and SQLite ``ON CONFLICT``, MySQL ``ON DUPLICATE KEY``.

One statement is built per (table, shape) and executed with a list of parameter sets, so
SQLAlchemy's "insertmanyvalues" sends many rows per round trip: never one round trip per
row. Callers pass plain dicts whose keys are the table's column names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, bindparam, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
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
    conn: Connection, table: Table, key: Sequence[str], update: Sequence[str]
) -> Executable:
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        module: Any = postgresql if dialect == "postgresql" else sqlite
        insert = module.insert(table)
        if not update:
            return insert.on_conflict_do_nothing(index_elements=list(key))  # type: ignore[no-any-return]
        return insert.on_conflict_do_update(  # type: ignore[no-any-return]
            index_elements=list(key), set_={name: insert.excluded[name] for name in update}
        )
    if dialect in ("mysql", "mariadb"):
        insert = mysql.insert(table)
        # "Do nothing" is written as a no-op assignment: INSERT IGNORE would also swallow
        # errors that are not duplicates (a too-long value, a broken foreign key).
        names = update or [key[0]]
        return insert.on_duplicate_key_update({name: insert.inserted[name] for name in names})
    raise NotImplementedError(f"upserts are not written for the {dialect} dialect")


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str],
    update: Sequence[str] = (),
) -> None:
    """Insert ``rows``; on a key conflict set the ``update`` columns (none: keep the row).

    Every row must carry the same keys. Runs inside the caller's transaction.
    """
    if not rows:
        return
    conn.execute(_statement(conn, table, key, update), list(rows))


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
