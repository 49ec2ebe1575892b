"""fetch_recovery_report against the simulator over real loopback HTTP: pages, windows,
a ZVM that ignores pageNumber or pageSize, a missing or failing report."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from etl.errors import ZvmResponseError, ZvmRetriesExhausted
from etl.recovery import RecoveryOperation, normalize_recovery_operation
from etl.zvm.client import ZvmClient
from etl.zvm.reports import RECOVERY_REPORT, fetch_recovery_report
from tests.clocks import ManualTime
from tests.test_client import PASSWORD, zvm_for
from zvm_simulator import Simulator


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(seed=4, speed=0, days=2, tasks_per_hour=30, password=PASSWORD) as simulator:
        yield simulator


def identifiers(entries: list[dict[str, object]]) -> list[object]:
    return [entry["RecoveryOperationIdentifier"] for entry in entries]


def starts(sim: Simulator) -> list[datetime]:
    found = []
    for entry in sim.recovery_operations():
        op = normalize_recovery_operation(entry, zvm="sim")
        assert isinstance(op, RecoveryOperation)
        found.append(op.started_at)
    return found


def test_pages_across_their_boundaries_give_the_whole_window(sim: Simulator) -> None:
    everything = sim.recovery_operations()
    begin, end = starts(sim)[2], starts(sim)[-3]
    inside = [
        entry
        for entry, started in zip(everything, starts(sim), strict=True)
        if begin.replace(microsecond=0) <= started <= end
    ]
    with ZvmClient(zvm_for(sim)) as client:
        answer = fetch_recovery_report(client, after=begin, before=end, page_size=4)
        whole = fetch_recovery_report(client, after=None, before=None, page_size=1000)
    assert answer.complete and answer.entries == inside
    assert answer.pages == len(inside) // 4 + 1
    assert whole.entries == everything and whole.pages == 1
    pages = [r for r in sim.requests if r.path == RECOVERY_REPORT]
    first = pages[0].params
    assert first["starttime"] == begin.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first["endtime"] == (end + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [r.params["pagenumber"] for r in pages[: answer.pages]] == [
        str(n) for n in range(1, answer.pages + 1)
    ]
    assert "starttime" not in pages[-1].params


def test_a_zvm_that_ignores_page_number_repeats_its_first_page(sim: Simulator) -> None:
    sim.faults.recovery_ignored_params = {"pagenumber"}
    with ZvmClient(zvm_for(sim)) as client:
        answer = fetch_recovery_report(client, after=None, before=None, page_size=5)
    assert answer.repeated and not answer.complete and answer.pages == 2
    assert answer.entries == sim.recovery_operations()[:5]


def test_a_zvm_that_ignores_page_size_answers_in_one_page(sim: Simulator) -> None:
    sim.faults.recovery_ignored_params = {"pagesize"}
    with ZvmClient(zvm_for(sim)) as client:
        answer = fetch_recovery_report(client, after=None, before=None, page_size=5)
    assert answer.complete and answer.pages == 1
    assert answer.entries == sim.recovery_operations()


def test_a_zvm_without_the_report_answers_404(sim: Simulator) -> None:
    sim.faults.missing_listings.add(RECOVERY_REPORT)
    with ZvmClient(zvm_for(sim)) as client, pytest.raises(ZvmResponseError) as raised:
        fetch_recovery_report(client, after=None, before=None, page_size=100)
    assert raised.value.status_code == 404
    assert "/v1/reports/recovery" in str(raised.value) and PASSWORD not in str(raised.value)


def test_a_failing_report_is_retried_within_its_deadline(sim: Simulator) -> None:
    sim.faults.failing_listings.add(RECOVERY_REPORT)
    clock = ManualTime()
    with ZvmClient(zvm_for(sim), sleep=clock.advance, monotonic=clock) as client:
        deadline = client.deadline(5, setting="sync.recovery_report_budget")  # retry_for: 10s
        with pytest.raises(ZvmRetriesExhausted) as raised:
            fetch_recovery_report(client, after=None, before=None, page_size=100, deadline=deadline)
    assert "raise sync.recovery_report_budget" in str(raised.value)
    assert sum(r.path == RECOVERY_REPORT for r in sim.requests) > 1
    assert clock() - 1000.0 <= 5


def test_an_answer_that_is_not_a_list_is_an_error(sim: Simulator) -> None:
    sim.faults.misshapen_listings[RECOVERY_REPORT] = "wrong-type"
    with ZvmClient(zvm_for(sim)) as client, pytest.raises(ZvmResponseError, match="JSON array"):
        fetch_recovery_report(
            client, after=datetime(2030, 1, 1, tzinfo=UTC), before=None, page_size=9
        )


def test_page_size_is_checked() -> None:
    with pytest.raises(ValueError, match="1 to 1000"):
        fetch_recovery_report(None, after=None, before=None, page_size=0)  # type: ignore[arg-type]
