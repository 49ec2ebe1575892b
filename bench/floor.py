"""What PostgreSQL alone spends storing the rows of a first pass: the server's floor.

``server_floor(dsn)`` takes a warehouse a first pass has just filled, reads each table a
pass writes per task (``tasks``, its bridges, ``task_status_changes``) out as COPY text
into memory, and times ``COPY ... FROM STDIN`` of those same bytes into empty copies of
the tables, in three shapes:

- **as the warehouse has them**: every index (``LIKE ... INCLUDING ALL``) and every foreign
  key (the bridges' and the history's pointing to the copy of ``tasks``);
- **without foreign keys**: the indexes only;
- **bare**: no index, no key, no constraint: the heap and its WAL.

Nothing runs in Python while the server works (the bytes are ready before each COPY), so
each figure is the server's own cost for those rows, the least any program writing this
warehouse's tables could spend there. The copies are ordinary tables (WAL-logged, in
shared buffers, as the warehouse's are), made in one transaction that is rolled back: the
warehouse is left as it was. Run as ``python -m bench.floor DSN`` to print it.
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["TABLES", "FloorRow", "server_floor"]

TABLES = (
    "tasks",
    "task_vpgs",
    "task_hosts",
    "task_sites",
    "task_flr_sessions",
    "task_status_changes",
)
"""The tables a first pass writes a row of (or several) per task, parents first."""

SHAPES = ("as the warehouse has them", "without foreign keys", "bare")


@dataclass(frozen=True)
class FloorRow:
    """One table: its rows and the seconds COPY took in each of :data:`SHAPES`."""

    table: str
    rows: int
    seconds: tuple[float, ...]


def _foreign_keys(conn: Any, table: str) -> list[str]:
    query = (
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname"
    )
    return [row[0] for row in conn.execute(query, (table,))]


def _copy_out(conn: Any, table: str) -> tuple[bytes, int]:
    data = bytearray()
    with conn.cursor().copy(f'COPY "{table}" TO STDOUT') as copy:
        for chunk in copy:
            data += chunk
    return bytes(data), data.count(b"\n")


def _copy_in(conn: Any, table: str, data: bytes) -> float:
    started = time.perf_counter()
    with conn.cursor().copy(f'COPY "{table}" FROM STDIN') as copy:
        view = memoryview(data)
        for start in range(0, len(view), 1 << 20):
            copy.write(view[start : start + (1 << 20)])
    return time.perf_counter() - started


def _clone(conn: Any, table: str, shape: int, tag: str) -> str:
    """An empty copy of ``table`` in ``shape`` (an index into :data:`SHAPES`)."""
    name = f"floor_{tag}_{table}"
    including = "INCLUDING ALL" if shape < 2 else "INCLUDING DEFAULTS"
    conn.execute(f'CREATE TABLE "{name}" (LIKE "{table}" {including})')
    if shape == 0:
        for definition in _foreign_keys(conn, table):
            # A key to tasks points to the copy of tasks: the rows copied are the same.
            definition = re.sub(
                r"REFERENCES tasks\(", f'REFERENCES "floor_{tag}_tasks"(', definition
            )
            conn.execute(f'ALTER TABLE "{name}" ADD {definition}')
    return name


def server_floor(dsn: str) -> list[FloorRow]:
    """The server's cost of storing ``dsn``'s rows of :data:`TABLES` (see the module
    docstring); the database must hold a first pass's rows."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        data = {table: _copy_out(conn, table) for table in TABLES}
        seconds: dict[str, list[float]] = {table: [] for table in TABLES}
        for shape in range(len(SHAPES)):
            conn.execute("CHECKPOINT")
            tag = f"s{shape}"
            for table in TABLES:
                name = _clone(conn, table, shape, tag)
                seconds[table].append(_copy_in(conn, name, data[table][0]))
        conn.rollback()
    return [FloorRow(t, data[t][1], tuple(seconds[t])) for t in TABLES]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("dsn", help="postgresql://... of a warehouse a first pass filled")
    args = parser.parse_args(argv)
    rows = server_floor(args.dsn)
    print("| table | rows | " + " | ".join(SHAPES) + " |")
    print("|---|---|" + "---|" * len(SHAPES))
    for row in rows:
        print(
            f"| {row.table} | {row.rows:,} | " + " | ".join(f"{s:.2f}s" for s in row.seconds) + " |"
        )
    totals = [sum(row.seconds[i] for row in rows) for i in range(len(SHAPES))]
    print("| all | | " + " | ".join(f"**{s:.2f}s**" for s in totals) + " |")


if __name__ == "__main__":
    main()
