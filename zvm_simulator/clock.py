"""The simulated ZVM's clock.

Simulated now = an anchor moment + (real seconds elapsed since the anchor was set) × speed.
``advance`` moves the anchor forward, ``set_time`` replaces it, and both work whatever the
speed (with speed 0 the clock only moves when told to). Real elapsed time is measured with
``time.monotonic`` so that changes to the host's wall clock never move the simulated one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["SimClock", "to_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch (floor) of an aware datetime."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


class SimClock:
    """A thread-safe clock that runs at ``speed`` simulated seconds per real second."""

    def __init__(
        self,
        start: datetime,
        *,
        speed: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated clock needs a timezone-aware start")
        if speed < 0:
            raise ValueError(f"speed must be >= 0, got {speed}")
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._anchor = start.astimezone(UTC)
        self._anchor_real = monotonic()
        self._speed = speed

    def now(self) -> datetime:
        """The simulated now, aware UTC."""
        with self._lock:
            elapsed = self._monotonic() - self._anchor_real
            return self._anchor + timedelta(seconds=elapsed * self._speed)

    def now_ms(self) -> int:
        """The simulated now in epoch milliseconds."""
        return to_ms(self.now())

    def advance(self, delta: timedelta) -> None:
        """Move simulated time by ``delta`` (negative moves it back)."""
        with self._lock:
            self._anchor += delta

    def set_time(self, moment: datetime) -> None:
        """Make ``moment`` the simulated now; the clock keeps running from there at ``speed``."""
        if moment.tzinfo is None:
            raise ValueError("set_time needs a timezone-aware datetime")
        with self._lock:
            self._anchor = moment.astimezone(UTC)
            self._anchor_real = self._monotonic()

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        if value < 0:
            raise ValueError(f"speed must be >= 0, got {value}")
        with self._lock:
            now_real = self._monotonic()
            self._anchor += timedelta(seconds=(now_real - self._anchor_real) * self._speed)
            self._anchor_real = now_real
            self._speed = value
