"""One pass over one ZVM: the incremental algorithm (fetch, normalize, load).

A pass (see ``docs/design.md``):

1. reads the ZVM's two cursors, ``started`` and ``completed``: SOURCE timestamps (the
   largest ``Started``/``Completed`` loaded), never this host's clock;
2. first pass (no cursor): loads everything the ZVM still holds (or from
   ``sync.backfill_since``) in bounded ``startedAfterDate``/``startedBeforeDate`` windows;
3. later passes: ``startedAfterDate = started − overlap`` (new tasks, in the same bounded
   windows when the pass catches up on a long gap) and ``completedAfterDate = completed −
   overlap`` for the tasks started before that which finished since; bounds are inclusive,
   so the overlap brings some tasks again and the change detection reports them unchanged;
4. re-reads with ``GET /v1/tasks/{id}`` the tasks still open in the warehouse that this
   pass did not receive (a 404 keeps the last known version);
5. normalizes; a bad record goes to ``rejected_tasks`` and never stops the batch;
6. reads the ZVM's entity listings (names of VPGs, sites, hosts: :mod:`etl.names`) on its
   first pass and then at most every ``sync.entity_refresh_interval``; a listing that
   fails is a warning, never a failed pass.

Commits: each window is written in ONE transaction together with the cursors that cover
it (and the run's counts so far), and the rest of the pass (the completed tasks, the
re-read ones, the names, the task types, the finished ``etl_runs`` row) in a last one. A
crash loses at most the window in flight: the next pass starts from the committed cursors,
so a long first pass or catch-up that is interrupted again and again still converges. A
backfill records the end of its last committed window as its progress (a cursor named
after its range) and resumes from there when the same range is asked again.

Memory is bounded whatever the history: a window's answer is held as bytes and decoded
one task at a time, normalized and written :data:`BATCH_SIZE` tasks at a time.

:mod:`etl.sync` runs passes: the lock, the ``etl_runs`` row, the failure record.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Engine

from etl.config import SyncConfig, ZvmConfig
from etl.errors import ZvmResponseError
from etl.names import Names, fetch_listings, normalize_listings
from etl.normalize import normalize_identifier
from etl.prefetch import Prefetch, normalize_batches
from etl.recovery_sync import (
    RecoveryOutcome,
    ReportRun,
    backfill_recovery_report,
    sync_recovery_report,
)
from etl.warehouse.load import (
    LoadState,
    TaskLoader,
    delete_cursor,
    prepare_tasks,
    read_cursors,
    save_cursors,
    upsert_task_types,
)
from etl.warehouse.names import names_refreshed_at, save_names
from etl.warehouse.recovery import relink_recovery_operations
from etl.warehouse.runs import finish_run, record_progress
from etl.windows import BOUNDARY_OVERLAP, MAX_WIDENING, Window, WindowPlanner, plan_windows
from etl.zvm.client import TaskFilters, ZvmClient

__all__ = [
    "BATCH_SIZE",
    "Clock",
    "Pass",
    "Trigger",
    "Window",
    "WindowCallback",
    "plan_windows",
    "utc_now",
]

log = logging.getLogger(__name__)

Trigger = Literal["sync", "schedule", "backfill"]
WindowCallback = Callable[[int, int], None]
Clock = Callable[[], datetime]
"""This host's clock (aware UTC); tests pass their own."""

BATCH_SIZE = 2000
"""Tasks written per set of statements: big enough for bulk speed, small enough for memory."""

REFRESH_WORKERS = 4
"""Open tasks re-read at once (``GET /v1/tasks/{id}``)."""

SETTLED = timedelta(days=1)
"""How far behind this host's clock a window must end for the cursors to move to its end
whatever it held. A ZVM shows a task once it has started, by its own clock: a window that
ended a day ago holds every task the ZVM will ever show in it, even from a ZVM whose clock
runs hours behind this host's, or one that lists a task some time after it started. The
windows of the last day move the cursors only as far as the tasks they brought (for a
quiet ZVM, the next pass reads that day again: a few tasks)."""


def utc_now() -> datetime:
    """This host's clock: used for bookkeeping (etl_runs, first_seen_at), never for cursors."""
    return datetime.now(UTC)


def backfill_cursor(since: datetime, until: datetime | None) -> str:
    """The cursor that records a backfill's progress: named after its range."""
    end = until.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") if until else "open"
    return f"backfill {since.astimezone(UTC):%Y%m%dT%H%M%SZ}-{end}"


class Pass:
    """One pass over one ZVM: fetch, normalize, load (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        zvm: ZvmConfig,
        settings: SyncConfig,
        client: ZvmClient,
        *,
        trigger: Trigger,
        run_id: int,
        now: datetime,
    ) -> None:
        self.engine = engine
        self.zvm = zvm
        self.settings = settings
        self.client = client
        self.trigger = trigger
        self.run_id = run_id
        self.now = now
        self.clock: Clock = utc_now
        self.state = LoadState()
        """What the pass loaded so far, across its transactions."""
        self._started_cursor: datetime | None = None
        self.recovery: RecoveryOutcome | None = None
        """What the pass's read of the Recovery Report did (None: not read)."""

    # -- the three kinds of pass ---------------------------------------------------------------

    def run_sync(self) -> LoadState:
        """A first pass or an incremental one, depending on the cursors."""
        with self.engine.connect() as conn:
            cursors = read_cursors(conn, self.zvm.name)
            conn.rollback()
        types = self._fetch_types()
        if "started" not in cursors:
            since = self.settings.backfill_since
            floor = since or (self.now - self.zvm.task_retention).replace(microsecond=0)
            # With no backfill_since, a first window takes anything older than the retention
            # this ZVM is configured with (usually nothing).
            planner = self._planner(floor, open_start=since is None)
            log.info(
                "ZVM %s: first pass, loading history from %s in up to %d windows",
                self.zvm.name,
                floor.isoformat(timespec="seconds"),
                planner.remaining,
            )
            # Everything scanned is up to date: no task the ZVM shows later can have started
            # (or completed) before the scan's lower bound, whatever the tasks found.
            self._windows(planner, floor=floor)
            self._read_recovery_report()
            return self._finish(types, refresh=False)
        self._started_cursor = cursors["started"]
        lower = cursors["started"] - self.settings.overlap
        planner = self._planner(lower)
        if planner.remaining > 1:
            log.info(
                "ZVM %s: catching up from %s in up to %d windows",
                self.zvm.name,
                lower.isoformat(timespec="seconds"),
                planner.remaining,
            )
        self._windows(planner, floor=None)
        # Tasks started before the windows that finished since, however long ago they began
        # (few: the ones open when the cursor passed them), written in the last transaction.
        completed = cursors.get("completed", cursors["started"]) - self.settings.overlap
        filters = TaskFilters(completed_after=completed, started_before=lower + BOUNDARY_OVERLAP)
        late = list(self.client.fetch_task_list(filters))
        self._read_recovery_report()
        return self._finish(types, refresh=True, late=late)

    def run_backfill(
        self, since: datetime, until: datetime | None, on_window: WindowCallback | None
    ) -> LoadState:
        """(Re)load tasks started in ``[since, until]``, never moving the cursors; resumes
        after the last window a previous attempt at the same range committed."""
        windows = plan_windows(
            since, until or self.now, self.settings.backfill_window, open_end=until is None
        )
        progress = backfill_cursor(since, until)
        with self.engine.connect() as conn:
            done = read_cursors(conn, self.zvm.name).get(progress)
            conn.rollback()
        total = len(windows)
        if done is not None:
            windows = [w for w in windows if w[1] is None or w[1] > done]
            log.info(
                "ZVM %s: resuming the backfill after %s (%d of %d windows left)",
                self.zvm.name,
                done.isoformat(timespec="seconds"),
                len(windows),
                total,
            )
        types = self._fetch_types()
        self._windows(
            windows, floor=None, move_cursors=False, progress=progress, on_window=on_window
        )
        self.recovery = backfill_recovery_report(self._report_run(), since=since, until=until)
        return self._finish(types, refresh=False, done_with=progress)

    # -- the Recovery Report (etl/recovery_sync.py) ---------------------------------------

    def _report_run(self) -> ReportRun:
        return ReportRun(self.engine, self.zvm, self.settings, self.client, self.run_id, self.now)

    def _read_recovery_report(self) -> None:
        """Read the report from its cursor after the tasks' windows: a failure is a warning
        recorded in ``zvms``, never a failed pass."""
        self.recovery = sync_recovery_report(self._report_run(), settled=self.now - SETTLED)

    # -- windows ---------------------------------------------------------------------------

    def _planner(self, start: datetime, *, open_start: bool = False) -> WindowPlanner:
        """The windows of a first pass or a catch-up, from ``start`` to now: an empty one
        widens the next (:mod:`etl.windows`)."""
        width = self.settings.backfill_window
        return WindowPlanner(
            start, self.now, width, open_start=open_start, max_width=width * MAX_WIDENING
        )

    def _windows(
        self,
        windows: Sequence[Window] | WindowPlanner,
        *,
        floor: datetime | None,
        move_cursors: bool = True,
        progress: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> None:
        """Write each window in a transaction of its own with the cursors that cover it (or
        the backfill's progress), while the next batches are fetched and normalized on
        another thread (:class:`~etl.prefetch.Prefetch`); a task in two overlapping windows
        is written once.

        The cursors move to the end of each window read, whatever it held (an empty one
        too), as far as :data:`SETTLED` behind this host's clock: every run that gets
        through one window starts further on than the one before, even across weeks of
        history the ZVM no longer holds."""
        settled = self.now - SETTLED
        prepare = None
        dialect = self.engine.dialect
        if dialect.name == "sqlite" or (dialect.name, dialect.driver) == ("postgresql", "psycopg"):
            prepare = functools.partial(
                prepare_tasks, zvm=self.zvm.name, now=self.now, dialect=dialect
            )
        with Prefetch(self.client, windows, batch_size=BATCH_SIZE, prepare=prepare) as feed:
            for done, ((after, before), batches) in enumerate(feed, start=1):
                received = self.state.counts.received + self.state.counts.rejected
                # The first batch comes once the window's whole answer has arrived: wait for
                # it before the transaction begins, so that no lock is held (SQLite: the one
                # write lock of the database) while the ZVM answers.
                first = next(batches, None)
                with self._transaction() as conn:
                    loader = self._loader(conn)
                    for batch in itertools.chain([first] if first else [], batches):
                        loader.save_rejected(batch.rejected)
                        loader.save_tasks(batch.records, prepared=batch.prepared)
                    loader.save_daily_totals()
                    if move_cursors:
                        read_up_to = min(before, settled) if before is not None else None
                        self._save_cursors(conn, floor=_latest(floor, read_up_to))
                    if progress is not None and before is not None:
                        save_cursors(conn, self.zvm.name, {progress: before}, now=self.now)
                    self._record_progress(conn)
                count = self.state.counts.received + self.state.counts.rejected - received
                # A progress bar (on_window) already shows each window to the person watching.
                log.log(
                    logging.INFO if count and on_window is None else logging.DEBUG,
                    "ZVM %s: window %d/%d (%s to %s): %d tasks",
                    self.zvm.name,
                    done,
                    feed.total,
                    after.isoformat(timespec="seconds") if after else "the beginning",
                    before.isoformat(timespec="seconds") if before else "now",
                    count,
                )
                if on_window is not None:
                    on_window(done, feed.total)

    def _load(self, loader: TaskLoader, tasks: Iterable[Any]) -> None:
        """Normalize and save ``tasks`` in batches (in the caller's transaction)."""
        for batch in normalize_batches(tasks, BATCH_SIZE):
            loader.save_rejected(batch.rejected)
            loader.save_tasks(batch.records)

    # -- the last transaction ---------------------------------------------------------------

    def _finish(
        self,
        types: list[str],
        *,
        refresh: bool,
        late: list[Any] | None = None,
        done_with: str | None = None,
    ) -> LoadState:
        """Re-read the open tasks this pass did not receive (neither in a window nor in
        ``late``), read the names when due, then write ``late``, the re-read tasks, the
        names, the task types and the finished run in the pass's last transaction."""
        late = late or []
        received = {normalize_identifier(task) for task in late}
        refreshed: list[Any] = []
        with self.engine.connect() as conn:
            due = self.trigger != "backfill" and self._names_due(conn)
            if refresh:
                # Every task this pass received now has last_seen_at = now.
                open_ids = TaskLoader(
                    conn, zvm=self.zvm.name, run_id=self.run_id, now=self.now
                ).open_tasks(
                    started_since=(self._started_cursor or self.now) - self.zvm.task_retention,
                    not_seen_since=self.now,
                )
            conn.rollback()
        if refresh:
            refreshed = self._refresh([i for i in open_ids if i not in received])
        names = self._fetch_names() if due else None
        with self._transaction() as conn:
            upsert_task_types(conn, types, now=self.now, listed_by_zvm=True)
            loader = self._loader(conn)
            if late or refreshed:
                self._load(loader, [*late, *refreshed])
                loader.save_daily_totals()
                self._save_cursors(conn, floor=None)
            if done_with is not None:
                delete_cursor(conn, self.zvm.name, done_with)
            loader.learn_site()
            if names is not None:
                save_names(conn, self.zvm.name, names, now=self.now)
            if self.recovery is not None:  # with the names and late tasks now known
                since = self.now - self.zvm.task_retention
                relink_recovery_operations(conn, self.zvm.name, started_since=since)
            finish_run(
                conn,
                self.run_id,
                self.state.counts,
                requests=self.client.stats.requests,
                retries=self.client.stats.retries,
                now=self.clock(),
            )
        return self.state

    def _refresh(self, identifiers: list[str]) -> list[Any]:
        """``GET /v1/tasks/{id}`` for each, a few at a time; gone and refused ones are left
        out (they keep their last known version)."""
        if not identifiers:
            return []

        def one(identifier: str) -> Any:
            try:
                return self.client.fetch_task(identifier)
            except ZvmResponseError as exc:
                # One task the ZVM will not show (an odd 4xx) must not block every pass.
                log.warning("ZVM %s: task %s not re-read: %s", self.zvm.name, identifier, exc)
                return None

        with ThreadPoolExecutor(REFRESH_WORKERS, thread_name_prefix="refresh") as pool:
            found = [task for task in pool.map(one, identifiers) if task is not None]
        log.debug(
            "ZVM %s: %d open tasks re-read, %d no longer on the ZVM",
            self.zvm.name,
            len(found),
            len(identifiers) - len(found),
        )
        return found

    # -- names, types, cursors -------------------------------------------------------------

    def _names_due(self, conn: Connection) -> bool:
        """Whether this pass reads the ZVM's entity listings: never read for this ZVM, or
        read ``sync.entity_refresh_interval`` ago or longer (``0s``: every pass)."""
        last = names_refreshed_at(conn, self.zvm.name)
        interval = self.settings.entity_refresh_interval
        return last is None or interval <= timedelta(0) or self.now - last >= interval

    def _fetch_names(self) -> Names:
        """The ZVM's entity listings, normalized, read within ``sync.entity_refresh_budget``.
        A listing that fails or is skipped is a warning: the names known so far stay, and the
        pass goes on."""
        budget = self.settings.entity_refresh_budget
        names = normalize_listings(fetch_listings(self.client, budget=budget))
        for problem in names.problems:
            log.warning(
                "ZVM %s: names not refreshed: %s; the names known so far stay",
                self.zvm.name,
                problem,
                extra={"event": "names", "zvm": self.zvm.name},
            )
        return names

    def _fetch_types(self) -> list[str]:
        """The ZVM's task types; a ZVM that refuses the call only loses the listing."""
        try:
            return self.client.fetch_task_types()
        except ZvmResponseError as exc:
            log.warning("ZVM %s: task types not listed (%s); continuing", self.zvm.name, exc)
            return []

    def _save_cursors(self, conn: Connection, *, floor: datetime | None) -> None:
        """Move the cursors to the newest Started/Completed loaded (at least ``floor``)."""
        values: dict[str, datetime] = {}
        for name, loaded in (
            ("started", self.state.max_started),
            ("completed", self.state.max_completed),
        ):
            value = max(loaded, floor) if loaded and floor else loaded or floor
            if value is not None:
                values[name] = value
        save_cursors(conn, self.zvm.name, values, now=self.now)

    def _record_progress(self, conn: Connection) -> None:
        record_progress(
            conn,
            self.run_id,
            self.state.counts,
            requests=self.client.stats.requests,
            retries=self.client.stats.retries,
        )

    def _loader(self, conn: Connection) -> TaskLoader:
        return TaskLoader(
            conn, zvm=self.zvm.name, run_id=self.run_id, now=self.now, state=self.state
        )

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn


def _latest(*moments: datetime | None) -> datetime | None:
    """The latest of the moments given, None when none is."""
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None
