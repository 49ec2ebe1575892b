"""A time budget shared by several calls to one ZVM.

The client's own budgets (``retry_for``, ``connect_retry_for``) bound ONE call. Some work
must bound a group of calls instead: a pass's names refresh reads up to a dozen entity
listings and may add at most ``sync.entity_refresh_budget`` to the pass, whatever they
answer. A :class:`Deadline` carries such a budget, on the clock of the client that makes the
calls (:meth:`etl.zvm.client.ZvmClient.deadline`), so a test that injects the client's
clock and sleep measures it without waiting:

- ``end``: no attempt starts after it, and an attempt's HTTP timeout is cut to what is left
  before it, so a ZVM that stalls cannot keep a call past it;
- ``retry_end`` (never after ``end``): no retry starts after it. :meth:`share` sets it to an
  equal part of the time left, so a call that keeps failing gives up in time for the calls
  after it, while a call answered at once leaves its part to them.

Usage::

    deadline = client.deadline(10.0, setting="sync.entity_refresh_budget")
    for index, path in enumerate(paths):
        if deadline.expired:
            break  # the budget is spent: the rest is skipped
        share = deadline.share(len(paths) - index)  # this call and those after it
        client.fetch_listing(path, expected=list, deadline=share)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

__all__ = ["Deadline"]


@dataclass(frozen=True)
class Deadline:
    """When a group of calls must be done, in seconds of ``clock`` (a monotonic clock).

    ``setting`` names the configuration key that sets the budget: a call stopped by the
    deadline says to raise it.
    """

    clock: Callable[[], float]
    end: float
    retry_end: float
    setting: str

    @classmethod
    def after(cls, seconds: float, *, clock: Callable[[], float], setting: str) -> Deadline:
        """A deadline ``seconds`` from now on ``clock``."""
        end = clock() + max(0.0, seconds)
        return cls(clock=clock, end=end, retry_end=end, setting=setting)

    def left(self) -> float:
        """Seconds before ``end`` (0 once it has passed)."""
        return max(0.0, self.end - self.clock())

    def retry_left(self) -> float:
        """Seconds in which a retry may still start (0 or less: none may)."""
        return min(self.retry_end, self.end) - self.clock()

    @property
    def expired(self) -> bool:
        """Whether ``end`` has passed: no call of the group may start any more."""
        return self.left() <= 0

    def share(self, parts: int) -> Deadline:
        """This deadline for one of ``parts`` calls still to make, this one included: the
        same ``end``, and retries for at most ``1/parts`` of the time left."""
        now = self.clock()
        return replace(self, retry_end=now + max(0.0, self.end - now) / max(1, parts))
