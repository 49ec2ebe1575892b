"""``zvm-etl verify`` for people: each ZVM's outcome, what was compared, and per differing
day the identifiers missing on either side and the command that repairs it.

``zvm-etl verify --json`` prints the same facts as data (:meth:`Verification.to_dict`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from etl.verify import DayResult, Verification

__all__ = ["SHOWN", "render_verifications"]

SHOWN = 10
"""Identifiers printed per list; ``--json`` lists them all."""


def render_verifications(results: Sequence[Verification]) -> str:
    """One block per ZVM, then a line of totals."""
    blocks = ["\n".join(_block(result)) for result in results]
    tally = Counter(result.status for result in results)
    blocks.append(
        f"verified {len(results)} ZVM{'s' if len(results) != 1 else ''}: "
        + ", ".join(f"{tally[s]} {s}" for s in ("complete", "incomplete", "failed"))
    )
    return "\n\n".join(blocks)


def _block(result: Verification) -> list[str]:
    head = f"ZVM {result.zvm}: "
    if result.failed:
        recorded = f"recorded as failed (verification {result.id})" if result.id else "failed"
        return [
            f"{head}FAILED: {result.error}",
            f"  {recorded}: fix what the error says, then run "
            f"`zvm-etl verify --zvm {result.zvm}` again",
        ]
    if result.error:  # never synced
        return [f"{head}INCOMPLETE: {result.error}"]
    if result.since is None or result.until is None:
        return [f"{head}complete: nothing to compare: {result.note}"]
    differing = result.differing
    if differing:
        verb = "differ" if len(differing) > 1 else "differs"
        lines = [f"{head}INCOMPLETE: {len(differing)} of {len(result.days)} days {verb}"]
    else:
        lines = [f"{head}complete: every task the ZVM holds is in the warehouse"]
    lines += _summary(result)
    for day in differing:
        lines += _day(result, day)
    return lines


def _summary(result: Verification) -> list[str]:
    days = f"{len(result.days)} UTC day{'s' if len(result.days) != 1 else ''}"
    if result.until == result.cursor:
        span = (
            f"to the started cursor {_when(result.cursor)} ({days}; tasks started later are "
            "not in the warehouse yet)"
        )
    else:
        span = f"to {_when(result.until)} ({days})"
    rejected = result.total("rejected")
    lines = [
        f"  compared: tasks started from {_when(result.since)} {span}",
        f"  tasks: {result.total('zvm_tasks'):,} on the ZVM; "
        f"{result.total('warehouse_tasks'):,} in the warehouse"
        + (f", {rejected:,} malformed ones in rejected_tasks (not missing)" if rejected else ""),
    ]
    if result.unidentified:
        lines.append(
            f"  {result.unidentified:,} malformed record(s) without an identifier cannot be "
            "matched (rejected_tasks keeps them as received)"
        )
    purged = result.total("purged_by_zvm")
    oldest = (
        f"its oldest task started {_when(result.oldest_on_zvm)}"
        if result.oldest_on_zvm
        else "it holds none started before the cursor"
    )
    lines.append(
        f"  purged by the ZVM: {f'{purged:,} task(s) the warehouse keeps' if purged else 'none'}"
        f" ({oldest})"
    )
    return lines


def _day(result: Verification, day: DayResult) -> list[str]:
    part = f" (from {day.start:%H:%M:%S} to {day.end:%H:%M:%S} UTC)" if day.partial else ""
    rejected = f" ({len(day.rejected):,} malformed, in rejected_tasks)" if day.rejected else ""
    lines = [
        f"  {day.day}{part}: {day.zvm_tasks:,} tasks on the ZVM{rejected}, "
        f"{day.warehouse_tasks:,} in the warehouse"
    ]
    if day.missing_in_warehouse:
        lines.append(
            f"    missing in the warehouse ({len(day.missing_in_warehouse):,}): "
            f"{_some(day.missing_in_warehouse)}"
        )
    if day.missing_on_zvm:
        lines.append(
            f"    missing on the ZVM ({len(day.missing_on_zvm):,}), neither returned nor purged "
            f"by it: {_some(day.missing_on_zvm)}"
        )
        lines.append(
            "    (a backfill never removes a task: check that this ZVM's url is the one that "
            "sent them, and see the tasks' zvm column)"
        )
    repair = day.repair(result.zvm)
    if repair:
        lines.append(f"    repair: {repair}")
    return lines


def _some(identifiers: Sequence[str]) -> str:
    shown = ", ".join(identifiers[:SHOWN])
    more = len(identifiers) - SHOWN
    return shown + (f" ... and {more:,} more (--json lists them all)" if more > 0 else "")


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC" if value is not None else "-"
