"""Dates as ZVMs write them, and as their filters want them.

A Windows ZVM writes .NET JSON dates: ``/Date(1520423876840)/`` or
``/Date(1520423876840+0300)/`` (on the wire usually with escaped slashes, which JSON
decoding already removed). The number is milliseconds since the Unix epoch in UTC; the
offset only records the ZVM's UTC offset at that instant, so it is kept but NOT applied.
The Linux appliance may write ISO-8601 instead (``2025-02-08T21:50:46.574Z``), where an
offset IS part of the value and is applied. Both parse to a :class:`ZvmDate`.

Filters (``startedAfterDate`` and friends) are always sent by :func:`format_filter_date` as
UTC with a trailing ``Z``: without it the ZVM reads the value as its own local time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

__all__ = [
    "ZvmDate",
    "format_filter_date",
    "parse_zvm_date",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WCF = re.compile(r"^\\?/Date\((-?\d{1,15})(?:([+-])(\d{2})(\d{2}))?\)\\?/$")
_ISO_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)
_ISO_FRACTION = re.compile(r"\.(\d+)")
# Python's datetime spans years 1..9999; .NET's DateTime.MinValue is 0001-01-01.
_MIN_MS = -62135596800000
_MAX_MS = 253402300799999


class ZvmDate(NamedTuple):
    """A parsed source date: ``utc`` is timezone-aware UTC; ``offset_minutes`` is the UTC
    offset written in the source value (``+0300`` → 180, ``Z`` → 0), None when it had none."""

    utc: datetime
    offset_minutes: int | None


def parse_zvm_date(value: object) -> ZvmDate | None:
    """Parse a ``Started``/``Completed`` value.

    None and the empty string mean "no date" and return None. Anything else that is not a
    .NET ``/Date(ms[±hhmm])/`` or an ISO-8601 date-time raises ValueError with a reason a
    person can act on.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a date string, got {type(value).__name__} {value!r}")
    text = value.strip()
    if not text:
        return None
    match = _WCF.match(text)
    if match:
        return _parse_wcf(text, match)
    if text[:1].isdigit():
        return _parse_iso(text)
    raise ValueError(f"unrecognised date {value!r}: expected /Date(ms)/ or ISO-8601")


def _parse_wcf(text: str, match: re.Match[str]) -> ZvmDate:
    ms_text, sign, hours, minutes = match.groups()
    ms = int(ms_text)
    if not _MIN_MS <= ms <= _MAX_MS:
        raise ValueError(f"date {text!r} is out of range (years 1 to 9999)")
    offset = None
    if sign:
        if int(minutes) >= 60 or int(hours) > 14:
            raise ValueError(f"date {text!r} has an impossible UTC offset {sign}{hours}{minutes}")
        offset = (int(hours) * 60 + int(minutes)) * (-1 if sign == "-" else 1)
    return ZvmDate(_EPOCH + timedelta(milliseconds=ms), offset)


def _parse_iso(text: str) -> ZvmDate:
    # Python 3.11 reads at most 6 fractional digits reliably; .NET writes 7. Keep 6.
    normalized = _ISO_FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(3, "0"), text, count=1)
    if normalized.endswith(("z", "Z")):
        normalized = normalized[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(normalized)
    except ValueError:
        raise ValueError(f"unrecognised date {text!r}: not a valid ISO-8601 date-time") from None
    if "T" not in text.upper() and " " not in text:
        raise ValueError(f"date {text!r} has no time of day")
    offset = parsed.utcoffset()
    if offset is None:
        # No offset at all: the appliance writes UTC; say so by recording none.
        return ZvmDate(parsed.replace(tzinfo=UTC), None)
    return ZvmDate(parsed.astimezone(UTC), int(offset.total_seconds()) // 60)


def format_filter_date(moment: datetime, *, round_up: bool = False) -> str:
    """A filter value: UTC in whole seconds with a trailing ``Z`` (``2025-02-08T21:50:46Z``).

    Whole seconds are the form every ZVM version documents (``yyyy-mm-ddThh:mm:ss`` plus
    ``Z``); fractions are dropped, so a lower bound only reaches further back, and
    ``round_up`` moves an upper bound to the next second so it only reaches further on.
    Naive datetimes are refused: a filter must never depend on this host's zone.
    """
    if moment.tzinfo is None:
        raise ValueError("filter dates must be timezone-aware")
    utc = moment.astimezone(UTC)
    if round_up and utc.microsecond:
        utc += timedelta(seconds=1)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
