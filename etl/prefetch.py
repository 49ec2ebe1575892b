"""Fetching and normalizing a pass's windows on a thread of its own, ahead of the writer.

A window goes through two stages: the ZVM's answer is fetched and decoded, task by task,
into normalized batches (Python work), and the batches are written to the warehouse (work
in the database server, or in SQLite's C code, which let other Python threads run). Done
one after the other, each stage waits for the other; :class:`Prefetch` runs the first on a
thread of its own, so that the next batches are being prepared while the current ones are
written. At most ``depth`` batches wait between the two, so memory stays bounded: one
answer's bytes (two when the next window is fetched while the last batches of the previous
one are still queued) and ``depth`` batches.

The producer also plans the windows as it goes (a :class:`~etl.windows.WindowPlanner`
widens the window after an empty one, so it must know each answer's size first), and drops
the tasks that two overlapping windows both return (the next window's first second repeats
the end of the previous one), so each is written once.
Memory is bounded: an answer's body is spooled (in memory up to a few megabytes, the rest
in a temporary file: :class:`~etl.zvm.answers.Spool`) and decoded one task at a time.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from etl.normalize import Rejected, TaskRecord, normalize_tasks
from etl.windows import BOUNDARY_OVERLAP, Window, WindowPlanner
from etl.zvm.answers import gc_paused
from etl.zvm.client import TaskFilters, ZvmClient

__all__ = ["Batch", "Prefetch", "Window", "normalize_batches"]


@dataclass(frozen=True)
class Batch:
    """Normalized tasks of one window, at most a batch of them, and the rejected records."""

    records: list[TaskRecord]
    rejected: list[Rejected]
    prepared: Any = None
    """What ``prepare`` made of the records on the producer thread (None without one)."""


@dataclass(frozen=True)
class _Start:
    """Queued before a window's batches: the window, and how many windows the pass has in
    all by the planner's estimate now."""

    window: Window
    total: int


_END = object()
"""Queued after the last batch of a window."""

_DONE = object()
"""Queued after the last window."""


class _Fixed:
    """Windows laid out in advance, handed out as a :class:`WindowPlanner` would."""

    def __init__(self, windows: Sequence[Window]) -> None:
        self._windows = list(windows)
        self._index = 0

    @property
    def remaining(self) -> int:
        return len(self._windows) - self._index

    def next(self, previous_count: int | None = None) -> Window | None:
        if self._index >= len(self._windows):
            return None
        self._index += 1
        return self._windows[self._index - 1]


def normalize_batches(items: Iterable[Any], size: int) -> Iterator[Batch]:
    """``items`` (raw task objects) normalized ``size`` at a time; the same bad record twice
    in a batch is rejected once. The cyclic collector pauses while a batch is normalized:
    it builds many small objects that reference counting frees, and would only slow it."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield _normalized(batch)
            batch = []
    if batch:
        yield _normalized(batch)


def _normalized(batch: list[Any]) -> Batch:
    with gc_paused():
        records, rejected = normalize_tasks(batch)
    distinct: dict[str, Rejected] = {}
    for item in rejected:
        distinct.setdefault(item.raw, item)
    return Batch(records, list(distinct.values()))


class Prefetch:
    """The windows of a pass, fetched and normalized on a producer thread.

    Usage::

        with Prefetch(client, windows, batch_size=2000) as feed:
            for window, batches in feed:
                for batch in batches:
                    ...  # write batch.records and batch.rejected

    ``prepare``, when given, is called on the producer thread with each batch's records;
    its result is the batch's ``prepared`` (the writer's rows formatted ahead of it).
    ``windows`` is a list laid out in advance or a :class:`~etl.windows.WindowPlanner`, asked
    for the next window once the previous answer has been counted; :attr:`total` is the
    number of windows in all, as far as known when the current window started. An error of
    the producer (a ZVM that fails) is raised in the consumer, at the point where the failed
    window's batches would have come. Leaving the ``with`` block early (an
    error while writing) stops the producer and waits for its thread.
    """

    def __init__(
        self,
        client: ZvmClient,
        windows: Sequence[Window] | WindowPlanner,
        *,
        batch_size: int,
        depth: int = 2,
        prepare: Callable[[list[TaskRecord]], Any] | None = None,
    ) -> None:
        self._client = client
        self._prepare = prepare
        self._source = windows if isinstance(windows, WindowPlanner) else _Fixed(windows)
        self.total = self._source.remaining
        self._batch_size = batch_size
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="prefetch", daemon=True)

    def __enter__(self) -> Prefetch:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        while self._thread.is_alive():
            # Make room, so that a producer waiting on a full queue sees the stop.
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)
        self._thread.join()

    def __iter__(self) -> Iterator[tuple[Window, Iterator[Batch]]]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            self.total = item.total
            yield item.window, self._batches()

    def _batches(self) -> Iterator[Batch]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _put(self, item: Any) -> bool:
        """Queue ``item``, waiting for room; False when the consumer stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            repeated: set[str] = set()
            count: int | None = None
            handed = 0
            while (window := self._source.next(count)) is not None:
                handed += 1
                if not self._put(_Start(window, handed + self._source.remaining)):
                    return
                after, before = window
                tasks = self._client.fetch_task_list(
                    TaskFilters(started_after=after, started_before=before)
                )
                # Only the tail of this window can come again, at the start of the next one.
                following = before - BOUNDARY_OVERLAP if before is not None else None
                tail: set[str] = set()
                count = 0
                try:
                    for batch in normalize_batches(tasks, self._batch_size):
                        count += len(batch.records) + len(batch.rejected)
                        records = batch.records
                        if repeated:
                            records = [r for r in records if r.task_identifier not in repeated]
                        if following is not None:
                            tail.update(
                                r.task_identifier for r in records if r.started_at >= following
                            )
                        prepared = None
                        if self._prepare is not None:
                            with gc_paused():
                                prepared = self._prepare(records)
                        if not self._put(Batch(records, batch.rejected, prepared)):
                            return
                finally:
                    tasks.close()
                if not self._put(_END):
                    return
                repeated = tail
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)
