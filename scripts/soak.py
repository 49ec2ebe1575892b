"""``make soak``: the scheduler for a long while against faulty simulated ZVMs, then a proof
that the warehouse holds exactly what the ZVMs hold and that memory stayed flat.

What it does (``python scripts/soak.py --help`` lists the options):

1. Creates a fresh database ``zvm_etl_soak_<hex>`` on the server of ``--url`` (default:
   ``$ZVM_ETL_TEST_POSTGRES_URL``; PostgreSQL or MariaDB/MySQL; its user must be allowed to
   create databases) and migrates it with :func:`etl.warehouse.db.upgrade`; the database
   is dropped at the end (``--keep-database`` keeps it). A ``sqlite:///FILE`` URL is used
   as it is.
2. Starts three simulated ZVMs (two Windows-style with sessions, one appliance with
   Keycloak) in this process, and moves their clocks ``--speed`` times faster than real
   time (60: an hour of ZVM life per real minute). The clocks are advanced by a thread
   (the simulators run at speed 0), so that they can be frozen for the final comparison.
3. Turns on every fault knob of ``zvm_simulator.Faults`` at moderate rates
   (:class:`FaultPlan`): 503s, dropped connections, latency, sessions cut short by age
   and by use, malformed tasks, missing and failing entity listings; it also ends every
   session of one ZVM now and then (``Simulator.expire_sessions``) and takes one ZVM down
   for a while (every answer 503) at regular intervals, so that passes fail, back off and
   recover.
4. Runs the scheduler (:func:`etl.scheduler.run_schedule`, the library, as ``zvm-etl
   schedule`` does) with ``sync.interval`` 2s for ``--seconds`` (default
   ``$SOAK_SECONDS`` or 600), sampling this process's RSS every second (psutil when it is
   installed, else ``VmRSS`` of ``/proc/self/status``).
5. Stops the scheduler through its stop event (every running pass must finish), freezes
   the clocks, turns the transient faults off and runs one clean pass over every ZVM
   (:func:`etl.sync.sync_all`) so that open tasks converge. ``malformed_rate`` stays: a
   malformed record is a property of the ZVM's data (the same tasks are malformed on every
   request), not a transient fault, and no pass re-reads a record it rejected.
6. Verifies each ZVM against its ground truth (:func:`verify_zvm`) and the RSS (rule:
   :func:`rss_verdict`), prints a summary and exits 1 on any violation (0 otherwise; 2 for
   a usage error).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import itertools
import logging
import os
import secrets
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from etl.config import Config, format_duration, parse_config
from etl.logs import configure_logging
from etl.metrics import Metrics
from etl.scheduler import StopReport, effective_jitter, run_schedule
from etl.sync import RunResult, sync_all
from etl.warehouse import db, schema
from tests.syncing import expected_tasks
from zvm_simulator import Simulator

__all__ = [
    "FaultPlan",
    "SoakOptions",
    "SoakResult",
    "main",
    "rss_verdict",
    "run_soak",
    "verify_zvm",
]

log = logging.getLogger("soak")

PASSWORD = "Soak-Pa55word-Long-Enough"
DATABASE_PREFIX = "zvm_etl_soak_"
MB = 1024 * 1024
OUTAGE = "outage"
"""The kind under which :class:`FaultPlan`'s outages are counted."""
EXPIRED_BY_CALL = "sessions_expired_by_call"


# ---- settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ZvmPlan:
    """One simulated ZVM: its name in the configuration, how it speaks, and the entity
    listings that are missing (404) and failing (500) on it."""

    name: str
    seed: int
    auth: str = "session"
    date_style: str = "windows"
    key_case: str = "pascal"
    missing_listings: frozenset[str] = frozenset()
    failing_listings: frozenset[str] = frozenset()


ZVMS = (
    ZvmPlan(
        "nyc",
        seed=11,
        missing_listings=frozenset({"/v1/vras"}),
        failing_listings=frozenset({"/v1/peersites"}),
    ),
    ZvmPlan(
        "lon",
        seed=12,
        date_style="appliance",
        key_case="camel",
        missing_listings=frozenset({"/v1/virtualizationsites/{site}/hosts"}),
        failing_listings=frozenset({"/v1/vpgs"}),
    ),
    ZvmPlan(
        "sgp",
        seed=13,
        auth="keycloak",
        date_style="appliance",
        missing_listings=frozenset({"/v1/localsite"}),
        failing_listings=frozenset({"/v1/virtualizationsites"}),
    ),
)
"""Three ZVMs, one of them an appliance with Keycloak; every listing is missing or failing
on one of them."""


@dataclass(frozen=True)
class FaultPlan:
    """The fault knobs turned on during the soak (every knob of ``zvm_simulator.Faults``),
    and the two disturbances driven from here.

    ``expire_every``: every so many real seconds the next ZVM (in turn) ends every session
    and token at once. ``outage_every`` / ``outage_for``: every so many real seconds the next
    ZVM answers every API call 503 for ``outage_for`` seconds, longer than the ZVMs'
    ``retry_for``, so its pass fails and it backs off (None: no outage).
    """

    error_rate: float = 0.05
    retry_after: float = 0.1
    latency: float = 0.005
    drop_rate: float = 0.03
    session_max_requests: int | None = 40
    session_ttl: float | None = 30.0
    malformed_rate: float = 0.02
    expire_every: float | None = 45.0
    outage_every: float | None = 120.0
    outage_for: float = 25.0


@dataclass(frozen=True)
class SoakOptions:
    """One soak run. ``url``: a server URL (a fresh database is created on that server) or
    ``sqlite:///FILE`` (used as it is). ``max_rss_growth_mb``: see :func:`rss_verdict`."""

    url: str
    seconds: float = 600.0
    speed: float = 60.0
    interval: str = "2s"
    retry_for: str = "10s"
    days: float = 2.0
    tasks_per_hour: float = 20.0
    faults: FaultPlan = FaultPlan()
    zvms: Sequence[ZvmPlan] = ZVMS
    max_rss_growth_mb: float = 50.0
    sample_every: float = 1.0
    keep_database: bool = False


# ---- results ------------------------------------------------------------------------------


@dataclass
class ZvmReport:
    """What :func:`verify_zvm` found for one ZVM."""

    name: str
    violations: list[str] = field(default_factory=list)
    tasks: int = 0
    open_tasks: int = 0
    malformed: int = 0
    rejected_rows: int = 0
    status_rows: int = 0
    runs: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class RssVerdict:
    """The memory rule's inputs and outcome (see :func:`rss_verdict`)."""

    samples: int
    peak: int
    final: int
    first_quarter: int | None
    last_quarter: int | None
    limit: int
    warm_up_seconds: float

    @property
    def growth(self) -> int | None:
        if self.first_quarter is None or self.last_quarter is None:
            return None
        return self.last_quarter - self.first_quarter

    @property
    def violation(self) -> str | None:
        growth = self.growth
        if growth is not None and growth > self.limit:
            return (
                f"RSS grew by {growth / MB:.1f} MB (median of the last quarter minus that of "
                f"the first quarter after warm-up), more than {self.limit / MB:.0f} MB"
            )
        return None


@dataclass
class SoakResult:
    """Everything the summary prints; ``violations`` empty means the soak passed."""

    options: SoakOptions
    backend: str
    fault_seconds: float = 0.0
    total_seconds: float = 0.0
    simulated: timedelta = timedelta(0)
    jitter: timedelta = timedelta(0)
    passes: Counter[str] = field(default_factory=Counter)
    overruns: int = 0
    final_passes: list[RunResult] = field(default_factory=list)
    stop: StopReport | None = None
    faults: Counter[str] = field(default_factory=Counter)
    requests: Counter[int] = field(default_factory=Counter)
    log_levels: Counter[str] = field(default_factory=Counter)
    zvms: list[ZvmReport] = field(default_factory=list)
    rss: RssVerdict | None = None
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


# ---- helpers: memory, clocks, faults, request counts --------------------------------------


def read_rss() -> int:
    """This process's resident set size in bytes: psutil when installed, else ``VmRSS``."""
    try:
        psutil: Any = importlib.import_module("psutil")
    except ImportError:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("neither psutil nor /proc/self/status gives the RSS") from None
    return int(psutil.Process().memory_info().rss)


class _Every(threading.Thread):
    """Calls ``action`` every ``period`` seconds (first at once) until :meth:`stop`."""

    def __init__(self, name: str, period: float, action: Callable[[], None]) -> None:
        super().__init__(name=name, daemon=True)
        self.period = period
        self.action = action
        self._halt = threading.Event()

    def run(self) -> None:
        while True:
            self.action()
            if self._halt.wait(self.period):
                return

    def stop(self) -> None:
        self._halt.set()
        self.join()


class RssSampler:
    """Samples :func:`read_rss` every ``period`` seconds: ``(seconds since start, bytes)``."""

    def __init__(self, period: float) -> None:
        self.samples: list[tuple[float, int]] = []
        self._began = time.monotonic()
        self._thread = _Every("soak-rss", period, self._sample)

    def _sample(self) -> None:
        self.samples.append((time.monotonic() - self._began, read_rss()))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()
        self._sample()


class ClockDriver:
    """Moves the (speed 0) simulators' clocks ``speed`` times faster than real time, in
    small steps; :meth:`stop` freezes them where they are."""

    def __init__(self, sims: Sequence[Simulator], speed: float, step: float = 0.1) -> None:
        self.sims = sims
        self.speed = speed
        self.simulated = timedelta(0)
        self._last = time.monotonic()
        self._thread = _Every("soak-clock", step, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        delta = timedelta(seconds=(now - self._last) * self.speed)
        self._last = now
        for sim in self.sims:
            sim.advance(delta)
        self.simulated += delta

    def start(self) -> None:
        self._last = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()


class Disturbances:
    """The faults driven from here: every ``expire_every`` seconds one ZVM (in turn) loses
    every session and token; every ``outage_every`` seconds one ZVM (in turn) answers every
    API call 503 for ``outage_for`` seconds. Counted in :attr:`counts`."""

    def __init__(self, sims: Sequence[Simulator], plan: FaultPlan) -> None:
        self.sims = sims
        self.plan = plan
        self.counts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._down: Simulator | None = None
        self._thread = threading.Thread(target=self._run, name="soak-disturbances", daemon=True)

    def _run(self) -> None:
        plan = self.plan
        began = time.monotonic()
        expire_turn = itertools.cycle(self.sims)
        outage_turn = itertools.cycle(self.sims)
        next_expire = plan.expire_every
        next_outage = plan.outage_every
        outage_ends: float | None = None
        while not self._stop.wait(0.1):
            elapsed = time.monotonic() - began
            if next_expire is not None and plan.expire_every and elapsed >= next_expire:
                next(expire_turn).expire_sessions()
                self.counts[EXPIRED_BY_CALL] += 1
                next_expire += plan.expire_every
            if outage_ends is not None and elapsed >= outage_ends:
                self._end_outage()
                outage_ends = None
            if next_outage is not None and plan.outage_every and elapsed >= next_outage:
                if outage_ends is None:
                    with self._lock:
                        self._down = next(outage_turn)
                        self._down.faults.error_rate = 1.0
                    self.counts[OUTAGE] += 1
                    outage_ends = elapsed + plan.outage_for
                next_outage += plan.outage_every

    def _end_outage(self) -> None:
        with self._lock:
            if self._down is not None:
                self._down.faults.error_rate = self.plan.error_rate
                self._down = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._end_outage()


def faults_on(sim: Simulator, plan: FaultPlan, zvm: ZvmPlan) -> None:
    """Every fault knob of ``sim`` at the plan's rate."""
    knobs = sim.faults
    knobs.error_rate = plan.error_rate
    knobs.retry_after = plan.retry_after
    knobs.latency = plan.latency
    knobs.drop_rate = plan.drop_rate
    knobs.session_max_requests = plan.session_max_requests
    knobs.session_ttl = plan.session_ttl
    knobs.malformed_rate = plan.malformed_rate
    knobs.missing_listings = set(zvm.missing_listings)
    knobs.failing_listings = set(zvm.failing_listings)


def transient_faults_off(sim: Simulator) -> None:
    """Every knob back to no fault, but ``malformed_rate`` (see the module docstring)."""
    malformed = sim.faults.malformed_rate
    sim.faults.reset()
    sim.faults.malformed_rate = malformed


def drain_requests(sim: Simulator) -> Counter[int]:
    """The statuses of the requests ``sim`` logged since the last call, removed from its log
    (which would otherwise grow for the whole soak and be counted as this process's memory).

    Only the first ``n`` entries are taken and deleted; requests logged meanwhile are
    appended after them and stay for the next call.
    """
    records = sim.requests
    count = len(records)
    statuses = Counter(record.status for record in records[:count])
    del records[:count]
    return statuses


class _LogCounter(logging.Handler):
    """Counts log records by level, and the scheduler's ``overrun`` events."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.levels: Counter[str] = Counter()
        self.overruns = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.levels[record.levelname] += 1
        if getattr(record, "event", None) == "overrun":
            self.overruns += 1


@contextlib.contextmanager
def _counting_logs() -> Iterator[_LogCounter]:
    """A :class:`_LogCounter` on the ``etl`` loggers (INFO and above) while in the block."""
    counter = _LogCounter()
    logger = logging.getLogger("etl")
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)


# ---- the database -------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(url: str, *, keep: bool = False) -> Iterator[str]:
    """The URL of a new, empty database ``zvm_etl_soak_<hex>`` on the server of ``url``,
    dropped afterwards unless ``keep``; a SQLite URL is yielded as it is."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        yield url
        return
    if backend not in ("postgresql", "mysql", "mariadb"):
        raise ValueError(f"unsupported database {backend!r}: PostgreSQL, MariaDB/MySQL, SQLite")
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    name = DATABASE_PREFIX + secrets.token_hex(6)
    try:
        with admin.connect() as conn:
            if backend == "postgresql":
                conn.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE template0")
            else:
                conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        try:
            yield parsed.set(database=name).render_as_string(hide_password=False)
        finally:
            if keep:
                print(f"soak: kept the database {name}", flush=True)
            else:
                with admin.connect() as conn:
                    if backend == "postgresql":
                        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                    else:
                        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    finally:
        admin.dispose()


def soak_config(
    url: str, sims: dict[str, Simulator], interval: str, *, retry_for: str = "10s"
) -> Config:
    """The configuration of the soak: one ZVM per simulator, a short interval.

    ``retry_for`` 10s (an outage outlasts it, so the pass fails), ``max_backoff`` 16s (a
    failing ZVM is back within seconds of recovering), listings re-read every minute (their
    faults keep being met); the jitter is the default, which the scheduler caps at a tenth
    of the interval.
    """
    zvms = []
    for name, sim in sims.items():
        zvms.append(
            {
                "name": name,
                "url": sim.url,
                "auth": sim.settings.auth,
                "username": sim.settings.username,
                "password": PASSWORD,
                "retry_for": retry_for,
                "connect_retry_for": retry_for,
                "task_retention": f"{int(sim.settings.retention.total_seconds())}s",
            }
        )
    sync = {
        "interval": interval,
        "overlap": "10m",
        "backfill_window": "6h",
        "entity_refresh_interval": "1m",
        "max_backoff": "16s",
        "shutdown_grace": "60s",
    }
    return parse_config(
        {"warehouse": {"url": url}, "zvms": zvms, "sync": sync}, source="soak", env={}
    )


# ---- verification -------------------------------------------------------------------------

_VOLATILE = {"status", "iscancellable", "completed", "completereason"}
"""The fields of a task record that change while the task runs."""


def _without_volatile(raw: str) -> Any:
    """A record's JSON without the fields that change while its task runs (key case aside)."""
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        return data
    return {key: value for key, value in data.items() if key.lower() not in _VOLATILE}


def _running(raw: str) -> bool:
    """Whether a record is of a task that has not completed (its ``Completed`` is null)."""
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        return False
    return all(value is None for key, value in data.items() if key.lower() == "completed")


def verify_zvm(engine: Engine, name: str, sim: Simulator) -> ZvmReport:
    """Compare what the warehouse holds for ZVM ``name`` with ``sim``'s ground truth.

    The tasks are normalized from the ground truth as in the sync tests
    (``tests.syncing.expected_tasks``), and compared as ``tests.syncing.assert_converged``
    does, but exactly and for this ZVM only. Violations:

    - a task the ZVM holds is not in ``tasks`` (lost), or ``tasks`` holds one of this ZVM
      that the ZVM does not (duplicated or invented);
    - a task's state, progress, Started, Completed, type or payload hash differs;
    - its VPG links (``task_vpgs``) differ;
    - a task's ``task_status_changes`` has two consecutive rows with the same (state,
      progress) (a repeated status row), or its last row is not the task's state;
    - a record the ZVM serves malformed is not in ``rejected_tasks``: the exact record, or,
      for a task still running, a version of it that differs only in the fields that change
      while a task runs (a rejected record is never re-read, so a running one may have
      moved on since); ``rejected_tasks`` holds the same record twice;
    - an ``etl_runs`` row is still ``running`` or has no ``finished_at``.
    """
    report = ZvmReport(name)
    good, bad = expected_tasks(sim)
    report.malformed = len(bad)
    t, v, s, r, runs = (
        schema.tasks,
        schema.task_vpgs,
        schema.task_status_changes,
        schema.rejected_tasks,
        schema.etl_runs,
    )
    with engine.connect() as conn:
        rows = {
            row.task_identifier: row
            for row in conn.execute(
                sa.select(
                    t.c.task_identifier,
                    t.c.state,
                    t.c.progress,
                    t.c.started_at,
                    t.c.completed_at,
                    t.c.payload_hash,
                    t.c.type,
                ).where(t.c.zvm == name)
            )
        }
        links = {
            (task, vpg)
            for task, vpg in conn.execute(
                sa.select(v.c.task_identifier, v.c.vpg_identifier)
                .join(t, t.c.task_identifier == v.c.task_identifier)
                .where(t.c.zvm == name)
            )
        }
        changes = conn.execute(
            sa.select(s.c.task_identifier, s.c.state, s.c.progress)
            .join(t, t.c.task_identifier == s.c.task_identifier)
            .where(t.c.zvm == name)
            .order_by(s.c.task_identifier, s.c.observed_at)
        ).all()
        rejected = list(conn.execute(sa.select(r.c.payload).where(r.c.zvm == name)).scalars())
        run_rows = conn.execute(
            sa.select(runs.c.run_id, runs.c.status, runs.c.finished_at).where(runs.c.zvm == name)
        ).all()
    report.tasks = len(rows)
    report.rejected_rows = len(rejected)
    report.status_rows = len(changes)
    report.open_tasks = sum(1 for task in good.values() if not task.is_final)
    problems = report.violations

    def note(what: str, identifiers: Sequence[str] | set[str]) -> None:
        if identifiers:
            shown = ", ".join(sorted(identifiers)[:3])
            problems.append(f"{name}: {len(identifiers)} {what} (e.g. {shown})")

    note("tasks the ZVM holds are not in the warehouse (lost)", set(good) - set(rows))
    note("tasks in the warehouse the ZVM does not hold", set(rows) - set(good))
    note(
        "tasks differ from the ZVM's version",
        {
            identifier
            for identifier, task in good.items()
            if identifier in rows
            and (
                rows[identifier].payload_hash,
                rows[identifier].state,
                rows[identifier].progress,
                rows[identifier].started_at,
                rows[identifier].completed_at,
                rows[identifier].type,
            )
            != (
                task.payload_hash,
                task.state,
                task.progress,
                task.started_at,
                task.completed_at,
                task.type,
            )
        },
    )
    expected_links = {(i, vpg) for i, task in good.items() for vpg, _href in task.vpgs}
    note("VPG links are missing", {i for i, _ in expected_links - links})
    note("VPG links should not be there", {i for i, _ in links - expected_links})

    repeated: set[str] = set()
    last: dict[str, tuple[int, int | None]] = {}
    for identifier, group in itertools.groupby(changes, key=lambda row: row.task_identifier):
        seen = [(row.state, row.progress) for row in group]
        if any(a == b for a, b in itertools.pairwise(seen)):
            repeated.add(identifier)
        last[identifier] = seen[-1]
    note("tasks have a repeated status row", repeated)
    note(
        "tasks' last status row is not their state",
        {i for i, task in good.items() if last.get(i) != (task.state, task.progress)},
    )

    kept = set(rejected)
    note(
        "records appear twice in rejected_tasks",
        {raw[:60] for raw, count in Counter(rejected).items() if count > 1},
    )
    kept_shapes = [_without_volatile(raw) for raw in kept]
    not_kept = [
        item.raw
        for item in bad
        if item.raw not in kept
        and not (_running(item.raw) and _without_volatile(item.raw) in kept_shapes)
    ]
    note("malformed records are not in rejected_tasks", {raw[:60] for raw in not_kept})

    report.runs = Counter(row.status for row in run_rows)
    note(
        "etl_runs rows are left running",
        {str(row.run_id) for row in run_rows if row.status == "running" or not row.finished_at},
    )
    return report


def rss_verdict(
    samples: Sequence[tuple[float, int]], *, limit_mb: float, duration: float
) -> RssVerdict:
    """The memory rule. The first quarter of the fault phase (``duration``) is warm-up
    (first pass, imports, pools, caches) and is left out; the samples after it are cut in
    quarters, and the median RSS of the last quarter may exceed that of the first by at most
    ``limit_mb``. Fewer than 8 samples after warm-up: no verdict (too short to judge)."""
    warm_up = duration / 4
    after = [rss for at, rss in samples if at >= warm_up]
    quarter = len(after) // 4
    first = last = None
    if len(after) >= 8:
        first = int(statistics.median(after[:quarter]))
        last = int(statistics.median(after[-quarter:]))
    rss = [value for _, value in samples] or [0]
    return RssVerdict(
        samples=len(samples),
        peak=max(rss),
        final=rss[-1],
        first_quarter=first,
        last_quarter=last,
        limit=int(limit_mb * MB),
        warm_up_seconds=warm_up,
    )


# ---- the run ------------------------------------------------------------------------------


def _start_sims(options: SoakOptions) -> dict[str, Simulator]:
    sims: dict[str, Simulator] = {}
    try:
        for plan in options.zvms:
            sims[plan.name] = Simulator(
                seed=plan.seed,
                speed=0,  # the ClockDriver moves the clock, so it can be frozen at the end
                days=options.days,
                tasks_per_hour=options.tasks_per_hour,
                auth=plan.auth,
                date_style=plan.date_style,
                key_case=plan.key_case,
                password=PASSWORD,
                token_lifetime=20.0,
            ).start()
    except BaseException:
        for sim in sims.values():
            sim.stop()
        raise
    return sims


def run_soak(options: SoakOptions, *, interrupt: threading.Event | None = None) -> SoakResult:
    """Run the soak (see the module docstring) and return what it found.

    ``interrupt``, when set, ends the fault phase early (the verification still runs).
    """
    began = time.monotonic()
    backend = make_url(options.url).get_backend_name()
    result = SoakResult(options=options, backend=backend)
    with fresh_database(options.url, keep=options.keep_database) as url:
        db.upgrade(url)
        sims = _start_sims(options)
        try:
            for plan in options.zvms:
                faults_on(sims[plan.name], options.faults, plan)
            config = soak_config(url, sims, options.interval, retry_for=options.retry_for)
            result.jitter = effective_jitter(config.sync)
            _run_phases(options, config, sims, result, interrupt or threading.Event())
        finally:
            for sim in sims.values():
                sim.stop()
    result.total_seconds = time.monotonic() - began
    return result


def _run_phases(
    options: SoakOptions,
    config: Config,
    sims: dict[str, Simulator],
    result: SoakResult,
    interrupt: threading.Event,
) -> None:
    sampler = RssSampler(options.sample_every)
    clock = ClockDriver(list(sims.values()), options.speed)
    disturbances = Disturbances(list(sims.values()), options.faults)

    def count_requests() -> None:
        for sim in sims.values():
            result.requests.update(drain_requests(sim))

    requests = _Every("soak-requests", 5.0, count_requests)
    metrics = Metrics()
    stop = threading.Event()
    reports: list[StopReport] = []
    crashed: list[BaseException] = []

    def schedule() -> None:
        try:
            reports.append(
                run_schedule(config, metrics=metrics, stop_event=stop, handle_signals=False)
            )
        except BaseException as exc:
            crashed.append(exc)

    scheduler = threading.Thread(target=schedule, name="soak-scheduler")
    with _counting_logs() as logs:
        sampler.start()
        clock.start()
        disturbances.start()
        requests.start()
        fault_phase = time.monotonic()
        scheduler.start()
        deadline = fault_phase + options.seconds
        while (left := deadline - time.monotonic()) > 0 and scheduler.is_alive():
            if interrupt.wait(min(left, 1.0)):
                result.violations.append("interrupted: the fault phase was cut short")
                break
        stop.set()
        scheduler.join(timeout=config.sync.shutdown_grace.total_seconds() + 60)
        result.fault_seconds = time.monotonic() - fault_phase
        disturbances.stop()
        sampler.stop()
        clock.stop()
        requests.stop()
        result.simulated = clock.simulated
        for sim in sims.values():
            result.faults.update(sim.faults.injected.snapshot())
            transient_faults_off(sim)
        result.faults.update(disturbances.counts)
        if scheduler.is_alive():
            result.violations.append("the scheduler did not stop")
        elif crashed:
            result.violations.append(f"the scheduler raised {crashed[0]!r}")
        elif reports:
            result.stop = reports[0]
            if not reports[0].clean:
                result.violations.append(
                    f"the scheduler stopped with unfinished passes: {reports[0].unfinished}"
                )
        for name in sims:
            for outcome in ("succeeded", "failed", "skipped"):
                value = metrics.registry.get_sample_value(
                    "zvm_etl_passes_total", {"zvm": name, "outcome": outcome}
                )
                result.passes[outcome] += int(value or 0)
        result.overruns = logs.overruns

        engine = db.make_engine(config.warehouse.url)
        try:
            result.final_passes = sync_all(config, engine=engine)
            for final in result.final_passes:
                if not final.succeeded:
                    result.violations.append(
                        f"{final.zvm}: the final clean pass {final.status}: {final.error}"
                    )
            for name, sim in sims.items():
                report = verify_zvm(engine, name, sim)
                result.zvms.append(report)
                result.violations += report.violations
        finally:
            engine.dispose()
        for sim in sims.values():
            result.requests.update(drain_requests(sim))
        result.log_levels = logs.levels
    result.rss = rss_verdict(
        sampler.samples, limit_mb=options.max_rss_growth_mb, duration=result.fault_seconds
    )
    if result.rss.violation:
        result.violations.append(result.rss.violation)


# ---- the summary --------------------------------------------------------------------------


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MB:.1f} MB"


def summary(result: SoakResult) -> str:
    """The figures of a soak, as printed at its end."""
    options = result.options
    lines = [
        "soak summary",
        f"  database        {result.backend}",
        f"  duration        {result.fault_seconds:.0f} s with faults (asked: "
        f"{options.seconds:g} s), {result.total_seconds:.0f} s in all; "
        f"{result.simulated.total_seconds() / 3600:.1f} h of ZVM time (speed {options.speed:g})",
        f"  schedule        {len(options.zvms)} ZVMs, a pass every {options.interval} "
        f"(+ up to {format_duration(result.jitter)} jitter)",
        f"  passes          {result.passes['succeeded']} succeeded, "
        f"{result.passes['failed']} failed, {result.passes['skipped']} skipped; "
        f"{result.overruns} overruns (due while the previous pass still ran)",
        "  final pass      "
        + ", ".join(f"{final.zvm} {final.status}" for final in result.final_passes),
        "  faults injected "
        + ", ".join(f"{kind} {count}" for kind, count in sorted(result.faults.items())),
        f"  malformed       {sum(z.malformed for z in result.zvms)} distinct tasks served "
        f"malformed (rate {options.faults.malformed_rate:g})",
        f"  tasks           {sum(z.tasks for z in result.zvms)} in the warehouse ("
        + ", ".join(f"{z.name} {z.tasks}" for z in result.zvms)
        + f"); {sum(z.open_tasks for z in result.zvms)} still open; "
        f"{sum(z.rejected_rows for z in result.zvms)} rejected_tasks rows; "
        f"{sum(z.status_rows for z in result.zvms)} status rows",
        "  etl_runs        "
        + ", ".join(
            f"{status} {sum(z.runs[status] for z in result.zvms)}"
            for status in ("succeeded", "failed", "running")
        ),
        f"  requests        {sum(result.requests.values())} ("
        + ", ".join(f"{status}: {n}" for status, n in sorted(result.requests.items()))
        + ")",
        "  log records     "
        + (", ".join(f"{level} {n}" for level, n in sorted(result.log_levels.items())) or "none"),
    ]
    rss = result.rss
    if rss is not None:
        growth = rss.growth
        lines += [
            f"  RSS             peak {_mb(rss.peak)}, final {_mb(rss.final)} ({rss.samples} "
            f"samples); median after {rss.warm_up_seconds:.0f} s of warm-up: first quarter "
            f"{_mb(rss.first_quarter)}, last quarter {_mb(rss.last_quarter)}, growth "
            f"{'n/a' if growth is None else f'{growth / MB:+.1f} MB'} "
            f"(limit {_mb(rss.limit)})",
        ]
    if result.violations:
        lines.append(f"  FAILED: {len(result.violations)} violation(s)")
        lines += [f"    - {violation}" for violation in result.violations]
    else:
        lines.append(
            "  OK: every task of every ZVM is in the warehouse exactly once with the ZVM's "
            "values, no status row repeats, no run is left running, memory stayed flat"
        )
    return "\n".join(lines)


# ---- command line -------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/soak.py",
        description=(
            "Run the scheduler against three faulty simulated ZVMs, then verify that the "
            "warehouse equals each ZVM's ground truth and that memory did not grow."
        ),
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get("SOAK_SECONDS") or 600),
        help="how long the faulty phase lasts (default: $SOAK_SECONDS or 600)",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("ZVM_ETL_TEST_POSTGRES_URL"),
        help="a database server URL whose user may create databases (a fresh one is made "
        "and dropped), or sqlite:///FILE (default: $ZVM_ETL_TEST_POSTGRES_URL)",
    )
    parser.add_argument(
        "--speed", type=float, default=60.0, help="simulated seconds per real second (60)"
    )
    parser.add_argument("--interval", default="2s", help="sync.interval (2s)")
    parser.add_argument(
        "--max-rss-growth-mb",
        type=float,
        default=50.0,
        help="the largest RSS growth allowed, first to last quarter after warm-up (50)",
    )
    parser.add_argument(
        "--keep-database", action="store_true", help="do not drop the soak's database"
    )
    parser.add_argument(
        "--log-level",
        default="ERROR",
        help="the level of the ETL's log lines shown on stderr (ERROR; they are counted "
        "whatever it is)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: run the soak, print the summary; 0 when it passed, 1 when not, 2
    for a usage error."""
    args = _parser().parse_args(argv)
    if not args.url:
        print(
            "soak: no database: pass --url or set ZVM_ETL_TEST_POSTGRES_URL (e.g. "
            "postgresql+psycopg://postgres@127.0.0.1:5432/test)",
            file=sys.stderr,
        )
        return 2
    if args.seconds <= 0:
        print("soak: --seconds must be positive", file=sys.stderr)
        return 2
    configure_logging(level="INFO")
    for handler in logging.getLogger().handlers:
        handler.setLevel(args.log_level.upper())
    options = SoakOptions(
        url=args.url,
        seconds=args.seconds,
        speed=args.speed,
        interval=args.interval,
        max_rss_growth_mb=args.max_rss_growth_mb,
        keep_database=args.keep_database,
    )
    shown = make_url(args.url).render_as_string(hide_password=True)
    print(
        f"soak: {args.seconds:g} s against {len(options.zvms)} faulty simulated ZVMs on "
        f"{shown}, a pass every {args.interval} (Ctrl-C ends the faulty phase early)",
        flush=True,
    )
    interrupt = threading.Event()
    outcome: list[SoakResult] = []
    crashed: list[BaseException] = []

    def soak() -> None:
        try:
            outcome.append(run_soak(options, interrupt=interrupt))
        except BaseException as exc:
            crashed.append(exc)

    worker = threading.Thread(target=soak, name="soak")
    worker.start()
    while worker.is_alive():
        try:
            worker.join(timeout=0.5)
        except KeyboardInterrupt:
            interrupt.set()
    if crashed:
        raise crashed[0]
    result = outcome[0]
    print(summary(result), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
