"""Dates as a ZVM writes them in task objects: the simulator's own writer.

It is written from Zerto's documentation, not shared with the ETL's parser, so a misreading
of the wire format on either side shows up as a disagreement in the tests instead of
passing every round trip:

- a Windows ZVM (.NET ``DataContractJsonSerializer``) writes ``/Date(<ms>)/`` or
  ``/Date(<ms>±hhmm)/``: ``<ms>`` is milliseconds since the Unix epoch in UTC, and the
  suffix only records the zone's offset at that instant (the documentation's sample is
  ``"\\/Date(928142400000+0300)\\/"``; the slashes are escaped in the JSON text);
- the Linux appliance writes ISO-8601 with milliseconds: ``2025-02-08T21:50:46.574Z`` in
  UTC, or the zone's local time with its offset (``...+03:00``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["iso_date", "offset_suffix", "wcf_date"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def offset_suffix(offset_minutes: int, *, colon: bool) -> str:
    """``+0300`` (``colon`` False, .NET) or ``+03:00`` (ISO-8601) for an offset in minutes."""
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"


def wcf_date(ms: int, offset_minutes: int | None) -> str:
    """``/Date(ms)/`` or ``/Date(ms±hhmm)/``, before JSON escaping (the caller escapes)."""
    if offset_minutes is None:
        return f"/Date({ms})/"
    return f"/Date({ms}{offset_suffix(offset_minutes, colon=False)})/"


def iso_date(ms: int, offset_minutes: int | None) -> str:
    """ISO-8601 with milliseconds: ``Z`` for offset 0, the local time with ``±hh:mm``
    otherwise, no suffix at all (UTC) when ``offset_minutes`` is None."""
    shift = offset_minutes or 0
    local = _EPOCH + timedelta(milliseconds=ms + shift * 60_000)
    text = (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d}"
        f"T{local.hour:02d}:{local.minute:02d}:{local.second:02d}.{ms % 1000:03d}"
    )
    if offset_minutes is None:
        return text
    if offset_minutes == 0:
        return text + "Z"
    return text + offset_suffix(offset_minutes, colon=True)
