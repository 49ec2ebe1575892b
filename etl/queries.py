"""The ready queries in ``sql/queries/``: what each asks, its grain and its parameters.

Each file starts with a comment that says what it answers, in this form::

    -- Question: Which tasks took longest lately?
    -- Grain: one row per task that finished and started in the look-back;
    --   the slowest first, at most `limit` rows.
    -- Parameter days = 30: the look-back in days (of started_at).
    -- Parameter zvm = '': only this ZVM's tasks (empty: every ZVM).
    -- Free notes follow: ordering, definitions, caveats.

A line indented by two more spaces continues the item above it. ``Parameter NAME =
DEFAULT`` declares a bound parameter ``:NAME`` of the SQL: a whole number default (``30``)
makes it a whole number >= 0, a quoted one (``''``) text. Values are always bound, never
pasted into the SQL. A ``zvm`` parameter is what ``zvm-etl export --zvm`` and ``zvm-etl
report --zvm`` set. The four oldest files have only a first line (their question) and no
parameters; they read as such.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from etl.errors import ExportError, InstallationError
from etl.resources import sql_dir
from etl.warehouse.sqlfiles import query_names, query_sql

__all__ = [
    "Parameter",
    "ReadyQuery",
    "bind_parameters",
    "parse_assignments",
    "read_queries",
    "read_query",
]

_ITEM = re.compile(
    r"^(?:(?P<key>Question|Grain):\s*"
    r"|Parameter (?P<param>[a-z_]+) = (?P<default>\d+|'[^']*'):\s*)"
    r"(?P<text>.*)$"
)


@dataclass(frozen=True)
class Parameter:
    """A bound parameter of a ready query, with its default and what it means."""

    name: str
    default: int | str
    doc: str

    def parse(self, value: str | int) -> int | str:
        """``value`` as this parameter takes it; ExportError when it cannot be one."""
        if isinstance(self.default, str):
            return str(value)
        text = str(value).strip()
        if not text.isdigit():
            raise ExportError(
                f"parameter {self.name} takes a whole number >= 0, not {value!r} "
                f"(its default is {self.default}: {self.doc})"
            )
        return int(text)


@dataclass(frozen=True)
class ReadyQuery:
    """One file of ``sql/queries/``, read from its header comment."""

    name: str
    question: str
    grain: str | None
    parameters: dict[str, Parameter] = field(default_factory=dict)
    notes: str = ""

    def sql(self, *, dialect: str) -> str:
        """The query's SQL for ``dialect`` (its parameters still ``:name`` placeholders)."""
        return query_sql(self.name, dialect=dialect)


def read_query(name: str) -> ReadyQuery:
    """The ready query ``name`` (its file name without ``.sql``), from its header comment."""
    if name not in query_names():
        raise InstallationError(f"there is no ready query {name!r} in {sql_dir() / 'queries'}")
    path = sql_dir() / "queries" / f"{name}.sql"
    header: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("--"):
            break
        header.append(line[2:].removeprefix(" "))
    return _parse(name, header)


def read_queries() -> list[ReadyQuery]:
    """Every ready query, by name."""
    return [read_query(name) for name in query_names()]


def parse_assignments(values: Sequence[str]) -> dict[str, str]:
    """``NAME=VALUE`` texts (``--param days=90``) as a dict; the last of a repeated NAME
    wins. ValueError says how to write one."""
    params: dict[str, str] = {}
    for value in values:
        name, equals, text = value.partition("=")
        if not equals or not name.strip():
            raise ValueError(f"{value!r} is not NAME=VALUE: write e.g. --param days=90")
        params[name.strip()] = text
    return params


def bind_parameters(query: ReadyQuery, given: Mapping[str, str | int]) -> dict[str, int | str]:
    """The values to bind for ``query``: its defaults, overridden by ``given``.

    ExportError names a parameter the query does not take (and lists those it does), or a
    value it cannot use.
    """
    unknown = sorted(set(given) - set(query.parameters))
    if unknown:
        takes = ", ".join(f"{p.name} (default {p.default!r})" for p in query.parameters.values())
        raise ExportError(
            f"the query {query.name} has no parameter {', '.join(unknown)}; "
            + (f"it takes: {takes}" if takes else "it takes none")
        )
    values: dict[str, int | str] = {name: p.default for name, p in query.parameters.items()}
    for name, value in given.items():
        values[name] = query.parameters[name].parse(value)
    return values


def _parse(name: str, header: list[str]) -> ReadyQuery:
    question = grain = None
    parameters: dict[str, Parameter] = {}
    notes: list[str] = []
    current: list[str] | None = None
    items: list[tuple[str, list[str]]] = []
    for line in header:
        match = _ITEM.match(line)
        if match:
            current = [match["text"]]
            key = match["key"] or f"param:{match['param']}={match['default']}"
            items.append((key, current))
        elif line.startswith("  ") and current is not None:
            current.append(line.strip())
        else:
            current = None
            notes.append(line)
    for key, lines in items:
        text = " ".join(lines)
        if key == "Question":
            question = text
        elif key == "Grain":
            grain = text
        else:
            param, _, default = key.removeprefix("param:").partition("=")
            value: int | str = default.strip("'") if default.startswith("'") else int(default)
            parameters[param] = Parameter(param, value, text)
    if question is None:  # the oldest files: the first line is the question
        if not notes:
            raise InstallationError(f"the ready query {name} has no header comment")
        ends = next((i for i, line in enumerate(notes) if line.rstrip().endswith("?")), 0)
        question, notes = " ".join(notes[: ends + 1]), notes[ends + 1 :]
    return ReadyQuery(name, question, grain, parameters, " ".join(notes).strip())
