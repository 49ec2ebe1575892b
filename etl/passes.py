"""One pass over one ZVM: the incremental algorithm (fetch, normalize, load).

A pass (see ``docs/design.md``):

1. reads the ZVM's two cursors, ``started`` and ``completed``: SOURCE timestamps (the
   largest ``Started``/``Completed`` loaded), never this host's clock;
2. first pass (no cursor): loads everything the ZVM still holds (or from
   ``sync.backfill_since``) in bounded ``startedAfterDate``/``startedBeforeDate`` windows, so
   no response holds years of history;
3. later passes: ``startedAfterDate = started − overlap`` (new tasks) and
   ``completedAfterDate = completed − overlap`` (tasks that finished since, however long ago
   they started); bounds are inclusive, so the overlap brings some tasks again and the
   change detection reports them as unchanged;
4. refreshes tasks still open in the warehouse that those lists did not return with
   ``GET /v1/tasks/{id}`` (a 404 keeps the last known version);
5. normalizes; a bad record goes to ``rejected_tasks`` and never stops the batch;
6. reads the ZVM's entity listings (names of VPGs, sites, hosts: :mod:`etl.names`) on its
   first pass and then at most every ``sync.entity_refresh_interval``; a listing that
   fails is a warning, never a failed pass;
7. writes tasks, bridges, entities and their names, types, status changes, cursors and the
   ``etl_runs`` counts in ONE transaction: a crash before the commit leaves the warehouse
   as it was and the next pass redoes the work.

:mod:`etl.sync` runs passes: the lock, the ``etl_runs`` row, the failure record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Engine

from etl.config import SyncConfig, ZvmConfig
from etl.errors import ZvmResponseError
from etl.names import Names, fetch_listings, normalize_listings
from etl.normalize import Rejected, TaskRecord, normalize_tasks
from etl.warehouse.load import (
    LoadCounts,
    TaskLoader,
    read_cursors,
    save_cursors,
    upsert_task_types,
)
from etl.warehouse.names import names_refreshed_at, save_names
from etl.warehouse.runs import finish_run
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

BOUNDARY_OVERLAP = timedelta(seconds=1)


def utc_now() -> datetime:
    """This host's clock: used for bookkeeping (etl_runs, first_seen_at), never for cursors."""
    return datetime.now(UTC)


Window = tuple[datetime | None, datetime | None]
"""(startedAfterDate, startedBeforeDate) of one request; None leaves that side open."""


def plan_windows(
    start: datetime,
    end: datetime,
    width: timedelta,
    *,
    open_start: bool = False,
    open_end: bool = True,
) -> list[Window]:
    """Windows of ``width`` from ``start`` to ``end``, on whole seconds, each reaching one
    second back into the one before.

    Filters are sent in whole seconds (the form every ZVM version documents), and ZVMs may
    read a bound as inclusive or exclusive: the one-second overlap keeps a task that starts
    exactly on a boundary inside some window whichever they do; the pass drops the repeats.
    ``open_start`` adds a first window for everything before ``start``; with ``open_end``
    the last window has no upper bound, so tasks stamped after ``end`` by a ZVM whose clock
    runs ahead of this host are not missed.
    """
    lower = start.replace(microsecond=0)
    bounds = [lower]
    while bounds[-1] + width < end:
        bounds.append(bounds[-1] + width)
    windows: list[Window] = [(None, lower)] if open_start else []
    for index, bound in enumerate(bounds):
        after = bound - BOUNDARY_OVERLAP if windows else bound
        if index + 1 < len(bounds):
            windows.append((after, bounds[index + 1]))
        else:
            last = None if open_end else end.replace(microsecond=0) + timedelta(seconds=1)
            windows.append((after, last))
    return windows


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

    def _fetch_types(self) -> list[str]:
        """The ZVM's task types; a ZVM that refuses the call only loses the listing."""
        try:
            return self.client.fetch_task_types()
        except ZvmResponseError as exc:
            log.warning("ZVM %s: task types not listed (%s); continuing", self.zvm.name, exc)
            return []

    def _windows(
        self,
        loader: TaskLoader,
        windows: Sequence[Window],
        on_window: WindowCallback | None,
    ) -> None:
        """Fetch and load each window; a task in two overlapping windows is loaded once."""
        seen: set[str] = set()
        for done, (after, before) in enumerate(windows, start=1):
            items = self.client.fetch_tasks(TaskFilters(started_after=after, started_before=before))
            records, rejected = normalize_tasks(items)
            fresh = [r for r in records if r.task_identifier not in seen]
            loader.save_rejected(_distinct(rejected))
            for start in range(0, len(fresh), BATCH_SIZE):
                loader.save_tasks(fresh[start : start + BATCH_SIZE])
            # Only the tail of this window can come again, in the overlap of the next one.
            following = windows[done][0] if done < len(windows) else None
            seen = {
                r.task_identifier
                for r in records
                if following is not None and r.started_at >= following
            }
            # A progress bar (on_window) already shows each window to the person watching.
            log.log(
                logging.INFO if items and on_window is None else logging.DEBUG,
                "ZVM %s: window %d/%d (%s to %s): %d tasks",
                self.zvm.name,
                done,
                len(windows),
                after.isoformat(timespec="seconds") if after else "the beginning",
                before.isoformat(timespec="seconds") if before else "now",
                len(items),
            )
            if on_window is not None:
                on_window(done, len(windows))

    def _names_due(self, conn: Connection) -> bool:
        """Whether this pass reads the ZVM's entity listings: never read for this ZVM, or
        read ``sync.entity_refresh_interval`` ago or longer (``0s``: every pass)."""
        last = names_refreshed_at(conn, self.zvm.name)
        interval = self.settings.entity_refresh_interval
        return last is None or interval <= timedelta(0) or self.now - last >= interval

    def _fetch_names(self) -> Names:
        """The ZVM's entity listings, normalized. A listing that fails is a warning: the
        names known so far stay, and the pass goes on."""
        names = normalize_listings(fetch_listings(self.client))
        for problem in names.problems:
            log.warning(
                "ZVM %s: names not refreshed: %s; the names known so far stay",
                self.zvm.name,
                problem,
                extra={"event": "names", "zvm": self.zvm.name},
            )
        return names

    def _finish(
        self,
        loader: TaskLoader,
        cursors: dict[str, datetime] | None,
        names: Names | None = None,
    ) -> LoadCounts:
        if cursors:
            save_cursors(loader.conn, self.zvm.name, cursors, now=self.now)
        loader.learn_site()
        if names is not None:
            save_names(loader.conn, self.zvm.name, names, now=self.now)
        finish_run(
            loader.conn,
            self.run_id,
            loader.counts,
            requests=self.client.stats.requests,
            retries=self.client.stats.retries,
            now=self.clock(),
        )
        return loader.counts

    def run_sync(self) -> LoadCounts:
        with self.engine.connect() as conn:
            cursors = read_cursors(conn, self.zvm.name)
            conn.rollback()
        if "started" not in cursors:
            return self._first_pass()
        return self._incremental(cursors)

    def _first_pass(self) -> LoadCounts:
        since = self.settings.backfill_since
        lower = since or (self.now - self.zvm.task_retention).replace(microsecond=0)
        # With no backfill_since, a first window takes anything older than the retention
        # this ZVM is configured with (usually nothing).
        windows = plan_windows(
            lower, self.now, self.settings.backfill_window, open_start=since is None
        )
        types = self._fetch_types()
        log.info("ZVM %s: first pass, loading history in %d windows", self.zvm.name, len(windows))
        with self.engine.begin() as conn:
            loader = TaskLoader(conn, zvm=self.zvm.name, run_id=self.run_id, now=self.now)
            upsert_task_types(conn, types, now=self.now, listed_by_zvm=True)
            self._windows(loader, windows, None)
            # Everything up to now was scanned: no task the ZVM shows later can have started
            # (or completed) before the scan's lower bound, whatever the tasks found.
            cursors = {
                "started": max(loader.max_started or lower, lower),
                "completed": max(loader.max_completed or lower, lower),
            }
            names = self._fetch_names() if self._names_due(conn) else None
            return self._finish(loader, cursors, names)

    def _incremental(self, cursors: dict[str, datetime]) -> LoadCounts:
        overlap = self.settings.overlap
        started = cursors["started"]
        completed = cursors.get("completed", started)
        # Tasks the warehouse holds as open: re-read unless the lists below bring them.
        with self.engine.connect() as conn:
            loader = TaskLoader(conn, zvm=self.zvm.name, run_id=self.run_id, now=self.now)
            open_ids = loader.open_tasks(started_since=started - self.zvm.task_retention)
            conn.rollback()
        types = self._fetch_types()
        items: list[Any] = self.client.fetch_tasks(TaskFilters(started_after=started - overlap))
        items += self.client.fetch_tasks(TaskFilters(completed_after=completed - overlap))
        records, rejected = normalize_tasks(items)
        returned = {r.task_identifier for r in records}
        returned.update(r.task_identifier for r in rejected if r.task_identifier)
        refreshed: list[Any] = []
        gone = 0
        for identifier in open_ids:
            if identifier in returned:
                continue
            try:
                task = self.client.fetch_task(identifier)
            except ZvmResponseError as exc:
                # One task the ZVM will not show (an odd 4xx) must not block every pass.
                log.warning("ZVM %s: task %s not re-read: %s", self.zvm.name, identifier, exc)
                task = None
            if task is None:
                gone += 1
            else:
                refreshed.append(task)
        more, more_rejected = normalize_tasks(refreshed)
        with self.engine.connect() as conn:
            due = self._names_due(conn)
            conn.rollback()
        names = self._fetch_names() if due else None
        log.debug(
            "ZVM %s: %d listed, %d open tasks re-read, %d no longer on the ZVM",
            self.zvm.name,
            len(items),
            len(refreshed),
            gone,
        )
        with self.engine.begin() as conn:
            loader = TaskLoader(conn, zvm=self.zvm.name, run_id=self.run_id, now=self.now)
            upsert_task_types(conn, types, now=self.now, listed_by_zvm=True)
            loader.save_rejected(_distinct([*rejected, *more_rejected]))
            batch = _merge(records, more)
            for start in range(0, len(batch), BATCH_SIZE):
                loader.save_tasks(batch[start : start + BATCH_SIZE])
            moved = {}
            if loader.max_started is not None:
                moved["started"] = loader.max_started
            if loader.max_completed is not None:
                moved["completed"] = loader.max_completed
            return self._finish(loader, moved, names)

    def run_backfill(
        self, since: datetime, until: datetime | None, on_window: WindowCallback | None
    ) -> LoadCounts:
        windows = plan_windows(
            since, until or self.now, self.settings.backfill_window, open_end=until is None
        )
        types = self._fetch_types()
        with self.engine.begin() as conn:
            loader = TaskLoader(conn, zvm=self.zvm.name, run_id=self.run_id, now=self.now)
            upsert_task_types(conn, types, now=self.now, listed_by_zvm=True)
            self._windows(loader, windows, on_window)
            return self._finish(loader, None)  # a backfill never moves the cursors


def _merge(first: list[TaskRecord], second: list[TaskRecord]) -> list[TaskRecord]:
    merged = {r.task_identifier: r for r in first}
    merged.update((r.task_identifier, r) for r in second)
    return list(merged.values())


def _distinct(rejected: Sequence[Rejected]) -> list[Rejected]:
    """The same bad record listed twice in one pass is kept once."""
    seen: dict[str, Rejected] = {}
    for item in rejected:
        seen.setdefault(item.raw, item)
    return list(seen.values())
