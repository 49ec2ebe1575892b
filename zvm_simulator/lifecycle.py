"""Task lifecycles: how a task's ``Status`` moves from Started to Completed.

A lifecycle is a sequence of phases ``(offset from Started, State, Progress)``; the first is
at 0, offsets strictly increase, and a final state (Failed, Stopped, Completed) in the last
phase completes the task at that offset. A task never changes once completed.

Generated lifecycles are drawn in two steps, for speed. :func:`draw_lifecycle` draws only
the *outline* (how long the work runs, the outcome, an optional interruption and its length,
an optional Cancelling period), which fixes the duration and the final state: everything a
completed task shows, and everything the filters need. The intermediate phases (progress
updates, where the interruption falls, the progress a failure stopped at) are derived from a
per-task sub-seed only when someone looks at them, which for a week of history is the few
tasks still running. Both steps are deterministic.

The shapes: the work runs InProgress with rising progress; it may be interrupted once (a
commit type waiting for the user near the end of its work, or a pause anywhere) and then
resumes at the same progress; a failure or a stop cuts the work short; a stop may go through
Cancelling first. Most work takes seconds to minutes; about 2% takes hours; no task lasts
longer than :data:`MAX_DURATION_MS`.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from datetime import timedelta
from random import Random
from typing import NamedTuple

from zvm_simulator.catalog import COMMIT_TYPES, TERMINAL_STATES, State

__all__ = [
    "HOUR_MS",
    "MAX_DURATION_MS",
    "Lifecycle",
    "Phase",
    "Phases",
    "between",
    "draw_lifecycle",
]

HOUR_MS = 3_600_000
MAX_DURATION_MS = 12 * HOUR_MS
"""No task lasts longer than this from Started to Completed."""
LONG_TASK_SHARE = 0.02
"""Fraction of generated tasks whose work takes hours."""

_IN_PROGRESS = State.IN_PROGRESS
_WAITING = State.WAITING_FOR_USER_INPUT
_PAUSED = State.PAUSED
_FAILED = State.FAILED
_STOPPED = State.STOPPED
_COMPLETED = State.COMPLETED
_CANCELLING = State.CANCELLING

# Median duration of the work of each type, in seconds; others use _DEFAULT_WORK_SECONDS.
_WORK_SECONDS = {
    "Login": 0.4,
    "InsertTaggedCP": 3.0,
    "WaitForCP": 20.0,
    "FailOverTest": 120.0,
    "StopFailOverTest": 90.0,
    "UpdateProtectionGroup": 15.0,
    "FlrJournalMount": 40.0,
    "FlrJournalUnmount": 10.0,
    "Move": 600.0,
    "FailOver": 600.0,
    "InstallVra": 240.0,
    "CreateProtectionGroup": 60.0,
    "InitFullSync": 1800.0,
    "LogCollection": 300.0,
    "BulkUpgradeVras": 900.0,
}
_DEFAULT_WORK_SECONDS = 30.0
_MAX_NORMAL_WORK_MS = 3 * HOUR_MS
# Long work, waits, pauses and cancels are bounded so that their sum stays below the cap.
_LONG_WORK_MS = (HOUR_MS, 9 * HOUR_MS)
_WAIT_MS = (60_000, 2 * HOUR_MS)
_PAUSE_MS = (30_000, 30 * 60_000)
_CANCEL_MS = (500, 60_000)


def between(rng: Random, low: int, high: int) -> int:
    """An integer in ``[low, high]`` from one ``random()`` draw (stable across Pythons)."""
    return low + int(rng.random() * (high - low + 1))


class Phase(NamedTuple):
    """One step of a lifecycle: from ``at`` after Started, the task shows ``state`` (a
    ``Status.State`` value) and ``progress``."""

    at: timedelta
    state: int
    progress: int


class Phases(NamedTuple):
    """A lifecycle's phases as parallel tuples (offsets in ms after Started)."""

    offsets: tuple[int, ...]
    states: tuple[int, ...]
    progresses: tuple[int, ...]


class _Outline(NamedTuple):
    work_ms: int  # work time until the work ends (done, failed or stopped); 0 or >= 2
    outcome: int
    interruption: int  # 0, or the state of the interruption (Waiting or Paused)
    interruption_ms: int
    cancel_ms: int  # 0, or how long the task stays Cancelling before Stopped
    seed: int


class Lifecycle:
    """The phases of one task; ``duration_ms`` (to Completed) and ``final_state`` are known
    up front, the phases themselves may be derived on first use."""

    __slots__ = ("_outline", "_phases", "duration_ms", "final_state")

    def __init__(self, *, phases: Phases | None = None, outline: _Outline | None = None) -> None:
        self._phases = phases
        self._outline = outline
        if phases is not None:
            self.duration_ms = phases.offsets[-1]
            self.final_state = phases.states[-1]
        elif outline is not None:
            self.duration_ms = outline.work_ms + outline.interruption_ms + outline.cancel_ms
            self.final_state = outline.outcome
        else:
            raise ValueError("a lifecycle needs phases or an outline")

    @classmethod
    def from_phases(cls, phases: Sequence[Phase]) -> Lifecycle:
        """A lifecycle from explicit phases; ValueError when they are not usable (not
        starting at 0, not strictly increasing at millisecond precision, too long)."""
        if not phases:
            raise ValueError("a task needs at least one phase")
        offsets = tuple(phase.at // timedelta(milliseconds=1) for phase in phases)
        if offsets[0] != 0:
            raise ValueError("the first phase must be at 0 (the task's Started)")
        if any(b <= a for a, b in itertools.pairwise(offsets)):
            raise ValueError("phase offsets must be strictly increasing (millisecond precision)")
        if offsets[-1] > MAX_DURATION_MS:
            raise ValueError("a task cannot last longer than 12 hours")
        states = tuple(int(phase.state) for phase in phases)
        return cls(phases=Phases(offsets, states, tuple(int(p.progress) for p in phases)))

    @property
    def completes(self) -> bool:
        """True when the last phase is final (the task gets a Completed date)."""
        return self.final_state in TERMINAL_STATES

    @property
    def phases(self) -> Phases:
        """All phases (derived from the outline on first use, then kept)."""
        phases = self._phases
        if phases is None:
            assert self._outline is not None
            phases = self._phases = _detail(self._outline)
        return phases

    @property
    def in_progress_ms(self) -> int:
        """How long the task spent InProgress up to Completed (or up to its last phase): its
        duration less the time it waited for the user, was paused or was cancelling. The
        simulated Recovery Report takes it as the operation's RTO."""
        outline = self._outline
        if self._phases is None and outline is not None:
            return outline.work_ms
        phases = self.phases
        return sum(
            end - start
            for start, end, state in zip(
                phases.offsets[:-1], phases.offsets[1:], phases.states[:-1], strict=True
            )
            if state == _IN_PROGRESS
        )

    @property
    def final_progress(self) -> int:
        """Progress shown once the last phase is reached."""
        if self._phases is None and self.final_state == _COMPLETED:
            return 100
        return self.phases.progresses[-1]

    def status_at(self, elapsed_ms: int) -> tuple[int, int]:
        """``(State, Progress)`` at ``elapsed_ms`` after Started (negative counts as 0)."""
        if elapsed_ms >= self.duration_ms:
            if self._phases is None and self.final_state == _COMPLETED:
                return _COMPLETED, 100
            phases = self.phases
            return phases.states[-1], phases.progresses[-1]
        phases = self.phases
        index = max(bisect.bisect_right(phases.offsets, elapsed_ms) - 1, 0)
        return phases.states[index], phases.progresses[index]


def draw_lifecycle(rng: Random, task_type: str) -> Lifecycle:
    """Draw the outline of a generated task's lifecycle from ``rng`` (see the module)."""
    rand = rng.random
    if rand() < LONG_TASK_SHARE:
        work = between(rng, *_LONG_WORK_MS)
    elif task_type == "Login" and rand() < 0.5:
        work = 0
    else:
        median_ms = _WORK_SECONDS.get(task_type, _DEFAULT_WORK_SECONDS) * 1000
        work = min(int(median_ms * math.exp(0.9 * rng.gauss())), _MAX_NORMAL_WORK_MS)
    roll = rand()
    outcome = _COMPLETED if roll < 0.9 else _FAILED if roll < 0.96 else _STOPPED
    if work < 2:
        return _INSTANT[outcome]
    if outcome != _COMPLETED:
        work = between(rng, 2, work)  # failed or stopped part of the way through
    interruption = interruption_ms = 0
    if task_type in COMMIT_TYPES and rand() < 0.4:
        interruption, interruption_ms = _WAITING, between(rng, *_WAIT_MS)
    elif rand() < 0.03:
        interruption, interruption_ms = _PAUSED, between(rng, *_PAUSE_MS)
    cancel_ms = between(rng, *_CANCEL_MS) if outcome == _STOPPED and rand() < 0.7 else 0
    seed = rng.getrandbits(32)
    outline = _Outline(work, outcome, interruption, interruption_ms, cancel_ms, seed)
    return Lifecycle(outline=outline)


_INSTANT = {
    outcome: Lifecycle(phases=Phases((0,), (outcome,), (100 if outcome == _COMPLETED else 0,)))
    for outcome in (_COMPLETED, _FAILED, _STOPPED)
}
"""Lifecycles of tasks done the moment they start (shared: a lifecycle never changes)."""


def _detail(outline: _Outline) -> Phases:
    """The phases of an outline, from its sub-seed."""
    work, outcome, interruption, length, cancel_ms, seed = outline
    if work == 0:
        return Phases((0,), (outcome,), (100 if outcome == _COMPLETED else 0,))
    rng = Random(seed)
    rand = rng.random
    moments = sorted({1 + int(rand() * (work - 1)) for _ in range(1 + int(rand() * 5))})
    percents = sorted(1 + int(rand() * 99) for _ in moments)
    pause_at = -1
    if interruption:
        # A commit waits once nearly all the work is done; a pause hits anywhere.
        low = max(1, work - max(1, work // 10)) if interruption == _WAITING else 1
        pause_at = between(rng, low, work - 1)
    offsets, states, progresses = [0], [_IN_PROGRESS], [0]
    progress = 0
    shift = 0  # the interruption's length, once it has been inserted
    for moment, percent in zip(moments, percents, strict=True):
        if moment == pause_at:
            continue
        if pause_at != -1 and shift == 0 and moment > pause_at:
            offsets += [pause_at, pause_at + length]
            states += [interruption, _IN_PROGRESS]
            progresses += [progress, progress]
            shift = length
        offsets.append(moment + shift)
        states.append(_IN_PROGRESS)
        progresses.append(percent)
        progress = percent
    if pause_at != -1 and shift == 0:
        offsets += [pause_at, pause_at + length]
        states += [interruption, _IN_PROGRESS]
        progresses += [progress, progress]
    final_progress = 100 if outcome == _COMPLETED else progress
    end = work + length
    if cancel_ms:
        offsets.append(end)
        states.append(_CANCELLING)
        progresses.append(final_progress)
        end += cancel_ms
    offsets.append(end)
    states.append(outcome)
    progresses.append(final_progress)
    return Phases(tuple(offsets), tuple(states), tuple(progresses))
