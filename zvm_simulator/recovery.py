"""The simulated ZVM's Recovery Report (``GET /v1/reports/recovery``), made from its tasks.

Every FailOverTest, FailOver and Move task that names a VPG has one recovery operation,
which the report lists once the task has completed (and drops with the task when it is
purged). The operation agrees with its task:

- ``StartTime`` is the task's ``Started``, ``EndTime`` its ``Completed``; ``InitiatedBy``
  is the task's; ``Status`` is ``Success`` for a Completed task, ``Fail`` for a Failed or
  Stopped one;
- ``VpgName`` is the name the task's first VPG had when the task started (a VPG renamed
  since keeps its old name in old operations), ``VpgIdentifier`` is that VPG's identifier
  (written only by a ZVM in the 10.x style, ``include_task_identifier`` off: whether older
  versions write it is not documented, and without it a reader must match the name);
  ``ProtectedSiteName``/``RecoverySiteName`` are the VPG listing's;
- ``RTOInSeconds`` is the time the task spent InProgress, in whole seconds: its duration
  without the wait for a commit, a pause or the cancelling (:attr:`Lifecycle.in_progress_ms`);
  ``PointInTime`` is a checkpoint 5 s to 5 min before the start;
- ``RecoverySettings.Steps`` are the steps of the recovery type, their execution times
  adding up to the RTO; a failed operation ends at the step that failed.

The entry has the 10.0 U6 OpenAPI shape (``RecoveryOperationIdentifier``, ``General``,
``RecoverySettings``: see ``docs/zvm-api.md``), in the ZVM's key case and date style. Where
the document leaves a format open, the Windows style writes ``RTOInSeconds`` as a number and
``ExecutionTime`` as a .NET time span (``00:02:05``), the appliance style both as strings of
seconds (``"125"``).

Query parameters (names case-insensitive, unknown ones ignored): ``startTime`` and
``endTime`` bound the operation's start, inclusive, in the formats of the task filters;
``vpgName`` (names separated by commas, any case), ``recoveryType`` (``Failover``,
``FailoverTest`` or ``Failover Test``, ``Move``), ``state`` (``Success`` or ``Fail``);
``pageNumber`` (from 1) and ``pageSize`` (default and most: 1000, a larger value is served
as 1000). Operations come in order of start, then identifier. A value the ZVM cannot read
is a :class:`~zvm_simulator.filters.FilterError` (a 400 answer). The ``recovery_*`` fault
knobs of :class:`~zvm_simulator.settings.Faults` make the report ignore some parameters or
serve malformed operations.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from zvm_simulator.catalog import State
from zvm_simulator.filters import TICKS_PER_MS, FilterError, parse_filter_date
from zvm_simulator.inventory import Inventory
from zvm_simulator.lifecycle import MAX_DURATION_MS
from zvm_simulator.scenario import Scenario, TaskSpec

__all__ = [
    "MALFORMED_OPERATION_KINDS",
    "MAX_PAGE_SIZE",
    "RECOVERY_TYPES",
    "Operation",
    "RecoveryQuery",
    "RecoveryReport",
    "Step",
    "parse_recovery_query",
]

RECOVERY_TYPES = {"failovertest": "FailoverTest", "failover": "Failover", "move": "Move"}
"""Task types (lower-cased) that make a recovery operation, with the report's type."""

MAX_PAGE_SIZE = 1000
"""The most operations one page holds (the documented maximum), and the default."""

MALFORMED_OPERATION_KINDS = ("bad_start", "bad_rto", "bad_step")
"""How a malformed operation is broken, in rotation: ``StartTime`` not a date,
``RTOInSeconds`` not a number, a step that is not an object."""

_STEPS = {
    "FailoverTest": (
        "Prepare the test network",
        "Create the recovery VMs",
        "Attach the journal volumes",
        "Power on the recovery VMs",
        "Run the post-recovery scripts",
    ),
    "Failover": (
        "Shut down the protected VMs",
        "Promote the journal",
        "Create the recovery VMs",
        "Power on the recovery VMs",
        "Configure reverse protection",
    ),
    "Move": (
        "Shut down the protected VMs",
        "Take the last checkpoint",
        "Create the recovery VMs",
        "Power on the recovery VMs",
        "Commit the move",
    ),
}
_TEST_NOTES = (
    "Quarterly DR test: application owners checked logins on the recovered VMs.",
    "Test OK; database consistency checked.",
    "",
    None,
    "Annual audit test, change ticket CHG-2231.",
    "Recovered VMs reachable from the isolated test network.",
)
_FAIL_NOTES = ("Recovery VMs did not boot; see the ZVM logs.", "Aborted by the operator.", None)


@dataclass(frozen=True)
class Step:
    """One step of an operation: offsets in ms from the operation's start."""

    description: str
    result: str
    start_offset_ms: int
    end_offset_ms: int

    @property
    def execution_seconds(self) -> int:
        return (self.end_offset_ms - self.start_offset_ms) // 1000


@dataclass(frozen=True)
class Operation:
    """One recovery operation of the report, as the ZVM describes it now."""

    identifier: str
    task_identifier: str
    vpg_identifier: str
    vpg_name: str
    recovery_type: str
    protected_site_name: str
    recovery_site_name: str
    started_ms: int
    ended_ms: int
    point_in_time_ms: int
    rto_seconds: int
    status: str
    initiated_by: str
    notes: str | None
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class RecoveryQuery:
    """Parsed report parameters: start bounds in 100 ns ticks, lower-cased VPG names, the
    report's recovery type, ``success``/``fail``; None means no such filter."""

    start_after: int | None = None
    start_before: int | None = None
    vpg_names: frozenset[str] | None = None
    recovery_type: str | None = None
    state: str | None = None
    page_number: int = 1
    page_size: int = MAX_PAGE_SIZE


def parse_recovery_query(
    params: Mapping[str, str], *, utc_offset_minutes: int, ignored: Collection[str] = ()
) -> RecoveryQuery:
    """Read the report's parameters (names lower-cased), leaving out the ``ignored`` ones
    (lower-cased names) as a ZVM that does not know them would. FilterError for a value it
    cannot read."""
    offset = utc_offset_minutes
    values = {
        name: value.strip()
        for name, value in params.items()
        if value.strip() and name not in ignored
    }
    bounds: dict[str, int] = {}
    for name in ("starttime", "endtime"):
        if name in values:
            try:
                bounds[name] = parse_filter_date(values[name], utc_offset_minutes=offset)
            except ValueError:
                raise FilterError(_invalid(values[name], name)) from None
    names = None
    if "vpgname" in values:
        names = frozenset(n.strip().lower() for n in values["vpgname"].split(",") if n.strip())
    recovery_type = None
    if "recoverytype" in values:
        key = values["recoverytype"].replace(" ", "").lower()
        if key not in RECOVERY_TYPES:
            raise FilterError(_invalid(values["recoverytype"], "recoveryType"))
        recovery_type = RECOVERY_TYPES[key]
    state = None
    if "state" in values:
        state = values["state"].lower()
        if state not in ("success", "fail"):
            raise FilterError(_invalid(values["state"], "state"))
    page_number = _positive(values, "pagenumber", "pageNumber", 1)
    page_size = min(_positive(values, "pagesize", "pageSize", MAX_PAGE_SIZE), MAX_PAGE_SIZE)
    return RecoveryQuery(
        start_after=bounds.get("starttime"),
        start_before=bounds.get("endtime"),
        vpg_names=names,
        recovery_type=recovery_type,
        state=state,
        page_number=page_number,
        page_size=page_size,
    )


def _positive(values: Mapping[str, str], key: str, name: str, default: int) -> int:
    if key not in values:
        return default
    text = values[key]
    if not text.isdigit() or int(text) < 1:
        raise FilterError(_invalid(text, name))
    return int(text)


def _invalid(value: str, name: str) -> str:
    return f"The value '{value}' is not valid for {name}."


def _draw(seed: int, identifier: str, person: bytes) -> int:
    digest = hashlib.blake2b(f"{seed}:{identifier}".encode(), digest_size=8, person=person)
    return int.from_bytes(digest.digest(), "big")


@dataclass
class _Amendment:
    notes: str | None
    status: str | None


class RecoveryReport:
    """The recovery operations of one simulated ZVM (see the module docstring).

    ``retention_ms``: operations vanish with their tasks, once completed that long ago.
    """

    def __init__(
        self, *, seed: int, scenario: Scenario, inventory: Inventory, retention_ms: int
    ) -> None:
        self.seed = seed
        self.scenario = scenario
        self.inventory = inventory
        self.retention_ms = retention_ms
        self._amended: dict[str, _Amendment] = {}
        self._lock = threading.Lock()

    def operations(self, now_ms: int, query: RecoveryQuery | None = None) -> list[Operation]:
        """Every operation matching ``query`` (all pages) as of ``now_ms``, in order."""
        query = query or RecoveryQuery()
        purged_before = now_ms - self.retention_ms
        lo = purged_before - MAX_DURATION_MS
        hi = now_ms
        if query.start_after is not None:
            lo = max(lo, -(-query.start_after // TICKS_PER_MS))
        if query.start_before is not None:
            hi = min(hi, query.start_before // TICKS_PER_MS)
        found = [
            operation
            for task in self.scenario.tasks_until(hi, generated_from_ms=lo)
            if lo <= task.started_ms <= hi
            and (operation := self._operation(task, now_ms, purged_before)) is not None
            and _matches(operation, query)
        ]
        found.sort(key=lambda operation: (operation.started_ms, operation.identifier))
        return found

    def page(self, now_ms: int, query: RecoveryQuery) -> list[Operation]:
        """The page ``query`` asks for."""
        first = (query.page_number - 1) * query.page_size
        return self.operations(now_ms, query)[first : first + query.page_size]

    def amend(self, identifier: str, *, notes: str | None, status: str | None = None) -> None:
        """From now on the operation shows these ``notes`` (and ``status``, when given)."""
        with self._lock:
            self._amended[identifier] = _Amendment(notes, status)

    # ---- one operation -------------------------------------------------------------------

    def _operation(self, task: TaskSpec, now_ms: int, purged_before: int) -> Operation | None:
        recovery_type = RECOVERY_TYPES.get(task.type.lower())
        completed = task.completed_ms
        entities = task.entities
        if recovery_type is None or completed is None or completed > now_ms:
            return None
        if completed < purged_before or entities is None or not entities.vpgs:
            return None
        vpg = entities.vpgs[0]
        facts = self.inventory.vpg_at(vpg, task.started_ms)
        if facts is None:
            return None
        name, protected, recovery = facts
        identifier = _uuid(_draw(self.seed, task.identifier, b"recovery"))
        number = _draw(self.seed, identifier, b"details")
        succeeded = task.lifecycle.final_state == State.COMPLETED
        rto_ms = task.lifecycle.in_progress_ms
        notes = _pick(_TEST_NOTES if recovery_type == "FailoverTest" else (None,), number)
        if not succeeded:
            notes = _pick(_FAIL_NOTES, number)
        operation = Operation(
            identifier=identifier,
            task_identifier=task.identifier,
            vpg_identifier=vpg,
            vpg_name=name,
            recovery_type=recovery_type,
            protected_site_name=protected,
            recovery_site_name=recovery,
            started_ms=task.started_ms,
            ended_ms=completed,
            point_in_time_ms=task.started_ms - 5_000 - (number >> 8) % 295_000,
            rto_seconds=round(rto_ms / 1000),
            status="Success" if succeeded else "Fail",
            initiated_by=task.initiated_by,
            notes=notes,
            steps=_steps(recovery_type, rto_ms, succeeded, number),
        )
        with self._lock:
            amendment = self._amended.get(identifier)
        if amendment is not None:
            operation = replace(
                operation, notes=amendment.notes, status=amendment.status or operation.status
            )
        return operation

    # ---- rendering -----------------------------------------------------------------------

    def entry(
        self,
        operation: Operation,
        *,
        date_text: Callable[[int], str],
        windows: bool,
        with_vpg_identifier: bool,
        malformed_rate: float = 0.0,
    ) -> dict[str, Any]:
        """The operation as the report writes it (a PascalCase dict, dates as text)."""
        general: dict[str, Any] = {}
        if with_vpg_identifier:
            general["VpgIdentifier"] = operation.vpg_identifier
        general |= {
            "VpgName": operation.vpg_name,
            "RecoveryType": operation.recovery_type,
            "ProtectedSiteName": operation.protected_site_name,
            "RecoverySiteName": operation.recovery_site_name,
            "StartTime": date_text(operation.started_ms),
            "EndTime": date_text(operation.ended_ms),
            "PointInTime": date_text(operation.point_in_time_ms),
            "RTOInSeconds": operation.rto_seconds if windows else str(operation.rto_seconds),
            "Status": operation.status,
            "InitiatedBy": operation.initiated_by,
            "Notes": operation.notes,
        }
        steps: list[Any] = [
            {
                "Description": step.description,
                "Result": step.result,
                "StartTime": date_text(operation.started_ms + step.start_offset_ms),
                "EndTime": date_text(operation.started_ms + step.end_offset_ms),
                "ExecutionTime": (
                    _time_span(step.execution_seconds) if windows else str(step.execution_seconds)
                ),
            }
            for step in operation.steps
        ]
        entry = {
            "RecoveryOperationIdentifier": operation.identifier,
            "General": general,
            "RecoverySettings": {
                "Vpg": {
                    "DefaultHostName": None,
                    "DefaultDatastoreName": "vsanDatastore",
                    "DefaultNetworkName": "VM Network",
                },
                "Vms": [],
                "Steps": steps,
            },
        }
        kind = self.malformed_kind(operation.identifier, malformed_rate)
        if kind == "bad_start":
            general["StartTime"] = "yesterday"
        elif kind == "bad_rto":
            general["RTOInSeconds"] = "n/a"
        elif kind == "bad_step":
            steps.append("Power on the recovery VMs")
        return entry

    def malformed_kind(self, identifier: str, rate: float) -> str | None:
        """How the operation is served broken at ``malformed_rate`` ``rate``, or None. A
        function of the seed and the identifier: stable across requests, and an operation
        malformed at some rate stays malformed (the same way) at any higher rate."""
        if rate <= 0:
            return None
        number = _draw(self.seed, identifier, b"malformd")
        if (number >> 11) / float(1 << 53) >= rate:
            return None
        return MALFORMED_OPERATION_KINDS[number % len(MALFORMED_OPERATION_KINDS)]


def _matches(operation: Operation, query: RecoveryQuery) -> bool:
    if query.vpg_names is not None and operation.vpg_name.lower() not in query.vpg_names:
        return False
    if query.recovery_type is not None and operation.recovery_type != query.recovery_type:
        return False
    return query.state is None or operation.status.lower() == query.state


def _steps(recovery_type: str, rto_ms: int, succeeded: bool, number: int) -> tuple[Step, ...]:
    """The steps, their lengths in whole seconds adding up to the RTO's; a failed operation
    stops at a step that failed."""
    names = _STEPS[recovery_type]
    count = len(names) if succeeded else 1 + number % len(names)
    total = round(rto_ms / 1000)
    weights = [1 + (number >> (4 * i)) % 7 for i in range(count)]
    lengths = [total * w // sum(weights) for w in weights]
    lengths[-1] += total - sum(lengths)
    steps: list[Step] = []
    at = 0
    for index, (name, length) in enumerate(zip(names[:count], lengths, strict=True)):
        last_failed = not succeeded and index == count - 1
        steps.append(Step(name, "Failed" if last_failed else "Success", at, at + length * 1000))
        at += length * 1000
    return tuple(steps)


def _time_span(seconds: int) -> str:
    """A .NET ``TimeSpan`` as it prints: ``hh:mm:ss``, ``d.hh:mm:ss`` from a day on."""
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}.{text}" if days else text


def _pick(items: tuple[str | None, ...], number: int) -> str | None:
    return items[(number >> 16) % len(items)]


def _uuid(number: int) -> str:
    value = (number << 64 | (number * 0x9E3779B97F4A7C15) & (2**64 - 1)) & (2**128 - 1)
    value = (value & ~((0xF << 76) | (0x3 << 62))) | (0x4 << 76) | (0x2 << 62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
