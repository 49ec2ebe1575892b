"""The windows a pass asks for: laid out in advance (a backfill) or planned one at a time,
wider after empty ones (a first pass, a catch-up). Pure: no ZVM, no warehouse."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etl.windows import BOUNDARY_OVERLAP, Window, WindowPlanner, plan_windows

T0 = datetime(2030, 3, 1, 0, 0, 0, 250_000, tzinfo=UTC)
START = T0.replace(microsecond=0)
HOUR = timedelta(hours=1)


def walk(planner: WindowPlanner, counts: list[int]) -> list[Window]:
    """The windows ``planner`` hands out when the i-th window holds ``counts[i]`` tasks
    (0 once the list runs out)."""
    windows: list[Window] = []
    count: int | None = None
    while (window := planner.next(count)) is not None:
        windows.append(window)
        count = counts[len(windows) - 1] if len(windows) <= len(counts) else 0
    return windows


def widths(windows: list[Window]) -> list[timedelta]:
    """The width of each bounded window, measured from the bound it continues from."""
    return [
        before - (after + BOUNDARY_OVERLAP if index else after)
        for index, (after, before) in enumerate(windows)
        if after is not None and before is not None
    ]


def test_without_widening_the_planner_hands_out_what_plan_windows_lays_out() -> None:
    end = T0 + timedelta(days=3, hours=5)
    planner = WindowPlanner(T0, end, timedelta(days=1), open_start=True)
    assert walk(planner, [0] * 10) == plan_windows(T0, end, timedelta(days=1), open_start=True)


def test_empty_windows_double_the_next_up_to_the_cap_and_tasks_bring_it_back() -> None:
    end = T0 + timedelta(days=30)
    planner = WindowPlanner(T0, end, 12 * HOUR, max_width=12 * HOUR * 8)
    # Five empty windows, then one with tasks, then empty again.
    windows = walk(planner, [0, 0, 0, 0, 0, 7, 0])
    hours = [w / HOUR for w in widths(windows)]
    assert hours[:8] == [12, 24, 48, 96, 96, 96, 12, 24]
    # Contiguous, each reaching one second back into the one before, the last open.
    for (_, before), (after, _) in itertools.pairwise(windows):
        assert before is not None and after == before - BOUNDARY_OVERLAP
    assert windows[0][0] == START and windows[-1][1] is None
    assert len(windows) < len(plan_windows(T0, end, 12 * HOUR)) / 3


def test_a_widened_window_never_reaches_the_end_of_the_range() -> None:
    """The last, open window reads up to now: it keeps the configured width, so a widened
    window never swallows the recent (and busiest) history in one answer."""
    end = T0 + timedelta(days=2)
    planner = WindowPlanner(T0, end, 12 * HOUR, max_width=12 * HOUR * 8)
    windows = walk(planner, [0] * 10)
    assert [w / HOUR for w in widths(windows)] == [12, 24, 12]
    last_after = windows[-1][0]
    assert last_after is not None and end - last_after <= 12 * HOUR + BOUNDARY_OVERLAP


def test_the_open_start_window_does_not_widen_the_next() -> None:
    planner = WindowPlanner(T0, T0 + timedelta(days=5), HOUR, open_start=True, max_width=4 * HOUR)
    assert planner.next() == (None, START)
    first = planner.next(0)
    assert first == (START - BOUNDARY_OVERLAP, START + HOUR)
    second = planner.next(0)
    assert second == (START + HOUR - BOUNDARY_OVERLAP, START + 3 * HOUR)


def test_remaining_estimates_the_windows_left_at_the_current_width() -> None:
    planner = WindowPlanner(
        START, START + timedelta(days=1), HOUR, open_start=True, max_width=4 * HOUR
    )
    assert planner.remaining == 25
    planner.next()
    planner.next(0)
    assert planner.remaining == 23
    planner.next(0)  # two hours wide: 21 hours left at two hours a window
    assert planner.remaining == 11
    while planner.next(0) is not None:
        pass
    assert planner.remaining == 0


def test_a_window_of_no_width_is_refused() -> None:
    with pytest.raises(ValueError, match="wider than zero"):
        WindowPlanner(T0, T0 + HOUR, timedelta(0))


@given(
    span=st.integers(min_value=0, max_value=60 * 24 * 40),
    width=st.integers(min_value=1, max_value=60 * 24 * 3),
    widening=st.integers(min_value=1, max_value=16),
    counts=st.lists(st.integers(min_value=0, max_value=3), max_size=200),
    open_start=st.booleans(),
    open_end=st.booleans(),
)
def test_windows_always_cover_the_range_without_gaps(
    span: int,
    width: int,
    widening: int,
    counts: list[int],
    open_start: bool,
    open_end: bool,
) -> None:
    """Whatever the answers held: every moment from the start to the end is inside a
    window, consecutive windows overlap by one second, no window is wider than the cap, and
    the walk ends."""
    end = T0 + timedelta(minutes=span)
    base = timedelta(minutes=width)
    planner = WindowPlanner(
        T0, end, base, open_start=open_start, open_end=open_end, max_width=base * widening
    )
    windows = walk(planner, counts)
    assert len(windows) <= int(open_start) + span // width + 1
    bounded = windows[1:] if open_start else windows
    if open_start:
        assert windows[0] == (None, START)
    assert bounded[0][0] == (START - BOUNDARY_OVERLAP if open_start else START)
    for (_, before), (after, _) in itertools.pairwise(windows):
        assert before is not None and after == before - BOUNDARY_OVERLAP
    last = bounded[-1][1]
    if open_end:
        assert last is None
    else:
        assert last == end.replace(microsecond=0) + BOUNDARY_OVERLAP
    assert all(w <= base * widening for w in widths(windows[:-1]))
