"""Running one case as a child process: wall time, peak RSS, output.

:func:`run` starts the command with its output going to files (no pipe can fill up and
stall it), waits for it with ``os.wait4`` and reads ``ru_maxrss`` from the rusage the kernel
returns: the peak resident set of the process (or of its largest waited-for descendant),
what ``/usr/bin/time -v`` calls "Maximum resident set size". The wall time is measured from
just before the fork to the return of ``wait4``: the whole process, start-up included.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Sample", "Started", "run", "start"]


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
        self.began = time.perf_counter()
        self._proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            env=dict(env) if env is not None else None,
            cwd=cwd,
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
                self._proc.kill()
                pid, status, usage = os.wait4(self._proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - self.began
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
            max_rss_mb=usage.ru_maxrss / 1024,  # Linux: kilobytes
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
