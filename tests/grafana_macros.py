"""What Grafana does to a panel's SQL before its PostgreSQL or MySQL data source runs it.

No Grafana server is installable here, so the dashboard tests expand the SQL themselves:
first the dashboard variables (the front end's interpolation: a multi-value or include-all
variable becomes its values quoted as SQL strings, ``'` doubled, comma-separated; another
variable its value as is), then the macros the dashboards use, as Grafana's back end
writes them for each data source: Grafana's pkg/tsdb/grafana-postgresql-datasource/macros.go
and pkg/tsdb/mysql/macros.go, which the data source docs' macro tables follow (the MySQL
table still shows an older ``$__timeGroup``, ``cast(cast(UNIX_TIMESTAMP(c)/(300) as
signed)*300 as signed)``; the code writes ``UNIX_TIMESTAMP(c) DIV 300 * 300``, used here).
Only the macros the dashboards use are known: any other is an error, so a panel can never
run here with a macro left unexpanded.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_MACRO = re.compile(r"\$(__[A-Za-z]+)\(([^)]*)\)")
_VARIABLE = re.compile(r"\$([A-Za-z][A-Za-z0-9_]*)")
_INTERVAL = re.compile(r"^(\d+)(s|m|h|d|w)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

Value = str | list[str]


def quote(value: str) -> str:
    """How Grafana's SQL data sources quote one value of a multi-value variable."""
    return "'" + value.replace("'", "''") + "'"


def interpolate(sql: str, variables: dict[str, Value]) -> str:
    """Replace ``$name`` for every variable; a list is a multi-value selection. Raises
    KeyError for a ``$name`` that is neither a variable nor a macro."""

    def replace(match: re.Match[str]) -> str:
        value = variables[match.group(1)]
        return ",".join(quote(v) for v in value) if isinstance(value, list) else value

    return _VARIABLE.sub(replace, sql)


def interval_seconds(text: str) -> int:
    """Seconds of a Grafana interval such as ``'1d'`` (quotes allowed)."""
    match = _INTERVAL.match(text.strip("'\""))
    if match is None:
        raise ValueError(f"unsupported interval {text!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Each macro's expansion: {c} the column, {s} the interval's seconds, {start}/{end} the time
# range as the data source writes it (RFC 3339 text on PostgreSQL, FROM_UNIXTIME of epoch
# seconds on MySQL), {first}/{last} the range in epoch seconds.
_FORMATS = {
    "__timeFilter": "{c} BETWEEN {start} AND {end}",
    "__timeFrom": "{start}",
    "__timeTo": "{end}",
    "__unixEpochFilter": "{c} >= {first} AND {c} <= {last}",
}
_TIME_GROUP = {
    "postgresql": "floor(extract(epoch from {c})/{s})*{s}",
    "mysql": "UNIX_TIMESTAMP({c}) DIV {s} * {s}",
}


def _expansion(dialect: str, name: str, args: list[str], start: datetime, end: datetime) -> str:
    first, last = int(start.timestamp()), int(end.timestamp())
    if dialect == "postgresql":
        bounds = {"start": f"'{_rfc3339(start)}'", "end": f"'{_rfc3339(end)}'"}
    else:
        bounds = {"start": f"FROM_UNIXTIME({first})", "end": f"FROM_UNIXTIME({last})"}
    alias = name == "__timeGroupAlias"
    grouped = name in ("__timeGroup", "__timeGroupAlias")
    template = _TIME_GROUP[dialect] if grouped else _FORMATS.get(name)
    if template is None:
        raise ValueError(f"the macro ${name} is not one the dashboards use")
    seconds = interval_seconds(args[1]) if grouped else 0
    text = template.format(c=args[0], s=seconds, first=first, last=last, **bounds)
    return text + (' AS "time"' if alias else "")


def expand_macros(sql: str, *, dialect: str, start: datetime, end: datetime) -> str:
    """Expand Grafana's macros in ``sql`` for the ``dialect`` data source and the time
    range ``start``..``end``."""

    def replace(match: re.Match[str]) -> str:
        args = [arg.strip() for arg in match.group(2).split(",")]
        return _expansion(dialect, match.group(1), args, start, end)

    return _MACRO.sub(replace, sql)


def expand(
    sql: str, *, dialect: str, start: datetime, end: datetime, variables: dict[str, Value]
) -> str:
    """A panel's SQL as Grafana sends it to the database: variables, then macros."""
    return expand_macros(interpolate(sql, variables), dialect=dialect, start=start, end=end)


def used_variables(sql: str) -> set[str]:
    """The dashboard variables (not macros) a SQL text names."""
    return set(_VARIABLE.findall(sql))
