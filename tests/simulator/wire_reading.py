"""How the simulator's tests read dates off the wire: written from Zerto's documentation,
independently of both the simulator's writer and the ETL's parser.

``/Date(<ms>[±hhmm])/`` is milliseconds since the Unix epoch in UTC (the suffix records the
zone and is not applied); ISO-8601 values carry their offset (``Z`` is UTC, no offset is UTC).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WCF = re.compile(r"\\?/Date\((-?\d+)([+-]\d{4})?\)\\?/")


def read_date(text: object) -> datetime | None:
    """The UTC moment a ``Started``/``Completed`` value means; None for null or empty.

    ValueError for anything that is neither documented form."""
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise ValueError(f"not a date string: {text!r}")
    match = _WCF.fullmatch(text)
    if match:
        return EPOCH + timedelta(milliseconds=int(match.group(1)))
    if not text[:4].isdigit() or "T" not in text:
        raise ValueError(f"not a date: {text!r}")
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def started(task: dict[str, object]) -> datetime:
    """A task's ``Started`` (either key case) as UTC."""
    moment = read_date(task.get("Started", task.get("started")))
    assert moment is not None
    return moment


def filter_value(moment: datetime, *, round_up: bool = False) -> str:
    """A filter bound in UTC whole seconds with ``Z``, as the ETL sends them; ``round_up``
    moves a fractional moment to the next second (for an upper bound)."""
    utc = moment.astimezone(UTC)
    if round_up and utc.microsecond:
        utc += timedelta(seconds=1)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
