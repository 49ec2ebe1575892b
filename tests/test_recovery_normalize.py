"""normalize_recovery_operation: Recovery Report entries in both ZVM shapes in, a
RecoveryOperation (with its steps) or a RejectedOperation with a reason out."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from etl.recovery import (
    RecoveryOperation,
    RejectedOperation,
    hashed_identifier,
    normalize_recovery_operation,
    normalize_recovery_operations,
    parse_seconds,
)
from tests.syncing import start_sim

OPERATION = "55d10195-842c-419d-b4db-b5e8c0d0ade1"
VPG = "d6fee783-491a-437d-9e71-bf74c9647e03"


def appliance_entry() -> dict[str, Any]:
    """An entry in the 10.0 U6 document's shape (camelCase, ISO dates, strings)."""
    return {
        "recoveryOperationIdentifier": OPERATION,
        "general": {
            "vpgIdentifier": VPG,
            "vpgName": "Finance 02",
            "recoveryType": "FailoverTest",
            "protectedSiteName": "Frankfurt",
            "recoverySiteName": "Dublin DR",
            "startTime": "2026-12-02T11:42:58.814+03:00",
            "endTime": "2026-12-02T11:49:13.521+03:00",
            "pointInTime": "2026-12-02T11:39:58.335+03:00",
            "rtoInSeconds": "375",
            "status": "Success",
            "initiatedBy": "ZertoAccount",
            "notes": "Quarterly test",
        },
        "recoverySettings": {
            "vpg": {"defaultHostName": None},
            "vms": [],
            "steps": [
                {
                    "description": "Create the recovery VMs",
                    "result": "Success",
                    "startTime": "2026-12-02T08:42:58.814Z",
                    "endTime": "2026-12-02T08:46:58.814Z",
                    "executionTime": "240",
                },
                {
                    "description": "Power on the recovery VMs",
                    "result": "Success",
                    "startTime": "2026-12-02T08:46:58.814Z",
                    "endTime": "2026-12-02T08:49:13.814Z",
                    "executionTime": "135",
                },
            ],
        },
    }


def windows_entry() -> dict[str, Any]:
    """The same operation as a Windows ZVM writes it (PascalCase, /Date()/, a time span)."""
    return {
        "RecoveryOperationIdentifier": OPERATION,
        "General": {
            "VpgName": "Finance 02",
            "RecoveryType": "Failover Test",
            "ProtectedSiteName": "Frankfurt",
            "RecoverySiteName": "Dublin DR",
            "StartTime": "/Date(1796200978814+0300)/",
            "EndTime": "/Date(1796201353521+0300)/",
            "PointInTime": "/Date(1796200798335+0300)/",
            "RTOInSeconds": 375,
            "Status": "Success",
            "InitiatedBy": "ZertoAccount",
            "Notes": "Quarterly test",
        },
        "RecoverySettings": {
            "Steps": [
                {
                    "Description": "Create the recovery VMs",
                    "Result": "Success",
                    "ExecutionTime": "00:04:00",
                },
                {
                    "Description": "Power on the recovery VMs",
                    "Result": "Success",
                    "ExecutionTime": "00:02:15.5",
                },
            ]
        },
    }


def normalized(raw: object, zvm: str = "nyc") -> RecoveryOperation:
    result = normalize_recovery_operation(raw, zvm=zvm)
    assert isinstance(result, RecoveryOperation), result
    return result


def rejected(raw: object) -> RejectedOperation:
    result = normalize_recovery_operation(raw, zvm="nyc")
    assert isinstance(result, RejectedOperation), result
    return result


def test_the_appliance_shape() -> None:
    op = normalized(appliance_entry())
    assert op.operation_identifier == OPERATION and op.vpg_identifier == VPG
    assert (op.vpg_name, op.recovery_type, op.status) == ("Finance 02", "FailoverTest", "Success")
    assert (op.protected_site_name, op.recovery_site_name) == ("Frankfurt", "Dublin DR")
    assert op.started_at == datetime(2026, 12, 2, 8, 42, 58, 814000, tzinfo=UTC)
    assert op.ended_at == datetime(2026, 12, 2, 8, 49, 13, 521000, tzinfo=UTC)
    assert op.point_in_time == datetime(2026, 12, 2, 8, 39, 58, 335000, tzinfo=UTC)
    assert op.rto_seconds == 375.0 and op.initiated_by == "ZertoAccount"
    assert op.notes == "Quarterly test"
    first, second = op.steps
    assert (first.number, first.description, first.result) == (
        1,
        "Create the recovery VMs",
        "Success",
    )
    assert first.execution_seconds == 240 and second.execution_seconds == 135
    assert first.started_at == op.started_at and second.ended_at is not None
    assert op.payload.startswith(b'{"recoveryOperationIdentifier"') and len(op.payload_hash) == 64


def test_the_windows_shape_reads_the_same() -> None:
    windows, appliance = normalized(windows_entry()), normalized(appliance_entry())
    for name in (
        "operation_identifier",
        "vpg_name",
        "recovery_type",
        "started_at",
        "ended_at",
        "point_in_time",
        "rto_seconds",
        "status",
        "initiated_by",
        "notes",
    ):
        assert getattr(windows, name) == getattr(appliance, name), name
    assert windows.vpg_identifier is None  # not given: the load matches the name
    assert [s.execution_seconds for s in windows.steps] == [240.0, 135.5]
    assert windows.steps[0].started_at is None


def test_a_flat_entry_with_steps_at_the_top() -> None:
    entry = windows_entry()
    flat = entry.pop("General") | {"RecoveryOperationIdentifier": OPERATION}
    flat["Steps"] = entry["RecoverySettings"]["Steps"]
    op = normalized(flat)
    assert op.rto_seconds == 375 and len(op.steps) == 2 and op.recovery_type == "FailoverTest"


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("failover", "Failover"),
        ("MOVE", "Move"),
        ("Failover_Test", "FailoverTest"),
        ("Clone", "Clone"),
        ("", None),
    ],
)
def test_recovery_types_are_given_their_documented_spelling(written: str, kept: str | None) -> None:
    entry = appliance_entry()
    entry["general"]["recoveryType"] = written
    assert normalized(entry).recovery_type == kept


def test_an_entry_without_identifier_is_keyed_by_a_stable_hash() -> None:
    entry = windows_entry()
    del entry["RecoveryOperationIdentifier"]
    op = normalized(entry)
    start = datetime(2026, 12, 2, 8, 42, 58, 814000, tzinfo=UTC)
    assert op.operation_identifier == hashed_identifier("nyc", "Finance 02", "FailoverTest", start)
    assert op.operation_identifier.startswith("sha256:") and len(op.operation_identifier) == 71
    assert normalized(copy.deepcopy(entry)).operation_identifier == op.operation_identifier
    assert normalized(entry, zvm="lon").operation_identifier != op.operation_identifier
    moved = copy.deepcopy(entry)
    moved["General"]["StartTime"] = "/Date(1796200978815)/"
    assert normalized(moved).operation_identifier != op.operation_identifier


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    entry = windows_entry()
    target: Any = entry
    for name in path[:-1]:
        target = target[name]
    del target[path[-1]]
    return entry


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    entry = windows_entry()
    target: Any = entry
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    return entry


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ([1, 2], "must be a JSON object, got list"),
        (_without(("General", "StartTime")), "StartTime is missing"),
        (_with(("General", "StartTime"), "yesterday"), "StartTime: unrecognised date"),
        (_with(("General", "EndTime"), "/Date(x)/"), "EndTime: unrecognised date"),
        (_with(("General", "RTOInSeconds"), "n/a"), "RTOInSeconds: 'n/a' is not a number"),
        (
            _with(("General", "RTOInSeconds"), -4),
            "RTOInSeconds: -4 is not a number of seconds of 0",
        ),
        (_with(("General", "RTOInSeconds"), True), "RTOInSeconds: True is not a number"),
        (_with(("General",), "text"), "General must be an object, got str"),
        (_with(("RecoverySettings", "Steps"), {}), "Steps must be a list, got dict"),
        (_with(("RecoverySettings", "Steps", 1), "Power on"), "step 2: a step must be an object"),
        (
            _with(("RecoverySettings", "Steps", 0, "ExecutionTime"), "four minutes"),
            "step 1: ExecutionTime: 'four minutes' is not seconds or a time span",
        ),
        (_with(("RecoverySettings", "Steps", 0, "ExecutionTime"), "00:61:00"), "go to 59"),
        (_with(("RecoveryOperationIdentifier",), "x" * 300), "at most 255"),
        (_with(("RecoveryOperationIdentifier",), 17), "must be text, got int"),
        (_with(("General", "VpgIdentifier"), "v" * 256), "VpgIdentifier is longer than 255"),
        (_with(("General", "Notes"), "a\u0000b"), "NUL character"),
    ],
)
def test_a_malformed_entry_is_rejected_with_a_reason(entry: Any, reason: str) -> None:
    bad = rejected(entry)
    assert reason in bad.reason
    assert bad.raw.startswith("[" if isinstance(entry, list) else "{")
    if isinstance(entry, dict) and isinstance(entry.get("RecoveryOperationIdentifier"), str):
        expected = entry["RecoveryOperationIdentifier"]
        assert bad.operation_identifier == (expected if len(expected) <= 255 else None)


@pytest.mark.parametrize(
    ("value", "spans", "seconds"),
    [
        (125, False, 125.0),
        ("125", False, 125.0),
        (" 12.5 ", False, 12.5),
        ("", False, None),
        (None, False, None),
        ("00:02:05", True, 125.0),
        ("1.02:03:04.5", True, 93784.5),
        ("2:03:04", True, 7384.0),
    ],
)
def test_seconds_and_time_spans(value: object, spans: bool, seconds: float | None) -> None:
    assert parse_seconds(value, spans=spans) == seconds


@pytest.mark.parametrize("value", ["00:02:05", "1e400", "-1", float("nan"), [], "twelve"])
def test_values_that_are_not_seconds(value: object) -> None:
    with pytest.raises(ValueError):
        parse_seconds(value)


def test_an_operation_listed_twice_keeps_its_last_version_and_bad_ones_are_kept() -> None:
    first, second = windows_entry(), windows_entry()
    second["General"]["Notes"] = "second look"
    operations, bad = normalize_recovery_operations([first, "junk", second], zvm="nyc")
    assert [op.notes for op in operations] == ["second look"]
    assert [b.raw for b in bad] == ['"junk"']


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {
            "auth": "keycloak",
            "date_style": "appliance",
            "key_case": "camel",
            "include_task_identifier": False,
        },
    ],
)
def test_every_entry_the_simulator_serves_normalizes(settings: dict[str, Any]) -> None:
    sim = start_sim(**settings)
    try:
        entries = sim.recovery_operations()
        assert entries
        for entry in entries:
            op = normalized(entry)
            assert op.rto_seconds is not None and op.ended_at is not None
            assert op.ended_at - op.started_at >= timedelta(seconds=op.rto_seconds - 1)
            assert sum(s.execution_seconds or 0 for s in op.steps) == op.rto_seconds
            assert (op.vpg_identifier is None) == (not settings)
        sim.faults.malformed_recovery_rate = 0.3
        results = [normalize_recovery_operation(e, zvm="sim") for e in sim.recovery_operations()]
        reasons = {r.reason.split(":")[0] for r in results if isinstance(r, RejectedOperation)}
        assert {"StartTime", "RTOInSeconds"} <= reasons
        assert any(reason.startswith("step ") for reason in reasons)
    finally:
        sim.stop()
