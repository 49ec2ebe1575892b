"""The warehouse side of ``zvm-etl verify``: what it reads, and the ``verifications`` rows.

Verify reads the tasks the warehouse holds for a ZVM, a range of ``started_at`` at a time
(:func:`read_started_between`, through the ``(zvm, started_at)`` index), looks up the
identifiers a ZVM returned that the range lacks (:func:`read_known`: in ``tasks`` under any
ZVM or range, or in ``rejected_tasks``), and writes nothing but its own row per ZVM
(:func:`save_verification`). :func:`read_verification_status` gives ``zvm-etl status`` and
the metrics the last verification of a ZVM and the last one that found it complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from etl.warehouse import schema
from etl.warehouse.upsert import select_in

__all__ = [
    "Held",
    "VerificationRow",
    "VerificationStatus",
    "read_known",
    "read_oldest_started",
    "read_started_between",
    "read_verification_status",
    "save_verification",
]

Held = tuple[datetime, datetime | None]
"""A task the warehouse holds: its ``started_at`` and ``completed_at``."""


def read_oldest_started(conn: Connection, zvm: str) -> datetime | None:
    """The ``started_at`` of the oldest task the warehouse holds for ``zvm`` (None: none)."""
    tasks = schema.tasks
    oldest: datetime | None = conn.execute(
        select(func.min(tasks.c.started_at)).where(tasks.c.zvm == zvm)
    ).scalar_one_or_none()
    return oldest


def read_started_between(
    conn: Connection, zvm: str, start: datetime, end: datetime
) -> dict[str, Held]:
    """The tasks the warehouse holds for ``zvm`` with ``start <= started_at < end``, by
    identifier."""
    tasks = schema.tasks
    rows = conn.execute(
        select(tasks.c.task_identifier, tasks.c.started_at, tasks.c.completed_at).where(
            tasks.c.zvm == zvm, tasks.c.started_at >= start, tasks.c.started_at < end
        )
    )
    return {identifier: (started, completed) for identifier, started, completed in rows}


def read_known(conn: Connection, zvm: str, identifiers: Sequence[str]) -> tuple[set[str], set[str]]:
    """Of ``identifiers``: those in ``tasks`` (whatever their ZVM or start), and those in
    ``rejected_tasks`` for ``zvm`` (records the ETL received and could not load)."""
    if not identifiers:
        return set(), set()
    key = "task_identifier"
    held = {row[0] for row in select_in(conn, schema.tasks, key, identifiers, [key])}
    found = select_in(conn, schema.rejected_tasks, key, identifiers, [key, "zvm"])
    rejected = {identifier for identifier, sender in found if sender == zvm}
    return held, rejected


def save_verification(engine: Engine, row: dict[str, Any]) -> int:
    """Commit one ``verifications`` row (its columns as keys, ``id`` left out); its id."""
    with engine.begin() as conn:
        result = conn.execute(schema.verifications.insert().values(**row))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


@dataclass(frozen=True)
class VerificationRow:
    """One ``verifications`` row, as status and the metrics read it."""

    finished_at: datetime
    status: str
    since: datetime | None
    until: datetime | None
    days_differing: int
    missing_in_warehouse: int
    missing_on_zvm: int
    error: str | None


@dataclass(frozen=True)
class VerificationStatus:
    """A ZVM's last verification, and the last one that found its history complete."""

    last: VerificationRow | None
    last_complete: VerificationRow | None


def read_verification_status(conn: Connection, zvm: str) -> VerificationStatus:
    """The last verification of ``zvm`` and the last complete one (None: never)."""
    table = schema.verifications
    columns = [
        table.c.finished_at,
        table.c.status,
        table.c.since,
        table.c.until,
        table.c.days_differing,
        table.c.missing_in_warehouse,
        table.c.missing_on_zvm,
        table.c.error,
    ]

    def newest(*conditions: Any) -> VerificationRow | None:
        found = conn.execute(
            select(*columns)
            .where(table.c.zvm == zvm, *conditions)
            .order_by(table.c.id.desc())
            .limit(1)
        ).first()
        return VerificationRow(*found) if found is not None else None

    return VerificationStatus(newest(), newest(table.c.status == "complete"))
