"""Raw ZVM task objects to warehouse records: pure functions, no I/O.

:func:`normalize_task` turns one decoded task object into a :class:`TaskRecord`, or into a
:class:`Rejected` carrying the raw record and a reason a person can act on. It follows
what real ZVMs send (see ``docs/zvm-api.md``):

* field names are matched case-insensitively (the appliance may write camelCase);
* the identifier is ``TaskIdentifier``, else ``Link.identifier`` (ZVMA 10.x has only the
  latter); a ``:`` separator from old versions becomes ``.``;
* dates are ``/Date(ms[±hhmm])/`` or ISO-8601 (:mod:`etl.zvm.dates`); a ``Completed`` that
  is null, empty or .NET's ``DateTime.MinValue`` means "not completed";
* ``Type`` is free text (new ZVM versions add types); ``State`` must be 0–7 (or its name);
* a missing, null or empty ``RelatedEntities`` list means no entities of that kind.

The payload is kept exactly as received; ``payload_hash`` (sha256 of its JSON) is what the
load compares to tell an unchanged task from an updated one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from etl.zvm.dates import parse_zvm_date

__all__ = [
    "ENTITY_KINDS",
    "IDENTIFIER_MAX",
    "STATE_NAMES",
    "Entity",
    "Rejected",
    "TaskRecord",
    "get_field",
    "normalize_identifier",
    "normalize_task",
    "normalize_tasks",
    "optional_text",
    "raw_text",
    "source_date",
]

STATE_NAMES: dict[int, str] = {
    0: "FirstUnusedValue",
    1: "InProgress",
    2: "WaitingForUserInput",
    3: "Paused",
    4: "Failed",
    5: "Stopped",
    6: "Completed",
    7: "Cancelling",
}
FINAL_STATES = frozenset({4, 5, 6})
_STATE_BY_NAME = {name.lower(): state for state, name in STATE_NAMES.items()}
ENTITY_KINDS = ("Vpgs", "Hosts", "Sites", "FlrSessions")
"""The ``RelatedEntities`` lists, in the order TaskRecord keeps them."""

# Key columns have bounded lengths (they are indexed on every database).
IDENTIFIER_MAX = 255
TYPE_MAX = 128

# .NET writes DateTime.MinValue (0001-01-01) for an unset non-nullable date.
_UNSET_BEFORE = datetime(1900, 1, 1, tzinfo=UTC)
_MISSING: Any = object()

Entity = tuple[str, str | None]
"""(identifier, href) of a related VPG, host, site or FLR session."""


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One task, ready for the warehouse (columns of ``tasks`` plus its related entities)."""

    task_identifier: str
    task_id: str
    site_identifier: str | None
    type: str
    state: int
    progress: int | None
    initiated_by: str | None
    complete_reason: str | None
    is_cancellable: bool | None
    started_at: datetime
    completed_at: datetime | None
    started_utc_offset_minutes: int | None
    completed_utc_offset_minutes: int | None
    duration_seconds: float | None
    link_href: str | None
    payload: bytes
    """The task object as received, as compact JSON (not a dict: a batch of them stays small)."""
    payload_hash: str
    vpgs: tuple[Entity, ...] = ()
    hosts: tuple[Entity, ...] = ()
    sites: tuple[Entity, ...] = ()
    flr_sessions: tuple[Entity, ...] = ()

    @property
    def is_final(self) -> bool:
        """Failed, Stopped or Completed: the ZVM will not change this task any more."""
        return self.state in FINAL_STATES


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that cannot be loaded: the raw record as JSON text and why.
    ``task_identifier`` is kept only when it fits the warehouse's key column (the raw
    record still holds it)."""

    reason: str
    raw: str
    task_identifier: str | None = None

    def __post_init__(self) -> None:
        if self.task_identifier is not None and len(self.task_identifier) > IDENTIFIER_MAX:
            object.__setattr__(self, "task_identifier", None)


class _Bad(Exception):
    """Internal: the reason a record is rejected."""


def _get(obj: dict[str, Any], name: str) -> Any:
    """``obj[name]`` matching the key case-insensitively; _MISSING when absent."""
    value = obj.get(name, _MISSING)
    if value is not _MISSING:
        return value
    lowered = name.lower()
    for key, candidate in obj.items():
        if isinstance(key, str) and key.lower() == lowered:
            return candidate
    return _MISSING


def get_field(obj: dict[str, Any], name: str) -> Any:
    """``obj[name]`` matching the key case-insensitively (ZVMs write PascalCase or
    camelCase); None when absent."""
    value = _get(obj, name)
    return None if value is _MISSING else value


def _text(obj: dict[str, Any], name: str) -> str | None:
    value = _get(obj, name)
    if value is _MISSING or value is None:
        return None
    if not isinstance(value, str):
        raise _Bad(f"{name} must be text, got {type(value).__name__} {value!r}")
    return value


def _blank(value: Any) -> bool:
    return value is _MISSING or value is None or (isinstance(value, str) and not value.strip())


def _identifier(task: dict[str, Any]) -> str | None:
    value = _get(task, "TaskIdentifier")
    if _blank(value):
        link = _get(task, "Link")
        value = _get(link, "identifier") if isinstance(link, dict) else None
    if _blank(value):
        return None
    if not isinstance(value, str):
        raise _Bad(f"TaskIdentifier must be text, got {type(value).__name__} {value!r}")
    identifier = value.strip().replace(":", ".")
    if not identifier.partition(".")[0].strip():
        raise _Bad(f"TaskIdentifier {value!r} has no task part (expected <task uuid>.<site uuid>)")
    return identifier


def normalize_identifier(task: object) -> str | None:
    """The identifier a raw task would be loaded under (``TaskIdentifier``, else
    ``Link.identifier``, ``:`` read as ``.``); None when it has no usable one."""
    if not isinstance(task, dict):
        return None
    try:
        return _identifier(task)
    except _Bad:
        return None


def _state(status: Any) -> tuple[int, int | None]:
    if status is _MISSING or status is None:
        raise _Bad("Status is missing")
    if not isinstance(status, dict):
        raise _Bad(f"Status must be an object, got {type(status).__name__}")
    raw_state = _get(status, "State")
    if raw_state is _MISSING or raw_state is None:
        raise _Bad("Status.State is missing")
    if isinstance(raw_state, str) and raw_state.strip().lower() in _STATE_BY_NAME:
        state = _STATE_BY_NAME[raw_state.strip().lower()]
    elif isinstance(raw_state, int) and not isinstance(raw_state, bool):
        state = raw_state
    else:
        raise _Bad(f"Status.State {raw_state!r} is not a task state (0-7 or its name)")
    if state not in STATE_NAMES:
        raise _Bad(f"Status.State {state} is outside the documented states 0-7")
    raw_progress = _get(status, "Progress")
    if raw_progress is _MISSING or raw_progress is None:
        return state, None
    if isinstance(raw_progress, bool) or not isinstance(raw_progress, int | float):
        raise _Bad(f"Status.Progress {raw_progress!r} is not a number")
    if isinstance(raw_progress, float) and not raw_progress.is_integer():
        raise _Bad(f"Status.Progress {raw_progress!r} is not a whole number")
    progress = int(raw_progress)
    if not -(2**31) <= progress < 2**31:
        raise _Bad(f"Status.Progress {progress} does not fit a 32-bit integer")
    return state, progress


def _entities(related: Any, kind: str) -> tuple[Entity, ...]:
    items = _get(related, kind) if isinstance(related, dict) else None
    if items is _MISSING or not items:
        return ()
    if not isinstance(items, list):
        raise _Bad(f"RelatedEntities.{kind} must be a list, got {type(items).__name__}")
    found: dict[str, str | None] = {}
    for item in items:
        if not isinstance(item, dict):
            raise _Bad(f"RelatedEntities.{kind} holds a {type(item).__name__}, not an object")
        identifier = _get(item, "identifier")
        if identifier is _MISSING or identifier in (None, ""):
            raise _Bad(f"an entry of RelatedEntities.{kind} has no identifier")
        if not isinstance(identifier, str):
            raise _Bad(f"RelatedEntities.{kind} identifier {identifier!r} is not text")
        if len(identifier) > IDENTIFIER_MAX:
            raise _Bad(
                f"a RelatedEntities.{kind} identifier is {len(identifier)} characters long; "
                f"at most {IDENTIFIER_MAX} are kept"
            )
        href = _get(item, "href")
        found.setdefault(identifier, href if isinstance(href, str) else None)
    return tuple(found.items())


def source_date(value: object) -> tuple[datetime | None, int | None]:
    """A date field's value (``/Date(ms[±hhmm])/`` or ISO-8601) as (aware UTC, the UTC
    offset written in it); (None, None) for null, empty or before 1900 (.NET's unset
    ``DateTime.MinValue``). ValueError, with a reason, for anything else."""
    parsed = parse_zvm_date(value)
    if parsed is None or parsed.utc < _UNSET_BEFORE:
        return None, None
    return parsed.utc, parsed.offset_minutes


def _date(task: dict[str, Any], name: str) -> tuple[datetime | None, int | None]:
    value = _get(task, name)
    try:
        return source_date(None if value is _MISSING else value)
    except ValueError as exc:
        raise _Bad(f"{name}: {exc}") from None


def raw_text(raw: object) -> str:
    """A decoded record as compact JSON text, whatever it holds (what a rejected record
    keeps)."""
    try:
        return orjson.dumps(raw).decode()
    except TypeError:  # e.g. an integer beyond 64 bits, which orjson cannot write
        return json.dumps(raw, default=repr)


def normalize_task(raw: object) -> TaskRecord | Rejected:
    """One decoded task object → a TaskRecord, or a Rejected with the reason.

    Never raises for bad input: every problem becomes a Rejected.
    """
    if not isinstance(raw, dict):
        return Rejected(f"a task must be a JSON object, got {type(raw).__name__}", raw_text(raw))
    identifier: str | None = None
    try:
        identifier = _identifier(raw)
        if identifier is None:
            raise _Bad("no TaskIdentifier and no Link.identifier: the task cannot be keyed")
        if len(identifier) > IDENTIFIER_MAX:
            raise _Bad(
                f"TaskIdentifier is {len(identifier)} characters long; the warehouse keys "
                f"tasks by at most {IDENTIFIER_MAX}"
            )
        task_type = _text(raw, "Type")
        if not task_type:
            raise _Bad("Type is missing or empty")
        if len(task_type) > TYPE_MAX:
            raise _Bad(f"Type is {len(task_type)} characters long; at most {TYPE_MAX} are kept")
        state, progress = _state(_get(raw, "Status"))
        started_at, started_offset = _date(raw, "Started")
        if started_at is None:
            raise _Bad("Started is missing, empty, or before 1900 (.NET's unset date)")
        completed_at, completed_offset = _date(raw, "Completed")
        cancellable = _get(raw, "IsCancellable")
        if cancellable is _MISSING:
            cancellable = None
        elif cancellable is not None and not isinstance(cancellable, bool):
            raise _Bad(f"IsCancellable {cancellable!r} is not true or false")
        link = _get(raw, "Link")
        href = _get(link, "href") if isinstance(link, dict) else None
        related = _get(raw, "RelatedEntities")
        if related is not _MISSING and related is not None and not isinstance(related, dict):
            raise _Bad(f"RelatedEntities must be an object, got {type(related).__name__}")
        payload_bytes = orjson.dumps(raw)
        if b"\\u0000" in payload_bytes:
            raise _Bad(
                "the record contains a NUL character (\\u0000), which PostgreSQL cannot store"
            )
    except _Bad as exc:
        return Rejected(str(exc), raw_text(raw), identifier)
    except TypeError as exc:  # orjson: something JSON cannot hold (only from hand-made input)
        return Rejected(f"the record cannot be stored as JSON: {exc}", raw_text(raw), identifier)
    task_id, dot, site = identifier.partition(".")
    try:
        vpgs, hosts, sites, flrs = (_entities(related, kind) for kind in ENTITY_KINDS)
    except _Bad as exc:
        return Rejected(str(exc), payload_bytes.decode(), identifier)
    return TaskRecord(
        task_identifier=identifier,
        task_id=task_id,
        site_identifier=site if dot and site else None,
        type=task_type,
        state=state,
        progress=progress,
        initiated_by=optional_text(raw, "InitiatedBy"),
        complete_reason=optional_text(raw, "CompleteReason"),
        is_cancellable=cancellable,
        started_at=started_at,
        completed_at=completed_at,
        started_utc_offset_minutes=started_offset,
        completed_utc_offset_minutes=completed_offset if completed_at is not None else None,
        duration_seconds=(
            (completed_at - started_at).total_seconds() if completed_at is not None else None
        ),
        link_href=href if isinstance(href, str) else None,
        payload=payload_bytes,
        payload_hash=hashlib.sha256(payload_bytes).hexdigest(),
        vpgs=vpgs,
        hosts=hosts,
        sites=sites,
        flr_sessions=flrs,
    )


def optional_text(raw: dict[str, Any], name: str) -> str | None:
    """``raw[name]`` (key matched case-insensitively) as text: None when absent or null, a
    number or boolean written out."""
    value = _get(raw, name)
    if value is _MISSING or value is None:
        return None
    return value if isinstance(value, str) else str(value)


def normalize_tasks(items: Iterable[object]) -> tuple[list[TaskRecord], list[Rejected]]:
    """Normalize a batch; a record seen twice keeps its last version (the ZVM's newest)."""
    records: dict[str, TaskRecord] = {}
    rejected: list[Rejected] = []
    for item in items:
        result = normalize_task(item)
        if isinstance(result, TaskRecord):
            records.pop(result.task_identifier, None)
            records[result.task_identifier] = result
        else:
            rejected.append(result)
    return list(records.values()), rejected
