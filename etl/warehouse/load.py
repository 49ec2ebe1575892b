"""Writing one pass's records into the warehouse, inside the caller's transaction.

:class:`TaskLoader` is the load side of one pass over one ZVM. Each :meth:`save_tasks`
call takes a batch of normalized tasks and, with a handful of set-based statements (never
one round trip per task):

1. reads the stored ``payload_hash``, ``state`` and ``progress`` of the batch's tasks;
2. classifies each task as inserted (new), updated (its payload changed, so a column taken
   from the source may have) or unchanged;
3. adds unknown task types to ``task_types`` and upserts the related entities of new and
   changed tasks (an entity's ``last_seen_at`` is the last load that brought a new or
   changed task referencing it);
4. upserts new and changed tasks, and moves only ``last_seen_at`` of unchanged ones;
5. replaces the bridge rows of changed tasks and adds those of new ones;
6. appends a ``task_status_changes`` row where (state, progress) differs from the last one;
7. notes the (zvm, UTC day) of every new and changed task, whose ``task_daily_totals``
   and ``vpg_daily_tests`` rows :meth:`TaskLoader.save_daily_totals` recounts before the
   caller commits.

Nothing here commits: the pass commits once, with the cursors and its ``etl_runs`` row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Dialect,
    Table,
    bindparam,
    delete,
    func,
    select,
    update,
)

from etl.normalize import Rejected, TaskRecord
from etl.warehouse import schema
from etl.warehouse.daily import DayKeys, save_daily_totals, task_day
from etl.warehouse.upsert import (
    PreparedRows,
    chunked,
    insert_new,
    row_preparer,
    select_in,
    upsert,
)

__all__ = [
    "LoadCounts",
    "LoadState",
    "PreparedTask",
    "TaskLoader",
    "delete_cursor",
    "is_open",
    "keep_rejected",
    "prepare_tasks",
    "read_cursors",
    "save_cursors",
    "upsert_task_types",
]


def is_open(state: ColumnElement[int]) -> ColumnElement[bool]:
    """``state IN (the open states)``, listed (not negated, so an index serves it) and
    written into the SQL as literals: PostgreSQL matches the condition to the predicate of
    the partial index ``ix_tasks_open`` in every plan, a prepared statement's generic plan
    (a long-running scheduler's) included, which bound values would not match."""
    states: BindParameter[list[int]] = bindparam(
        "open_states", list(schema.OPEN_STATES), expanding=True, literal_execute=True
    )
    return state.in_(states)


_TASK_KEY = ("task_identifier",)
_SOURCE_COLUMNS = (
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
)
# (TaskRecord attribute, entity table, bridge table, key column)
_ENTITIES: tuple[tuple[str, Table, Table, str], ...] = (
    ("vpgs", schema.vpgs, schema.task_vpgs, "vpg_identifier"),
    ("hosts", schema.hosts, schema.task_hosts, "host_identifier"),
    ("sites", schema.sites, schema.task_sites, "site_identifier"),
    ("flr_sessions", schema.flr_sessions, schema.task_flr_sessions, "flr_session_identifier"),
)


_TASK_COLUMNS = (
    "task_identifier",
    "zvm",
    *_SOURCE_COLUMNS,
    "first_seen_at",
    "last_seen_at",
    "last_changed_at",
)
_STATUS_COLUMNS = ("task_identifier", "observed_at", "state", "progress")


@dataclass(frozen=True, slots=True)
class PreparedTask:
    """A task's rows in the form the driver sends (:class:`PreparedRows`), made ahead of
    the writer (:func:`prepare_tasks`): its ``tasks`` row, its bridge rows (one tuple per
    bridge table, in ``_ENTITIES`` order) and its ``task_status_changes`` row at the pass's
    moment."""

    task: Any
    bridges: tuple[tuple[Any, ...], ...]
    status: Any


def prepare_tasks(
    records: Sequence[TaskRecord], *, zvm: str, now: datetime, dialect: Dialect
) -> dict[str, PreparedTask]:
    """The rows of ``records`` in ``dialect``'s form (PostgreSQL or SQLite), by task
    identifier, as a pass at ``now`` over ``zvm`` writes them when they are new. Pure work
    with no database: a pass runs it on the thread that fetches and normalizes, so that
    the writer only sends what it gets."""
    task_line = row_preparer(schema.tasks, _TASK_COLUMNS, dialect)
    status_line = row_preparer(schema.task_status_changes, _STATUS_COLUMNS, dialect)
    bridge_lines = [
        (attribute, row_preparer(bridge, ("task_identifier", key), dialect))
        for attribute, _table, bridge, key in _ENTITIES
    ]
    prepared: dict[str, PreparedTask] = {}
    for record in records:
        identifier = record.task_identifier
        values: list[Any] = [identifier, zvm]
        values += [getattr(record, name) for name in _SOURCE_COLUMNS]
        values[-2] = orjson.Fragment(record.payload)
        values += [now, now, now]
        prepared[identifier] = PreparedTask(
            task=task_line(values),
            bridges=tuple(
                tuple(line((identifier, entity)) for entity, _href in getattr(record, attribute))
                for attribute, line in bridge_lines
            ),
            status=status_line((identifier, now, record.state, record.progress)),
        )
    return prepared


@dataclass
class LoadCounts:
    """How the tasks a pass received were classified."""

    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


@dataclass
class LoadState:
    """What a pass loaded so far, across the transactions it commits: the counts, the
    newest ``Started``/``Completed`` (where the cursors move), and how often each site
    identifier appeared in task identifiers (the ZVM's own site is the commonest)."""

    counts: LoadCounts = field(default_factory=LoadCounts)
    max_started: datetime | None = None
    max_completed: datetime | None = None
    site_counts: dict[str, int] = field(default_factory=dict)


def upsert_task_types(
    conn: Connection, names: Iterable[str], *, now: datetime, listed_by_zvm: bool
) -> None:
    """Add task types not yet known; with ``listed_by_zvm`` also mark them as listed."""
    rows = [
        {"name": name, "listed_by_zvm": listed_by_zvm, "first_seen_at": now}
        for name in sorted(set(names))
    ]
    upsert(
        conn,
        schema.task_types,
        rows,
        key=["name"],
        update=["listed_by_zvm"] if listed_by_zvm else [],
    )


def read_cursors(conn: Connection, zvm: str) -> dict[str, datetime]:
    """The ZVM's cursors (``started``, ``completed``) as aware UTC source timestamps."""
    table = schema.sync_cursors
    rows = conn.execute(select(table.c.cursor, table.c.value).where(table.c.zvm == zvm))
    return {name: value for name, value in rows}


def save_cursors(conn: Connection, zvm: str, values: dict[str, datetime], *, now: datetime) -> None:
    """Move cursors forward to ``values``; a cursor never moves back, nor is it rewritten
    when its value stays the same."""
    current = read_cursors(conn, zvm)
    rows = [
        {"zvm": zvm, "cursor": name, "value": value, "updated_at": now}
        for name, value in sorted(values.items())
        if name not in current or value > current[name]
    ]
    upsert(conn, schema.sync_cursors, rows, key=["zvm", "cursor"], update=["value", "updated_at"])


def keep_rejected(conn: Connection, table: Table, zvm: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` of a rejected-records table (``rejected_tasks``...), all of ZVM
    ``zvm``, leaving out those whose ``payload`` (the raw record) this ZVM already has there:
    a bad record received again through an overlap is stored once."""
    statement = select(table.c.payload).where(
        table.c.zvm == zvm, table.c.payload.in_(bindparam("raw", expanding=True))
    )
    kept: set[str] = set()
    for chunk in chunked([row["payload"] for row in rows], 100):
        kept.update(conn.execute(statement, {"raw": list(chunk)}).scalars())
    new = [row for row in rows if row["payload"] not in kept]
    if new:
        conn.execute(table.insert(), new)


def delete_cursor(conn: Connection, zvm: str, name: str) -> None:
    """Forget a cursor (a finished backfill's progress)."""
    table = schema.sync_cursors
    conn.execute(delete(table).where(table.c.zvm == zvm, table.c.cursor == name))


def _bridge_lines(index: int) -> Callable[[PreparedTask], Iterable[str]]:
    return lambda prepared: prepared.bridges[index]


def _prepared_rows(
    columns: tuple[str, ...],
    prepared: Mapping[str, PreparedTask] | None,
    records: Sequence[TaskRecord],
    lines: Callable[[PreparedTask], Iterable[str]],
) -> PreparedRows | None:
    """The prepared COPY text of ``records`` (``lines`` picks a task's lines), or None when
    the batch was not prepared."""
    if prepared is None:
        return None
    return PreparedRows(
        columns, [line for r in records for line in lines(prepared[r.task_identifier])]
    )


class TaskLoader:
    """The load side of one pass over one ZVM (see the module docstring)."""

    def __init__(
        self,
        conn: Connection,
        *,
        zvm: str,
        run_id: int,
        now: datetime,
        state: LoadState | None = None,
    ) -> None:
        self.conn = conn
        self.zvm = zvm
        self.run_id = run_id
        self.now = now
        self.state = state if state is not None else LoadState()
        self.counts = self.state.counts
        self._known_types: set[str] = set()
        # Entities this transaction already upserted, with their href: a later batch that
        # names them again would write the same values (last_seen_at is the pass's moment).
        self._saved_entities: dict[str, dict[str, str | None]] = {}
        self._days: DayKeys = {}

    # -- tasks -------------------------------------------------------------------------

    def save_tasks(
        self,
        records: Sequence[TaskRecord],
        *,
        prepared: Mapping[str, PreparedTask] | None = None,
    ) -> None:
        """Load one batch of distinct tasks (see the module docstring). ``prepared``, the
        batch's rows already formatted (:func:`prepare_tasks`, PostgreSQL and SQLite), is
        what is sent for new tasks, their bridges and their status rows."""
        if prepared is not None and self.conn.dialect.name not in ("postgresql", "sqlite"):
            prepared = None
        if not records:
            return
        self.counts.received += len(records)
        self._track_cursors(records)
        stored: dict[str, tuple[str, int, int | None]] = {}
        placed: dict[str, tuple[str, datetime]] = {}
        for identifier, payload_hash, state, progress, zvm, started_at in select_in(
            self.conn,
            schema.tasks,
            "task_identifier",
            [r.task_identifier for r in records],
            ("task_identifier", "payload_hash", "state", "progress", "zvm", "started_at"),
        ):
            stored[identifier] = (payload_hash, state, progress)
            placed[identifier] = (zvm, started_at)
        new: list[TaskRecord] = []
        changed: list[TaskRecord] = []
        unchanged: list[str] = []
        history: list[TaskRecord] = []
        for record in records:
            before = stored.get(record.task_identifier)
            if before is None:
                new.append(record)
            elif before[0] != record.payload_hash:
                changed.append(record)
            else:
                unchanged.append(record.task_identifier)
                continue
            if before is None or (before[1], before[2]) != (record.state, record.progress):
                history.append(record)
        self.counts.inserted += len(new)
        self.counts.updated += len(changed)
        self._note_days(new, changed, placed)
        self.counts.unchanged += len(unchanged)

        self._save_types(r.type for r in (*new, *changed))
        # Entities of unchanged tasks are left alone: a pass over an unchanged ZVM moves
        # nothing but the tasks' last_seen_at.
        self._save_entities([*new, *changed])
        self._save_task_rows(new, changed, prepared)
        self._touch(unchanged)
        self._save_bridges(new, changed, prepared)
        # A changed task's row at this pass's time may exist: the same task earlier in this
        # answer (another batch). The later observation wins, as it does in tasks.
        changed_ids = {r.task_identifier for r in changed}
        first_seen = [r for r in history if r.task_identifier not in changed_ids]
        key = ["task_identifier", "observed_at"]
        insert_new(
            self.conn,
            schema.task_status_changes,
            lambda: [self._status_row(r) for r in first_seen],
            key=key,
            prepared=_prepared_rows(_STATUS_COLUMNS, prepared, first_seen, lambda p: (p.status,)),
        )
        upsert(
            self.conn,
            schema.task_status_changes,
            [self._status_row(r) for r in history if r.task_identifier in changed_ids],
            key=key,
            update=["state", "progress"],
        )

    def _note_days(
        self,
        new: Sequence[TaskRecord],
        changed: Sequence[TaskRecord],
        placed: Mapping[str, tuple[str, datetime]],
    ) -> None:
        """Note the days whose summary rows the batch changes: a new task's,
        and a changed task's before and after (under the ZVM its stored row keeps)."""
        if new:
            self._days.setdefault(self.zvm, set()).update(task_day(r.started_at) for r in new)
        for record in changed:
            zvm, started_at = placed[record.task_identifier]
            days = self._days.setdefault(zvm, set())
            days.add(task_day(started_at))
            days.add(task_day(record.started_at))

    def save_daily_totals(self) -> None:
        """Recount the ``task_daily_totals`` and ``vpg_daily_tests`` rows of the days this
        loader's batches wrote into (:func:`~etl.warehouse.daily.save_daily_totals`); call
        it once, before the transaction commits."""
        save_daily_totals(self.conn, self._days)
        self._days = {}

    def _status_row(self, record: TaskRecord) -> dict[str, Any]:
        return {
            "task_identifier": record.task_identifier,
            "observed_at": self.now,
            "state": record.state,
            "progress": record.progress,
        }

    def _track_cursors(self, records: Sequence[TaskRecord]) -> None:
        state = self.state
        started = max(r.started_at for r in records)
        if state.max_started is None or started > state.max_started:
            state.max_started = started
        completed = [r.completed_at for r in records if r.completed_at is not None]
        if completed:
            latest = max(completed)
            if state.max_completed is None or latest > state.max_completed:
                state.max_completed = latest
        counts = state.site_counts
        for record in records:
            if record.site_identifier:
                counts[record.site_identifier] = counts.get(record.site_identifier, 0) + 1

    def _save_types(self, names: Iterable[str]) -> None:
        unknown = set(names) - self._known_types
        if unknown:
            upsert_task_types(self.conn, unknown, now=self.now, listed_by_zvm=False)
            self._known_types |= unknown

    def _save_entities(self, records: Sequence[TaskRecord]) -> None:
        for attribute, table, _bridge, key in _ENTITIES:
            found: dict[str, str | None] = {}
            for record in records:
                for identifier, href in getattr(record, attribute):
                    found[identifier] = href
            saved = self._saved_entities.setdefault(key, {})
            rows = [
                {key: identifier, "href": href, "first_seen_at": self.now, "last_seen_at": self.now}
                for identifier, href in sorted(found.items())
                if identifier not in saved or saved[identifier] != href
            ]
            saved.update(found)
            upsert(self.conn, table, rows, key=[key], update=["href", "last_seen_at"])

    def _save_task_rows(
        self,
        new: list[TaskRecord],
        changed: list[TaskRecord],
        prepared: Mapping[str, PreparedTask] | None,
    ) -> None:
        insert_new(
            self.conn,
            schema.tasks,
            lambda: [self._task_row(r) for r in new],
            key=_TASK_KEY,
            prepared=_prepared_rows(_TASK_COLUMNS, prepared, new, lambda p: (p.task,)),
        )
        upsert(
            self.conn,
            schema.tasks,
            [self._task_row(r) for r in changed],
            key=_TASK_KEY,
            update=[*_SOURCE_COLUMNS, "last_seen_at", "last_changed_at"],
        )

    def _task_row(self, record: TaskRecord) -> dict[str, Any]:
        row = {name: getattr(record, name) for name in _SOURCE_COLUMNS}
        row["payload"] = orjson.Fragment(record.payload)  # written as it is, not re-encoded
        row["task_identifier"] = record.task_identifier
        row["zvm"] = self.zvm
        row["first_seen_at"] = row["last_seen_at"] = row["last_changed_at"] = self.now
        return row

    def _touch(self, identifiers: list[str]) -> None:
        table = schema.tasks
        statement = (
            update(table)
            .where(table.c.task_identifier.in_(bindparam("keys", expanding=True)))
            .values(last_seen_at=self.now)
        )
        for chunk in chunked(identifiers):
            self.conn.execute(statement, {"keys": list(chunk)})

    def _save_bridges(
        self,
        new: list[TaskRecord],
        changed: list[TaskRecord],
        prepared: Mapping[str, PreparedTask] | None,
    ) -> None:
        replaced = [r.task_identifier for r in changed]
        written = [*new, *changed]
        for index, (attribute, _table, bridge, key) in enumerate(_ENTITIES):
            statement = delete(bridge).where(
                bridge.c.task_identifier.in_(bindparam("keys", expanding=True))
            )
            for chunk in chunked(replaced):
                self.conn.execute(statement, {"keys": list(chunk)})

            # New tasks have no bridge rows, and changed ones just lost theirs: all new.
            def rows(attribute: str = attribute, key: str = key) -> list[dict[str, Any]]:
                return [
                    {"task_identifier": record.task_identifier, key: identifier}
                    for record in written
                    for identifier, _href in getattr(record, attribute)
                ]

            insert_new(
                self.conn,
                bridge,
                rows,
                key=["task_identifier", key],
                prepared=_prepared_rows(
                    ("task_identifier", key), prepared, written, _bridge_lines(index)
                ),
            )

    # -- the rest of a pass ----------------------------------------------------------------

    def save_rejected(self, rejected: Sequence[Rejected]) -> None:
        """Keep records that could not be loaded, with the raw text and the reason.

        All count as rejected in this pass; a record already kept (the same raw text from
        this ZVM, received again through the overlap) is not stored twice.
        """
        self.counts.rejected += len(rejected)
        rows = [
            {
                "run_id": self.run_id,
                "zvm": self.zvm,
                "task_identifier": item.task_identifier,
                "received_at": self.now,
                "reason": item.reason,
                "payload": item.raw,
            }
            for item in rejected
        ]
        keep_rejected(self.conn, schema.rejected_tasks, self.zvm, rows)

    def open_tasks(
        self, *, started_since: datetime | None = None, not_seen_since: datetime | None = None
    ) -> list[str]:
        """Identifiers of this ZVM's tasks not in a final state, oldest first; optionally
        only those started since ``started_since`` (older ones are past the ZVM's retention)
        and those not received since ``not_seen_since`` (this pass's own ``now``)."""
        table = schema.tasks
        query = select(table.c.task_identifier).where(
            table.c.zvm == self.zvm, is_open(table.c.state)
        )
        if started_since is not None:
            query = query.where(table.c.started_at >= started_since)
        if not_seen_since is not None:
            query = query.where(table.c.last_seen_at < not_seen_since)
        return list(self.conn.execute(query.order_by(table.c.started_at)).scalars())

    def learn_site(self) -> None:
        """Record the ZVM's own site identifier (the commonest one in its tasks) once."""
        counts = self.state.site_counts
        if not counts:
            return
        site = max(counts, key=lambda s: (counts[s], s))
        table = schema.zvms
        self.conn.execute(
            update(table)
            .where(table.c.name == self.zvm, table.c.site_identifier.is_(None))
            .values(site_identifier=site)
        )

    def count_tasks(self) -> int:
        """How many tasks of this ZVM the warehouse holds (for summaries)."""
        table = schema.tasks
        return int(
            self.conn.execute(
                select(func.count()).select_from(table).where(table.c.zvm == self.zvm)
            ).scalar_one()
        )
