"""normalize_task: real ZVM shapes in, TaskRecord or a Rejected with a reason out."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.normalize import Rejected, TaskRecord, normalize_task, normalize_tasks

TASK_ID = "0c66b743-01d3-42c5-844b-bf5d4283ddb1.6b5b30d6-c090-4233-8466-5fe18bf39a4c"


def zerto_example() -> dict[str, Any]:
    """The task from Zerto's 7.0 help, as a Windows ZVM sends it."""
    return {
        "CompleteReason": "",
        "Completed": "/Date(1520423877045)/",
        "InitiatedBy": "Administrator",
        "IsCancellable": False,
        "Link": {
            "href": f"https://172.20.99.9:9669/v1/tasks/{TASK_ID}",
            "identifier": TASK_ID,
            "rel": None,
            "type": "TaskApi",
        },
        "RelatedEntities": {
            "Hosts": [],
            "Sites": [
                {
                    "href": "https://h/v1/localsite",
                    "identifier": "736cfa4b",
                    "rel": None,
                    "type": "LocalSiteApi",
                }
            ],
            "Vpgs": [
                {
                    "href": "https://h/v1/vpgs/b797",
                    "identifier": "b797",
                    "rel": None,
                    "type": "VpgApi",
                }
            ],
            "FlrSessions": [
                {
                    "href": "https://h/v1/flrs/e35f",
                    "identifier": "e35f",
                    "rel": None,
                    "type": "FlrSessionInformationApi",
                }
            ],
        },
        "Started": "/Date(1520423876840+0300)/",
        "Status": {"Progress": 100, "State": 6},
        "TaskIdentifier": TASK_ID,
        "Type": "FlrJournalUnmount",
    }


def record(raw: Any) -> TaskRecord:
    result = normalize_task(raw)
    assert isinstance(result, TaskRecord), result
    return result


def rejected(raw: Any) -> Rejected:
    result = normalize_task(raw)
    assert isinstance(result, Rejected), result
    return result


def test_zerto_documented_example() -> None:
    task = record(zerto_example())
    assert task.task_identifier == TASK_ID
    assert task.task_id == "0c66b743-01d3-42c5-844b-bf5d4283ddb1"
    assert task.site_identifier == "6b5b30d6-c090-4233-8466-5fe18bf39a4c"
    assert task.type == "FlrJournalUnmount"
    assert (task.state, task.progress, task.is_final) == (6, 100, True)
    assert task.started_at == datetime(2018, 3, 7, 11, 57, 56, 840000, tzinfo=UTC)
    assert task.completed_at == datetime(2018, 3, 7, 11, 57, 57, 45000, tzinfo=UTC)
    assert (task.started_utc_offset_minutes, task.completed_utc_offset_minutes) == (180, None)
    assert task.duration_seconds == pytest.approx(0.205)
    assert task.complete_reason == "" and task.initiated_by == "Administrator"
    assert task.is_cancellable is False
    assert task.vpgs == (("b797", "https://h/v1/vpgs/b797"),)
    assert task.hosts == ()
    assert task.sites == (("736cfa4b", "https://h/v1/localsite"),)
    assert task.flr_sessions == (("e35f", "https://h/v1/flrs/e35f"),)
    assert orjson.loads(task.payload) == zerto_example()


def test_running_task_has_no_completion() -> None:
    raw = zerto_example() | {
        "Completed": None,
        "CompleteReason": None,
        "Status": {"Progress": 79, "State": 1},
    }
    task = record(raw)
    assert task.completed_at is None and task.duration_seconds is None and not task.is_final


@pytest.mark.parametrize("completed", ["", "/Date(-62135596800000)/"])
def test_empty_or_dotnet_min_value_completed_means_not_completed(completed: str) -> None:
    assert record(zerto_example() | {"Completed": completed}).completed_at is None


def test_camel_case_appliance_record_without_task_identifier() -> None:
    def camel(value: Any) -> Any:
        if isinstance(value, dict):
            return {k[0].lower() + k[1:]: camel(v) for k, v in value.items()}
        if isinstance(value, list):
            return [camel(v) for v in value]
        return value

    raw = camel(zerto_example())
    del raw["taskIdentifier"]
    raw["started"] = "2018-03-07T14:57:56.840+03:00"
    task = record(raw)
    assert task.task_identifier == TASK_ID
    assert task.started_at == datetime(2018, 3, 7, 11, 57, 56, 840000, tzinfo=UTC)
    assert task.started_utc_offset_minutes == 180
    assert task.vpgs == (("b797", "https://h/v1/vpgs/b797"),)


def test_colon_separator_becomes_dot() -> None:
    raw = zerto_example() | {"TaskIdentifier": TASK_ID.replace(".", ":")}
    assert record(raw).task_identifier == TASK_ID


def test_state_by_name() -> None:
    assert (
        record(zerto_example() | {"Status": {"Progress": 5, "State": "WaitingForUserInput"}}).state
        == 2
    )


@pytest.mark.parametrize("related", [None, {}, {"Vpgs": None}, {"Vpgs": [], "Hosts": None}])
def test_missing_null_and_empty_entity_lists_mean_none(related: Any) -> None:
    task = record(zerto_example() | {"RelatedEntities": related})
    assert task.vpgs == task.hosts == task.sites == task.flr_sessions == ()


def test_missing_related_entities_key() -> None:
    raw = zerto_example()
    del raw["RelatedEntities"]
    assert record(raw).vpgs == ()


def test_duplicate_entities_collapse() -> None:
    raw = zerto_example()
    raw["RelatedEntities"]["Vpgs"] *= 2
    assert len(record(raw).vpgs) == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"TaskIdentifier": None, "Link": {"href": "x"}},
            "no TaskIdentifier and no Link.identifier",
        ),
        (
            {"Status": {"State": 9, "Progress": 0}},
            "Status.State 9 is outside the documented states",
        ),
        ({"Status": {"State": -1}}, "outside the documented states"),
        ({"Status": {"State": "Exploded"}}, "is not a task state"),
        ({"Status": None}, "Status is missing"),
        ({"Status": {"State": 1, "Progress": "half"}}, "Status.Progress 'half' is not a number"),
        ({"Started": "/Date(abc)/"}, "Started: unrecognised date"),
        ({"Started": None}, "Started is missing"),
        ({"Completed": "yesterday"}, "Completed: unrecognised date"),
        ({"Type": ""}, "Type is missing or empty"),
        ({"Type": 12}, "Type must be text"),
        ({"IsCancellable": "no"}, "IsCancellable 'no' is not true or false"),
        ({"RelatedEntities": {"Vpgs": "b797"}}, "RelatedEntities.Vpgs must be a list"),
        (
            {"RelatedEntities": {"Hosts": [{"href": "x"}]}},
            "RelatedEntities.Hosts has no identifier",
        ),
    ],
)
def test_bad_records_are_rejected_with_a_reason(change: dict[str, Any], reason: str) -> None:
    raw = zerto_example() | change
    result = rejected(raw)
    assert reason in result.reason
    assert orjson.loads(result.raw) == raw


def test_rejected_keeps_identifier_when_known() -> None:
    assert rejected(zerto_example() | {"Started": "bad"}).task_identifier == TASK_ID


@pytest.mark.parametrize("raw", [None, 42, "task", ["a"]])
def test_non_objects_are_rejected(raw: Any) -> None:
    assert "must be a JSON object" in rejected(raw).reason


def test_payload_hash_tracks_any_change() -> None:
    base = record(zerto_example())
    assert record(zerto_example()).payload_hash == base.payload_hash
    changed = zerto_example()
    changed["Status"]["Progress"] = 99
    assert record(changed).payload_hash != base.payload_hash


def test_normalize_tasks_splits_and_keeps_last_duplicate() -> None:
    newer = zerto_example()
    newer["Status"] = {"Progress": 100, "State": 4}
    records, bad = normalize_tasks([zerto_example(), {"Type": "x"}, newer])
    assert [r.state for r in records] == [4]
    assert len(bad) == 1


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from([*zerto_example(), "Extra"]), json_values))
def test_arbitrary_field_values_never_raise(overrides: dict[str, Any]) -> None:
    raw = copy.deepcopy(zerto_example()) | overrides
    result = normalize_task(raw)
    assert isinstance(result, TaskRecord | Rejected)
    if isinstance(result, Rejected):
        assert result.reason and json.loads(result.raw) == raw


@given(json_values)
def test_arbitrary_json_never_raises(raw: Any) -> None:
    assert isinstance(normalize_task(raw), TaskRecord | Rejected)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"TaskIdentifier": "x" * 300}, "TaskIdentifier is 300 characters long"),
        ({"Type": "T" * 129}, "Type is 129 characters long"),
        ({"InitiatedBy": "nul\u0000byte"}, "NUL character"),
        (
            {"RelatedEntities": {"Vpgs": [{"identifier": "v" * 256}]}},
            "Vpgs identifier is 256 characters",
        ),
        ({"Started": "/Date(-62135596800000)/"}, "Started is missing, empty, or before 1900"),
    ],
)
def test_values_the_warehouse_cannot_key_or_store_are_rejected(
    change: dict[str, Any], reason: str
) -> None:
    assert reason in rejected(zerto_example() | change).reason


def test_long_free_text_is_kept() -> None:
    task = record(zerto_example() | {"InitiatedBy": "u" * 5000, "CompleteReason": "r" * 10000})
    assert task.initiated_by is not None and len(task.initiated_by) == 5000


def test_lone_surrogates_are_rejected_not_fatal() -> None:
    raw = json.loads('{"TaskIdentifier": "a.b", "Type": "\\ud800", "Status": {"State": 1}}')
    raw["Started"] = "/Date(0)/"
    result = rejected(raw)
    assert "cannot be stored as JSON" in result.reason and json.loads(result.raw) == raw


@pytest.mark.parametrize(
    ("identifier", "link", "expected"),
    [
        ("  ", {"identifier": "t.s"}, "t.s"),  # a blank TaskIdentifier: Link.identifier
        ("t:s", None, "t.s"),
    ],
)
def test_blank_identifiers_fall_back_and_old_separators_are_read(
    identifier: str, link: dict[str, str] | None, expected: str
) -> None:
    raw = zerto_example() | {"TaskIdentifier": identifier, "Link": link}
    task = normalize_task(raw)
    assert isinstance(task, TaskRecord) and task.task_identifier == expected


@pytest.mark.parametrize("identifier", [".s", " . ", "   "])
def test_an_identifier_without_a_task_part_is_rejected(identifier: str) -> None:
    rejected = normalize_task(zerto_example() | {"TaskIdentifier": identifier, "Link": None})
    assert isinstance(rejected, Rejected)
    assert "task part" in rejected.reason or "cannot be keyed" in rejected.reason


def test_a_rejected_identifier_too_long_for_the_key_column_is_left_out() -> None:
    raw = zerto_example() | {"TaskIdentifier": "t" * 300 + ".s"}
    rejected = normalize_task(raw)
    assert isinstance(rejected, Rejected) and rejected.task_identifier is None
    assert "t" * 300 in rejected.raw
