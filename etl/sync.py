"""The incremental sync: one pass per ZVM, the entry point the CLI, scheduler and tests share.

A pass over one ZVM (see ``design.md``):

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
6. writes tasks, bridges, entities, types, status changes, cursors and the ``etl_runs``
   counts in ONE transaction: a crash before the commit leaves the warehouse as it was and
   the next pass redoes the work.

Every ZVM's pass is independent: one failing never stops the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from etl.config import Config, SyncConfig, ZvmConfig
from etl.errors import EtlError, ZvmResponseError
from etl.normalize import Rejected, TaskRecord, normalize_tasks
from etl.warehouse import db
from etl.warehouse.engine import unavailable
from etl.warehouse.load import (
    LoadCounts,
    TaskLoader,
    read_cursors,
    save_cursors,
    upsert_task_types,
)
from etl.warehouse.locks import zvm_lock
from etl.warehouse.runs import fail_run, finish_run, mark_abandoned, start_run
from etl.zvm.client import TaskFilters, ZvmClient

__all__ = [
    "BATCH_SIZE",
    "RunResult",
    "backfill_all",
    "backfill_zvm",
    "plan_windows",
    "sync_all",
    "sync_zvm",
]

log = logging.getLogger(__name__)

Trigger = Literal["sync", "schedule", "backfill"]
ClientFactory = Callable[[ZvmConfig], ZvmClient]
WindowCallback = Callable[[int, int], None]

BATCH_SIZE = 2000
"""Tasks written per set of statements: big enough for bulk speed, small enough for memory."""

BOUNDARY_OVERLAP = timedelta(seconds=1)


@dataclass
class RunResult:
    """The outcome of one pass over one ZVM."""

    zvm: str
    trigger: str
    status: Literal["succeeded", "failed", "skipped"]
    started_at: datetime
    finished_at: datetime
    run_id: int | None = None
    counts: LoadCounts = field(default_factory=LoadCounts)
    requests: int = 0
    retries: int = 0
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def failed(self) -> bool:
        """Failed (a skipped pass, whose ZVM another process was syncing, is not a failure)."""
        return self.status == "failed"

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def log_fields(self) -> dict[str, Any]:
        """The pass's outcome as separate fields, for ``log.info(..., extra=...)``: JSON log
        lines carry them as keys of the object (``event`` is ``pass``). No secret in them."""
        c = self.counts
        return {
            "event": "pass",
            "zvm": self.zvm,
            "trigger": self.trigger,
            "status": self.status,
            "run_id": self.run_id,
            "duration_seconds": round(self.duration_seconds, 3),
            "tasks_received": c.received,
            "tasks_inserted": c.inserted,
            "tasks_updated": c.updated,
            "tasks_unchanged": c.unchanged,
            "tasks_rejected": c.rejected,
            "requests": self.requests,
            "retries": self.retries,
            "error": self.error,
        }

    def summary(self) -> str:
        """One line a person reads: what happened to which ZVM, with the counts."""
        c = self.counts
        head = f"{self.zvm}: {self.trigger} {self.status} in {self.duration_seconds:.1f}s"
        if self.status == "skipped":
            return f"{head}: another process is running a pass over it"
        body = (
            f"{c.received} received, {c.inserted} inserted, {c.updated} updated, "
            f"{c.unchanged} unchanged, {c.rejected} rejected; "
            f"{self.requests} requests, {self.retries} retries"
        )
        return f"{head}: {body}" + (f"\n  error: {self.error}" if self.error else "")


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


def _describe(exc: BaseException, engine: Engine) -> str:
    """A one-paragraph, secret-free description of why a pass failed."""
    if isinstance(exc, EtlError):
        return str(exc)
    if isinstance(exc, OperationalError):
        return str(unavailable(engine.url, exc))
    if isinstance(exc, DBAPIError):
        reason = exc.orig if exc.orig is not None else exc
        return f"the warehouse refused a write: {type(reason).__name__}: {reason}"
    return f"unexpected {type(exc).__name__}: {exc}"


class _Pass:
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

    def _finish(self, loader: TaskLoader, cursors: dict[str, datetime] | None) -> LoadCounts:
        if cursors:
            save_cursors(loader.conn, self.zvm.name, cursors, now=self.now)
        loader.learn_site()
        finish_run(
            loader.conn,
            self.run_id,
            loader.counts,
            requests=self.client.stats.requests,
            retries=self.client.stats.retries,
            now=utc_now(),
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
            return self._finish(loader, cursors)

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
            return self._finish(loader, moved)

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


def _run(
    engine: Engine,
    zvm: ZvmConfig,
    *,
    trigger: Trigger,
    work: Callable[[ZvmClient, int, datetime], LoadCounts],
    client_factory: ClientFactory,
) -> RunResult:
    """One pass under the ZVM's lock; a ZVM another process is syncing is skipped."""
    began = utc_now()
    try:
        with zvm_lock(engine, zvm.name) as taken:
            if not taken:
                skipped = RunResult(zvm.name, trigger, "skipped", began, utc_now())
                log.info(
                    "ZVM %s: skipped: another process is running a pass over it",
                    zvm.name,
                    extra=skipped.log_fields(),
                )
                return skipped
            abandoned = mark_abandoned(engine, zvm.name, now=began)
            if abandoned:
                log.warning("ZVM %s: marked %d abandoned run(s) as failed", zvm.name, abandoned)
            return _locked_run(
                engine, zvm, trigger=trigger, work=work, client_factory=client_factory
            )
    except Exception as exc:  # the warehouse is down: nothing can be recorded there
        error = _describe(exc, engine)
        failed = RunResult(zvm.name, trigger, "failed", began, utc_now(), error=error)
        log.error(
            "ZVM %s: cannot start a %s pass: %s",
            zvm.name,
            trigger,
            error,
            extra=failed.log_fields(),
        )
        return failed


def _locked_run(
    engine: Engine,
    zvm: ZvmConfig,
    *,
    trigger: Trigger,
    work: Callable[[ZvmClient, int, datetime], LoadCounts],
    client_factory: ClientFactory,
) -> RunResult:
    """Bookkeeping around one pass: the etl_runs row, the client, the failure record."""
    began = utc_now()
    clock = time.monotonic()
    run_id = start_run(engine, zvm=zvm.name, url=zvm.url, trigger=trigger, now=began)
    client = client_factory(zvm)
    try:
        counts = work(client, run_id, began)
    except Exception as exc:
        error = _describe(exc, engine)
        if not isinstance(exc, EtlError | DBAPIError):
            log.exception("ZVM %s: %s pass %d failed unexpectedly", zvm.name, trigger, run_id)
        try:
            fail_run(
                engine,
                run_id,
                error,
                requests=client.stats.requests,
                retries=client.stats.retries,
                now=utc_now(),
            )
        except Exception as record_exc:
            log.error(
                "ZVM %s: could not record the failure of run %d: %s",
                zvm.name,
                run_id,
                _describe(record_exc, engine),
            )
        result = RunResult(
            zvm.name,
            trigger,
            "failed",
            began,
            utc_now(),
            run_id,
            requests=client.stats.requests,
            retries=client.stats.retries,
            error=error,
        )
        log.error(
            "ZVM %s: %s pass %d failed after %.1fs: %s",
            zvm.name,
            trigger,
            run_id,
            time.monotonic() - clock,
            error,
            extra=result.log_fields(),
        )
        return result
    finally:
        client.close()
    result = RunResult(
        zvm.name,
        trigger,
        "succeeded",
        began,
        utc_now(),
        run_id,
        counts,
        requests=client.stats.requests,
        retries=client.stats.retries,
    )
    log.info(result.summary(), extra=result.log_fields())
    return result


def sync_zvm(
    engine: Engine,
    zvm: ZvmConfig,
    settings: SyncConfig,
    *,
    trigger: Trigger = "sync",
    client_factory: ClientFactory = ZvmClient,
) -> RunResult:
    """One incremental pass over one ZVM (the module docstring says what it does).

    Never raises for a ZVM or warehouse failure: the RunResult says failed, with the error,
    and the ``etl_runs`` row records it.
    """

    def work(client: ZvmClient, run_id: int, now: datetime) -> LoadCounts:
        return _Pass(
            engine, zvm, settings, client, trigger=trigger, run_id=run_id, now=now
        ).run_sync()

    return _run(engine, zvm, trigger=trigger, work=work, client_factory=client_factory)


def backfill_zvm(
    engine: Engine,
    zvm: ZvmConfig,
    settings: SyncConfig,
    *,
    since: datetime,
    until: datetime | None = None,
    on_window: WindowCallback | None = None,
    client_factory: ClientFactory = ZvmClient,
) -> RunResult:
    """(Re)load tasks started in ``[since, until]`` (until None: up to now, open-ended), in
    bounded windows, in one transaction. The cursors are never moved."""

    def work(client: ZvmClient, run_id: int, now: datetime) -> LoadCounts:
        task = _Pass(engine, zvm, settings, client, trigger="backfill", run_id=run_id, now=now)
        return task.run_backfill(since, until, on_window)

    return _run(engine, zvm, trigger="backfill", work=work, client_factory=client_factory)


def _for_each(
    config: Config,
    names: Sequence[str] | None,
    engine: Engine | None,
    one: Callable[[Engine, ZvmConfig], RunResult],
) -> list[RunResult]:
    zvms = [config.zvm(name) for name in names] if names else list(config.zvms)
    own = engine is None
    engine = engine or db.make_engine(config.warehouse.url, hide_parameters=True)
    try:
        db.check_schema(engine)
        # SQLite has one writer at a time: passes there run one after another.
        workers = 1 if engine.dialect.name == "sqlite" else min(4, len(zvms))
        if workers == 1:
            return [one(engine, zvm) for zvm in zvms]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zvm") as pool:
            return list(pool.map(lambda zvm: one(engine, zvm), zvms))
    finally:
        if own:
            engine.dispose()


def sync_all(
    config: Config,
    *,
    names: Sequence[str] | None = None,
    trigger: Trigger = "sync",
    engine: Engine | None = None,
    client_factory: ClientFactory = ZvmClient,
) -> list[RunResult]:
    """One pass over every configured ZVM (or those in ``names``), independently.

    Raises SchemaMismatch (before any pass) when the warehouse schema is not current.
    """
    return _for_each(
        config,
        names,
        engine,
        lambda eng, zvm: sync_zvm(
            eng, zvm, config.sync, trigger=trigger, client_factory=client_factory
        ),
    )


def backfill_all(
    config: Config,
    *,
    since: datetime,
    until: datetime | None = None,
    names: Sequence[str] | None = None,
    engine: Engine | None = None,
    progress: bool = False,
    client_factory: ClientFactory = ZvmClient,
) -> list[RunResult]:
    """Backfill every configured ZVM (or those in ``names``); ``progress`` draws a bar."""
    if not progress:
        return _for_each(
            config,
            names,
            engine,
            lambda eng, zvm: backfill_zvm(
                eng, zvm, config.sync, since=since, until=until, client_factory=client_factory
            ),
        )
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=False) as bar:

        def one(eng: Engine, zvm: ZvmConfig) -> RunResult:
            task = bar.add_task(f"backfill {zvm.name}", total=None)

            def on_window(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return backfill_zvm(
                eng,
                zvm,
                config.sync,
                since=since,
                until=until,
                on_window=on_window,
                client_factory=client_factory,
            )

        return _for_each(config, names, engine, one)
