"""The simulated ZVM's Recovery Report: one operation per completed failover, failover test
or move, agreeing with its task, in both ZVM flavours, with filters, paging and fault knobs.
Answers are read with the tests' own date reader (``wire_reading``), not the ETL's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import pytest

from tests.simulator.test_inventory import Api, running
from tests.simulator.wire_reading import filter_value, read_date
from zvm_simulator import Phase, Simulator, SimulatorSettings, State
from zvm_simulator.cli import _settings as cli_settings
from zvm_simulator.cli import simulate

REPORT = "/v1/reports/recovery"
RECOVERY_TYPES = {"failovertest": "FailoverTest", "failover": "Failover", "move": "Move"}


@pytest.fixture
def windows() -> Iterator[Api]:
    yield from running(days=2)


@pytest.fixture
def appliance() -> Iterator[Api]:
    yield from running(
        days=2,
        auth="keycloak",
        date_style="appliance",
        key_case="camel",
        include_task_identifier=False,
    )


def report(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = api.http.get(REPORT, params=params, headers=api.headers)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


def every_operation(api: Api, **params: Any) -> list[dict[str, Any]]:
    """Every page of the report, read the way a client pages through it."""
    found: list[dict[str, Any]] = []
    for number in range(1, 1000):
        page = report(api, pageNumber=number, pageSize=50, **params)
        found += page
        if len(page) < 50:
            return found
    raise AssertionError("the report never ended")


def field(entry: dict[str, Any], *path: str) -> Any:
    """A field by its PascalCase path, whichever case the ZVM writes."""
    value: Any = entry
    for name in path:
        value = next(v for k, v in value.items() if k.lower() == name.lower())
    return value


def span_seconds(text: str) -> int:
    """A .NET time span (``d.hh:mm:ss``) or a string of seconds, in seconds."""
    if text.isdigit():
        return int(text)
    days, _, clock = text.rpartition(".")
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return int(days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds


def tasks(api: Api) -> list[dict[str, Any]]:
    response = api.get("/v1/tasks")
    assert response.status_code == 200
    result: list[dict[str, Any]] = response.json()
    return result


@pytest.mark.parametrize("flavour", ["windows", "appliance"])
def test_each_completed_recovery_task_has_one_operation_that_agrees_with_it(
    flavour: str, request: pytest.FixtureRequest
) -> None:
    api: Api = request.getfixturevalue(flavour)
    sim = api.sim
    names = {
        field(vpg, "Link", "identifier"): field(vpg, "VpgName") for vpg in api.json("/v1/vpgs")
    }
    operations = every_operation(api)
    assert operations, "two days of history hold tests, failovers and moves"
    by_start: dict[tuple[datetime, str], list[dict[str, Any]]] = {}
    for entry in operations:
        key = (read_date(field(entry, "General", "StartTime")), field(entry, "General", "VpgName"))
        by_start.setdefault(key, []).append(entry)  # type: ignore[arg-type]
    expected = 0
    for task in tasks(api):
        kind = RECOVERY_TYPES.get(field(task, "Type").lower())
        vpgs = field(task, "RelatedEntities") or {}
        vpgs = [v["identifier"] for v in (field(vpgs, "Vpgs") if vpgs else [])]
        completed = read_date(field(task, "Completed"))
        if kind is None or not vpgs or completed is None:
            continue
        expected += 1
        started = read_date(field(task, "Started"))
        [entry] = by_start[(started, names[vpgs[0]])]  # type: ignore[index]
        general = field(entry, "General")
        assert field(general, "RecoveryType") == kind
        assert read_date(field(general, "EndTime")) == completed
        assert field(general, "InitiatedBy") == field(task, "InitiatedBy")
        succeeded = field(task, "Status", "State") == State.COMPLETED
        assert field(general, "Status") == ("Success" if succeeded else "Fail")
        point = read_date(field(general, "PointInTime"))
        assert point is not None and started is not None and point < started
        rto = field(general, "RTOInSeconds")
        assert isinstance(rto, int if flavour == "windows" else str)
        steps = field(entry, "RecoverySettings", "Steps")
        assert steps and sum(span_seconds(str(field(s, "ExecutionTime"))) for s in steps) == int(
            rto
        )
        assert completed is not None and int(rto) <= (completed - started).total_seconds() + 1
        results = [field(s, "Result") for s in steps]
        assert results == ["Success"] * len(steps) if succeeded else results[-1] == "Failed"
        if flavour == "appliance":
            assert field(general, "VpgIdentifier") == vpgs[0]
            assert "rtoInSeconds" in general and "general" in entry
        else:
            assert "VpgIdentifier" not in general and "RTOInSeconds" in general
    assert expected == len(operations)
    identifiers = [field(e, "RecoveryOperationIdentifier") for e in operations]
    assert len(set(identifiers)) == len(identifiers)
    assert identifiers == [field(e, "RecoveryOperationIdentifier") for e in every_operation(api)]
    assert operations == sim.recovery_operations()


def test_the_rto_leaves_out_the_wait_for_the_commit() -> None:
    start = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    with Simulator(speed=0, days=0, tasks_per_hour=0, start=start) as sim:
        api = Api(sim)
        sim.add_task(
            task_type="Move",
            started=start - timedelta(hours=3),
            phases=[
                Phase(timedelta(0), State.IN_PROGRESS, 0),
                Phase(timedelta(minutes=4), State.WAITING_FOR_USER_INPUT, 90),
                Phase(timedelta(hours=2), State.IN_PROGRESS, 90),
                Phase(timedelta(hours=2, minutes=1), State.COMPLETED, 100),
            ],
        )
        sim.add_task(task_type="FailOverTest", started=start - timedelta(hours=1), state=4)
        sim.add_task(task_type="FailOverTest", started=start + timedelta(hours=1))  # not yet
        sim.add_task(task_type="Login", started=start - timedelta(hours=1))
        move, test = report(api)
        assert field(move, "General", "RTOInSeconds") == 5 * 60
        assert field(move, "General", "RecoveryType") == "Move"
        assert field(test, "General", "Status") == "Fail"
        assert field(test, "General", "RTOInSeconds") == 30
        sim.advance(timedelta(hours=2))
        assert len(report(api)) == 3
        api.http.close()


def test_time_filters_bound_the_start_inclusively(windows: Api) -> None:
    operations = every_operation(windows)
    starts = [read_date(field(e, "General", "StartTime")) for e in operations]
    low, high = starts[3], starts[-4]
    assert low is not None and high is not None
    # Whole seconds, as the ETL sends them: rounded outwards, they keep both ends.
    inside = every_operation(
        windows, startTime=filter_value(low), endTime=filter_value(high, round_up=True)
    )
    assert inside == operations[3:-3]
    after_low = filter_value(low + timedelta(seconds=1), round_up=True)
    assert every_operation(windows, startTime=after_low) == [
        e for e, s in zip(operations, starts, strict=True) if s is not None and s > low
    ]
    assert report(windows, startTime="2031-01-01") == []
    assert report(windows, STARTTIME="2031-01-01", unknown="x") == []  # names in any case


def test_vpg_type_and_state_filters(windows: Api) -> None:
    operations = every_operation(windows)
    name = field(operations[0], "General", "VpgName")
    other = field(operations[-1], "General", "VpgName")
    chosen = every_operation(windows, vpgName=f"{name.upper()}, {other}")
    assert chosen == [e for e in operations if field(e, "General", "VpgName") in (name, other)]
    for value, kind in (("FailoverTest", "FailoverTest"), ("Failover Test", "FailoverTest")):
        assert every_operation(windows, recoveryType=value) == [
            e for e in operations if field(e, "General", "RecoveryType") == kind
        ]
    assert every_operation(windows, state="fail") == [
        e for e in operations if field(e, "General", "Status") == "Fail"
    ]
    for params in ({"recoveryType": "Clone"}, {"state": "done"}, {"startTime": "soon"}):
        refused = windows.http.get(REPORT, params=params, headers=windows.headers)
        assert refused.status_code == 400 and "is not valid" in refused.json()["Message"]


def test_pages_follow_each_other_and_end_short(windows: Api) -> None:
    operations = every_operation(windows)
    pages = [
        report(windows, pageNumber=n, pageSize=7) for n in range(1, 1 + len(operations) // 7 + 2)
    ]
    assert [e for page in pages for e in page] == operations
    assert pages[-1] == [] and len(pages[-2]) == len(operations) % 7
    assert report(windows, pageSize=5000) == operations[:1000]
    assert report(windows) == operations[:1000]
    for bad in ({"pageNumber": "0"}, {"pageSize": "-3"}, {"pageNumber": "two"}):
        assert windows.http.get(REPORT, params=bad, headers=windows.headers).status_code == 400
    assert windows.http.get(REPORT).status_code == 401  # the report needs a session too


def test_fault_knobs_of_the_report(windows: Api) -> None:
    faults = windows.sim.faults
    faults.missing_listings.add(REPORT)
    assert windows.get(REPORT).status_code == 404
    faults.reset()
    faults.failing_listings.add(REPORT)
    assert windows.get(REPORT).status_code == 500
    faults.reset()
    faults.misshapen_listings[REPORT] = "html"
    assert windows.get(REPORT).headers["content-type"].startswith("text/html")
    faults.reset()
    clean = every_operation(windows)
    faults.malformed_recovery_rate = 0.3
    served = every_operation(windows)
    assert every_operation(windows) == served  # stable across requests
    broken = [b for a, b in zip(clean, served, strict=True) if a != b]
    assert 0 < len(broken) < len(clean)
    kinds = set()
    for entry in broken:
        general = field(entry, "General")
        if field(general, "StartTime") == "yesterday":
            kinds.add("start")
        elif field(general, "RTOInSeconds") == "n/a":
            kinds.add("rto")
        else:
            assert any(not isinstance(s, dict) for s in field(entry, "RecoverySettings", "Steps"))
            kinds.add("step")
    assert kinds == {"start", "rto", "step"}
    faults.malformed_recovery_rate = 0.6
    more = every_operation(windows)
    assert all(more[clean.index(a)] == b for a, b in zip(clean, served, strict=True) if a != b)


def test_a_zvm_that_ignores_parameters_answers_as_if_they_were_not_sent(windows: Api) -> None:
    operations = every_operation(windows)
    windows.sim.faults.recovery_ignored_params = {"starttime", "endtime"}
    assert report(windows, startTime="2031-01-01", pageSize=10) == operations[:10]
    windows.sim.faults.recovery_ignored_params = {"pagenumber"}
    assert report(windows, pageNumber=3, pageSize=10) == operations[:10]


def test_an_amended_operation_and_a_purged_one(windows: Api) -> None:
    sim = windows.sim
    first = every_operation(windows)[0]
    identifier = field(first, "RecoveryOperationIdentifier")
    sim.amend_recovery_operation(identifier, notes="Re-tested after the storage fix.")
    again = every_operation(windows)[0]
    assert field(again, "General", "Notes") == "Re-tested after the storage fix."
    assert field(again, "General", "StartTime") == field(first, "General", "StartTime")
    sim.advance(sim.settings.retention + timedelta(days=1))
    assert identifier not in {
        field(e, "RecoveryOperationIdentifier") for e in every_operation(windows)
    }


def test_command_line_knobs_of_the_report() -> None:
    settings = _cli(
        [
            "--missing-listing",
            REPORT,
            "--malformed-recovery-rate",
            "0.1",
            "--recovery-ignore",
            "startTime",
            "--recovery-ignore",
            "pageNumber",
        ]
    )
    assert settings.faults.missing_listings == {REPORT}
    assert settings.faults.malformed_recovery_rate == 0.1
    assert settings.faults.recovery_ignored_params == {"starttime", "pagenumber"}
    with pytest.raises(click.BadParameter):
        _cli(["--failing-listing", "/v1/reports/resources"])


def _cli(args: list[str]) -> SimulatorSettings:
    context = simulate.make_context("zvm-simulator", args)
    return cli_settings(context.params)
