"""A real-time clock the tests move by hand, for anything that takes ``monotonic=``.

Session and token lifetimes (the simulator's and the client's) are measured in real
seconds; a test that slept past them would depend on the machine's speed. With
:class:`ManualTime` the test says when time passes, and nothing else moves it.
"""

from __future__ import annotations

import threading


class ManualTime:
    """A monotonic clock (seconds) that only :meth:`advance` moves. Thread-safe."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
