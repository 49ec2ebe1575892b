"""The sync: the entry point the CLI, the scheduler and the tests share.

:func:`sync_all` runs one pass (:mod:`etl.passes`) over every configured ZVM, each
independently: one failing never stops the others. Around each pass it takes the ZVM's
lock (another process syncing it makes this one skip it), marks runs that died abandoned,
records the ``etl_runs`` row, and turns any failure into a :class:`RunResult` with a
secret-free error. :func:`backfill_all` does the same for past windows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from etl.config import Config, SyncConfig, ZvmConfig
from etl.errors import EtlError
from etl.passes import BATCH_SIZE, Clock, Pass, Trigger, WindowCallback, plan_windows, utc_now
from etl.warehouse import db, faults
from etl.warehouse.load import LoadCounts
from etl.warehouse.locks import zvm_lock
from etl.warehouse.runs import fail_run, mark_abandoned, start_run, synced_since
from etl.zvm.client import ZvmClient

__all__ = [
    "BATCH_SIZE",
    "ClientFactory",
    "RunResult",
    "Trigger",
    "backfill_all",
    "backfill_zvm",
    "for_each_zvm",
    "plan_windows",
    "sync_all",
    "sync_zvm",
]

log = logging.getLogger(__name__)

ClientFactory = Callable[[ZvmConfig], ZvmClient]
T = TypeVar("T")


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
    reason: str | None = None
    """Why a pass was skipped."""

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
            return f"{head}: {self.reason or 'another process is running a pass over it'}"
        body = (
            f"{c.received} received, {c.inserted} inserted, {c.updated} updated, "
            f"{c.unchanged} unchanged, {c.rejected} rejected; "
            f"{self.requests} requests, {self.retries} retries"
        )
        return f"{head}: {body}" + (f"\n  error: {self.error}" if self.error else "")


def _describe(exc: BaseException, engine: Engine) -> str:
    """A one-paragraph, secret-free description of why a pass failed."""
    if isinstance(exc, EtlError):
        return str(exc)
    return faults.describe(exc, engine.url)


def _run(
    engine: Engine,
    zvm: ZvmConfig,
    *,
    trigger: Trigger,
    work: Callable[[ZvmClient, int, datetime], LoadCounts],
    client_factory: ClientFactory,
    clock: Clock,
    fresh_since: datetime | None = None,
) -> RunResult:
    """One pass under the ZVM's lock; a ZVM another process is syncing is skipped, and so
    is one whose pass another process started at or after ``fresh_since``."""
    began = clock()

    def skip(reason: str) -> RunResult:
        skipped = RunResult(zvm.name, trigger, "skipped", began, clock(), reason=reason)
        log.info("ZVM %s: skipped: %s", zvm.name, reason, extra=skipped.log_fields())
        return skipped

    try:
        with zvm_lock(engine, zvm.name) as taken:
            if not taken:
                return skip("another process is running a pass over it")
            if fresh_since is not None:
                done = synced_since(engine, zvm.name, fresh_since)
                if done is not None:
                    at = done.isoformat(timespec="seconds")
                    return skip(f"another process synced it (a pass started {at})")
            abandoned = mark_abandoned(engine, zvm.name, now=began)
            if abandoned:
                log.warning("ZVM %s: marked %d abandoned run(s) as failed", zvm.name, abandoned)
            return _locked_run(
                engine, zvm, trigger=trigger, work=work, client_factory=client_factory, clock=clock
            )
    except Exception as exc:  # the warehouse is down: nothing can be recorded there
        error = _describe(exc, engine)
        failed = RunResult(zvm.name, trigger, "failed", began, clock(), error=error)
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
    clock: Clock,
) -> RunResult:
    """The pass, run again at once (each attempt its own ``etl_runs`` row) while the
    database chooses it as a deadlock's victim, up to ``faults.CONFLICT_ATTEMPTS`` times."""
    attempt = 1
    while True:
        result, fault = _attempt(
            engine, zvm, trigger=trigger, work=work, client_factory=client_factory, clock=clock
        )
        if fault is None or not fault.retry_at_once or attempt >= faults.CONFLICT_ATTEMPTS:
            return result
        log.warning(
            "ZVM %s: %s pass %s was a deadlock's victim (attempt %d of %d); its committed "
            "windows stay, running it again",
            zvm.name,
            trigger,
            result.run_id,
            attempt,
            faults.CONFLICT_ATTEMPTS,
            extra={"event": "retry", "zvm": zvm.name},
        )
        attempt += 1


def _attempt(
    engine: Engine,
    zvm: ZvmConfig,
    *,
    trigger: Trigger,
    work: Callable[[ZvmClient, int, datetime], LoadCounts],
    client_factory: ClientFactory,
    clock: Clock,
) -> tuple[RunResult, faults.Fault | None]:
    """Bookkeeping around one pass: the etl_runs row, the client, the failure record; with
    the warehouse fault that failed it, if one did."""
    began = clock()
    timer = time.monotonic()
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
                now=clock(),
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
            clock(),
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
            time.monotonic() - timer,
            error,
            extra=result.log_fields(),
        )
        return result, faults.classify(exc)
    finally:
        client.close()
    result = RunResult(
        zvm.name,
        trigger,
        "succeeded",
        began,
        clock(),
        run_id,
        counts,
        requests=client.stats.requests,
        retries=client.stats.retries,
    )
    log.info(result.summary(), extra=result.log_fields())
    return result, None


def sync_zvm(
    engine: Engine,
    zvm: ZvmConfig,
    settings: SyncConfig,
    *,
    trigger: Trigger = "sync",
    client_factory: ClientFactory = ZvmClient,
    clock: Clock = utc_now,
    fresh_since: datetime | None = None,
) -> RunResult:
    """One incremental pass over one ZVM (the module docstring says what it does).

    Never raises for a ZVM or warehouse failure: the RunResult says failed, with the error,
    and the ``etl_runs`` row records it. ``clock`` is this host's clock (bookkeeping and
    the names' refresh interval; tests pass their own), never used for cursors. With
    ``fresh_since``, the pass is skipped when another process's pass over the ZVM started
    at or after it and succeeded: processes that share ZVMs run each pass once.
    """

    def work(client: ZvmClient, run_id: int, now: datetime) -> LoadCounts:
        task = Pass(engine, zvm, settings, client, trigger=trigger, run_id=run_id, now=now)
        task.clock = clock
        return task.run_sync().counts

    return _run(
        engine,
        zvm,
        trigger=trigger,
        work=work,
        client_factory=client_factory,
        clock=clock,
        fresh_since=fresh_since,
    )


def backfill_zvm(
    engine: Engine,
    zvm: ZvmConfig,
    settings: SyncConfig,
    *,
    since: datetime,
    until: datetime | None = None,
    on_window: WindowCallback | None = None,
    client_factory: ClientFactory = ZvmClient,
    clock: Clock = utc_now,
) -> RunResult:
    """(Re)load tasks started in ``[since, until]`` (until None: up to now, open-ended), in
    bounded windows, each committed on its own. The cursors are never moved; an interrupted
    backfill of the same range resumes after its last committed window."""

    def work(client: ZvmClient, run_id: int, now: datetime) -> LoadCounts:
        task = Pass(engine, zvm, settings, client, trigger="backfill", run_id=run_id, now=now)
        task.clock = clock
        return task.run_backfill(since, until, on_window).counts

    return _run(
        engine, zvm, trigger="backfill", work=work, client_factory=client_factory, clock=clock
    )


def for_each_zvm(
    config: Config,
    names: Sequence[str] | None,
    engine: Engine | None,
    one: Callable[[Engine, ZvmConfig], T],
) -> list[T]:
    """``one`` for every configured ZVM (or those in ``names``: ConfigError for another),
    after the schema check, on ``engine`` (None: one made from the configuration and
    disposed of afterwards): one ZVM after another on SQLite, up to four at once elsewhere."""
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
    clock: Clock = utc_now,
    fresh_since: datetime | None = None,
) -> list[RunResult]:
    """One pass over every configured ZVM (or those in ``names``), independently.

    Raises ConfigError for a name that is not configured and SchemaMismatch (before any
    pass) when the warehouse schema is not current. A ZVM whose pass another process
    started at or after ``fresh_since`` (default: when this call began) and finished is
    skipped: two ``sync`` commands at once run each pass once. When a pass failed, the
    retention guard then logs a warning for every ZVM whose history is at risk.
    """
    began = fresh_since or clock()
    results = for_each_zvm(
        config,
        names,
        engine,
        lambda eng, zvm: sync_zvm(
            eng,
            zvm,
            config.sync,
            trigger=trigger,
            client_factory=client_factory,
            clock=clock,
            fresh_since=began,
        ),
    )
    if any(result.failed for result in results):
        from etl.status import warn_retention

        warn_retention(config, engine=engine)
    return results


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
        return for_each_zvm(
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

        return for_each_zvm(config, names, engine, one)
