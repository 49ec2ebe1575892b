"""The hand-written limit: a first pass written by hand into the product's own tables.

``python -m bench.handwritten --url ZVM_URL --db URL [--zvm NAME]`` loads every task of a
(fake) ZVM into a warehouse that ``zvm-etl db upgrade`` made and that holds no task yet:
the product's tables, indexes and foreign keys, built by its migrations. It writes the rows
a zvm-etl first pass writes, the fastest way a careful program written for this one job
would:

- log in, ``GET /v1/tasks/types`` (the listing a zvm-etl pass reads for ``task_types``)
  and ONE ``GET /v1/tasks`` of every task (the same HTTP answer zvm-etl and dlt get),
  decode it with orjson (cyclic GC paused) and flatten it in one loop;
- write, parents before children as the foreign keys require: ``zvms`` (one row: name,
  URL, the commonest site part of the task identifiers, ``added_at``); ``task_types`` (the
  listed ones, and any only seen in tasks); ``tasks`` (every column zvm-etl fills, the
  payload being the task's compact JSON as ``orjson.dumps`` writes it and ``payload_hash``
  the sha256 hex of those bytes); ``vpgs``, ``hosts``, ``sites``, ``flr_sessions``
  (identifier, href, first and last seen); the four bridge tables; ``task_status_changes``
  (each task's state and progress at the load time); one ``etl_runs`` row; the ``started``
  and ``completed`` ``sync_cursors``. The timestamps the ETL sets are the load's start (the
  run's ``finished_at`` its end);
- PostgreSQL (``postgresql://...``): psycopg 3, ``COPY`` straight into each table, one
  transaction (text format: binary, with the column types read from the database, measured
  no faster, the server's index and foreign-key work being most of the time); SQLite
  (``sqlite:///path``): the stdlib driver's ``executemany``, one transaction, on a
  connection set up as zvm-etl sets up its own (foreign keys enforced, WAL,
  ``synchronous = NORMAL``, a 48 MiB page cache). Timestamps are stored as zvm-etl stores
  them (``timestamptz``; SQLite text ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC).

What zvm-etl does and this does not: validate records (a malformed task fails the load
instead of going to ``rejected_tasks``), detect changes (there must be nothing to change),
read in windows, commit as it goes, read entity names or the Recovery Report, lock the ZVM's
pass. The floor, not a competitor. It runs with the product's venv (psycopg, orjson, httpx)
and imports no ``etl``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import socket
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

__all__ = ["Table", "flatten", "main"]

Table = tuple[str, Sequence[str], list[tuple[Any, ...]]]
"""A table's name, the columns written and the rows (tuples in that order)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# (RelatedEntities list, entity table, its key column, bridge table)
_KINDS = (
    ("Vpgs", "vpgs", "vpg_identifier", "task_vpgs"),
    ("Hosts", "hosts", "host_identifier", "task_hosts"),
    ("Sites", "sites", "site_identifier", "task_sites"),
    ("FlrSessions", "flr_sessions", "flr_session_identifier", "task_flr_sessions"),
)
_TASK_COLUMNS = (
    "task_identifier",
    "zvm",
    "task_id",
    "site_identifier",
    "type",
    "state",
    "progress",
    "initiated_by",
    "complete_reason",
    "is_cancellable",
    "started_at",
    "completed_at",
    "started_utc_offset_minutes",
    "completed_utc_offset_minutes",
    "duration_seconds",
    "link_href",
    "payload",
    "payload_hash",
    "first_seen_at",
    "last_seen_at",
    "last_changed_at",
)
_RUN_COLUMNS = (
    "zvm",
    "trigger",
    "started_at",
    "finished_at",
    "status",
    "tasks_received",
    "tasks_inserted",
    "requests",
    "host",
    "pid",
)
_SQLITE_SETUP = (
    "PRAGMA foreign_keys = ON",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA cache_size = -49152",
)


def _date(value: str) -> tuple[datetime, int | None]:
    """``/Date(ms)/`` or ``/Date(ms±hhmm)/`` as (UTC, the offset in minutes or None)."""
    inner = value[6 : value.index(")")]
    cut = max(inner.rfind("+"), inner.rfind("-"))
    if cut <= 0:
        return _EPOCH + timedelta(milliseconds=int(inner)), None
    offset = int(inner[cut + 1 : cut + 3]) * 60 + int(inner[cut + 3 : cut + 5])
    when = _EPOCH + timedelta(milliseconds=int(inner[:cut]))
    return when, -offset if inner[cut] == "-" else offset


def flatten(
    tasks: list[dict[str, Any]], *, zvm: str, url: str, listed_types: list[str], now: datetime
) -> list[Table]:
    """The rows of a first pass of ``tasks`` (decoded) from ZVM ``zvm`` at ``url``, table by
    table, parents first."""
    task_rows: list[tuple[Any, ...]] = []
    history: list[tuple[Any, ...]] = []
    entities: list[dict[str, str | None]] = [{} for _ in _KINDS]
    bridges: list[list[tuple[Any, ...]]] = [[] for _ in _KINDS]
    kinds = tuple(zip((kind for kind, *_ in _KINDS), entities, bridges, strict=True))
    dumps, sha256 = orjson.dumps, hashlib.sha256
    for task in tasks:
        identifier = task["TaskIdentifier"]
        task_id, _, site = identifier.partition(".")
        status = task["Status"]
        state, progress = status["State"], status["Progress"]
        started, started_offset = _date(task["Started"])
        ended = task["Completed"]
        completed, completed_offset = _date(ended) if ended else (None, None)
        payload = dumps(task)
        task_rows.append(
            (
                identifier,
                zvm,
                task_id,
                site or None,
                task["Type"],
                state,
                progress,
                task["InitiatedBy"],
                task["CompleteReason"],
                task["IsCancellable"],
                started,
                completed,
                started_offset,
                completed_offset,
                (completed - started).total_seconds() if completed else None,
                task["Link"]["href"],
                payload.decode(),
                sha256(payload).hexdigest(),
                now,
                now,
                now,
            )
        )
        history.append((identifier, now, state, progress))
        related = task["RelatedEntities"]
        if related:
            for kind, found, bridge in kinds:
                for entity in related.get(kind) or ():
                    key = entity["identifier"]
                    found[key] = entity["href"]
                    bridge.append((identifier, key))
    sites = Counter(row[3] for row in task_rows if row[3])
    home = max(sites.items(), key=lambda item: (item[1], item[0]))[0] if sites else None
    unlisted = sorted({row[4] for row in task_rows} - set(listed_types))
    types = [(name, True, now) for name in listed_types] + [(name, False, now) for name in unlisted]
    started = max(row[10] for row in task_rows)
    completed = max((row[11] for row in task_rows if row[11]), default=None)
    cursors = [(zvm, "started", started, now)]
    if completed is not None:
        cursors.append((zvm, "completed", completed, now))
    tables: list[Table] = [
        ("zvms", ("name", "url", "site_identifier", "added_at"), [(zvm, url, home, now)]),
        ("task_types", ("name", "listed_by_zvm", "first_seen_at"), types),
        ("tasks", _TASK_COLUMNS, task_rows),
    ]
    for (_, table, key, _), found in zip(_KINDS, entities, strict=True):
        columns = (key, "href", "first_seen_at", "last_seen_at")
        tables.append((table, columns, [(name, href, now, now) for name, href in found.items()]))
    for (_, _, key, table), bridge in zip(_KINDS, bridges, strict=True):
        tables.append((table, ("task_identifier", key), bridge))
    history_columns = ("task_identifier", "observed_at", "state", "progress")
    tables.append(("task_status_changes", history_columns, history))
    tables.append(("sync_cursors", ("zvm", "cursor", "value", "updated_at"), cursors))
    return tables


def fetch(url: str) -> tuple[list[str], bytes]:
    """Log in to the (fake) ZVM; its task types, and every task in one answer."""
    with httpx.Client(base_url=url, timeout=600) as client:
        login = client.post("/v1/session/add", auth=("admin", "zerto"))
        login.raise_for_status()
        client.headers["x-zerto-session"] = login.headers["x-zerto-session"]
        types = client.get("/v1/tasks/types")
        types.raise_for_status()
        answer = client.get("/v1/tasks")
        answer.raise_for_status()
        return list(types.json()), answer.content


def with_run(tables: list[Table], zvm: str, now: datetime, tasks: int) -> Iterator[Table]:
    """``tables``, then the ``etl_runs`` row of the load, made when the loop
    gets to it (after the other tables are written): its ``finished_at`` is the end."""
    yield from tables
    run = (zvm, "sync", now, datetime.now(UTC), "succeeded", tasks, tasks, 3)
    yield "etl_runs", _RUN_COLUMNS, [(*run, socket.gethostname(), os.getpid())]


def load_postgres(dsn: str, tables: Iterable[Table]) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        for table, columns, rows in tables:
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


def _sqlite_time(value: datetime) -> str:
    """A UTC datetime as zvm-etl stores it in SQLite: naive text with microseconds."""
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def load_sqlite(path: str, tables: Iterable[Table]) -> None:
    sqlite3.register_adapter(datetime, _sqlite_time)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in _SQLITE_SETUP:
            conn.execute(pragma)
        conn.execute("BEGIN IMMEDIATE")
        for table, columns, rows in tables:
            marks = ", ".join("?" for _ in columns)
            conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
        conn.execute("COMMIT")
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", required=True, help="the (fake) ZVM's base URL")
    parser.add_argument("--db", required=True, help="postgresql://... or sqlite:///path")
    parser.add_argument("--zvm", default="bench", help="the ZVM's name (zvms.name)")
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    types, body = fetch(args.url)
    gc.disable()  # millions of small objects and no cycles: the collector finds nothing
    tasks = orjson.loads(body)
    del body
    tables = flatten(tasks, zvm=args.zvm, url=args.url, listed_types=types, now=now)
    loading = with_run(tables, args.zvm, now, len(tasks))
    del tasks
    if args.db.startswith("sqlite:///"):
        load_sqlite(args.db.removeprefix("sqlite:///"), loading)
    else:
        load_postgres(args.db, loading)


if __name__ == "__main__":
    main()
