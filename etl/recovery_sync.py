"""A pass's read of the ZVM's Recovery Report: incremental, in bounded windows and pages,
never failing the pass.

:func:`sync_recovery_report` runs in every pass (:mod:`etl.passes`) after the tasks'
windows, when ``sync.recovery_report`` is on:

1. it starts from its own cursor in ``sync_cursors`` (``recovery_report``: the operations'
   start up to which the report has been read) minus ``sync.overlap``; on the first read, at
   ``sync.backfill_since`` or ``now − task_retention`` with one open window before it, like a
   first pass's tasks;
2. it reads windows of ``sync.backfill_window`` (widened over empty stretches,
   :class:`~etl.windows.WindowPlanner`), each page by page
   (:func:`~etl.zvm.reports.fetch_recovery_report`, ``sync.recovery_page_size`` a page); a
   window whose pages repeat (the ZVM ignores ``pageNumber``) is split in halves down to
   :data:`MIN_SPLIT` and read again;
3. it normalizes the entries (:mod:`etl.recovery`) and keeps only the operations that
   started in the window asked for: the others (a ZVM that ignored ``startTime`` or
   ``endTime``) are read in their own window, and counted;
4. it writes each window in one transaction (:mod:`etl.warehouse.recovery`) with the cursor
   moved to the window's end when that is settled (the ``settled`` moment the pass gives),
   else to the newest start it loaded, and never past the start of a failover, test or move
   the warehouse still holds as running: its operation is reported once it ends;
5. the pass's last transaction, once the names and the late tasks are written, links the
   operations that still lack a task or a VPG
   (:func:`~etl.warehouse.recovery.relink_recovery_operations`);
6. it records in ``zvms`` when the report was read and what went wrong
   (``recovery_report_error``): a missing report (404), one that keeps failing, an answer
   of the wrong shape, a ZVM that ignored a filter or the paging, rejected entries, or the
   time budget (``sync.recovery_report_budget``) spent. None of these fails the pass: the
   windows read so far stay, and the next pass goes on from the cursor.

:func:`backfill_recovery_report` reads a past range the same way, without the cursor.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from etl.config import SyncConfig, ZvmConfig, format_duration
from etl.errors import ZvmError
from etl.recovery import RecoveryOperation, RejectedOperation, normalize_recovery_operations
from etl.warehouse.load import read_cursors, save_cursors
from etl.warehouse.recovery import (
    RecoveryCounts,
    earliest_open_recovery_task,
    save_recovery_operations,
    save_recovery_status,
    save_rejected_operations,
)
from etl.windows import BOUNDARY_OVERLAP, MAX_WIDENING, Window, WindowPlanner, plan_windows
from etl.zvm.client import ZvmClient
from etl.zvm.reports import RECOVERY_REPORT, fetch_recovery_report

__all__ = [
    "BUDGET_SETTING",
    "MIN_SPLIT",
    "RECOVERY_CURSOR",
    "RecoveryOutcome",
    "ReportRun",
    "backfill_recovery_report",
    "sync_recovery_report",
]

log = logging.getLogger(__name__)

RECOVERY_CURSOR = "recovery_report"
"""The report's cursor in ``sync_cursors``."""

BUDGET_SETTING = "sync.recovery_report_budget"

MIN_SPLIT = timedelta(minutes=2)
"""A window whose pages repeat is split in halves while it is wider than this."""


@dataclass
class RecoveryOutcome:
    """What one read of the report did: the counts, the windows read, and the problems
    (each one line; recorded in ``zvms.recovery_report_error``)."""

    counts: RecoveryCounts = field(default_factory=RecoveryCounts)
    windows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        return "; ".join(self.problems) or None


@dataclass
class _Window:
    """One window's normalized answer."""

    operations: list[RecoveryOperation] = field(default_factory=list)
    rejected: list[RejectedOperation] = field(default_factory=list)
    outside: int = 0
    repeated: int = 0


@dataclass(frozen=True)
class ReportRun:
    """Where a read of the report happens: the pass's warehouse, ZVM (its configuration),
    settings, client, ``etl_runs`` row and ``now``."""

    engine: Engine
    zvm: ZvmConfig
    settings: SyncConfig
    client: ZvmClient
    run_id: int
    now: datetime


class _Reader:
    """The read of one pass or backfill over one ZVM's report (the module docstring)."""

    def __init__(self, run: ReportRun) -> None:
        self.engine = run.engine
        self.zvm = run.zvm
        self.settings = run.settings
        self.client = run.client
        self.run_id = run.run_id
        self.now = run.now
        self.outcome = RecoveryOutcome()
        budget = run.settings.recovery_report_budget
        self.deadline = run.client.deadline(budget.total_seconds(), setting=BUDGET_SETTING)

    # -- windows ---------------------------------------------------------------------------

    def run(
        self,
        windows: Sequence[Window] | WindowPlanner,
        *,
        settled: datetime | None,
        move_cursor: bool,
    ) -> RecoveryOutcome:
        """Read ``windows`` in order, writing each; record the outcome in ``zvms``."""
        outcome = self.outcome
        previous: int | None = None
        outside = repeated = 0
        try:
            while True:
                window = _next(windows, outcome.windows, previous)
                if window is None:
                    break
                if self.deadline.expired:
                    budget = format_duration(self.settings.recovery_report_budget)
                    outcome.problems.append(
                        f"the report was read up to {_moment(window[0])} only: the pass had "
                        f"spent its {budget} ({BUDGET_SETTING}); the next pass goes on from there"
                    )
                    break
                answer = self._read(*window)
                outcome.windows += 1
                previous = len(answer.operations)
                outside += answer.outside
                repeated += answer.repeated
                self._save(window, answer, settled=settled if move_cursor else None)
        except ZvmError as exc:
            outcome.problems.append(f"GET {RECOVERY_REPORT}: {exc}")
        if outside:
            outcome.problems.append(
                f"the ZVM returned {outside} operations that started outside the window asked "
                "for (it ignored startTime/endTime): each was kept in its own window"
            )
        if repeated:
            outcome.problems.append(
                f"the ZVM repeated a page {repeated} times (it ignored pageNumber): operations "
                f"beyond the first page of a {format_duration(MIN_SPLIT)} window may be missing"
            )
        if outcome.counts.rejected:
            outcome.problems.append(
                f"{outcome.counts.rejected} entries could not be loaded "
                "(see rejected_recovery_operations)"
            )
        with self.engine.begin() as conn:
            save_recovery_status(conn, self.zvm.name, error=outcome.error, now=self.now)
        counts = outcome.counts
        log.log(
            logging.WARNING if outcome.problems else logging.INFO,
            "ZVM %s: recovery report: %d operations (%d new, %d updated, %d unchanged, "
            "%d linked to a task), %d rejected, in %d windows%s",
            self.zvm.name,
            counts.received,
            counts.inserted,
            counts.updated,
            counts.unchanged,
            counts.linked,
            counts.rejected,
            outcome.windows,
            f"; {outcome.error}" if outcome.problems else "",
            extra={"event": "recovery_report", "zvm": self.zvm.name},
        )
        return outcome

    def _read(self, after: datetime | None, before: datetime | None) -> _Window:
        """One window's operations that started in it (pages read, split when they repeat)."""
        answer = fetch_recovery_report(
            self.client,
            after=after,
            before=before,
            page_size=self.settings.recovery_page_size,
            # A call that keeps failing gives up within half of what is left, not all of it.
            deadline=self.deadline.share(2),
        )
        end = before or self.now
        if answer.repeated and after is not None and end - after > MIN_SPLIT:
            middle = (after + (end - after) / 2).replace(microsecond=0)
            first = self._read(after, middle)
            second = self._read(middle - BOUNDARY_OVERLAP, before)
            return _Window(
                operations=[*first.operations, *second.operations],
                rejected=[*first.rejected, *second.rejected],
                outside=first.outside + second.outside,
                repeated=first.repeated + second.repeated,
            )
        operations, rejected = normalize_recovery_operations(answer.entries, zvm=self.zvm.name)
        low = after.replace(microsecond=0) if after is not None else None
        high = _round_up(before) if before is not None else None
        inside = [
            op
            for op in operations
            if (low is None or op.started_at >= low) and (high is None or op.started_at <= high)
        ]
        return _Window(
            operations=inside,
            rejected=rejected,
            outside=len(operations) - len(inside),
            repeated=int(answer.repeated),
        )

    def _save(self, window: Window, answer: _Window, *, settled: datetime | None) -> None:
        """Write one window in one transaction, with the cursor when ``settled`` is given."""
        name = self.zvm.name
        operations = list({op.operation_identifier: op for op in answer.operations}.values())
        with self.engine.begin() as conn:
            counts = save_recovery_operations(conn, name, operations, now=self.now)
            save_rejected_operations(conn, name, answer.rejected, run_id=self.run_id, now=self.now)
            counts.rejected = len(answer.rejected)
            self.outcome.counts.add(counts)
            if settled is None:
                return
            before = window[1]
            newest = max((op.started_at for op in operations), default=None)
            if before is not None and before <= settled:
                reached: datetime | None = before
            else:
                reached = newest
            running = earliest_open_recovery_task(
                conn, name, started_since=self.now - self.zvm.task_retention
            )
            if reached is not None and running is not None:
                reached = min(reached, running)
            if reached is not None:
                save_cursors(conn, name, {RECOVERY_CURSOR: reached}, now=self.now)


def _next(
    windows: Sequence[Window] | WindowPlanner, done: int, previous: int | None
) -> Window | None:
    if isinstance(windows, WindowPlanner):
        return windows.next(previous)
    return windows[done] if done < len(windows) else None


def _round_up(moment: datetime) -> datetime:
    """The moment, rounded up to a whole second (as an upper filter bound is sent)."""
    whole = moment.replace(microsecond=0)
    return whole + timedelta(seconds=1) if moment.microsecond else whole


def _moment(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else "the beginning"


def sync_recovery_report(run: ReportRun, *, settled: datetime) -> RecoveryOutcome | None:
    """A pass's incremental read of the report (the module docstring); None when
    ``sync.recovery_report`` is off. ``settled``: a window that ends before it moves the
    cursor to its end whatever it held. Raises only for warehouse failures."""
    settings, zvm, now = run.settings, run.zvm, run.now
    if not settings.recovery_report:
        return None
    with run.engine.connect() as conn:
        cursor = read_cursors(conn, zvm.name).get(RECOVERY_CURSOR)
        conn.rollback()
    width = settings.backfill_window
    if cursor is None:
        since = settings.backfill_since
        start = since or (now - zvm.task_retention).replace(microsecond=0)
        open_start = since is None
    else:
        start, open_start = cursor - settings.overlap, False
    planner = WindowPlanner(
        start, now, width, open_start=open_start, max_width=width * MAX_WIDENING
    )
    return _Reader(run).run(planner, settled=settled, move_cursor=True)


def backfill_recovery_report(
    run: ReportRun, *, since: datetime, until: datetime | None
) -> RecoveryOutcome | None:
    """Read the report's operations started in ``[since, until]`` (until: now, open-ended),
    never moving its cursor; None when ``sync.recovery_report`` is off."""
    if not run.settings.recovery_report:
        return None
    width = run.settings.backfill_window
    windows = plan_windows(since, until or run.now, width, open_end=until is None)
    return _Reader(run).run(windows, settled=None, move_cursor=False)
