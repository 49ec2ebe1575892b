"""Where the time goes: py-spy on the zvm-etl process, PostgreSQL's statement log, imports.

- :func:`pyspy_first_pass`: a first pass of ``tasks`` tasks run under
  ``py-spy record --idle --format raw`` (from the bench venv; ``--idle`` keeps the samples
  where the process waits on a socket, so the database's and the ZVM's time show too), then
  summarised: wall seconds per function group (HTTP, JSON decode, normalize, row building,
  COPY, SQL statements, imports...), the product functions by inclusive time
  (``etl/file.py:function``) and the leaf functions by own time.
- On PostgreSQL, the same run logs every statement with its duration
  (``ALTER DATABASE ... SET log_min_duration_statement = 0``: that database only, nothing
  server-wide changes and nothing needs a restart); :func:`statement_costs` reads the lines
  of that database from the server log and sums them by statement shape.
- :func:`import_times`: ``python -X importtime`` of a command, the heaviest imports.

The profiled runs are separate from the timed ones: py-spy pauses the process to sample
and statement logging costs the server time.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.env import DLT_BIN

__all__ = [
    "PG_LOG",
    "SpySummary",
    "Statement",
    "import_times",
    "pyspy_command",
    "statement_costs",
    "summarise_pyspy",
]

PG_LOG = Path("/var/log/postgresql/postgresql-15-main.log")
SPY_RATE = 200
"""Samples per second."""

# Function groups, tested in this order on each sample's stack (root to leaf joined by ";").
# Each test is (group, substrings any of which marks the stack).
_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("imports (start-up and lazy)", (":_find_and_load",)),
    ("COPY: format rows + send (psycopg copy)", ("psycopg/copy.py", "psycopg/_copy")),
    (
        "row building: bind processors (etl/warehouse/upsert.py:_processed)",
        ("upsert.py:_processed",),
    ),
    ("row building: task rows (etl/warehouse/load.py:_task_row)", ("load.py:_task_row",)),
    ("JSON decode (etl/zvm/client.py:_json)", ("client.py:_json",)),
    ("HTTP: request + read body (httpx)", ("httpx/", "httpcore/")),
    ("normalize (etl/normalize.py)", ("normalize.py:",)),
    (
        "SQL statements: execute + wait (SQLAlchemy/driver)",
        ("sqlalchemy/engine", "sqlite3", "psycopg/"),
    ),
    ("pass logic (etl/passes.py, etl/warehouse/load.py)", ("passes.py:", "load.py:")),
    ("CLI, config, logging", ("click/", "etl/config.py", "etl/cli", "logging/")),
)
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^():]+):\d+\)$")


def pyspy_command(output: Path, command: Sequence[str]) -> list[str]:
    """``py-spy record`` around ``command``, raw (collapsed) stacks to ``output``."""
    return [
        str(DLT_BIN / "py-spy"),
        "record",
        "--idle",
        "--rate",
        str(SPY_RATE),
        "--format",
        "raw",
        "--output",
        str(output),
        "--",
        *command,
    ]


def _short(frame: str) -> str:
    """``function (path/file.py:123)`` → ``path/file.py:function``."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    return f"{match['file']}:{match['function']}"


@dataclass
class SpySummary:
    """Seconds by group, by product function (inclusive, and as the innermost product frame:
    the product code that made the call, whatever library ran under it) and by leaf
    function (own time)."""

    seconds: float
    groups: list[tuple[str, float]]
    product: list[tuple[str, float]]
    innermost: list[tuple[str, float]]
    leaves: list[tuple[str, float]]


def summarise_pyspy(raw: Path, *, top: int = 15) -> SpySummary:
    groups: Counter[str] = Counter()
    product: Counter[str] = Counter()
    innermost: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(frame) for frame in stack.split(";")]
        joined = ";".join(frames)
        for group, marks in _GROUPS:
            if any(mark in joined for mark in marks):
                groups[group] += count
                break
        else:
            groups["other"] += count
        own = [frame for frame in frames if frame.startswith("etl/")]
        # The CLI and the pass runner wrap everything: inclusive time says nothing there.
        for name in {f for f in own if not f.startswith(("etl/cli", "etl/sync.py"))}:
            product[name] += count
        if ":_find_and_load" in joined:
            innermost["(imports: start-up and lazy)"] += count
        else:
            innermost[own[-1] if own else "(outside etl/: interpreter start-up and exit)"] += count
        leaves[frames[-1]] += count
    rate = float(SPY_RATE)
    return SpySummary(
        seconds=total / rate,
        groups=[(name, count / rate) for name, count in groups.most_common()],
        product=[(name, count / rate) for name, count in product.most_common(top)],
        innermost=[(name, count / rate) for name, count in innermost.most_common(top)],
        leaves=[(name, count / rate) for name, count in leaves.most_common(top)],
    )


@dataclass
class Statement:
    """One statement shape: how often it ran and its summed duration (parse+bind+execute)."""

    text: str
    calls: int = 0
    ms: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)


_LOG_LINE = re.compile(
    r"^\S+ \S+ \S+ \[\d+\] (?P<user>[^@\s]*)@(?P<db>\S+) LOG:  duration: (?P<ms>[\d.]+) ms  "
    r"(?P<kind>statement|execute [^:]*|parse [^:]*|bind [^:]*): (?P<text>.*)$"
)
_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2} ")


def log_size() -> int:
    """The server log's size now (statement_costs reads from there)."""
    try:
        return PG_LOG.stat().st_size
    except OSError:
        return 0


def _shape(text: str) -> str:
    text = " ".join(text.split())
    text = re.sub(r"'(?:[^']|'')*'", "'…'", text)
    text = re.sub(r"\$\d+(?:\s*,\s*\$\d+)+", "$…", text)
    text = re.sub(r"\(\s*(?:__\[POSTCOMPILE_\w+\]|\$…)\s*\)", "(…)", text)
    text = re.sub(r"\b\d+\b", "N", text)
    return text[:160] + ("…" if len(text) > 160 else "")


def statement_costs(database: str, since: int, until: int) -> tuple[float, list[Statement]]:
    """(total ms, statement shapes by summed duration) of ``database`` in the server log
    between bytes ``since`` and ``until`` (taken before and right after the run, so that
    the harness's own checks afterwards are left out)."""
    with PG_LOG.open("rb") as stream:
        stream.seek(since)
        text = stream.read(max(until - since, 0)).decode("utf-8", "replace")
    entries: list[tuple[str, float, str]] = []
    current: list[Any] | None = None
    for line in text.splitlines():
        if _PREFIX.match(line):
            match = _LOG_LINE.match(line)
            if match and match["db"] == database:
                kind = match["kind"].split()[0]
                current = [kind, float(match["ms"]), match["text"]]
                entries.append(current)  # type: ignore[arg-type]
            else:
                current = None
        elif current is not None and line.startswith("\t"):
            current[2] += " " + line.strip()
    shapes: dict[str, Statement] = {}
    phases: dict[str, dict[str, float]] = defaultdict(dict)
    for kind, ms, statement in entries:
        shape = _shape(statement)
        entry = shapes.setdefault(shape, Statement(shape))
        if kind in ("statement", "execute"):
            entry.calls += 1
        entry.ms += ms
        phases[shape][kind] = phases[shape].get(kind, 0.0) + ms
    for shape, entry in shapes.items():
        entry.phases = phases[shape]
    ranked = sorted(shapes.values(), key=lambda entry: entry.ms, reverse=True)
    return sum(entry.ms for entry in ranked), ranked


def import_times(command: Sequence[str], *, top: int = 12) -> list[tuple[str, float]]:
    """The heaviest imports of ``command`` (a Python command line; ``-X importtime`` is added
    after the interpreter): (package, cumulative seconds) of top-level packages, wherever
    they were first imported (a package's time includes what it imported first)."""
    argv = [command[0], "-X", "importtime", *command[1:]]
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    found: list[tuple[str, float]] = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, _, rest = line.partition("import time:")
        parts = rest.split("|")
        if len(parts) != 3:
            continue
        name = parts[2].strip()
        if "." not in name:  # top-level packages, wherever first imported
            found.append((name, int(parts[1]) / 1e6))
    found.sort(key=lambda item: item[1], reverse=True)
    return found[:top]
