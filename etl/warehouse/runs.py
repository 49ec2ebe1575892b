"""The run ledger: ``zvms`` rows and the ``etl_runs`` row of each pass.

A pass's ``etl_runs`` row is inserted as ``running`` and committed before the pass starts,
so a pass that dies leaves a trace; the pass's own transaction marks it ``succeeded`` with
its counts in the same commit as the data, and a pass that fails is marked ``failed`` with
its error in a transaction of its own after the data transaction rolled back.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime

from sqlalchemy import Connection, Engine, select, update

from etl.warehouse import schema
from etl.warehouse.load import LoadCounts
from etl.warehouse.upsert import upsert

__all__ = [
    "ABANDONED",
    "ERROR_LIMIT",
    "ensure_zvm",
    "fail_run",
    "finish_run",
    "mark_abandoned",
    "start_run",
]

ERROR_LIMIT = 2000
"""etl_runs.error keeps a paragraph, not a traceback."""

ABANDONED = (
    "abandoned: the process ended without finishing (killed, crashed or its machine stopped); "
    "nothing it fetched was committed, and a later pass loaded it again"
)


_HOST = socket.gethostname()[:255]


def ensure_zvm(conn: Connection, name: str, url: str, *, now: datetime) -> None:
    """Add the ZVM to ``zvms`` the first time it is synced; keep its URL current."""
    table = schema.zvms
    stored = conn.execute(select(table.c.url).where(table.c.name == name)).scalar_one_or_none()
    if stored is None:
        upsert(conn, table, [{"name": name, "url": url, "added_at": now}], key=["name"])
    elif stored != url:
        conn.execute(update(table).where(table.c.name == name).values(url=url))


def start_run(engine: Engine, *, zvm: str, url: str, trigger: str, now: datetime) -> int:
    """Commit a ``running`` etl_runs row for a pass (and the zvms row); return its run_id."""
    with engine.begin() as conn:
        ensure_zvm(conn, zvm, url, now=now)
        result = conn.execute(
            schema.etl_runs.insert().values(
                zvm=zvm,
                trigger=trigger,
                started_at=now,
                status="running",
                host=_HOST,
                pid=os.getpid(),
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def finish_run(
    conn: Connection,
    run_id: int,
    counts: LoadCounts,
    *,
    requests: int,
    retries: int,
    now: datetime,
) -> None:
    """Mark the run succeeded with its counts, inside the pass's transaction."""
    record_progress(conn, run_id, counts, requests=requests, retries=retries)
    conn.execute(
        update(schema.etl_runs)
        .where(schema.etl_runs.c.run_id == run_id)
        .values(status="succeeded", finished_at=now)
    )


def record_progress(
    conn: Connection, run_id: int, counts: LoadCounts, *, requests: int, retries: int
) -> None:
    """The counts of what a running pass committed so far, inside the transaction that
    commits it (a pass that fails later keeps what it committed, and its counts)."""
    conn.execute(
        update(schema.etl_runs)
        .where(schema.etl_runs.c.run_id == run_id)
        .values(
            tasks_received=counts.received,
            tasks_inserted=counts.inserted,
            tasks_updated=counts.updated,
            tasks_unchanged=counts.unchanged,
            tasks_rejected=counts.rejected,
            requests=requests,
            retries=retries,
        )
    )


def fail_run(
    engine: Engine, run_id: int, error: str, *, requests: int, retries: int, now: datetime
) -> None:
    """Mark the run failed with a one-paragraph error, in a transaction of its own."""
    text = " ".join(error.split())
    if len(text) > ERROR_LIMIT:
        text = text[: ERROR_LIMIT - 1] + "…"
    with engine.begin() as conn:
        conn.execute(
            update(schema.etl_runs)
            .where(schema.etl_runs.c.run_id == run_id)
            .values(
                status="failed", finished_at=now, error=text, requests=requests, retries=retries
            )
        )


def synced_since(engine: Engine, zvm: str, since: datetime) -> datetime | None:
    """When another process's pass over ``zvm`` that started at or after ``since``
    succeeded (the latest such start), or None: used to run each pass once when several
    processes share the ZVMs (this process's own passes and backfills do not count)."""
    table = schema.etl_runs
    ours = (table.c.host == _HOST) & (table.c.pid == os.getpid())
    with engine.connect() as conn:
        started = conn.execute(
            select(table.c.started_at)
            .where(
                table.c.zvm == zvm,
                table.c.status == "succeeded",
                table.c.trigger != "backfill",
                table.c.started_at >= since,
                ~ours,
            )
            .order_by(table.c.started_at.desc())
            .limit(1)
        ).scalar_one_or_none()
        conn.rollback()
    return started


def mark_abandoned(engine: Engine, zvm: str, *, now: datetime) -> int:
    """Mark the ZVM's ``running`` rows failed as abandoned; return how many there were.

    Only call this while holding the ZVM's lock (:func:`etl.warehouse.locks.zvm_lock`):
    then no live process can be running a pass over it, so a ``running`` row is a pass
    whose process died.
    """
    table = schema.etl_runs
    with engine.begin() as conn:
        result = conn.execute(
            update(table)
            .where(table.c.zvm == zvm, table.c.status == "running")
            .values(status="failed", finished_at=now, error=ABANDONED)
        )
        return int(result.rowcount)
