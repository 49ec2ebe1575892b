"""The hand-written limit: the least a program can do to land ZVM tasks in SQL.

``python -m bench.handwritten --url ZVM_URL --db URL`` logs in, makes ONE
``GET /v1/tasks`` (the same HTTP answer zvm-etl and dlt get from the fake ZVM), decodes it
with orjson (cyclic GC paused), flattens each task into one row of a simpler schema than the
product's, and merges:

- ``hw_tasks``: identifier (key), type, state, progress, initiated_by, complete_reason,
  is_cancellable, started_at, completed_at (dates parsed from ``/Date(ms±hhmm)/``), and the
  payload as received (``jsonb`` on PostgreSQL, text on SQLite);
- ``hw_task_entities``: one bridge table (task, kind, entity identifier) for the vpgs,
  hosts, sites and FLR sessions;

PostgreSQL (``postgresql://...``): psycopg 3, ``COPY`` into temporary tables and one
``INSERT ... SELECT ... ON CONFLICT`` merge per table, one transaction. SQLite
(``sqlite:///path``): the stdlib driver's ``executemany`` upsert, one transaction. No
change detection, no run ledger, no rejected records, no status history: the floor, not a
competitor. It runs with the product's venv (psycopg, orjson, httpx) but imports no ``etl``.
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

__all__ = ["flatten", "main"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KINDS = ("Vpgs", "Hosts", "Sites", "FlrSessions")
_COLUMNS = (
    "task_identifier",
    "type",
    "state",
    "progress",
    "initiated_by",
    "complete_reason",
    "is_cancellable",
    "started_at",
    "completed_at",
    "payload",
)

_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS hw_tasks (
    task_identifier text PRIMARY KEY, type text NOT NULL, state int NOT NULL, progress int,
    initiated_by text, complete_reason text, is_cancellable boolean,
    started_at timestamptz NOT NULL, completed_at timestamptz, payload jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS hw_task_entities (
    task_identifier text NOT NULL, kind text NOT NULL, entity_identifier text NOT NULL,
    PRIMARY KEY (task_identifier, kind, entity_identifier));
"""
_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS hw_tasks (
    task_identifier TEXT PRIMARY KEY, type TEXT NOT NULL, state INTEGER NOT NULL,
    progress INTEGER, initiated_by TEXT, complete_reason TEXT, is_cancellable INTEGER,
    started_at TEXT NOT NULL, completed_at TEXT, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hw_task_entities (
    task_identifier TEXT NOT NULL, kind TEXT NOT NULL, entity_identifier TEXT NOT NULL,
    PRIMARY KEY (task_identifier, kind, entity_identifier));
"""


def _date(value: str | None) -> datetime | None:
    """``/Date(ms)/`` or ``/Date(ms+hhmm)/`` (the offset is informative only) as UTC."""
    if not value:
        return None
    inner = value[6 : value.index(")")]
    cut = max(inner.rfind("+"), inner.rfind("-"))
    millis = int(inner[:cut] if cut > 0 else inner)
    return _EPOCH + timedelta(milliseconds=millis)


def flatten(tasks: list[dict[str, Any]]) -> tuple[list[tuple[Any, ...]], list[tuple[str, ...]]]:
    """(task rows, bridge rows) of decoded tasks."""
    rows: list[tuple[Any, ...]] = []
    bridges: list[tuple[str, ...]] = []
    dumps = orjson.dumps
    for task in tasks:
        identifier = task["TaskIdentifier"]
        status = task["Status"]
        rows.append(
            (
                identifier,
                task["Type"],
                status["State"],
                status["Progress"],
                task["InitiatedBy"],
                task["CompleteReason"],
                task["IsCancellable"],
                _date(task["Started"]),
                _date(task["Completed"]),
                dumps(task).decode(),
            )
        )
        related = task["RelatedEntities"]
        if related:
            for kind in _KINDS:
                for entity in related.get(kind) or ():
                    bridges.append((identifier, kind, entity["identifier"]))
    return rows, bridges


def fetch(url: str) -> bytes:
    """Log in to the (fake) ZVM and GET every task in one answer."""
    with httpx.Client(base_url=url, timeout=600) as client:
        login = client.post("/v1/session/add", auth=("admin", "zerto"))
        login.raise_for_status()
        answer = client.get(
            "/v1/tasks", headers={"x-zerto-session": login.headers["x-zerto-session"]}
        )
        answer.raise_for_status()
        return answer.content


def load_postgres(dsn: str, rows: list[tuple[Any, ...]], bridges: list[tuple[str, ...]]) -> None:
    import psycopg

    names = ", ".join(_COLUMNS)
    updates = ", ".join(f"{name} = excluded.{name}" for name in _COLUMNS[1:])
    with psycopg.connect(dsn) as conn:
        conn.execute(_PG_SCHEMA)
        conn.execute("CREATE TEMP TABLE s_tasks (LIKE hw_tasks) ON COMMIT DROP")
        conn.execute("CREATE TEMP TABLE s_entities (LIKE hw_task_entities) ON COMMIT DROP")
        with conn.cursor() as cur:
            with cur.copy(f"COPY s_tasks ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            with cur.copy("COPY s_entities FROM STDIN") as copy:
                for bridge in bridges:
                    copy.write_row(bridge)
            cur.execute(
                f"INSERT INTO hw_tasks ({names}) SELECT {names} FROM s_tasks "
                f"ON CONFLICT (task_identifier) DO UPDATE SET {updates}"
            )
            cur.execute(
                "INSERT INTO hw_task_entities SELECT * FROM s_entities ON CONFLICT DO NOTHING"
            )


def load_sqlite(path: str, rows: list[tuple[Any, ...]], bridges: list[tuple[str, ...]]) -> None:
    names = ", ".join(_COLUMNS)
    marks = ", ".join("?" for _ in _COLUMNS)
    updates = ", ".join(f"{name} = excluded.{name}" for name in _COLUMNS[1:])
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript(_SQLITE_SCHEMA)
        conn.execute("BEGIN")
        conn.executemany(
            f"INSERT INTO hw_tasks ({names}) VALUES ({marks}) "
            f"ON CONFLICT (task_identifier) DO UPDATE SET {updates}",
            (
                (*row[:7], row[7].isoformat(), row[8].isoformat() if row[8] else None, row[9])
                for row in rows
            ),
        )
        conn.executemany(
            "INSERT INTO hw_task_entities VALUES (?, ?, ?) ON CONFLICT DO NOTHING", bridges
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", required=True, help="the (fake) ZVM's base URL")
    parser.add_argument("--db", required=True, help="postgresql://... or sqlite:///path")
    args = parser.parse_args(argv)
    body = fetch(args.url)
    gc.disable()  # millions of small objects and no cycles: the collector finds nothing
    tasks = orjson.loads(body)
    del body
    rows, bridges = flatten(tasks)
    del tasks
    if args.db.startswith("sqlite:///"):
        load_sqlite(args.db.removeprefix("sqlite:///"), rows, bridges)
    else:
        load_postgres(args.db, rows, bridges)


if __name__ == "__main__":
    main()
