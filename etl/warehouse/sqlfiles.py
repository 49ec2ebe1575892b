"""The warehouse's SQL files: versioned view definitions and analyst queries.

Layout under ``sql/`` (see :mod:`etl.resources` for where that directory is)::

    views/<name>.v<N>.sql      version N of a view
    queries/<name>.sql         an analyst question

A file holds one ``SELECT`` (what the view shows); the ``CREATE VIEW`` around it is added
here, so a file cannot create a view under another name. One file serves every database:
the few expressions the databases write differently (a UTC day or month, "seconds since",
the start of the quarter...) are written as macros, ``${utc_day("t.started_at")}``, which
:data:`MACROS` expands for each dialect (the files are Mako templates; ``${...}`` is the
only Mako syntax they use). ``zvm-etl sql NAME`` prints a file as one database runs it.

**Versions are immutable.** A migration names the exact version it creates
(``create_view_sql("v_tasks", 1, ...)``), so replaying old migrations always builds the views
those revisions built. To change a view, add ``<name>.v<N+1>.sql`` and a migration that
drops version N and creates N+1 (and, on downgrade, the reverse); never edit a released
version, and never change what a macro renders for a dialect (a new macro is fine). Views
read tables only, never other views, so each can be replaced on its own (PostgreSQL
refuses to drop a view that another view depends on).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from etl.errors import InstallationError, UnknownExportName
from etl.normalize import FINAL_STATES, STATE_NAMES
from etl.resources import sql_dir

__all__ = [
    "DIALECTS",
    "MACROS",
    "create_view_sql",
    "drop_view_sql",
    "query_names",
    "query_sql",
    "render",
    "rendered",
    "view_names",
    "view_select",
    "view_versions",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_VIEW_FILE = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.sql$")
_MYSQL_DIALECTS = frozenset({"mysql", "mariadb"})

OPEN_STATES = tuple(sorted(set(STATE_NAMES) - FINAL_STATES))
"""The states a task can still leave (``task_states.is_final`` false), as the
``open_states()`` macro lists them: a literal list, which lets every database's planner
use its statistics and an index on state (PostgreSQL's partial ``ix_tasks_open``)."""

DIALECTS = ("sqlite", "postgresql", "mysql")
"""The databases every file is written for (``mariadb`` renders as ``mysql``)."""

Macro = Callable[..., str]


def _family(dialect: str) -> str:
    return "mysql" if dialect in _MYSQL_DIALECTS else dialect


def _macros(dialect: str) -> dict[str, Macro]:
    """The macros for one database: each takes SQL expressions (text) and returns SQL."""
    macros = _dialect_macros(dialect)
    floor = macros["floor"]

    def percentile_cont(fraction: str, value: str, row: str, count: str) -> str:
        # PostgreSQL's percentile_cont (linear interpolation between the two nearest rows),
        # written with ROW_NUMBER() (row, 1-based, ordered by value) and COUNT() (count)
        # windows, which every database has: an aggregate over one group's rows.
        position = f"(1 + {fraction} * ({count} - 1))"
        lower = floor(position)
        return (
            f"SUM(CASE WHEN {row} = {lower} THEN {value} * (1 - ({position} - {lower})) "
            f"WHEN {row} = {lower} + 1 THEN {value} * ({position} - {lower}) ELSE 0 END)"
        )

    macros["percentile_cont"] = percentile_cont

    def percentile(fraction: str, value: str, row: str, count: str) -> str:
        # The same value as percentile_cont; PostgreSQL computes it with its own ordered-set
        # aggregate, which needs neither window (its planner then drops them, and their
        # sort) nor the per-row arithmetic, the costliest part of the window form there.
        if dialect == "postgresql":
            return f"percentile_cont({fraction}) WITHIN GROUP (ORDER BY {value})"
        return percentile_cont(fraction, value, row, count)

    macros["percentile"] = percentile
    # Of a date (task_daily_totals.day): where timestamps are stored as naive UTC (SQLite,
    # MariaDB) a date goes through the timestamps' own expressions; PostgreSQL has its own.
    macros.setdefault("day_week_start", macros["week_start"])
    macros.setdefault("day_iso_week", macros["iso_week"])
    macros["open_states"] = lambda: ", ".join(str(state) for state in OPEN_STATES)
    return macros


def _dialect_macros(dialect: str) -> dict[str, Macro]:
    family = _family(dialect)
    if family == "postgresql":
        return {
            # timestamptz to a UTC date: a plain cast would use the session's time zone.
            "utc_day": lambda e: f"CAST({e} AT TIME ZONE 'UTC' AS date)",
            "seconds_since": lambda e: (
                f"CAST(EXTRACT(EPOCH FROM (now() - {e})) AS double precision)"
            ),
            "greatest": lambda a, b: f"GREATEST({a}, {b})",  # ignores a null argument
            "quarter_start": lambda: (
                "date_trunc('quarter', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
            ),
            "days_ago": lambda n: f"(now() - make_interval(days => CAST({n} AS integer)))",
            "seconds_between": lambda a, b: (
                f"CAST(EXTRACT(EPOCH FROM ({b} - {a})) AS double precision)"
            ),
            "week_start": lambda e: f"CAST(date_trunc('week', {e} AT TIME ZONE 'UTC') AS date)",
            "utc_month": lambda e: f"to_char({e} AT TIME ZONE 'UTC', 'YYYY-MM')",
            "iso_week": lambda e: f"to_char({e} AT TIME ZONE 'UTC', 'IYYY-\"W\"IW')",
            # The first moment of the UTC day after the one of the timestamptz e.
            "next_utc_midnight": lambda e: (
                f"((date_trunc('day', {e} AT TIME ZONE 'UTC') + interval '1 day') "
                "AT TIME ZONE 'UTC')"
            ),
            # Of a date (task_daily_totals.day): no time zone to convert from.
            "day_week_start": lambda d: f"CAST(date_trunc('week', CAST({d} AS timestamp)) AS date)",
            "day_iso_week": lambda d: f"to_char(CAST({d} AS timestamp), 'IYYY-\"W\"IW')",
            "floor": lambda e: f"FLOOR({e})",
            "string_agg": lambda e: f"string_agg({e}, ', ' ORDER BY {e})",
        }
    if family == "mysql":
        return {
            "utc_day": lambda e: f"DATE({e})",  # naive UTC: the date is the UTC day
            "seconds_since": lambda e: f"TIMESTAMPDIFF(MICROSECOND, {e}, UTC_TIMESTAMP(6)) / 1e6",
            "greatest": lambda a, b: f"COALESCE(GREATEST({a}, {b}), {a}, {b})",
            "quarter_start": lambda: (
                "MAKEDATE(YEAR(UTC_DATE()), 1) + INTERVAL (QUARTER(UTC_DATE()) - 1) QUARTER"
            ),
            "days_ago": lambda n: f"(UTC_TIMESTAMP(6) - INTERVAL {n} DAY)",
            "seconds_between": lambda a, b: f"TIMESTAMPDIFF(MICROSECOND, {a}, {b}) / 1e6",
            "week_start": lambda e: f"(DATE({e}) - INTERVAL WEEKDAY({e}) DAY)",
            "utc_month": lambda e: f"DATE_FORMAT({e}, '%Y-%m')",  # naive UTC
            "iso_week": lambda e: f"DATE_FORMAT({e}, '%x-W%v')",
            "next_utc_midnight": lambda e: f"(DATE({e}) + INTERVAL 1 DAY)",  # naive UTC
            "floor": lambda e: f"FLOOR({e})",
            "string_agg": lambda e: f"GROUP_CONCAT({e} ORDER BY {e} SEPARATOR ', ')",
        }
    if family == "sqlite":
        return {
            "utc_day": lambda e: f"DATE({e})",  # naive UTC text: the date is the UTC day
            "seconds_since": lambda e: f"(julianday('now') - julianday({e})) * 86400.0",
            "greatest": lambda a, b: f"COALESCE(MAX({a}, {b}), {a}, {b})",
            "quarter_start": lambda: (
                "date('now', 'start of month', "
                "'-' || ((CAST(strftime('%m', 'now') AS INTEGER) - 1) % 3) || ' months')"
            ),
            # Text in the stored format (YYYY-MM-DD HH:MM:SS.SSS), so it compares as text.
            "days_ago": lambda n: (
                f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || CAST({n} AS TEXT) || ' days')"
            ),
            "seconds_between": lambda a, b: f"(julianday({b}) - julianday({a})) * 86400.0",
            # The Monday on or before the day.
            "week_start": lambda e: f"date({e}, '-6 days', 'weekday 1')",
            "utc_month": lambda e: f"strftime('%Y-%m', {e})",  # naive UTC text
            # The ISO year and week are those of the week's Thursday (SQLite < 3.46 has no %V).
            "iso_week": lambda e: (
                f"(strftime('%Y', {e}, '-3 days', 'weekday 4') || '-W' || "
                f"substr('0' || ((CAST(strftime('%j', {e}, '-3 days', 'weekday 4') AS INTEGER)"
                " - 1) / 7 + 1), -2))"
            ),
            # 'YYYY-MM-DD': as text it sorts after every stored moment of the day before
            # and before every moment of its own day, midnight included.
            "next_utc_midnight": lambda e: f"date({e}, '+1 day')",
            "floor": lambda e: f"CAST({e} AS INTEGER)",  # truncation: callers pass values >= 0
            # No ORDER BY inside aggregates before SQLite 3.44: in no particular order.
            "string_agg": lambda e: f"group_concat({e}, ', ')",
        }
    raise InstallationError(
        f"the warehouse's SQL is written for {', '.join(DIALECTS)} (and MariaDB), not for {dialect}"
    )


MACROS = {dialect: sorted(_macros(dialect)) for dialect in DIALECTS}
"""The macro names each database has (the same set for all)."""


def render(text: str, *, dialect: str) -> str:
    """Expand the macros of one SQL file's text for ``dialect``."""
    from mako.template import Template

    rendered: str = Template(text, strict_undefined=True).render(**_macros(dialect))
    return rendered.strip().rstrip(";").rstrip()


def view_select(name: str, version: int, *, dialect: str, root: Path | None = None) -> str:
    """The ``SELECT`` of version ``version`` of view ``name`` for ``dialect`` (a SQLAlchemy
    dialect name such as ``postgresql``); InstallationError when there is no such file."""
    return render(_read("views", f"{_checked(name)}.v{version}.sql", root=root), dialect=dialect)


def create_view_sql(name: str, version: int, *, dialect: str, root: Path | None = None) -> str:
    """``CREATE VIEW <name> AS <select>`` for version ``version`` of view ``name``.

    On MariaDB/MySQL the view runs with the privileges of whoever queries it (``SQL SECURITY
    INVOKER``), not those of the account that ran the migration: that account may be
    renamed or dropped later, which would break a ``DEFINER`` view for everyone.
    """
    select = view_select(name, version, dialect=dialect, root=root)
    security = " SQL SECURITY INVOKER" if dialect in _MYSQL_DIALECTS else ""
    return f"CREATE{security} VIEW {name} AS\n{select}"


def drop_view_sql(name: str) -> str:
    """``DROP VIEW IF EXISTS <name>`` (the same statement on all three databases)."""
    return f"DROP VIEW IF EXISTS {_checked(name)}"


def view_versions(*, root: Path | None = None) -> dict[str, list[int]]:
    """Every view that has a file, with its versions in ascending order."""
    views = (root or sql_dir()) / "views"
    found: dict[str, list[int]] = {}
    for path in views.glob("*.sql"):
        match = _VIEW_FILE.match(path.name)
        if match:
            found.setdefault(match["name"], []).append(int(match["version"]))
    return {name: sorted(versions) for name, versions in sorted(found.items())}


def view_names(*, root: Path | None = None) -> frozenset[str]:
    """Every view that has a file (of any version)."""
    return frozenset(view_versions(root=root))


def query_names(*, root: Path | None = None) -> list[str]:
    """The analyst queries, by name (file name without ``.sql``), sorted."""
    queries = (root or sql_dir()) / "queries"
    return sorted(path.stem for path in queries.glob("*.sql") if _NAME.match(path.stem))


def query_sql(name: str, *, dialect: str, root: Path | None = None) -> str:
    """The text of analyst query ``name`` for ``dialect``."""
    return render(_read("queries", f"{_checked(name)}.sql", root=root), dialect=dialect)


def rendered(name: str, *, dialect: str, root: Path | None = None) -> str:
    """The SQL of view ``name`` (its newest version's ``SELECT``) or of ready query ``name``,
    as ``dialect`` runs it (what ``zvm-etl sql NAME`` prints). UnknownExportName when
    neither exists, naming the ones that do."""
    versions = view_versions(root=root)
    if name in versions:
        return view_select(name, versions[name][-1], dialect=dialect, root=root)
    if name in query_names(root=root):
        return query_sql(name, dialect=dialect, root=root)
    raise UnknownExportName(name, [*versions, *query_names(root=root)])


def _checked(name: str) -> str:
    # Names are pasted into DDL: only plain lower-case identifiers are allowed.
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a valid view or query name")
    return name


def _read(kind: str, filename: str, *, root: Path | None) -> str:
    path = (root or sql_dir()) / kind / filename
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InstallationError(
            f"the SQL file {path} does not exist: a migration or a command asked for it, so "
            "the installation is incomplete (reinstall zvm-task-etl)"
        ) from None
