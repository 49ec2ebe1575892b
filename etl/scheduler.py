"""``zvm-etl schedule``: sync every ZVM every ``sync.interval`` until stopped (APScheduler 3).

One job per ZVM, with:

- the first pass at start-up (within the jitter), then one every ``sync.interval`` plus a
  random delay of up to the jitter, so many ZVMs do not hit the warehouse in the same
  second. The jitter is ``sync.jitter`` but never more than a tenth of ``sync.interval``
  (:func:`effective_jitter`): the default 10 s would otherwise stretch a 3 s interval to
  3-13 s, and the interval the log announces would not be the one that happens;
- ``max_instances=1`` and coalescing: a pass still running when the next is due makes
  that one skip, and runs missed while the process was stopped or asleep become one; a
  run that cannot start within ``sync.misfire_grace`` of its time is dropped;
- backoff: after ``n`` failed passes in a row the ZVM waits ``interval x 2**n`` (at most
  ``sync.max_backoff``), and ``interval`` again after a success (:func:`backoff_interval`).
  Each ZVM's job is independent: one failing or slow never delays the others' schedule;
- across processes and machines the per-ZVM warehouse lock of :mod:`etl.sync` holds: a pass
  whose ZVM another process is syncing is skipped with a log line (neither a failure nor
  a wait), and so is one whose ZVM another process synced within the last half interval,
  so that schedulers sharing a warehouse run each pass once.

Stopping on SIGINT/SIGTERM (:func:`run_schedule` with ``handle_signals``, as the CLI does)
is described once, in "Stopping" in ``docs/operations.md``; :func:`run_schedule` returns a
:class:`StopReport` that says whether every running pass finished.

Passes run on a thread pool: one thread on SQLite (one writer at a time), up to four on
PostgreSQL and MariaDB.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from etl.config import Config, SyncConfig, ZvmConfig, format_duration
from etl.metrics import Metrics
from etl.status import ZvmStatus, log_retention_warnings, zvm_status
from etl.sync import ClientFactory, RunResult, sync_zvm
from etl.warehouse import db

__all__ = [
    "EXIT_UNFINISHED",
    "StopReport",
    "backoff_interval",
    "effective_jitter",
    "first_pass_delay",
    "pass_trigger",
    "run_schedule",
]

log = logging.getLogger(__name__)

EXIT_UNFINISHED = 5
"""The CLI's exit status when a pass did not finish within ``sync.shutdown_grace``."""

POLL_SECONDS = 0.5

JITTER_SHARE = 10
"""The jitter is at most ``sync.interval / JITTER_SHARE`` (see :func:`effective_jitter`)."""


def effective_jitter(sync: SyncConfig) -> timedelta:
    """The random delay the scheduler adds to each pass: ``sync.jitter``, but at most a
    tenth of ``sync.interval``.

    The jitter spreads ZVMs out; it must not change the rhythm the configuration asks for.
    Uncapped, the default 10 s would make a ``3s`` interval a 3-13 s one. With the cap a
    pass starts every ``interval`` to ``1.1 x interval``. It is computed from the
    configured interval, also while a failing ZVM backs off to a longer one.
    """
    return min(sync.jitter, sync.interval / JITTER_SHARE)


def first_pass_delay(sync: SyncConfig, *, rng: random.Random | None = None) -> timedelta:
    """How long after start-up a ZVM's first pass runs: uniform in ``0..effective_jitter``
    (``rng`` draws it; the module's generator when None)."""
    bound = effective_jitter(sync).total_seconds()
    if bound <= 0:
        return timedelta(0)
    uniform = rng.uniform if rng is not None else random.uniform
    return timedelta(seconds=uniform(0, bound))


def pass_trigger(sync: SyncConfig, interval: timedelta | None = None) -> IntervalTrigger:
    """The APScheduler trigger of a ZVM's job: every ``interval`` (``sync.interval`` when
    None; longer while the ZVM backs off) plus a random ``0..effective_jitter(sync)``."""
    every = interval if interval is not None else sync.interval
    jitter = effective_jitter(sync).total_seconds()
    return IntervalTrigger(seconds=every.total_seconds(), jitter=jitter or None, timezone=UTC)


def backoff_interval(interval: timedelta, failures: int, *, cap: timedelta) -> timedelta:
    """The wait before the next pass of a ZVM that failed ``failures`` passes in a row.

    ``interval`` when it has not failed; ``interval x 2**failures`` after failures, at most
    ``cap`` (and never less than ``interval``, whatever ``cap``).
    """
    if failures <= 0:
        return interval
    ceiling = max(cap, interval)
    if failures >= 32:  # 2**32 intervals is beyond any cap
        return ceiling
    longer: timedelta = interval * (2**failures)
    return min(longer, ceiling)


@dataclass(frozen=True)
class StopReport:
    """How the schedule ended: ``unfinished`` names the ZVMs whose pass was still running
    when ``sync.shutdown_grace`` ran out (empty after a clean stop)."""

    unfinished: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.unfinished


@dataclass
class _ZvmState:
    zvm: ZvmConfig
    failures: int = 0
    interval: timedelta = field(default_factory=lambda: timedelta(0))


class _Runner:
    """The jobs' body: one pass, then metrics, status gauges and the backoff decision."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        zvms: Sequence[ZvmConfig],
        *,
        metrics: Metrics,
        client_factory: ClientFactory,
    ) -> None:
        self.config = config
        self.engine = engine
        self.metrics = metrics
        self.client_factory = client_factory
        self.states = {z.name: _ZvmState(z, interval=config.sync.interval) for z in zvms}
        self.scheduler: BackgroundScheduler | None = None
        self.running: set[str] = set()
        self.stopping = False
        self.cond = threading.Condition()

    def refresh(self, name: str) -> ZvmStatus | None:
        """Read the ZVM's status row into the gauges; None when the warehouse is unreachable."""
        try:
            row = zvm_status(self.engine, self.config, name)
        except Exception as exc:
            log.debug("ZVM %s: cannot read its status for the metrics: %s", name, exc)
            return None
        self.metrics.observe_status(row)
        return row

    def run_pass(self, name: str) -> None:
        """The job of one ZVM: a pass unless the schedule is stopping."""
        with self.cond:
            if self.stopping:
                return
            self.running.add(name)
        try:
            # Another scheduler on the same warehouse that ran this ZVM's pass within the
            # last half interval did this run's work: each pass runs once.
            half = self.config.sync.interval / 2
            result = sync_zvm(
                self.engine,
                self.states[name].zvm,
                self.config.sync,
                trigger="schedule",
                client_factory=self.client_factory,
                fresh_since=datetime.now(UTC) - half,
            )
        finally:
            with self.cond:
                self.running.discard(name)
                self.cond.notify_all()
        self.after(result)

    def after(self, result: RunResult) -> None:
        """Metrics, the retention guard, and the next interval (backoff)."""
        state = self.states[result.zvm]
        self.metrics.observe_pass(result)
        row = self.refresh(result.zvm)
        if result.failed and row is not None:
            log_retention_warnings([row])
        if result.status == "skipped":
            return
        failures = state.failures + 1 if result.failed else 0
        interval = backoff_interval(
            self.config.sync.interval, failures, cap=self.config.sync.max_backoff
        )
        changed = interval != state.interval
        state.failures, state.interval = failures, interval
        self.metrics.set_backoff(
            result.zvm, failures=failures, interval_seconds=interval.total_seconds()
        )
        if failures:
            log.warning(
                "ZVM %s: %d failed pass(es) in a row; next pass in %s",
                result.zvm,
                failures,
                format_duration(interval),
                extra={"event": "backoff", "zvm": result.zvm, "failures": failures},
            )
        elif changed:
            log.info(
                "ZVM %s: succeeded again; back to a pass every %s",
                result.zvm,
                format_duration(interval),
                extra={"event": "backoff", "zvm": result.zvm, "failures": 0},
            )
        if changed:
            self.reschedule(result.zvm, interval)

    def reschedule(self, name: str, interval: timedelta) -> None:
        with self.cond:
            if self.stopping or self.scheduler is None:
                return
            self.scheduler.reschedule_job(name, trigger=pass_trigger(self.config.sync, interval))

    def stop(self, grace: timedelta) -> StopReport:
        """No new passes; wait up to ``grace`` for the running ones."""
        with self.cond:
            self.stopping = True
            running = sorted(self.running)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if running:
            log.info(
                "stopping: no new passes; waiting up to %s for the running pass(es) over %s "
                "(a second signal exits at once)",
                format_duration(grace),
                ", ".join(running),
                extra={"event": "stopping", "running": running},
            )
        deadline = time.monotonic() + grace.total_seconds()
        with self.cond:
            while self.running and (left := deadline - time.monotonic()) > 0:
                self.cond.wait(min(left, POLL_SECONDS))
            unfinished = tuple(sorted(self.running))
        if unfinished:
            log.error(
                "stopped: the pass(es) over %s did not finish within %s; exiting without "
                "them (status %d): their transactions are rolled back, nothing half-written "
                "is kept, and the next pass marks them abandoned and redoes the work",
                ", ".join(unfinished),
                format_duration(grace),
                EXIT_UNFINISHED,
                extra={"event": "stopped", "unfinished": list(unfinished)},
            )
        else:
            log.info(
                "stopped cleanly: %s; exiting 0",
                "every running pass finished" if running else "no pass was running",
                extra={"event": "stopped", "unfinished": []},
            )
        return StopReport(unfinished)


@contextmanager
def _signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM: the first sets ``stop``; a second ends the process at once."""
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if received:
            log.warning(
                "received %s again: exiting at once (status %d); a running pass's transaction "
                "is rolled back by the database, nothing half-written is kept",
                name,
                128 + signum,
                extra={"event": "exit", "signal": name},
            )
            for handler_ in logging.getLogger().handlers:
                handler_.flush()
            os._exit(128 + signum)
        received.append(signum)
        log.info(
            "received %s: stopping (send it again to exit at once)",
            name,
            extra={"event": "signal", "signal": name},
        )
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_schedule(
    config: Config,
    *,
    names: Sequence[str] | None = None,
    engine: Engine | None = None,
    metrics: Metrics | None = None,
    metrics_port: int | None = None,
    metrics_address: str = "0.0.0.0",
    stop_event: threading.Event | None = None,
    handle_signals: bool = True,
    client_factory: ClientFactory | None = None,
) -> StopReport:
    """Run the schedule (see the module docstring) until ``stop_event`` is set or, with
    ``handle_signals`` (only possible in the main thread), SIGINT/SIGTERM arrives.

    ``metrics`` collects the metrics (a new :class:`Metrics` when None); ``metrics_port``
    serves them over HTTP (0: any free port, then in ``metrics.port``). ``client_factory``
    replaces the metrics-measured ZVM clients. Raises SchemaMismatch or WarehouseUnavailable
    before any pass when the warehouse cannot be used.
    """
    zvms = [config.zvm(name) for name in names] if names else list(config.zvms)
    stop = stop_event if stop_event is not None else threading.Event()
    metrics = metrics if metrics is not None else Metrics()
    own = engine is None
    engine = engine or db.make_engine(config.warehouse.url, hide_parameters=True)
    report = StopReport()
    try:
        db.check_schema(engine)
        runner = _Runner(
            config,
            engine,
            zvms,
            metrics=metrics,
            client_factory=client_factory or metrics.client_factory,
        )
        settings = config.sync
        for zvm in zvms:
            metrics.track(zvm.name)
            metrics.set_backoff(
                zvm.name, failures=0, interval_seconds=settings.interval.total_seconds()
            )
            row = runner.refresh(zvm.name)
            if row is not None:
                log_retention_warnings([row])
        if metrics_port is not None:
            port = metrics.serve(metrics_port, address=metrics_address)
            log.info(
                "metrics on http://%s:%d/metrics",
                metrics_address,
                port,
                extra={"event": "metrics", "port": port},
            )
        workers = 1 if engine.dialect.name == "sqlite" else min(4, len(zvms))
        scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=workers)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": max(1, round(settings.misfire_threshold.total_seconds())),
            },
        )
        scheduler.add_listener(_on_overrun, EVENT_JOB_MAX_INSTANCES)
        if not log.isEnabledFor(logging.DEBUG):
            # APScheduler narrates every run at INFO and an overrun at WARNING; _on_overrun
            # says the latter in our words. Its misfire warnings (executors) stay.
            logging.getLogger("apscheduler").setLevel(logging.WARNING)
            logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        now = datetime.now(UTC)
        for zvm in zvms:
            scheduler.add_job(
                runner.run_pass,
                pass_trigger(settings),
                args=[zvm.name],
                id=zvm.name,
                name=f"sync {zvm.name}",
                next_run_time=now + first_pass_delay(settings),
            )
        runner.scheduler = scheduler
        with _signals(stop) if handle_signals else _no_signals():
            scheduler.start()
            jitter = effective_jitter(settings)
            capped = (
                f": sync.jitter {format_duration(settings.jitter)} capped at a tenth of the "
                "interval"
                if jitter < settings.jitter
                else ""
            )
            log.info(
                "scheduler started: %d ZVM(s) (%s), a pass every %s (+ up to %s jitter%s); "
                "SIGINT/SIGTERM stop it",
                len(zvms),
                ", ".join(z.name for z in zvms),
                format_duration(settings.interval),
                format_duration(jitter),
                capped,
                extra={
                    "event": "started",
                    "zvms": [z.name for z in zvms],
                    "interval_seconds": settings.interval.total_seconds(),
                    "jitter_seconds": jitter.total_seconds(),
                },
            )
            while not stop.wait(POLL_SECONDS):
                pass
            report = runner.stop(settings.shutdown_grace)
        return report
    finally:
        metrics.close()
        if own and report.clean:
            engine.dispose()


@contextmanager
def _no_signals() -> Iterator[None]:
    yield


def _on_overrun(event: JobSubmissionEvent) -> None:
    """A run came due while the ZVM's previous pass was still running: it is skipped."""
    log.info(
        "ZVM %s: the previous pass is still running; this run is skipped",
        event.job_id,
        extra={"event": "overrun", "zvm": event.job_id},
    )
