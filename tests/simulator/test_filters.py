"""The six filters of the simulated ``GET /v1/tasks``: bounds, zones, formats, names, errors.

Expected answers are computed from ``Simulator.ground_truth()`` (what the unfiltered list
returns), with dates read by ``tests.simulator.wire_reading``. Clocks are frozen (speed 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.simulator.wire_reading import filter_value, read_date
from zvm_simulator import DOCUMENTED_TYPES, STATE_NAMES, Simulator, State
from zvm_simulator.filters import parse_filter_date

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EDGE = datetime(2025, 3, 1, 6, 0, 0, 500_000, tzinfo=UTC)  # injected tasks at EDGE-1ms..+1ms
MS = timedelta(milliseconds=1)
Task = dict[str, Any]


def ms_filter(moment: datetime) -> str:
    """A filter value in UTC with milliseconds (``…T06:00:00.500Z``), as newer ZVM docs allow;
    the ETL itself sends whole seconds (``format_filter_date``)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(seed=21, speed=0, start=START, days=1, tasks_per_hour=30) as simulator:
        for step in (-1, 0, 1):
            simulator.add_task(started=EDGE + step * MS, duration=timedelta(seconds=10))
        simulator.add_task(task_type="Move", started=START - timedelta(minutes=1), duration=None)
        yield simulator


@pytest.fixture(scope="module")
def client(sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url) as http:
        login = http.post("/v1/session/add", auth=("admin", "zerto"))
        http.headers["x-zerto-session"] = login.headers["x-zerto-session"]
        yield http


@pytest.fixture(scope="module")
def truth(sim: Simulator) -> list[Task]:
    return sim.ground_truth()


def get(client: httpx.Client, **params: str) -> list[Task]:
    response = client.get("/v1/tasks", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    tasks: list[Task] = response.json()
    return tasks


def started(task: Task) -> datetime:
    parsed = read_date(task["Started"])
    assert parsed is not None
    return parsed


def completed(task: Task) -> datetime | None:
    return read_date(task["Completed"])


def ids(tasks: list[Task]) -> list[str]:
    return [task["TaskIdentifier"] for task in tasks]


def where(truth: list[Task], keep: Callable[[Task], bool]) -> list[str]:
    return ids([task for task in truth if keep(task)])


def refused(client: httpx.Client, **params: str) -> str:
    response = client.get("/v1/tasks", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    message: str = response.json()["Message"]
    return message


# ---- basics --------------------------------------------------------------------------------


def test_no_filter_and_unknown_or_empty_parameters(client: httpx.Client, truth: list[Task]) -> None:
    assert len(truth) > 500
    assert get(client) == truth
    assert get(client, foo="bar", pageSize="10") == truth
    assert get(client, startedAfterDate="", type="") == truth


def test_everything_listed_has_started(truth: list[Task]) -> None:
    assert all(started(task) <= START for task in truth)
    assert all(started(task) >= START - timedelta(days=1) for task in truth[3:])
    assert [started(task) for task in truth] == sorted(started(task) for task in truth)


# ---- date bounds ---------------------------------------------------------------------------


def test_started_after_is_inclusive_to_the_millisecond(
    client: httpx.Client, truth: list[Task]
) -> None:
    result = ids(get(client, startedAfterDate=ms_filter(EDGE)))
    assert result == where(truth, lambda t: started(t) >= EDGE)
    edge = [t for t in truth if abs(started(t) - EDGE) <= MS]
    assert [started(t) - EDGE for t in edge if t["TaskIdentifier"] in result] == [timedelta(0), MS]


def test_started_before_is_inclusive_to_the_millisecond(
    client: httpx.Client, truth: list[Task]
) -> None:
    result = ids(get(client, startedBeforeDate=ms_filter(EDGE)))
    assert result == where(truth, lambda t: started(t) <= EDGE)
    edge = [t for t in truth if abs(started(t) - EDGE) <= MS]
    assert [started(t) - EDGE for t in edge if t["TaskIdentifier"] in result] == [-MS, timedelta(0)]


def test_equal_started_bounds_select_one_millisecond(client: httpx.Client) -> None:
    value = ms_filter(EDGE)
    result = get(client, startedAfterDate=value, startedBeforeDate=value)
    assert [started(task) for task in result] == [EDGE]


def test_sub_millisecond_bounds_compare_exactly(client: httpx.Client) -> None:
    # 06:00:00.5000001 is after the task started at 06:00:00.500: it is excluded.
    after = get(client, startedAfterDate="2025-03-01T06:00:00.5000001Z")
    assert EDGE not in [started(t) for t in after]
    assert EDGE + MS in [started(t) for t in after]
    before = get(client, startedBeforeDate="2025-03-01T06:00:00.5009999Z")
    assert max(started(t) for t in before) == EDGE


def test_completed_bounds_are_inclusive_and_exclude_running_tasks(
    client: httpx.Client, truth: list[Task]
) -> None:
    edge = EDGE + timedelta(seconds=10)
    value = ms_filter(edge)
    after = get(client, completedAfterDate=value)
    assert ids(after) == where(truth, lambda t: (c := completed(t)) is not None and c >= edge)
    before = get(client, completedBeforeDate=value)
    assert ids(before) == where(truth, lambda t: (c := completed(t)) is not None and c <= edge)
    assert edge in [completed(t) for t in after] and edge in [completed(t) for t in before]
    everything_done = get(client, completedBeforeDate="2100-01-01")
    running = [t for t in truth if t["Completed"] is None]
    assert running, "the scenario should have running tasks"
    assert len(everything_done) == len(truth) - len(running)
    assert all(task["Completed"] is not None for task in everything_done)


def test_completed_after_finds_long_tasks_that_started_long_before() -> None:
    with Simulator(seed=4, speed=0, start=START, days=0.5, tasks_per_hour=5) as local:
        long_one = local.add_task(
            started=START - timedelta(hours=11), duration=timedelta(hours=10, minutes=59)
        )
        with httpx.Client(base_url=local.url) as http:
            login = http.post("/v1/session/add", auth=("admin", "zerto"))
            http.headers["x-zerto-session"] = login.headers["x-zerto-session"]
            since = ms_filter(START - timedelta(minutes=2))
            found = http.get("/v1/tasks", params={"completedAfterDate": since}).json()
            assert long_one in ids(found)
            generated = [t for t in found if t["TaskIdentifier"] != long_one]
            assert all((completed(t) or START) >= START - timedelta(minutes=2) for t in generated)


# ---- formats and zones ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("2025-03-01T06:00Z", datetime(2025, 3, 1, 6, 0, tzinfo=UTC)),
        ("2025-03-01T06:00:00Z", datetime(2025, 3, 1, 6, 0, tzinfo=UTC)),
        ("2025-03-01T06:00:00.5Z", EDGE),
        ("2025-03-01T06:00:00.500z", EDGE),
        ("2025-03-01T06:00:00.5000000Z", EDGE),
        ("2025-03-01T09:00:00.5", EDGE),  # local time of the default zone, +03:00
        ("2025-03-01", datetime(2025, 2, 28, 21, 0, tzinfo=UTC)),  # local midnight
        ("2025-03-01T06:00:00.5+00:00", EDGE),
    ],
)
def test_date_formats(
    client: httpx.Client, truth: list[Task], value: str, moment: datetime
) -> None:
    assert ids(get(client, startedAfterDate=value)) == where(truth, lambda t: started(t) >= moment)


@pytest.mark.parametrize("offset", [330, -300])
def test_values_without_z_are_read_in_the_zvm_zone(offset: int) -> None:
    zone = timezone(timedelta(minutes=offset))
    with (
        Simulator(
            seed=8, speed=0, start=START, days=1, tasks_per_hour=30, utc_offset_minutes=offset
        ) as local,
        httpx.Client(base_url=local.url) as http,
    ):
        login = http.post("/v1/session/add", auth=("admin", "zerto"))
        http.headers["x-zerto-session"] = login.headers["x-zerto-session"]
        truth = local.ground_truth()
        cases = {
            "2025-03-01T03:00:00": datetime(2025, 3, 1, 3, 0, tzinfo=zone),
            "2025-03-01T03:00:00Z": datetime(2025, 3, 1, 3, 0, tzinfo=UTC),
            "2025-03-01": datetime(2025, 3, 1, tzinfo=zone),
            "2025-02-28T23:30": datetime(2025, 2, 28, 23, 30, tzinfo=zone),
        }
        for value, moment in cases.items():
            response = http.get("/v1/tasks", params={"startedAfterDate": value})
            expected = ids([task for task in truth if started(task) >= moment])
            assert ids(response.json()) == expected, value
            assert 0 < len(expected) < len(truth), value


# ---- names and values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["startedAfterDate", "startedafterdate", "STARTEDAFTERDATE", "StartedAfterDate"]
)
def test_filter_names_are_case_insensitive(
    client: httpx.Client, truth: list[Task], name: str
) -> None:
    result = client.get("/v1/tasks", params={name: ms_filter(EDGE)}).json()
    assert ids(result) == where(truth, lambda t: started(t) >= EDGE)


@pytest.mark.parametrize("value", ["FailOverTest", "failovertest", "FAILOVERTEST"])
def test_type_filter(client: httpx.Client, truth: list[Task], value: str) -> None:
    result = get(client, type=value)
    assert result and {task["Type"] for task in result} == {"FailOverTest"}
    assert ids(result) == where(truth, lambda t: t["Type"] == "FailOverTest")


@pytest.mark.parametrize(
    ("value", "state"),
    [("6", 6), ("Completed", 6), ("COMPLETED", 6), ("inprogress", 1), ("1", 1), ("4", 4)],
)
def test_status_filter(client: httpx.Client, truth: list[Task], value: str, state: int) -> None:
    result = get(client, status=value)
    assert result and {task["Status"]["State"] for task in result} == {state}
    assert ids(result) == where(truth, lambda t: t["Status"]["State"] == state)


def test_status_names_cover_the_enum(client: httpx.Client) -> None:
    for value, name in enumerate(STATE_NAMES):
        assert get(client, status=name) == get(client, status=str(value))


def test_combined_filters(client: httpx.Client, truth: list[Task]) -> None:
    since = START - timedelta(hours=12)
    result = get(
        client,
        startedafterdate=ms_filter(since),
        TYPE="insertTaggedCP",
        Status="completed",
    )
    expected = where(
        truth,
        lambda t: (
            started(t) >= since
            and t["Type"] == "InsertTaggedCP"
            and t["Status"]["State"] == State.COMPLETED
        ),
    )
    assert result and ids(result) == expected


# ---- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["startedBeforeDate", "startedAfterDate", "completedBeforeDate", "completedAfterDate"]
)
@pytest.mark.parametrize(
    "value",
    ["xyz", "2025-02-30", "2025-03-01T25:00", "2025/03/01", "2025-03-01T06:00:00.12345678Z", "1"],
)
def test_invalid_dates_are_refused(client: httpx.Client, name: str, value: str) -> None:
    assert (
        refused(client, **{name.lower(): value}) == f"The value '{value}' is not valid for {name}."
    )


@pytest.mark.parametrize("value", ["NoSuchType", "SyncVmsWithCloud", "Failover Test"])
def test_unknown_types_are_refused(client: httpx.Client, value: str) -> None:
    assert refused(client, type=value) == f"The value '{value}' is not valid for type."


@pytest.mark.parametrize("value", ["8", "-1", "Done", "In Progress", "1.0"])
def test_invalid_status_is_refused(client: httpx.Client, value: str) -> None:
    assert refused(client, status=value) == f"The value '{value}' is not valid for status."


def test_every_documented_type_is_accepted(client: httpx.Client) -> None:
    for name in DOCUMENTED_TYPES[::7]:
        assert client.get("/v1/tasks", params={"type": name}).status_code == 200


# ---- properties ----------------------------------------------------------------------------

_zones = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_moments = st.datetimes(
    min_value=datetime(2025, 2, 28, 10, 0),
    max_value=datetime(2025, 3, 1, 13, 0),
    timezones=_zones,
)


@settings(max_examples=25, deadline=None)
@given(moment=_moments)
def test_started_after_property(client: httpx.Client, truth: list[Task], moment: datetime) -> None:
    bound = moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)
    result = get(client, startedAfterDate=ms_filter(moment))
    assert ids(result) == where(truth, lambda t: started(t) >= bound)


@settings(max_examples=25, deadline=None)
@given(moment=_moments)
def test_whole_second_filters_as_the_etl_sends_them(
    client: httpx.Client, truth: list[Task], moment: datetime
) -> None:
    lower = moment.astimezone(UTC).replace(microsecond=0)
    after = get(client, startedAfterDate=filter_value(moment))
    assert ids(after) == where(truth, lambda t: started(t) >= lower)
    upper = datetime.fromisoformat(filter_value(moment, round_up=True))
    before = get(client, startedBeforeDate=filter_value(moment, round_up=True))
    assert ids(before) == where(truth, lambda t: started(t) <= upper)


@settings(max_examples=25, deadline=None)
@given(moment=_moments)
def test_started_before_in_local_time_property(
    client: httpx.Client, truth: list[Task], moment: datetime
) -> None:
    local = moment.astimezone(timezone(timedelta(hours=3))).replace(tzinfo=None)
    value = local.isoformat(timespec="microseconds")  # no Z: the ZVM's zone, +03:00
    result = get(client, startedBeforeDate=value)
    assert ids(result) == where(truth, lambda t: started(t) <= moment)


@settings(max_examples=300)
@given(
    moment=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31), timezones=_zones
    ),
    offset=st.integers(min_value=-14 * 60, max_value=14 * 60),
    digits=st.integers(min_value=0, max_value=7),
)
def test_filter_date_parsing_round_trip(moment: datetime, offset: int, digits: int) -> None:
    """A value written in the ZVM's zone (no suffix) or in UTC (Z) reads back exactly, to the
    precision written."""
    local = moment.astimezone(timezone(timedelta(minutes=offset))).replace(tzinfo=None)
    fraction = f"{local.microsecond:06d}0"[:digits]
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "")
    kept = int(fraction.ljust(7, "0")) if digits else 0
    exact = moment.astimezone(UTC).replace(microsecond=0)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    ticks = (exact - epoch) // timedelta(seconds=1) * 10_000_000 + kept
    assert parse_filter_date(text, utc_offset_minutes=offset) == ticks
    utc_text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{fraction}" if digits else ""
    )
    assert parse_filter_date(utc_text + "Z", utc_offset_minutes=offset) == ticks
