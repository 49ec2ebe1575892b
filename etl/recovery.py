"""Entries of the ZVM's Recovery Report to warehouse records: pure functions, no I/O.

:func:`normalize_recovery_operation` turns one decoded entry of ``GET /v1/reports/recovery``
into a :class:`RecoveryOperation` (with its :class:`RecoveryStep` rows), or into a
:class:`RejectedOperation` carrying the raw entry and a reason a person can act on. It
follows what ``docs/zvm-api.md`` ("The Recovery Report") records of the entry's shape:

* field names are matched case-insensitively (``RTOInSeconds``, ``RtoInSeconds`` and
  ``rtoInSeconds`` are one name); the summary fields are read from ``General`` when the
  entry has that object, else from the entry itself, and the steps from
  ``RecoverySettings.Steps``, else ``Steps``;
* the identifier is ``RecoveryOperationIdentifier`` (else ``RecoveryOperationId``); an entry
  without one is keyed by a hash (:func:`hashed_identifier`);
* dates (``StartTime``, ``EndTime``, ``PointInTime``, the steps' times) are read like a
  task's (:func:`etl.normalize.source_date`); ``StartTime`` is required;
* ``RTOInSeconds`` is seconds, a number or a numeric string (the 10.0 U6 document types it
  as a string); a step's ``ExecutionTime`` is seconds the same way or a .NET time span
  (``[d.]hh:mm:ss[.fffffff]``);
* ``RecoveryType`` is given as ``Failover``, ``FailoverTest`` or ``Move`` whatever its case
  and spacing (``Failover Test``); another value is kept as written.

The payload is kept exactly as received; ``payload_hash`` (sha256 of its JSON) is what the
load compares to tell an unchanged operation from an updated one.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from etl.normalize import IDENTIFIER_MAX, get_field, optional_text, raw_text, source_date

__all__ = [
    "RECOVERY_TYPES",
    "RecoveryOperation",
    "RecoveryStep",
    "RejectedOperation",
    "hashed_identifier",
    "normalize_recovery_operation",
    "normalize_recovery_operations",
    "parse_seconds",
]

RECOVERY_TYPES = {"failover": "Failover", "failovertest": "FailoverTest", "move": "Move"}
"""The documented recovery types, by their name lower-cased without blanks."""

TYPE_MAX = 64
"""The longest recovery type kept (the column's length)."""

_SPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_BLANKS = re.compile(r"[\s_-]+")


@dataclass(frozen=True, slots=True)
class RecoveryStep:
    """One step of an operation, numbered from 1 in the report's order."""

    number: int
    description: str | None
    result: str | None
    started_at: datetime | None
    ended_at: datetime | None
    execution_seconds: float | None


@dataclass(frozen=True, slots=True)
class RecoveryOperation:
    """One recovery operation, ready for the warehouse (``recovery_operations`` and its
    ``recovery_operation_steps``)."""

    operation_identifier: str
    vpg_identifier: str | None
    vpg_name: str | None
    recovery_type: str | None
    protected_site_name: str | None
    recovery_site_name: str | None
    started_at: datetime
    ended_at: datetime | None
    point_in_time: datetime | None
    rto_seconds: float | None
    status: str | None
    initiated_by: str | None
    notes: str | None
    steps: tuple[RecoveryStep, ...]
    payload: bytes
    """The entry as received, as compact JSON."""
    payload_hash: str


@dataclass(frozen=True, slots=True)
class RejectedOperation:
    """An entry that cannot be loaded: the raw entry as JSON text and why.
    ``operation_identifier`` is kept when one could be read and fits the key column."""

    reason: str
    raw: str
    operation_identifier: str | None = None

    def __post_init__(self) -> None:
        identifier = self.operation_identifier
        if identifier is not None and len(identifier) > IDENTIFIER_MAX:
            object.__setattr__(self, "operation_identifier", None)


class _Bad(Exception):
    """Internal: the reason an entry is rejected."""


def hashed_identifier(
    zvm: str, vpg: str | None, recovery_type: str | None, started_at: datetime
) -> str:
    """The key of an operation the report gives no identifier: ``sha256:`` and the hex
    sha256 of the ZVM's name, the VPG (its identifier, else its name), the recovery type and
    the start (ISO-8601 UTC, microseconds), joined by line feeds. Stable across reads, as
    long as the ZVM reports the same start."""
    start = started_at.astimezone(UTC).isoformat(timespec="microseconds")
    text = "\n".join((zvm, vpg or "", recovery_type or "", start))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def parse_seconds(value: object, *, spans: bool = False) -> float | None:
    """Seconds from a number or a numeric string (with ``spans``, also a .NET time span
    ``[d.]hh:mm:ss[.fffffff]``); None for null or empty. ValueError for anything else,
    negative or not finite values included."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        span = _SPAN.match(text) if spans else None
        if span:
            days, hours, minutes, secs, fraction = span.groups()
            if int(minutes) > 59 or int(secs) > 59:
                raise ValueError(f"{value!r} is not a time span (minutes and seconds go to 59)")
            seconds = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60
            seconds += int(secs) + int((fraction or "0").ljust(7, "0")) / 10**7
        elif _NUMBER.match(text):
            seconds = float(text)
        else:
            form = "seconds or a time span (hh:mm:ss)" if spans else "a number of seconds"
            raise ValueError(f"{value!r} is not {form}")
    else:
        raise ValueError(f"{type(value).__name__} {value!r} is not a number of seconds")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a number of seconds of 0 or more")
    return seconds


def _summary(entry: dict[str, Any]) -> dict[str, Any]:
    general = get_field(entry, "General")
    if general is None:
        return entry
    if not isinstance(general, dict):
        raise _Bad(f"General must be an object, got {type(general).__name__}")
    return general


def _date(obj: dict[str, Any], name: str, where: str = "") -> datetime | None:
    try:
        return source_date(get_field(obj, name))[0]
    except ValueError as exc:
        raise _Bad(f"{where}{name}: {exc}") from None


def _identifier(entry: dict[str, Any]) -> str | None:
    value = get_field(entry, "RecoveryOperationIdentifier")
    if value is None:
        value = get_field(entry, "RecoveryOperationId")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise _Bad(f"RecoveryOperationIdentifier must be text, got {type(value).__name__}")
    identifier = value.strip()
    if len(identifier) > IDENTIFIER_MAX:
        raise _Bad(
            f"RecoveryOperationIdentifier is {len(identifier)} characters long; the warehouse "
            f"keys operations by at most {IDENTIFIER_MAX}"
        )
    return identifier


def _recovery_type(summary: dict[str, Any]) -> str | None:
    text = optional_text(summary, "RecoveryType")
    if text is None or not text.strip():
        return None
    kind = RECOVERY_TYPES.get(_BLANKS.sub("", text).lower(), text.strip())
    if len(kind) > TYPE_MAX:
        raise _Bad(f"RecoveryType is {len(kind)} characters long; at most {TYPE_MAX} are kept")
    return kind


def _steps(entry: dict[str, Any]) -> tuple[RecoveryStep, ...]:
    settings = get_field(entry, "RecoverySettings")
    if settings is not None and not isinstance(settings, dict):
        raise _Bad(f"RecoverySettings must be an object, got {type(settings).__name__}")
    items = get_field(settings, "Steps") if settings is not None else get_field(entry, "Steps")
    if items is None:
        return ()
    if not isinstance(items, list):
        raise _Bad(f"Steps must be a list, got {type(items).__name__}")
    steps: list[RecoveryStep] = []
    for number, item in enumerate(items, start=1):
        where = f"step {number}: "
        if not isinstance(item, dict):
            raise _Bad(f"{where}a step must be an object, got {type(item).__name__} {item!r}")
        try:
            seconds = parse_seconds(get_field(item, "ExecutionTime"), spans=True)
        except ValueError as exc:
            raise _Bad(f"{where}ExecutionTime: {exc}") from None
        steps.append(
            RecoveryStep(
                number=number,
                description=optional_text(item, "Description"),
                result=optional_text(item, "Result"),
                started_at=_date(item, "StartTime", where),
                ended_at=_date(item, "EndTime", where),
                execution_seconds=seconds,
            )
        )
    return tuple(steps)


def _vpg_identifier(summary: dict[str, Any]) -> str | None:
    value = optional_text(summary, "VpgIdentifier")
    if value is None or not value.strip():
        return None
    if len(value.strip()) > IDENTIFIER_MAX:
        raise _Bad(f"VpgIdentifier is longer than {IDENTIFIER_MAX} characters")
    return value.strip()


def normalize_recovery_operation(raw: object, *, zvm: str) -> RecoveryOperation | RejectedOperation:
    """One decoded report entry of ZVM ``zvm`` → a RecoveryOperation, or a
    RejectedOperation with the reason. Never raises for bad input."""
    if not isinstance(raw, dict):
        return RejectedOperation(
            f"a recovery operation must be a JSON object, got {type(raw).__name__}", raw_text(raw)
        )
    identifier: str | None = None
    try:
        identifier = _identifier(raw)
        summary = _summary(raw)
        started_at = _date(summary, "StartTime")
        if started_at is None:
            raise _Bad("StartTime is missing, empty, or before 1900 (.NET's unset date)")
        try:
            rto = parse_seconds(get_field(summary, "RTOInSeconds"))
        except ValueError as exc:
            raise _Bad(f"RTOInSeconds: {exc}") from None
        vpg_identifier = _vpg_identifier(summary)
        vpg_name = optional_text(summary, "VpgName")
        recovery_type = _recovery_type(summary)
        ended_at = _date(summary, "EndTime")
        point_in_time = _date(summary, "PointInTime")
        steps = _steps(raw)
        payload = orjson.dumps(raw)
        if b"\\u0000" in payload:
            raise _Bad(
                "the entry contains a NUL character (\\u0000), which PostgreSQL cannot store"
            )
    except _Bad as exc:
        return RejectedOperation(str(exc), raw_text(raw), identifier)
    except TypeError as exc:  # orjson: something JSON cannot hold (only from hand-made input)
        return RejectedOperation(f"the entry cannot be stored as JSON: {exc}", raw_text(raw))
    if identifier is None:
        identifier = hashed_identifier(zvm, vpg_identifier or vpg_name, recovery_type, started_at)
    return RecoveryOperation(
        operation_identifier=identifier,
        vpg_identifier=vpg_identifier,
        vpg_name=vpg_name,
        recovery_type=recovery_type,
        protected_site_name=optional_text(summary, "ProtectedSiteName"),
        recovery_site_name=optional_text(summary, "RecoverySiteName"),
        started_at=started_at,
        ended_at=ended_at,
        point_in_time=point_in_time,
        rto_seconds=rto,
        status=optional_text(summary, "Status"),
        initiated_by=optional_text(summary, "InitiatedBy"),
        notes=optional_text(summary, "Notes"),
        steps=steps,
        payload=payload,
        payload_hash=hashlib.sha256(payload).hexdigest(),
    )


def normalize_recovery_operations(
    items: Iterable[object], *, zvm: str
) -> tuple[list[RecoveryOperation], list[RejectedOperation]]:
    """Normalize a page (or several); an operation listed twice keeps its last version."""
    operations: dict[str, RecoveryOperation] = {}
    rejected: list[RejectedOperation] = []
    for item in items:
        result = normalize_recovery_operation(item, zvm=zvm)
        if isinstance(result, RecoveryOperation):
            operations.pop(result.operation_identifier, None)
            operations[result.operation_identifier] = result
        else:
            rejected.append(result)
    return list(operations.values()), rejected
