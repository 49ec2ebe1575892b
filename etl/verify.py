"""``zvm-etl verify``: proof that the warehouse holds a ZVM's whole task history.

For each ZVM, :func:`verify_zvm` compares, UTC day by UTC day of ``Started``, the tasks the
ZVM returns with the tasks the warehouse holds:

1. It reads the ZVM's ``started`` cursor: tasks started later are not loaded yet, so the
   comparison ends there (the day holding the cursor is compared up to it). A ZVM with no
   cursor was never synced: that is said, and is incomplete, without asking the ZVM.
2. It finds the oldest task the ZVM still holds, with the windows of a first pass (one for
   everything before ``now − task_retention``, then forward), stopping at the first that
   holds a task. The comparison starts on that day, or on the day of the warehouse's
   oldest task when that is later, or at ``since``.
3. It asks the ZVM for the tasks started in the range in bounded windows (one UTC day, or
   ``sync.backfill_window`` when smaller, each reaching one second back into the previous
   one: filters are inclusive and whole-second), with the same client (auth, retries,
   secret handling) as a pass. Each task is normalized (:mod:`etl.normalize`), counted
   once, and assigned to the day of its own ``Started``, not to the window that returned it.
4. Each day, once the windows covering it have answered, is compared with the warehouse:
   a task the ZVM returns that the warehouse lacks (in ``tasks`` and in ``rejected_tasks``)
   is *missing in the warehouse*; a malformed record the ETL kept in ``rejected_tasks`` is
   *rejected*, not missing; a task the warehouse holds that the ZVM no longer returns was
   *purged by the ZVM* (expected: it keeps a limited history) when it started before the
   oldest task the ZVM still holds or ended before the earliest end among the tasks it
   still holds (a ZVM purges finished tasks by age, so a long task can outlive shorter ones
   that started after it), and is *missing on the ZVM* otherwise.

The result is a :class:`Verification` (complete, incomplete or failed) per ZVM, recorded as
one ``verifications`` row: verify writes nothing else (no task, cursor or entity). It takes
no lock: it writes no task, and a pass running meanwhile only adds tasks started after the
cursor it read. A backfill running meanwhile may fill a gap while it is being counted: run
verify again. A ZVM that fails (after the client's retries) is recorded as failed with its
error, and the other ZVMs are still verified.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from etl.config import Config, SyncConfig, ZvmConfig
from etl.errors import EtlError
from etl.normalize import TaskRecord, get_field, normalize_task
from etl.passes import Clock, utc_now
from etl.sync import ClientFactory, for_each_zvm
from etl.warehouse import faults
from etl.warehouse.engine import connect
from etl.warehouse.load import read_cursors
from etl.warehouse.verifications import (
    Held,
    read_known,
    read_oldest_started,
    read_started_between,
    save_verification,
)
from etl.windows import MAX_WIDENING, Window, WindowPlanner, plan_windows
from etl.zvm.client import TaskFilters, ZvmClient
from etl.zvm.dates import parse_zvm_date

__all__ = [
    "DayResult",
    "Seen",
    "Verification",
    "fetch_oldest",
    "fetch_seen",
    "normalize_seen",
    "verify_all",
    "verify_zvm",
]

log = logging.getLogger(__name__)

Status = Literal["complete", "incomplete", "failed"]

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
INSTANT = timedelta(microseconds=1)


def never_synced(zvm: str) -> str:
    """Why a ZVM with no cursor cannot be verified, and what to do."""
    return (
        f"never synced: the warehouse holds no task history for ZVM {zvm} (no pass has set "
        f"its started cursor); run `zvm-etl sync --zvm {zvm}`, then verify again"
    )


@dataclass(frozen=True, slots=True)
class Seen:
    """A record a ZVM returned, as far as verify needs it. ``started`` is None when a
    malformed record has no readable ``Started``, ``identifier`` when it has none."""

    identifier: str | None
    started: datetime | None
    completed: datetime | None
    malformed: bool


def normalize_seen(raw: object) -> Seen:
    """One raw task object as :mod:`etl.normalize` reads it (a malformed one keeps what
    can be read of its identifier and ``Started``: none before 1900, .NET's unset date).
    Pure."""
    result = normalize_task(raw)
    if isinstance(result, TaskRecord):
        return Seen(result.task_identifier, result.started_at, result.completed_at, False)
    started = None
    if isinstance(raw, dict):
        try:
            parsed = parse_zvm_date(get_field(raw, "Started"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.utc.year >= 1900:
            started = parsed.utc
    return Seen(result.task_identifier, started, None, True)


def fetch_seen(client: ZvmClient, window: Window) -> Iterator[Seen]:
    """The tasks the ZVM returns for one window of ``Started`` (bounds inclusive, None
    open), normalized one at a time."""
    after, before = window
    for raw in client.fetch_task_list(TaskFilters(started_after=after, started_before=before)):
        yield normalize_seen(raw)


def fetch_oldest(
    client: ZvmClient, *, floor: datetime, end: datetime, width: timedelta
) -> tuple[datetime | None, datetime | None]:
    """The ``Started`` of the oldest task the ZVM holds up to ``end``, and the earliest end
    among the tasks of the window that holds it: the windows of a first pass (one for
    everything before ``floor``, then windows of ``width`` forward, an empty one widening
    the next: :class:`~etl.windows.WindowPlanner`), stopping at the first holding a task.
    (None, None) when the ZVM holds no task started up to ``end``."""
    planner = WindowPlanner(
        min(floor, end), end, width, open_start=True, open_end=False, max_width=width * MAX_WIDENING
    )
    count: int | None = None
    while (window := planner.next(count)) is not None:
        count, started, ended = 0, None, None
        for seen in fetch_seen(client, window):
            count += 1
            if seen.malformed or seen.started is None:
                continue
            started = _earliest(started, seen.started)
            ended = _earliest(ended, seen.completed)
        if started is not None:
            return started, ended
    return None, None


@dataclass
class DayResult:
    """One UTC day compared: from ``start`` to ``end`` (inclusive; a part of the day when
    the range starts or ends inside it), the counts and the identifiers that differ."""

    day: date
    start: datetime
    end: datetime
    zvm_tasks: int = 0
    warehouse_tasks: int = 0
    missing_in_warehouse: list[str] = field(default_factory=list)
    missing_on_zvm: list[str] = field(default_factory=list)
    purged_by_zvm: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        """A task missing on either side (purged and rejected ones are not)."""
        return bool(self.missing_in_warehouse or self.missing_on_zvm)

    @property
    def partial(self) -> bool:
        """Compared over part of the day only."""
        midnight = datetime.combine(self.day, time(), UTC)
        return self.start != midnight or self.end != midnight + DAY - INSTANT

    def repair(self, zvm: str) -> str | None:
        """The command that reloads the day (None when nothing is missing in the warehouse:
        a backfill never removes a task)."""
        if not self.missing_in_warehouse:
            return None
        return f"zvm-etl backfill --zvm {zvm} --since {self.day} --until {self.day + DAY}"

    def to_dict(self, zvm: str) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "from": _iso(self.start),
            "to": _iso(self.end),
            "differs": self.differs,
            "zvm_tasks": self.zvm_tasks,
            "warehouse_tasks": self.warehouse_tasks,
            "missing_in_warehouse": self.missing_in_warehouse,
            "missing_on_zvm": self.missing_on_zvm,
            "purged_by_zvm": self.purged_by_zvm,
            "rejected": self.rejected,
            "repair": self.repair(zvm),
        }


@dataclass
class Verification:
    """The outcome of verifying one ZVM (the module docstring says what is compared).

    ``since``/``until`` bound what was compared (``until`` inclusive: the started cursor,
    or just before the ``until`` asked for); ``cursor`` is the ZVM's started cursor;
    ``oldest_on_zvm`` the oldest task the ZVM still holds; ``unidentified`` counts malformed
    records without an identifier, which nothing can match. ``error`` says why it failed,
    or why nothing was compared; ``id`` is its ``verifications`` row (None: not recorded).
    """

    zvm: str
    status: Status
    started_at: datetime
    finished_at: datetime
    since: datetime | None = None
    until: datetime | None = None
    cursor: datetime | None = None
    oldest_on_zvm: datetime | None = None
    days: list[DayResult] = field(default_factory=list)
    unidentified: int = 0
    error: str | None = None
    note: str | None = None
    """Why nothing was compared, when nothing was (and it is not an error)."""
    id: int | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def differing(self) -> list[DayResult]:
        return [day for day in self.days if day.differs]

    def total(self, name: str) -> int:
        """A count over the days: ``zvm_tasks``, ``warehouse_tasks``, or the length of one
        of the identifier lists (``missing_in_warehouse``...)."""
        values = (getattr(day, name) for day in self.days)
        return sum(value if isinstance(value, int) else len(value) for value in values)

    def counts(self) -> dict[str, int]:
        """The counts a ``verifications`` row keeps."""
        names = ("zvm_tasks", "warehouse_tasks", "missing_in_warehouse", "missing_on_zvm")
        return {
            "days_checked": len(self.days),
            "days_differing": len(self.differing),
            **{name: self.total(name) for name in names},
            "purged_by_zvm": self.total("purged_by_zvm"),
            "rejected": self.total("rejected"),
        }

    def row(self) -> dict[str, Any]:
        """Its ``verifications`` row."""
        keys = ("zvm", "status", "started_at", "finished_at", "since", "until", "error")
        return {key: getattr(self, key) for key in keys} | self.counts()

    def to_dict(self) -> dict[str, Any]:
        """Every fact, for ``verify --json``: times ISO-8601 UTC, every day compared."""
        return {
            "zvm": self.zvm,
            "status": self.status,
            "verification_id": self.id,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "since": _iso(self.since),
            "until": _iso(self.until),
            "cursor_started": _iso(self.cursor),
            "oldest_on_zvm": _iso(self.oldest_on_zvm),
            **self.counts(),
            "malformed_without_identifier": self.unidentified,
            "error": self.error,
            "note": self.note,
            "days": [day.to_dict(self.zvm) for day in self.days],
        }


class _Comparison:
    """The day-by-day comparison of one ZVM over ``[lower, upper]`` (see the module)."""

    def __init__(
        self,
        engine: Engine,
        result: Verification,
        *,
        lower: datetime,
        upper: datetime,
        horizon: datetime,
        earliest_end: datetime | None,
    ) -> None:
        self.engine = engine
        self.result = result
        self.lower, self.upper = lower, upper
        self.horizon = horizon
        self.earliest_end = earliest_end
        self.days = [lower.date() + DAY * n for n in range((upper.date() - lower.date()).days + 1)]
        self.buckets: dict[date, dict[str, Seen]] = {}
        self.done = 0

    def run(self, client: ZvmClient, width: timedelta) -> None:
        windows = plan_windows(self.lower, self.upper, width, open_end=False)
        # The first window reaches one second back too: a ZVM may read a bound as exclusive.
        windows[0] = ((self.lower - SECOND).replace(microsecond=0), windows[0][1])
        for index, window in enumerate(windows):
            for seen in fetch_seen(client, window):
                self._take(seen, window)
            last = index == len(windows) - 1
            while self.done < len(self.days) and (last or self._covered(window)):
                self._finish(self.days[self.done])
                self.done += 1

    def _covered(self, window: Window) -> bool:
        """Whether the windows so far cover the next day to finish to its end."""
        before = window[1]
        end = datetime.combine(self.days[self.done], time(), UTC) + DAY
        return before is None or before >= end

    def _take(self, seen: Seen, window: Window) -> None:
        if seen.identifier is None:
            self.result.unidentified += 1
            return
        # A malformed record without a readable Started goes to the day its window starts.
        started = seen.started or max((window[0] or self.lower) + SECOND, self.lower)
        if not self.lower <= started <= self.upper:
            return
        if not seen.malformed:
            self.earliest_end = _earliest(self.earliest_end, seen.completed)
        self.buckets.setdefault(started.astimezone(UTC).date(), {})[seen.identifier] = seen

    def _finish(self, day: date) -> None:
        midnight = datetime.combine(day, time(), UTC)
        start, end = max(midnight, self.lower), min(midnight + DAY - INSTANT, self.upper)
        on_zvm = self.buckets.pop(day, {})
        with connect(self.engine) as conn:
            conn.execution_options(sqlite_begin="DEFERRED")  # it only reads
            held = read_started_between(conn, self.result.zvm, start, end + INSTANT)
            absent = sorted(identifier for identifier in on_zvm if identifier not in held)
            elsewhere, rejected = read_known(conn, self.result.zvm, absent)
            conn.rollback()
        gone = sorted(identifier for identifier in held if identifier not in on_zvm)
        purged = [identifier for identifier in gone if self._purged(held[identifier])]
        result = DayResult(
            day,
            start,
            end,
            zvm_tasks=len(on_zvm),
            warehouse_tasks=len(held),
            missing_in_warehouse=[i for i in absent if i not in elsewhere and i not in rejected],
            missing_on_zvm=[identifier for identifier in gone if identifier not in purged],
            purged_by_zvm=purged,
            rejected=[i for i in absent if i in rejected and i not in elsewhere],
        )
        if result.differs:
            log.info(
                "ZVM %s: %s differs: %d missing in the warehouse, %d missing on the ZVM",
                self.result.zvm,
                day,
                len(result.missing_in_warehouse),
                len(result.missing_on_zvm),
            )
        self.result.days.append(result)

    def _purged(self, task: Held) -> bool:
        """A task the ZVM no longer returns that it purged: older than its history."""
        started, completed = task
        if started < self.horizon:
            return True
        return (
            completed is not None
            and self.earliest_end is not None
            and completed < self.earliest_end
        )


def verify_zvm(
    engine: Engine,
    zvm: ZvmConfig,
    settings: SyncConfig,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    client_factory: ClientFactory = ZvmClient,
    clock: Clock = utc_now,
) -> Verification:
    """Verify one ZVM (the module docstring says how) from ``since`` (default: the oldest
    day the ZVM holds, or the warehouse's oldest task when later) to the started cursor, or
    to just before ``until`` when that is earlier; record it in ``verifications``.

    Never raises for a failure of the ZVM or the warehouse: the result says failed, with
    a secret-free error. ``clock`` is this host's (the verification's own times, and
    ``now − task_retention`` where the first pass would start).
    """
    result = Verification(zvm.name, "complete", clock(), clock())
    try:
        _verify(engine, zvm, settings, result, since=since, until=until, factory=client_factory)
    except Exception as exc:
        result.status = "failed"
        result.error = str(exc) if isinstance(exc, EtlError) else faults.describe(exc, engine.url)
        if not isinstance(exc, EtlError | DBAPIError):
            log.exception("ZVM %s: verification failed unexpectedly", zvm.name)
    result.finished_at = clock()
    try:
        result.id = save_verification(engine, result.row())
    except Exception as exc:
        log.error(
            "ZVM %s: could not record the verification: %s",
            zvm.name,
            faults.describe(exc, engine.url, in_pass=False),
        )
    level = logging.ERROR if result.failed else logging.INFO
    log.log(level, "ZVM %s: verification %s", zvm.name, result.status, extra=_fields(result))
    return result


def _verify(
    engine: Engine,
    zvm: ZvmConfig,
    settings: SyncConfig,
    result: Verification,
    *,
    since: datetime | None,
    until: datetime | None,
    factory: ClientFactory,
) -> None:
    with connect(engine) as conn:
        conn.execution_options(sqlite_begin="DEFERRED")  # it only reads
        result.cursor = read_cursors(conn, zvm.name).get("started")
        oldest_held = read_oldest_started(conn, zvm.name)
        conn.rollback()
    if result.cursor is None:
        result.status, result.error = "incomplete", never_synced(zvm.name)
        return
    upper = result.cursor if until is None else min(result.cursor, until - INSTANT)
    width = min(DAY, settings.backfill_window)
    history_floor = result.started_at - zvm.task_retention
    with factory(zvm) as client:
        oldest, earliest_end = fetch_oldest(
            client, floor=history_floor.replace(microsecond=0), end=upper, width=width
        )
        result.oldest_on_zvm = oldest
        lower = since or _latest_day(oldest, oldest_held)
        if lower is None:
            result.note = "neither the ZVM nor the warehouse holds a task started up to its cursor"
            return
        if lower > upper:
            result.note = f"the range asked for starts after the started cursor, {_iso(upper)}"
            return
        result.since, result.until = lower, upper
        log.info(
            "ZVM %s: verifying the tasks started from %s to %s",
            zvm.name,
            _iso(lower),
            _iso(upper),
            extra={"event": "verify", "zvm": zvm.name},
        )
        comparison = _Comparison(
            engine,
            result,
            lower=lower,
            upper=upper,
            horizon=oldest or history_floor,
            earliest_end=earliest_end,
        )
        comparison.run(client, width)
    if result.differing:
        result.status = "incomplete"


def verify_all(
    config: Config,
    *,
    names: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    engine: Engine | None = None,
    client_factory: ClientFactory = ZvmClient,
    clock: Clock = utc_now,
) -> list[Verification]:
    """Verify every configured ZVM (or those in ``names``), each on its own: one failing
    never stops the others. Raises ConfigError for a name that is not configured and
    SchemaMismatch (before any ZVM) when the warehouse schema is not current."""
    return for_each_zvm(
        config,
        names,
        engine,
        lambda eng, zvm: verify_zvm(
            eng,
            zvm,
            config.sync,
            since=since,
            until=until,
            client_factory=client_factory,
            clock=clock,
        ),
    )


def _earliest(known: datetime | None, value: datetime | None) -> datetime | None:
    if value is None:
        return known
    return value if known is None or value < known else known


def _latest_day(*moments: datetime | None) -> datetime | None:
    """Midnight UTC of the latest of the moments given (None when none is)."""
    known = [moment for moment in moments if moment is not None]
    if not known:
        return None
    return datetime.combine(max(known).astimezone(UTC).date(), time(), UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value is not None else None


def _fields(result: Verification) -> dict[str, Any]:
    """The verification's outcome as log fields (``event`` is ``verify``): no secret."""
    return {"event": "verify", "zvm": result.zvm, "status": result.status} | result.counts()
