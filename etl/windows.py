"""The windows a pass asks for: ranges of ``Started`` that bound each ``/v1/tasks`` answer.

``/v1/tasks`` has no paging, so long history is read in windows
(``startedAfterDate``/``startedBeforeDate``), each answer bounded by ``sync.backfill_window``.
Two ways to lay them out:

- :func:`plan_windows` lays every window out in advance, all of one width (a backfill: the
  person asked for that range, and its progress is recorded per window);
- :class:`WindowPlanner` hands them out one at a time and widens the next window after an
  empty one (twice as wide each time, up to :data:`MAX_WIDENING` times the configured
  width, and never past the end of the range), back to the configured width after a
  window with tasks. A first pass that starts at the configured ``task_retention`` (30 days
  by default) over a ZVM that holds only a few days of history, or a catch-up across a
  quiet weekend, then asks a handful of questions about the empty part instead of one per
  window, and still reads the history itself in windows of the configured width.

Both place bounds on whole seconds and make each window reach one second back into the one
before (:data:`BOUNDARY_OVERLAP`): filters are sent in whole seconds, and ZVMs may read a
bound as inclusive or exclusive, so a task that starts exactly on a boundary is inside some
window whichever they do; the pass drops the repeats.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

__all__ = ["BOUNDARY_OVERLAP", "MAX_WIDENING", "Window", "WindowPlanner", "plan_windows"]

Window = tuple[datetime | None, datetime | None]
"""(startedAfterDate, startedBeforeDate) of one request; None leaves that side open."""

BOUNDARY_OVERLAP = timedelta(seconds=1)

MAX_WIDENING = 8
"""An empty window doubles the next one, up to this many times ``sync.backfill_window``."""


class WindowPlanner:
    """The windows from ``start`` to ``end``, handed out one at a time by :meth:`next`.

    ``open_start`` adds a first window for everything before ``start``; with ``open_end``
    the last window has no upper bound, so tasks stamped after ``end`` by a ZVM whose clock
    runs ahead of this host are not missed. ``max_width`` (default: ``width``, no widening)
    caps how wide a window grows after empty ones.
    """

    def __init__(
        self,
        start: datetime,
        end: datetime,
        width: timedelta,
        *,
        open_start: bool = False,
        open_end: bool = True,
        max_width: timedelta | None = None,
    ) -> None:
        if width <= timedelta(0):
            raise ValueError(f"a window must be wider than zero, got {width}")
        self.width = width
        self.max_width = max(max_width or width, width)
        self._end = end
        self._open_end = open_end
        self._lower = start.replace(microsecond=0)
        self._current = width
        self._open_start_due = open_start
        self._handed = 0
        self._last: Window | None = None
        self._done = False

    @property
    def remaining(self) -> int:
        """How many windows are left at the current width (an estimate while widening)."""
        if self._done:
            return 0
        left = (self._end - self._lower) / self._current
        return int(self._open_start_due) + max(1, math.ceil(left))

    def next(self, previous_count: int | None = None) -> Window | None:
        """The next window, or None when the range is covered. ``previous_count`` is how
        many tasks the window handed out last held: 0 widens this one, any other number
        brings it back to the configured width, None (not known) keeps the width as is."""
        if self._done:
            return None
        if self._open_start_due:
            self._open_start_due = False
            return self._hand((None, self._lower))
        if previous_count == 0 and self._last is not None and self._last[0] is not None:
            self._current = min(self._current * 2, self.max_width)
        elif previous_count:
            self._current = self.width
        lower = self._lower
        after = lower - BOUNDARY_OVERLAP if self._handed else lower
        width = self._current
        if lower + width >= self._end and width > self.width:
            width = self.width  # a widened window never reaches the end of the range
        if lower + width < self._end:
            self._lower = lower + width
            return self._hand((after, self._lower))
        self._done = True
        closing = None if self._open_end else self._end.replace(microsecond=0) + BOUNDARY_OVERLAP
        return self._hand((after, closing))

    def _hand(self, window: Window) -> Window:
        self._handed += 1
        self._last = window
        return window


def plan_windows(
    start: datetime,
    end: datetime,
    width: timedelta,
    *,
    open_start: bool = False,
    open_end: bool = True,
) -> list[Window]:
    """Every window of ``width`` from ``start`` to ``end``, laid out in advance (the
    :class:`WindowPlanner` without widening; its docstring says what the options do)."""
    planner = WindowPlanner(start, end, width, open_start=open_start, open_end=open_end)
    windows: list[Window] = []
    while (window := planner.next()) is not None:
        windows.append(window)
    return windows
