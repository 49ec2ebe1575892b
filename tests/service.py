"""Helpers for the service tests: real ``zvm-etl`` processes against simulated ZVMs.

A test starts simulators in its own process, writes a config file for them in ``tmp_path``
(the password comes from the environment, as in production), and runs
``python -m etl ...`` as subprocesses whose output is read line by line while they run.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.warehouse import schema
from tests import syncing
from zvm_simulator import Simulator

PASSWORD = "Unmistakable-Pa55phrase-7f3e"
"""Every simulator in these tests accepts it; no output may ever contain it."""

WAIT = 60.0
"""The longest a test waits for something that should take a second or two."""


def start_sim(**settings: Any) -> Simulator:
    """A started simulator with a frozen clock that accepts :data:`PASSWORD`."""
    return syncing.start_sim(**({"password": PASSWORD} | settings))


def write_config(
    path: Path,
    sims: dict[str, Simulator],
    warehouse_url: str,
    *,
    zvm: dict[str, Any] | None = None,
    task_retention: str = "1d",
    **sync: Any,
) -> Path:
    """A config file with one ZVM per simulator (named by the keys) and the given ``sync``
    keys; the password is ``${ETL_TEST_PASSWORD}``. ``zvm`` adds keys to every ZVM."""
    lines = ["warehouse:", f"  url: {warehouse_url}", "zvms:"]
    for name, sim in sims.items():
        keys = {
            "url": sim.url,
            "username": sim.settings.username,
            "password": "${ETL_TEST_PASSWORD}",
            "retry_for": "10s",
            "task_retention": task_retention,
        } | (zvm or {})
        lines.append(f"  - name: {name}")
        lines += [f"    {key}: {value}" for key, value in keys.items()]
    settings = {"jitter": "0s", "backfill_window": "6h"} | sync
    lines += ["sync:"] + [f"  {key}: {value}" for key, value in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def etl_env(config: Path) -> dict[str, str]:
    """The environment of a ``zvm-etl`` subprocess using ``config``."""
    env = os.environ | {"ZVM_ETL_CONFIG": str(config), "ETL_TEST_PASSWORD": PASSWORD}
    env.pop("ZVM_ETL_WAREHOUSE_URL", None)
    return env


class Proc:
    """A running ``python -m etl ARGS`` whose stdout and stderr lines are collected live."""

    def __init__(self, args: Iterable[str], config: Path, *, json_logs: bool = True) -> None:
        command = [sys.executable, "-m", "etl"]
        if json_logs:
            command += ["--log-format", "json"]
        self.process = subprocess.Popen(
            [*command, *args],
            env=etl_env(config),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.stdout: list[str] = []
        self._changed = threading.Condition()
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stderr, self.lines)),
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout)),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, into: list[str]) -> None:
        for line in stream:
            with self._changed:
                into.append(line.rstrip("\n"))
                self._changed.notify_all()
        stream.close()

    def wait_for(self, predicate: Callable[[str], bool], *, timeout: float = WAIT) -> str:
        """The first stderr line for which ``predicate`` holds; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if predicate(line):
                        return line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._alive()):
                    raise AssertionError(
                        "no such line; the process said:\n" + "\n".join(self.lines[-30:])
                    )
                self._changed.wait(min(left, 0.2))

    def _alive(self) -> bool:
        return any(reader.is_alive() for reader in self._readers)

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, *, timeout: float = WAIT) -> int:
        """Wait for the exit (and the last output line); return the exit status."""
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=timeout)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait()

    @property
    def output(self) -> str:
        return "\n".join(self.stdout + self.lines)

    def json_lines(self) -> list[dict[str, Any]]:
        """Every stderr line parsed as JSON (fails on a line that is not a JSON object)."""
        parsed = [orjson.loads(line) for line in self.lines if line.strip()]
        assert all(isinstance(entry, dict) for entry in parsed)
        return parsed


def runs(engine: Engine, zvm: str | None = None) -> list[Any]:
    """The etl_runs rows (of ``zvm``), oldest first."""
    table = schema.etl_runs
    query = sa.select(table).order_by(table.c.run_id)
    if zvm is not None:
        query = query.where(table.c.zvm == zvm)
    with engine.connect() as conn:
        return list(conn.execute(query))


def task_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(schema.tasks)).scalar_one())


def wait_until(condition: Callable[[], bool], *, timeout: float = WAIT, what: str = "") -> None:
    """Poll ``condition`` every 0.1 s until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.1)


def assert_no_overlap(rows: list[Any]) -> None:
    """No two passes of a ZVM ran at the same time: each starts after the previous ended."""
    finished = [row for row in rows if row.finished_at is not None]
    assert len(finished) == len(rows), "a pass was left running"
    ordered = sorted(rows, key=lambda row: row.started_at)
    for before, after in itertools.pairwise(ordered):
        assert after.started_at >= before.finished_at, (
            f"runs {before.run_id} ({before.started_at}..{before.finished_at}) and "
            f"{after.run_id} ({after.started_at}..{after.finished_at}) overlap"
        )
