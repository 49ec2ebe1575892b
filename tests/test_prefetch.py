"""The producer thread that fetches and normalizes windows ahead of the writer: order,
the overlap between windows, errors on either side, bounded memory."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from etl.errors import ZvmConnectionError, ZvmResponseError
from etl.normalize import TaskRecord
from etl.prefetch import Prefetch, Window
from etl.windows import WindowPlanner
from etl.zvm.answers import TaskList
from etl.zvm.client import TaskFilters

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def task(minute: int) -> dict[str, Any]:
    started = int((T0 + timedelta(minutes=minute)).timestamp() * 1000)
    return {
        "TaskIdentifier": f"t{minute}.s",
        "Type": "Login",
        "Status": {"State": 6, "Progress": 100},
        "Started": f"/Date({started})/",
        "Completed": f"/Date({started + 1000})/",
    }


class Client:
    """Answers each window with the tasks started in it (bounds inclusive), as a ZVM would."""

    def __init__(self, minutes: range, *, fail_at: int | None = None) -> None:
        self.minutes = list(minutes)
        self.tasks = [task(m) for m in self.minutes]
        self.fail_at = fail_at
        self.asked: list[TaskFilters] = []

    def fetch_task_list(self, filters: TaskFilters | None = None) -> TaskList:
        assert filters is not None
        self.asked.append(filters)
        if self.fail_at == len(self.asked):
            raise ZvmConnectionError("the ZVM went away")
        lo, hi = filters.started_after, filters.started_before
        chosen = [
            t
            for t, m in zip(self.tasks, self.minutes, strict=True)
            if (lo is None or T0 + timedelta(minutes=m) >= lo)
            and (hi is None or T0 + timedelta(minutes=m) <= hi)
        ]

        def error(exc: Exception) -> ZvmResponseError:
            return ZvmResponseError(str(exc))

        return TaskList(orjson.dumps(chosen), error)


def windows(*bounds: int) -> list[Window]:
    """Windows between the minutes given, each reaching one second back, the last open."""
    moments = [T0 + timedelta(minutes=b) for b in bounds]
    result: list[Window] = [(moments[0], moments[1])]
    result += [(a - timedelta(seconds=1), b) for a, b in itertools.pairwise(moments[1:])]
    result.append((moments[-1] - timedelta(seconds=1), None))
    return result


def drain(feed: Prefetch) -> list[list[str]]:
    return [
        [r.task_identifier for batch in batches for r in batch.records] for _window, batches in feed
    ]


def test_windows_come_in_order_in_batches_and_the_overlap_once() -> None:
    client = Client(range(100))
    with Prefetch(client, windows(0, 30, 60), batch_size=7) as feed:  # type: ignore[arg-type]
        got = drain(feed)
    assert [len(w) for w in got] == [31, 30, 39]  # minute 30 and 60 only in the first window
    assert [identifier for part in got for identifier in part] == [f"t{m}.s" for m in range(100)]


def test_an_error_of_the_producer_is_raised_where_its_window_would_come() -> None:
    client = Client(range(100), fail_at=2)
    with Prefetch(client, windows(0, 30, 60), batch_size=7) as feed:  # type: ignore[arg-type]
        parts = iter(feed)
        _, first = next(parts)
        assert len([r for batch in first for r in batch.records]) == 31
        _, second = next(parts)
        with pytest.raises(ZvmConnectionError, match="went away"):
            list(second)


def test_leaving_early_stops_the_producer_even_when_it_waits_for_room() -> None:
    client = Client(range(500))
    before = threading.active_count()
    with Prefetch(client, windows(0, 200, 400), batch_size=5, depth=2) as feed:  # type: ignore[arg-type]
        _, batches = next(iter(feed))
        next(batches)  # the producer is now blocked on a full queue
    assert threading.active_count() == before
    assert len(client.asked) == 1  # it never went on to the next window


def test_a_planner_is_asked_for_each_window_once_the_previous_answer_is_counted() -> None:
    """Tasks only from minute 600 on: the empty windows before them widen the next ones,
    the window with tasks brings the width back, and ``total`` follows the estimate."""
    client = Client(range(600, 700))
    planner = WindowPlanner(
        T0, T0 + timedelta(minutes=720), timedelta(minutes=60), max_width=timedelta(minutes=240)
    )
    totals: list[int] = []
    with Prefetch(client, planner, batch_size=7) as feed:  # type: ignore[arg-type]
        got = []
        for _window, batches in feed:
            totals.append(feed.total)
            got.append([r.task_identifier for batch in batches for r in batch.records])
    spans = [
        (f.started_before - f.started_after) // timedelta(minutes=1)
        for f in client.asked
        if f.started_after is not None and f.started_before is not None
    ]
    # Empty: 60, 120, 240 (the cap); then 240 again, from minute 420 to 660, holding tasks;
    # then back to 60 (the window from 660 to the end, open, holds the rest).
    assert spans == [60, 120, 240, 240]
    assert len(client.asked) == 5 and client.asked[-1].started_before is None
    assert [identifier for part in got for identifier in part] == [
        f"t{m}.s" for m in range(600, 700)
    ]
    assert totals[0] == 12 and totals[-1] == len(client.asked)


def test_prepare_runs_on_the_producer_thread_for_the_records_written() -> None:
    """Each batch carries what ``prepare`` made of exactly its records (the overlap's
    repeats already dropped), made on the producer's thread, not the consumer's."""
    client = Client(range(100))
    threads: set[str] = set()

    def prepare(records: list[TaskRecord]) -> list[str]:
        threads.add(threading.current_thread().name)
        return [r.task_identifier for r in records]

    with Prefetch(client, windows(0, 30, 60), batch_size=7, prepare=prepare) as feed:  # type: ignore[arg-type]
        batches = [batch for _window, part in feed for batch in part]
    assert all(b.prepared == [r.task_identifier for r in b.records] for b in batches)
    assert sum(len(b.prepared) for b in batches) == 100
    assert threads == {"prefetch"}
