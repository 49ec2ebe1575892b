"""Running one case as a child process: wall time, peak RSS, output.

:func:`run` starts the command with its output going to files (no pipe can fill up and
stall it) under a small watcher (:data:`WATCHER`, a few lines of Python started with
``-S``) that waits for it with ``os.wait4`` and reports ``ru_maxrss`` from the rusage the
kernel returns: the peak resident set of the process (or of its largest waited-for
descendant), what ``/usr/bin/time -v`` calls "Maximum resident set size", and the wall time
from just before the fork to the return of ``wait4``: the whole process, start-up included.

Why the watcher: Linux carries a parent's peak RSS into a child's ``ru_maxrss`` across
``fork``/``vfork`` and ``exec``, so a child of the benchmark itself (which holds datasets,
a simulator, a decoded export it checks) would report at least the benchmark's own peak.
The watcher is small, so what its child reports is the child's own (at least the
watcher's own 10 MB or so, which the child starts from).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["WATCHER", "Sample", "Started", "run", "start"]

WATCHER = """
import os, sys, time, subprocess
began = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - began
with open(sys.argv[1], "w") as report:
    report.write(f"{usage.ru_maxrss} {wall}")
sys.exit(os.waitstatus_to_exitcode(status))
"""
"""``python -S -c WATCHER REPORT COMMAND...``: runs COMMAND, writes "maxrss_kb wall_s" to
REPORT, exits with COMMAND's code."""


@dataclass
class Sample:
    """One run of one command."""

    command: list[str]
    wall: float
    max_rss_mb: float
    returncode: int
    stdout: str
    stderr: str
    info: dict[str, Any] = field(default_factory=dict)

    def check(self, what: str) -> None:
        """Raise RuntimeError with the tail of stderr when the command failed."""
        if self.returncode != 0:
            tail = "\n".join(self.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"{what} exited {self.returncode}:\n{tail}")


class Started:
    """A child process started by :func:`start`; :meth:`wait` gives its :class:`Sample`."""

    def __init__(
        self, command: Sequence[str], env: Mapping[str, str] | None, cwd: Path | None
    ) -> None:
        self.command = list(command)
        # Closed by wait(), which outlives this method: no context manager fits.
        self._out = tempfile.TemporaryFile()  # noqa: SIM115
        self._err = tempfile.TemporaryFile()  # noqa: SIM115
        handle, report = tempfile.mkstemp(prefix="bench-rss-")
        os.close(handle)
        self._report = Path(report)
        self.began = time.perf_counter()
        self._proc = subprocess.Popen(
            [sys.executable, "-S", "-c", WATCHER, report, *self.command],
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,  # a timeout kills the watcher and the command together
        )

    @property
    def pid(self) -> int:
        return self._proc.pid

    def wait(self, timeout: float | None = None) -> Sample:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self._proc.pid, os.WNOHANG if deadline else 0)
            if pid:
                break
            if deadline is not None and time.monotonic() > deadline:
                os.killpg(self._proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(self._proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - self.began
        max_rss_kb = float(usage.ru_maxrss)  # the watcher's, if the command never ran
        reported = self._report.read_text().split()
        self._report.unlink()
        if len(reported) == 2:
            max_rss_kb, wall = float(reported[0]), float(reported[1])
        returncode = os.waitstatus_to_exitcode(status)
        self._proc.returncode = returncode  # waited for here, not by Popen
        outputs = []
        for stream in (self._out, self._err):
            stream.seek(0)
            outputs.append(stream.read().decode("utf-8", "replace"))
            stream.close()
        return Sample(
            command=self.command,
            wall=wall,
            max_rss_mb=max_rss_kb / 1024,  # Linux: kilobytes
            returncode=returncode,
            stdout=outputs[0],
            stderr=outputs[1],
        )


def start(
    command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Started:
    """Start ``command`` now; call ``.wait()`` for its :class:`Sample`."""
    return Started(command, env, cwd)


def run(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> Sample:
    """Run ``command`` to its end and measure it."""
    return start(command, env=env, cwd=cwd).wait(timeout)
