"""What the simulated ZVM serves: wire format, the generated scenario, lifecycles over time,
GET by id, the types endpoint, retention. Over real loopback HTTP; clocks frozen (speed 0)."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any, Literal

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.simulator.wire_reading import EPOCH, read_date
from tests.simulator.wire_reading import started as started
from zvm_simulator import (
    DOCUMENTED_TYPES,
    MAX_DURATION_MS,
    UNDOCUMENTED_TYPES,
    Phase,
    Simulator,
    State,
)
from zvm_simulator.catalog import CANCELLABLE_TYPES, TERMINAL_STATES
from zvm_simulator.lifecycle import draw_lifecycle
from zvm_simulator.scenario import Scenario
from zvm_simulator.wire import WireFormat

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
KEY_ORDER = [
    "CompleteReason",
    "Completed",
    "InitiatedBy",
    "IsCancellable",
    "Link",
    "RelatedEntities",
    "Started",
    "Status",
    "TaskIdentifier",
    "Type",
]
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
Task = dict[str, Any]


def make(**overrides: Any) -> Simulator:
    settings: dict[str, Any] = {"seed": 5, "speed": 0, "start": START, "days": 1}
    settings.update(overrides)
    return Simulator(**settings)


class Api:
    """A logged-in httpx client for one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.http = httpx.Client(base_url=sim.url)
        login = self.http.post("/v1/session/add", auth=("admin", "zerto"))
        self.http.headers["x-zerto-session"] = login.headers["x-zerto-session"]

    def raw(self, path: str = "/v1/tasks", **params: str) -> httpx.Response:
        return self.http.get(path, params=params)

    def tasks(self, **params: str) -> list[Task]:
        response = self.raw(**params)
        assert response.status_code == 200
        data: list[Task] = response.json()
        return data

    def task(self, identifier: str) -> httpx.Response:
        return self.http.get(f"/v1/tasks/{identifier}")

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.http.close()


@pytest.fixture
def connect() -> Iterator[Callable[[Simulator], Api]]:
    """Opens logged-in clients for the test; closes them afterwards."""
    opened: list[Api] = []

    def factory(sim: Simulator) -> Api:
        opened.append(Api(sim))
        return opened[-1]

    yield factory
    for api in opened:
        api.http.close()


@pytest.fixture(scope="module")
def week() -> Iterator[Api]:
    """A week of history at the default rate (about 3,400 tasks)."""
    with make(days=7) as sim, Api(sim) as api:
        yield api


# ---- wire format ---------------------------------------------------------------------------


def test_windows_dates_have_escaped_slashes_and_offsets(week: Api) -> None:
    response = week.raw()
    body = response.content
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert b'"/Date(' not in body
    dates = re.findall(rb'"\\/Date\((\d+)([+-]\d{4})?\)\\/"', body)
    assert dates and {offset for _, offset in dates} == {b"+0300"}
    task = response.json()[0]
    assert re.fullmatch(r"/Date\(\d+\+0300\)/", task["Started"])
    ms = (started(task) - EPOCH) // timedelta(milliseconds=1)
    assert task["Started"] == f"/Date({ms}+0300)/"


def test_key_order_and_shapes(week: Api) -> None:
    tasks = week.tasks()
    site = week.sim.site_id
    for task in tasks:
        assert list(task) == KEY_ORDER
        identifier = task["TaskIdentifier"]
        assert re.fullmatch(f"{UUID}\\.{site}", identifier)
        assert task["Link"] == {
            "href": f"{week.sim.url}/v1/tasks/{identifier}",
            "identifier": identifier,
            "rel": None,
            "type": "TaskApi",
        }
        assert list(task["Status"]) == ["Progress", "State"]
        assert task["Status"]["State"] in range(8)
        assert 0 <= task["Status"]["Progress"] <= 100
        assert isinstance(task["IsCancellable"], bool)
        assert isinstance(task["InitiatedBy"], str)
        if task["Completed"] is None:
            assert task["CompleteReason"] in ("", None)
            assert task["Status"]["State"] not in TERMINAL_STATES
        else:
            assert isinstance(task["CompleteReason"], str)
            assert task["Status"]["State"] in TERMINAL_STATES
            assert not task["IsCancellable"]
    assert len({task["TaskIdentifier"] for task in tasks}) == len(tasks)


def test_related_entities(week: Api) -> None:
    tasks = week.tasks()
    apis = {
        "Hosts": {"HostApi"},
        "Sites": {"LocalSiteApi", "PeerSiteApi"},
        "Vpgs": {"VpgApi"},
        "FlrSessions": {"FlrSessionInformationApi"},
    }
    missing_flr = nulls = 0
    for task in tasks:
        entities = task["RelatedEntities"]
        if entities is None:
            nulls += 1
            continue
        assert list(entities)[:3] == ["Hosts", "Sites", "Vpgs"]
        if "FlrSessions" not in entities:
            missing_flr += 1
        for key, links in entities.items():
            for link in links:
                assert list(link) == ["href", "identifier", "rel", "type"]
                assert link["rel"] is None
                assert link["type"] in apis[key]
                assert link["href"].startswith(week.sim.url + "/v1/")
        for vpg in entities["Vpgs"]:
            assert vpg["identifier"] in week.sim.vpg_ids
            assert vpg["href"] == f"{week.sim.url}/v1/vpgs/{vpg['identifier']}"
        local = [s for s in entities["Sites"] if s["type"] == "LocalSiteApi"]
        assert all(s["identifier"] == week.sim.site_id for s in local)
        if task["Type"].startswith("Flr"):
            assert len(entities["FlrSessions"]) == 1
    assert nulls > 0
    assert missing_flr > 0
    assert any(task["RelatedEntities"] and task["RelatedEntities"]["Hosts"] for task in tasks)


def test_initiators(week: Api) -> None:
    initiators = Counter(task["InitiatedBy"] for task in week.tasks())
    assert {"Administrator", "ZertoUser", "System"} <= set(initiators)
    assert all(isinstance(name, str) and name for name in initiators)


def test_cancellable_while_running_for_some_types(connect: Callable[[Simulator], Api]) -> None:
    with make(days=0.5, tasks_per_hour=300) as sim:
        tasks = connect(sim).tasks()
        running = [t for t in tasks if t["Completed"] is None]
        assert any(t["IsCancellable"] for t in running)
        assert not all(t["IsCancellable"] for t in running)
        for task in tasks:
            if task["IsCancellable"]:
                assert task["Type"] in CANCELLABLE_TYPES
                assert task["Completed"] is None


def test_without_offsets_and_other_zones(connect: Callable[[Simulator], Api]) -> None:
    with make(date_offsets=False) as plain:
        body = connect(plain).raw().content
        assert re.search(rb'"\\/Date\(\d+\)\\/"', body)
        assert not re.search(rb"\d[+-]\d{4}\)", body)
    with make(utc_offset_minutes=-300) as west:
        assert b"-0500)\\/" in connect(west).raw().content
    with make(utc_offset_minutes=330) as india:
        assert b"+0530)\\/" in connect(india).raw().content


def test_appliance_dates_are_iso_and_the_same_instants(connect: Callable[[Simulator], Api]) -> None:
    with make() as windows, make(date_style="appliance") as appliance:
        reference = windows.ground_truth()
        response = connect(appliance).raw()
        assert response.headers["server"] == "nginx"
        assert b"/Date(" not in response.content
        served = response.json()
        for old, new in zip(reference, served, strict=True):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+03:00", new["Started"])
            assert started(new) == started(old)
            if old["Completed"] is not None:
                assert read_date(new["Completed"]) is not None
                assert read_date(new["Completed"]) == read_date(old["Completed"])
    with make(date_style="appliance", date_offsets=False) as utc:
        first = utc.ground_truth()[0]
        assert first["Started"].endswith("Z")


def test_camel_case_keys(connect: Callable[[Simulator], Api]) -> None:
    with make(key_case="camel") as sim:
        api = connect(sim)
        tasks = api.tasks()
        task = next(t for t in tasks if t["relatedEntities"])
        assert list(task) == [key[0].lower() + key[1:] for key in KEY_ORDER]
        assert list(task["status"]) == ["progress", "state"]
        assert list(task["link"]) == ["href", "identifier", "rel", "type"]
        assert set(task["relatedEntities"]) <= {"hosts", "sites", "vpgs", "flrSessions"}
        assert api.task(task["taskIdentifier"]).json() == task
        running = next(t for t in tasks if t["completed"] is None)
        assert set(running) == set(task)


def test_without_task_identifier(connect: Callable[[Simulator], Api]) -> None:
    with make(include_task_identifier=False) as sim:
        api = connect(sim)
        tasks = api.tasks()
        assert all("TaskIdentifier" not in task for task in tasks)
        identifier = tasks[0]["Link"]["identifier"]
        assert identifier.endswith("." + sim.site_id)
        assert api.task(identifier).json() == tasks[0]


def test_ground_truth_equals_an_unfiltered_get(week: Api) -> None:
    assert week.sim.ground_truth() == week.tasks()


def test_fast_path_matches_the_reference_encoding() -> None:
    """The cached byte pieces give exactly what orjson gives for the plain dict."""
    scenario = Scenario(seed=3, tasks_per_hour=400, history_start_ms=0)
    hour = 480_000
    tasks = [task for h in range(hour, hour + 6) for task in scenario.bucket(h)]
    styles: tuple[Literal["windows", "appliance"], ...] = ("windows", "appliance")
    cases: tuple[Literal["pascal", "camel"], ...] = ("pascal", "camel")
    for style in styles:
        for case in cases:
            wire = WireFormat(
                base_url="http://h:1",
                seed=3,
                site_id=scenario.site_id,
                date_style=style,
                key_case=case,
                utc_offset_minutes=-90,
            )
            for task in tasks[::7]:
                task.wire = None
                duration = task.lifecycle.duration_ms
                for elapsed in (0, 1, duration // 3, duration // 2, duration - 1, duration, 10**9):
                    now = task.started_ms + elapsed
                    assert wire.task(task, now) == wire.encode(wire.task_object(task, now))
                    orjson.loads(wire.task(task, now))


@settings(max_examples=200)
@given(ms=st.integers(min_value=-62135596800000, max_value=253402300799999))
def test_windows_date_token_is_the_date_text_escaped(ms: int) -> None:
    for offset in (180, None, -330):
        wire = WireFormat(base_url="http://h", seed=1, site_id="s", utc_offset_minutes=offset or 0)
        if offset is None:
            wire = WireFormat(
                base_url="http://h", seed=1, site_id="s", date_offsets=False, utc_offset_minutes=60
            )
        token = wire._date_token(ms)
        assert orjson.loads(token) == wire.date_text(ms)
        assert token == '"' + wire.date_text(ms).replace("/", "\\/") + '"'


# ---- scenario ------------------------------------------------------------------------------


def test_same_seed_same_history_different_seed_different() -> None:
    with make(seed=42) as one, make(seed=42) as two, make(seed=43) as other:
        first = orjson.dumps(one.ground_truth()).replace(one.url.encode(), b"URL")
        second = orjson.dumps(two.ground_truth()).replace(two.url.encode(), b"URL")
        third = orjson.dumps(other.ground_truth()).replace(other.url.encode(), b"URL")
        assert first == second
        assert first != third


def test_history_is_the_same_whatever_the_order_of_requests(
    connect: Callable[[Simulator], Api],
) -> None:
    with make(seed=7, days=2) as one, make(seed=7, days=2) as two:
        # Touch the buckets in a different order first, and a GET by id.
        connect(two).tasks(startedAfterDate="2025-03-01T00:00Z")
        truth = one.ground_truth()
        connect(two).task(truth[len(truth) // 2]["TaskIdentifier"])
        assert orjson.dumps(two.ground_truth()).replace(two.url.encode(), b"U") == orjson.dumps(
            truth
        ).replace(one.url.encode(), b"U")


def test_history_starts_days_before_the_start_and_rate(week: Api) -> None:
    tasks = week.tasks()
    first = min(started(task) for task in tasks)
    assert START - timedelta(days=7) <= first < START - timedelta(days=7) + timedelta(hours=1)
    assert 0.8 * 7 * 24 * 20 < len(tasks) < 1.2 * 7 * 24 * 20


def test_type_mix_bursts_and_unknown_types(week: Api) -> None:
    tasks = week.tasks()
    types = Counter(task["Type"] for task in tasks)
    common = {name for name, _ in types.most_common(6)}
    assert {"FailOverTest", "StopFailOverTest", "InsertTaggedCP", "Login"} <= common
    unknown = {name for name in types if name not in DOCUMENTED_TYPES}
    assert unknown and unknown <= set(UNDOCUMENTED_TYPES)
    assert 0.002 < sum(types[name] for name in unknown) / len(tasks) < 0.03
    same_ms = Counter(task["Started"] for task in tasks)
    bursts = [stamp for stamp, count in same_ms.items() if count >= 2]
    assert bursts
    burst = [t for t in tasks if t["Started"] == bursts[0]]
    assert len({t["Type"] for t in burst}) == 1
    assert len({t["RelatedEntities"]["Vpgs"][0]["identifier"] for t in burst}) == len(burst)


def test_types_endpoint(week: Api) -> None:
    response = week.raw("/v1/tasks/types")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == list(DOCUMENTED_TYPES)
    assert week.raw("/v1/tasks/types").content == response.content
    assert not set(UNDOCUMENTED_TYPES) & set(response.json())
    assert "FlrJournalUnmount" in response.json()


def test_generated_lifecycles_have_every_shape() -> None:
    rng = Random(99)
    types = ["FailOver", "Move", "FailOverTest", "Login", "InsertTaggedCP", "InitFullSync"]
    states: Counter[int] = Counter()
    for index in range(6000):
        lifecycle = draw_lifecycle(rng, types[index % len(types)])
        offsets, phase_states, progresses = lifecycle.phases
        assert offsets[0] == 0
        assert all(b > a for a, b in itertools.pairwise(offsets))
        assert offsets[-1] == lifecycle.duration_ms <= MAX_DURATION_MS
        assert phase_states[-1] in TERMINAL_STATES
        running = [
            p for p, s in zip(progresses, phase_states, strict=True) if s == State.IN_PROGRESS
        ]
        assert running == sorted(running)
        if phase_states[-1] == State.COMPLETED:
            assert progresses[-1] == 100
        states.update(phase_states)
    for state in (1, 2, 3, 4, 5, 6, 7):
        assert states[state] > 0, state


def test_most_tasks_are_short_a_few_take_hours() -> None:
    scenario = Scenario(seed=2, tasks_per_hour=200, history_start_ms=0)
    tasks = [task for hour in range(480_000, 480_050) for task in scenario.bucket(hour)]
    durations = sorted(task.lifecycle.duration_ms for task in tasks)
    assert durations[len(durations) // 2] < 5 * 60_000
    long_share = sum(d >= 3_600_000 for d in durations) / len(durations)
    assert 0.01 < long_share < 0.05
    assert durations[-1] <= MAX_DURATION_MS
    outcomes = Counter(task.lifecycle.final_state for task in tasks)
    assert outcomes[State.COMPLETED] > 0.8 * len(tasks)
    assert outcomes[State.FAILED] > 0 and outcomes[State.STOPPED] > 0


# ---- time ----------------------------------------------------------------------------------


def test_a_running_task_completes_as_the_clock_advances(
    connect: Callable[[Simulator], Api],
) -> None:
    with make(days=0.5) as sim:
        api = connect(sim)
        running = [t for t in api.tasks() if t["Completed"] is None]
        assert running
        target = running[0]
        identifier = target["TaskIdentifier"]
        assert target["Status"]["State"] in (State.IN_PROGRESS, 2, 3, 7)
        seen = [target["Status"]]
        for _ in range(13):
            sim.advance(timedelta(hours=1))
            seen.append(api.task(identifier).json()["Status"])
        final = api.task(identifier).json()
        assert final["Completed"] is not None
        assert final["Status"]["State"] in TERMINAL_STATES
        done = read_date(final["Completed"])
        assert done is not None and started(final) < done <= sim.now()
        assert {
            k: v
            for k, v in final.items()
            if k not in ("Completed", "CompleteReason", "Status", "IsCancellable")
        } == {
            k: v
            for k, v in target.items()
            if k not in ("Completed", "CompleteReason", "Status", "IsCancellable")
        }


def test_injected_task_lifecycle(connect: Callable[[Simulator], Api]) -> None:
    with make(days=0.1, tasks_per_hour=1) as sim:
        api = connect(sim)
        identifier = sim.add_task(
            task_type="Move",
            phases=[
                Phase(timedelta(0), State.IN_PROGRESS, 0),
                Phase(timedelta(minutes=1), State.IN_PROGRESS, 40),
                Phase(timedelta(minutes=2), State.WAITING_FOR_USER_INPUT, 80),
                Phase(timedelta(minutes=5), State.IN_PROGRESS, 90),
                Phase(timedelta(minutes=6), State.COMPLETED, 100),
            ],
            complete_reason="Moved.",
            is_cancellable=True,
            vpgs=[sim.vpg_ids[1]],
        )
        assert re.fullmatch(f"{UUID}\\.{sim.site_id}", identifier)
        expected = [
            (0, State.IN_PROGRESS, 0),
            (90, State.IN_PROGRESS, 40),
            (150, State.WAITING_FOR_USER_INPUT, 80),
            (330, State.IN_PROGRESS, 90),
        ]
        elapsed = 0
        for seconds, state, progress in expected:
            sim.advance(timedelta(seconds=seconds - elapsed))
            elapsed = seconds
            task = api.task(identifier).json()
            assert task["Status"] == {"Progress": progress, "State": state}
            assert task["Completed"] is None
            assert task["CompleteReason"] == ""
            assert task["IsCancellable"] is True
        sim.advance(timedelta(seconds=30))
        task = api.task(identifier).json()
        assert task["Status"] == {"Progress": 100, "State": State.COMPLETED}
        assert task["CompleteReason"] == "Moved."
        assert task["IsCancellable"] is False
        assert read_date(task["Completed"]) == START + timedelta(minutes=6)
        assert task["RelatedEntities"]["Vpgs"][0]["identifier"] == sim.vpg_ids[1]
        assert identifier in [t["TaskIdentifier"] for t in api.tasks(status="completed")]


def test_add_task_defaults_and_validation(connect: Callable[[Simulator], Api]) -> None:
    with make(days=0.1, tasks_per_hour=1) as sim:
        api = connect(sim)
        forever = sim.add_task(duration=None, task_uuid="0c66b743-01d3-42c5-844b-BF5D4283DDB1")
        assert forever == f"0c66b743-01d3-42c5-844b-bf5d4283ddb1.{sim.site_id}"
        assert api.task(forever.upper()).status_code == 200
        failed = sim.add_task(
            duration=timedelta(seconds=10), state=State.FAILED, complete_reason="x"
        )
        instant = sim.add_task(duration=timedelta(0))
        sim.advance(timedelta(days=2))
        assert api.task(forever).json()["Status"] == {"Progress": 0, "State": State.IN_PROGRESS}
        assert api.task(failed).json()["Status"] == {"Progress": 50, "State": State.FAILED}
        assert api.task(instant).json()["Started"] == api.task(instant).json()["Completed"]
        with pytest.raises(ValueError, match="already added"):
            sim.add_task(task_uuid="0c66b743-01d3-42c5-844b-bf5d4283ddb1")
        with pytest.raises(ValueError, match="at 0"):
            sim.add_task(phases=[Phase(timedelta(seconds=1), 1, 0)])
        with pytest.raises(ValueError, match="increasing"):
            sim.add_task(phases=[Phase(timedelta(0), 1, 0), Phase(timedelta(0), 6, 100)])
        with pytest.raises(ValueError, match="12 hours"):
            sim.add_task(duration=timedelta(hours=13))
        with pytest.raises(ValueError, match="timezone-aware"):
            sim.add_task(started=datetime(2025, 1, 1))


def test_only_started_tasks_are_visible(connect: Callable[[Simulator], Api]) -> None:
    with make(days=0.1, tasks_per_hour=1) as sim:
        api = connect(sim)
        future = sim.add_task(started=START + timedelta(minutes=10))
        assert future not in [t["TaskIdentifier"] for t in api.tasks()]
        assert api.task(future).status_code == 404
        sim.advance(timedelta(minutes=10))
        assert future in [t["TaskIdentifier"] for t in api.tasks()]
        assert api.task(future).json()["Status"]["State"] == State.IN_PROGRESS
        assert all(started(t) <= sim.now() for t in api.tasks())


def test_new_tasks_appear_as_time_runs(connect: Callable[[Simulator], Api]) -> None:
    with make(days=0.5, speed=0) as sim:
        api = connect(sim)
        before = len(api.tasks())
        sim.advance(timedelta(hours=2))
        assert len(api.tasks()) > before


# ---- GET by id and retention ---------------------------------------------------------------


def test_get_by_id(week: Api) -> None:
    tasks = week.tasks()
    for task in tasks[:: len(tasks) // 20]:
        response = week.task(task["TaskIdentifier"])
        assert response.status_code == 200
        assert response.json() == task
    upper = week.task(tasks[0]["TaskIdentifier"].upper())
    assert upper.status_code == 200


@pytest.mark.parametrize(
    "identifier",
    [
        "0c66b743-01d3-42c5-844b-bf5d4283ddb1.6b5b30d6-c090-4233-8466-5fe18bf39a4c",
        "not-an-id",
        "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz.{site}",
        "0c66b743-01d3-42c5-844b-bf5d4283ddb1.{site}",
    ],
)
def test_get_unknown_id_is_404(week: Api, identifier: str) -> None:
    response = week.task(identifier.format(site=week.sim.site_id))
    assert response.status_code == 404
    assert "Message" in response.json()


def test_retention_purges_completed_tasks(connect: Callable[[Simulator], Api]) -> None:
    with make(days=10, retention=timedelta(days=2), tasks_per_hour=5) as sim:
        api = connect(sim)
        tasks = api.tasks()
        horizon = START - timedelta(days=2)
        for task in tasks:
            done = read_date(task["Completed"])
            assert done is None or done >= horizon
        assert min(started(t) for t in tasks) < horizon + timedelta(hours=1)
        kept = sim.add_task(duration=timedelta(minutes=1))
        forever = sim.add_task(duration=None)
        sim.advance(timedelta(days=2, minutes=1))
        assert api.task(kept).status_code == 200
        sim.advance(timedelta(minutes=1))
        assert api.task(kept).status_code == 404
        listed = [t["TaskIdentifier"] for t in api.tasks()]
        assert kept not in listed
        assert forever in listed
        assert api.task(forever).status_code == 200
        assert sim.task(kept) is None
        assert sim.task(forever) == api.task(forever).json()


def test_evicted_buckets_come_back_identical() -> None:
    scenario = Scenario(seed=9, tasks_per_hour=100, history_start_ms=0, cache_tasks=150)
    original = scenario.bucket(480_000)
    first = [task.identifier for task in original]
    for hour in range(480_001, 480_005):  # pushes the first bucket out of the cache
        scenario.bucket(hour)
    again = scenario.bucket(480_000)
    assert again is not original
    assert [task.identifier for task in again] == first
    assert scenario.find(first[3], latest_ms=480_010 * 3_600_000) is not None
