"""Writing recovery operations, and linking each to its VPG and task, in the caller's
transaction.

:func:`save_recovery_operations` takes the operations one window of the Recovery Report
gave and, with a handful of set-based statements:

1. reads the stored ``payload_hash`` and links of those operations, and classifies each as
   inserted (new), updated (its entry changed: every column is rewritten and its steps
   replaced) or unchanged (only ``last_seen_at`` moves, and the links when it lacked one);
2. links each operation to a VPG (``vpg_identifier``, ``vpg_link``):
   ``reported`` when the report gives ``VpgIdentifier``; else ``name``: the one VPG this ZVM
   lists (or last listed) under the reported name, the listed one first; else ``task``: the
   one VPG the matched task names (below). A VPG renamed since the operation is found through
   its identifier or its task only: the warehouse keeps no old names;
3. links it to a task (``task_identifier``, ``task_match_seconds``): among this ZVM's tasks
   of the operation's type (FailoverTest: ``FailOverTest``; Failover: ``FailOver`` or
   ``FailoverBeforeCommit``; Move: ``Move`` or ``MoveBeforeCommit``; any of them when the
   type is unknown), compared case-insensitively, that started within
   :data:`TASK_MATCH_TOLERANCE` of the operation's start and name its VPG, the closest in
   start wins; a tie goes to the type's main task type, then to the smaller identifier.
   With no VPG known, a task is matched only when exactly one candidate is the closest
   (several VPGs tested in the same second cannot be told apart by time alone).

Links are made when an operation is new or changed, and made again for one that lacks a
task or a VPG whenever it is read (and by :func:`relink_recovery_operations` at the end of
every read of the report), so one read before its task was loaded or its VPG's name listed
is linked later; a link once made stays while the entry does not change. Nothing here
commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, delete, func, select, update

from etl.recovery import RecoveryOperation, RejectedOperation
from etl.warehouse import schema
from etl.warehouse.load import LoadCounts, is_open, keep_rejected
from etl.warehouse.upsert import chunked, upsert

__all__ = [
    "RECOVERY_TASK_TYPES",
    "TASK_MATCH_TOLERANCE",
    "RecoveryCounts",
    "earliest_open_recovery_task",
    "relink_recovery_operations",
    "save_recovery_operations",
    "save_recovery_status",
    "save_rejected_operations",
]

TASK_MATCH_TOLERANCE = timedelta(minutes=5)
"""How far apart an operation's start and its task's may be."""

RECOVERY_TASK_TYPES: dict[str, tuple[str, ...]] = {
    "FailoverTest": ("failovertest",),
    "Failover": ("failover", "failoverbeforecommit"),
    "Move": ("move", "movebeforecommit"),
}
"""The task types (lower-cased) of each recovery type, the main one first."""

_ALL_TYPES = tuple(sorted({t for types in RECOVERY_TASK_TYPES.values() for t in types}))
_SOURCE_COLUMNS = (
    "vpg_name",
    "recovery_type",
    "protected_site_name",
    "recovery_site_name",
    "started_at",
    "ended_at",
    "point_in_time",
    "rto_seconds",
    "status",
    "initiated_by",
    "notes",
    "payload",
    "payload_hash",
)
_LINK_COLUMNS = ("vpg_identifier", "vpg_link", "task_identifier", "task_match_seconds")
_KEY = ("zvm", "operation_identifier")


@dataclass
class RecoveryCounts(LoadCounts):
    """How the operations a pass read were classified (as :class:`LoadCounts` classifies
    tasks), and how many of them are linked to a task."""

    linked: int = 0
    """How many of those received are linked to a task."""

    def add(self, other: RecoveryCounts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class _Subject:
    """What linking an operation needs to know of it."""

    operation_identifier: str
    vpg_identifier: str | None
    """The report's own VpgIdentifier."""
    vpg_name: str | None
    recovery_type: str | None
    started_at: datetime


@dataclass(frozen=True)
class _Task:
    identifier: str
    type: str
    started_at: datetime
    vpgs: tuple[str, ...]


def save_recovery_operations(
    conn: Connection, zvm: str, operations: Sequence[RecoveryOperation], *, now: datetime
) -> RecoveryCounts:
    """Save one window's distinct operations of ``zvm`` (see the module docstring)."""
    counts = RecoveryCounts(received=len(operations))
    if not operations:
        return counts
    table = schema.recovery_operations
    stored: dict[str, tuple[str, bool]] = {}  # identifier -> (payload_hash, fully linked)
    for chunk in chunked([op.operation_identifier for op in operations]):
        query = select(
            table.c.operation_identifier,
            table.c.payload_hash,
            table.c.task_identifier.is_not(None) & table.c.vpg_identifier.is_not(None),
        ).where(table.c.zvm == zvm, table.c.operation_identifier.in_(list(chunk)))
        stored.update((row[0], (row[1], bool(row[2]))) for row in conn.execute(query))
    links = _links(conn, zvm, [_subject(op) for op in operations])
    full: list[dict[str, Any]] = []
    touched: list[dict[str, Any]] = []  # unchanged, missing a link: the links made now
    seen: list[dict[str, Any]] = []  # unchanged and linked: only last_seen_at moves
    for op in operations:
        link = links[op.operation_identifier]
        before = stored.get(op.operation_identifier)
        counts.linked += link["task_identifier"] is not None
        if before is not None and before[0] == op.payload_hash:
            counts.unchanged += 1
            if before[1]:  # an unchanged operation keeps the links it has
                seen.append({"k_id": op.operation_identifier, "last_seen_at": now})
            else:
                touched.append({"k_id": op.operation_identifier, "last_seen_at": now, **link})
            continue
        counts.inserted += before is None
        counts.updated += before is not None
        row = {name: getattr(op, name) for name in _SOURCE_COLUMNS}
        row["payload"] = orjson.Fragment(op.payload)  # written as it is, not re-encoded
        row |= {"zvm": zvm, "operation_identifier": op.operation_identifier, **link}
        row |= {"first_seen_at": now, "last_seen_at": now, "last_changed_at": now}
        full.append(row)
    update_columns = [*_SOURCE_COLUMNS, *_LINK_COLUMNS, "last_seen_at", "last_changed_at"]
    upsert(conn, table, full, key=_KEY, update=update_columns)
    _update_each(conn, zvm, touched, ("last_seen_at", *_LINK_COLUMNS))
    _update_each(conn, zvm, seen, ("last_seen_at",))
    rewritten = {row["operation_identifier"] for row in full}
    _save_steps(conn, zvm, [op for op in operations if op.operation_identifier in rewritten])
    return counts


def _save_steps(conn: Connection, zvm: str, operations: Sequence[RecoveryOperation]) -> None:
    """Replace the steps of new and changed operations."""
    steps = schema.recovery_operation_steps
    for chunk in chunked([op.operation_identifier for op in operations]):
        conn.execute(
            delete(steps).where(steps.c.zvm == zvm, steps.c.operation_identifier.in_(list(chunk)))
        )
    rows = [
        {
            "zvm": zvm,
            "operation_identifier": op.operation_identifier,
            "step_number": step.number,
            "description": step.description,
            "result": step.result,
            "started_at": step.started_at,
            "ended_at": step.ended_at,
            "execution_seconds": step.execution_seconds,
        }
        for op in operations
        for step in op.steps
    ]
    if rows:
        conn.execute(steps.insert(), rows)


# -- links ---------------------------------------------------------------------------------


def _subject(op: RecoveryOperation) -> _Subject:
    return _Subject(
        op.operation_identifier, op.vpg_identifier, op.vpg_name, op.recovery_type, op.started_at
    )


def relink_recovery_operations(conn: Connection, zvm: str, *, started_since: datetime) -> int:
    """Link again ``zvm``'s operations started since ``started_since`` that lack a task or
    a VPG: their task may have been loaded, or their VPG's name listed, since they were
    read. Returns how many gained a link."""
    table = schema.recovery_operations
    query = select(
        table.c.operation_identifier,
        table.c.vpg_identifier,
        table.c.vpg_link,
        table.c.vpg_name,
        table.c.recovery_type,
        table.c.started_at,
        table.c.task_identifier,
    ).where(
        table.c.zvm == zvm,
        table.c.started_at >= started_since,
        (table.c.task_identifier.is_(None)) | (table.c.vpg_identifier.is_(None)),
    )
    stored = list(conn.execute(query))
    subjects = [
        _Subject(row[0], row[1] if row[2] == "reported" else None, row[3], row[4], row[5])
        for row in stored
    ]
    links = _links(conn, zvm, subjects)
    gained = [
        {"k_id": row[0], **links[row[0]]}
        for row in stored
        if (links[row[0]]["task_identifier"], links[row[0]]["vpg_identifier"]) != (row[6], row[1])
    ]
    _update_each(conn, zvm, gained, _LINK_COLUMNS)
    return len(gained)


def _update_each(
    conn: Connection, zvm: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]
) -> None:
    """Set ``columns`` of each operation of ``rows`` (keyed by ``k_id``): one statement
    executed with every row's values."""
    if not rows:
        return
    table = schema.recovery_operations
    statement = (
        update(table)
        .where(table.c.zvm == zvm, table.c.operation_identifier == bindparam("k_id"))
        .values({name: bindparam(name) for name in columns})
    )
    conn.execute(statement, list(rows))


def _links(conn: Connection, zvm: str, operations: Sequence[_Subject]) -> dict[str, dict[str, Any]]:
    """Each operation's link columns (see the module docstring)."""
    by_name = _vpgs_by_name(conn, zvm, {op.vpg_name.strip() for op in operations if op.vpg_name})
    tasks = _candidate_tasks(conn, zvm, [op.started_at for op in operations])
    links: dict[str, dict[str, Any]] = {}
    for op in operations:
        vpg, how = op.vpg_identifier, "reported" if op.vpg_identifier else None
        if vpg is None and op.vpg_name:
            vpg = by_name.get(op.vpg_name.strip())
            how = "name" if vpg is not None else None
        task, distance = _closest_task(op, vpg, tasks)
        if vpg is None and task is not None and len(task.vpgs) == 1:
            vpg, how = task.vpgs[0], "task"
        links[op.operation_identifier] = {
            "vpg_identifier": vpg,
            "vpg_link": how,
            "task_identifier": task.identifier if task is not None else None,
            "task_match_seconds": distance,
        }
    return links


def _vpgs_by_name(conn: Connection, zvm: str, names: set[str]) -> dict[str, str]:
    """Names this ZVM's VPG listing gives exactly one VPG, listed ones first: name →
    identifier."""
    vpgs = schema.vpgs
    found: dict[str, list[tuple[bool, str]]] = {}
    for chunk in chunked(sorted(names)):
        query = select(vpgs.c.name, vpgs.c.vpg_identifier, vpgs.c.unlisted_at).where(
            vpgs.c.zvm == zvm, vpgs.c.name.in_(list(chunk))
        )
        for name, identifier, unlisted_at in conn.execute(query):
            found.setdefault(name, []).append((unlisted_at is None, identifier))
    chosen: dict[str, str] = {}
    for name, candidates in found.items():
        listed = [identifier for is_listed, identifier in candidates if is_listed]
        pool = listed or [identifier for _, identifier in candidates]
        if len(pool) == 1:
            chosen[name] = pool[0]
    return chosen


def _candidate_tasks(conn: Connection, zvm: str, starts: Sequence[datetime]) -> list[_Task]:
    """This ZVM's recovery-type tasks that started near any of ``starts``, with their VPGs."""
    if not starts:
        return []
    tasks, bridge = schema.tasks, schema.task_vpgs
    query = (
        select(tasks.c.task_identifier, tasks.c.type, tasks.c.started_at, bridge.c.vpg_identifier)
        .select_from(tasks.outerjoin(bridge, bridge.c.task_identifier == tasks.c.task_identifier))
        .where(
            tasks.c.zvm == zvm,
            func.lower(tasks.c.type).in_(_ALL_TYPES),
            tasks.c.started_at >= min(starts) - TASK_MATCH_TOLERANCE,
            tasks.c.started_at <= max(starts) + TASK_MATCH_TOLERANCE,
        )
    )
    found: dict[str, _Task] = {}
    for identifier, task_type, started_at, vpg in conn.execute(query):
        known = found.get(identifier)
        vpgs = known.vpgs if known is not None else ()
        if vpg is not None:
            vpgs = (*vpgs, vpg)
        found[identifier] = _Task(identifier, task_type, started_at, vpgs)
    return list(found.values())


def _closest_task(
    op: _Subject, vpg: str | None, tasks: Iterable[_Task]
) -> tuple[_Task | None, float | None]:
    types = RECOVERY_TASK_TYPES.get(op.recovery_type or "", _ALL_TYPES)
    ranked: list[tuple[float, int, str, _Task]] = []
    for task in tasks:
        kind = task.type.lower()
        if kind not in types or (vpg is not None and vpg not in task.vpgs):
            continue
        distance = abs((task.started_at - op.started_at).total_seconds())
        if distance <= TASK_MATCH_TOLERANCE.total_seconds():
            ranked.append((distance, types.index(kind), task.identifier, task))
    if not ranked:
        return None, None
    ranked.sort(key=lambda item: item[:3])
    best = ranked[0]
    if vpg is None and len(ranked) > 1 and ranked[1][0] == best[0]:
        return None, None  # several tasks as close: time alone cannot tell them apart
    return best[3], best[0]


# -- the rest ------------------------------------------------------------------------------


def save_rejected_operations(
    conn: Connection,
    zvm: str,
    rejected: Sequence[RejectedOperation],
    *,
    run_id: int,
    now: datetime,
) -> None:
    """Keep the entries that could not be loaded, with the raw text and the reason; an
    entry this ZVM already sent (the same raw text) is stored once."""
    rows = [
        {
            "run_id": run_id,
            "zvm": zvm,
            "operation_identifier": item.operation_identifier,
            "received_at": now,
            "reason": item.reason,
            "payload": item.raw,
        }
        for item in rejected
    ]
    keep_rejected(conn, schema.rejected_recovery_operations, zvm, rows)


def save_recovery_status(conn: Connection, zvm: str, *, error: str | None, now: datetime) -> None:
    """Record that ``zvm``'s report was read now, and what went wrong (None: nothing)."""
    table = schema.zvms
    conn.execute(
        update(table)
        .where(table.c.name == zvm)
        .values(recovery_report_read_at=now, recovery_report_error=error)
    )


def earliest_open_recovery_task(
    conn: Connection, zvm: str, *, started_since: datetime
) -> datetime | None:
    """When the oldest of ``zvm``'s failovers, tests and moves still open in the warehouse
    started (only those started since ``started_since``; older ones the ZVM has purged).
    Its operation is not in the report yet: the report's cursor must not pass it."""
    tasks = schema.tasks
    query = select(func.min(tasks.c.started_at)).where(
        tasks.c.zvm == zvm,
        func.lower(tasks.c.type).in_(_ALL_TYPES),
        is_open(tasks.c.state),
        tasks.c.started_at >= started_since,
    )
    value: datetime | None = conn.execute(query).scalar()
    return value
