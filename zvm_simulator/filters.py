"""The six filters of ``GET /v1/tasks``, read the way the ZVM reads them.

Names are case-insensitive (``startedafterdate`` works) and unknown parameters are ignored;
an empty value counts as absent. Date values are ``yyyy-mm-dd`` (midnight),
``yyyy-mm-ddThh:mm``, ``yyyy-mm-ddThh:mm:ss`` or ``yyyy-mm-ddThh:mm:ss.f`` with 1 to 7
fraction digits; a trailing ``Z`` (or ``z``) means UTC, an explicit ``±hh:mm`` offset is
applied, and no suffix means the ZVM's local zone. Bounds are inclusive and compared
exactly (in 100 ns ticks, like .NET): ``startedAfterDate=X`` keeps ``Started >= X``,
``startedBeforeDate=X`` keeps ``Started <= X``. ``completed*`` filters drop tasks that have
not completed. ``type`` must be one of the documented types (any case); ``status`` is a
state number 0-7 or a state name (any case). Any other value is refused with a
:class:`FilterError` whose message the server returns in a 400 answer.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from zvm_simulator.catalog import STATE_NAMES

__all__ = ["FILTER_NAMES", "FilterError", "TaskQuery", "parse_filter_date", "parse_query"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TICKS_PER_MS = 10_000
_TICKS_PER_SECOND = 10_000_000

FILTER_NAMES = (
    "startedBeforeDate",
    "startedAfterDate",
    "completedBeforeDate",
    "completedAfterDate",
    "type",
    "status",
)
"""The documented filter names (matched case-insensitively)."""

_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?"
    r"(Z|z|[+-]\d{2}:\d{2})?",
    re.ASCII,
)
_NUMBER = re.compile(r"[+-]?[0-9]{1,9}")
_STATES = {name.lower(): value for value, name in enumerate(STATE_NAMES)}


class FilterError(ValueError):
    """A filter value the ZVM refuses; ``str()`` is the message of the 400 answer."""


@dataclass(frozen=True)
class TaskQuery:
    """Parsed filters. Dates are 100 ns ticks since the Unix epoch (UTC); ``task_type`` is
    lower-cased; ``state`` a ``Status.State`` value. None means no such filter."""

    started_after: int | None = None
    started_before: int | None = None
    completed_after: int | None = None
    completed_before: int | None = None
    task_type: str | None = None
    state: int | None = None

    @property
    def has_completed_bounds(self) -> bool:
        """True when a ``completed*`` filter is set (running tasks are then excluded)."""
        return self.completed_after is not None or self.completed_before is not None


def parse_filter_date(value: str, *, utc_offset_minutes: int) -> int:
    """A filter date as 100 ns ticks since the epoch; ValueError when it is not one
    (including a valid-looking date that does not exist, or one out of range)."""
    match = _DATE.fullmatch(value.strip())
    if match is None:
        raise ValueError(value)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    # The wall-clock reading, labelled UTC for arithmetic; the zone offset is applied below.
    moment = datetime(
        int(year),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        tzinfo=UTC,
    )
    if zone is None:
        offset = utc_offset_minutes
    elif zone in ("Z", "z"):
        offset = 0
    else:
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 14 or minutes > 59:
            raise ValueError(value)
        offset = (hours * 60 + minutes) * (-1 if zone[0] == "-" else 1)
    try:
        utc = moment - timedelta(minutes=offset)
    except OverflowError:
        raise ValueError(value) from None
    seconds = (utc - _EPOCH) // timedelta(seconds=1)
    return seconds * _TICKS_PER_SECOND + int((fraction or "").ljust(7, "0"))


def parse_query(
    params: Mapping[str, str], *, utc_offset_minutes: int, known_types: Collection[str]
) -> TaskQuery:
    """Read the filters out of query parameters (names already lower-cased).

    ``known_types`` holds the valid ``type`` values, lower-cased. Raises FilterError with
    an ASP.NET-style message naming the value and the filter.
    """
    values: dict[str, str] = {}
    for name in FILTER_NAMES:
        value = params.get(name.lower(), "")
        if value.strip():
            values[name] = value

    dates: dict[str, int] = {}
    for name in FILTER_NAMES[:4]:
        if name in values:
            try:
                dates[name] = parse_filter_date(values[name], utc_offset_minutes=utc_offset_minutes)
            except ValueError:
                raise FilterError(_invalid(values[name], name)) from None

    task_type = None
    if "type" in values:
        task_type = values["type"].strip().lower()
        if task_type not in known_types:
            raise FilterError(_invalid(values["type"], "type"))

    state = None
    if "status" in values:
        text = values["status"].strip()
        if _NUMBER.fullmatch(text) and int(text) in range(len(STATE_NAMES)):
            state = int(text)
        elif text.lower() in _STATES:
            state = _STATES[text.lower()]
        else:
            raise FilterError(_invalid(values["status"], "status"))

    return TaskQuery(
        started_after=dates.get("startedAfterDate"),
        started_before=dates.get("startedBeforeDate"),
        completed_after=dates.get("completedAfterDate"),
        completed_before=dates.get("completedBeforeDate"),
        task_type=task_type,
        state=state,
    )


def _invalid(value: str, name: str) -> str:
    return f"The value '{value}' is not valid for {name}."
