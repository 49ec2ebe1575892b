"""The Recovery Report in every pass, on SQLite, PostgreSQL and MariaDB: incremental reads
page by page, changes on the ZVM, a missing or failing report, malformed entries, filters
and paging the ZVM ignores, the links to tasks and VPGs, and backfill. The ZVM is the
simulator over real HTTP; what it serves (``sim.recovery``) is the truth compared with."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.recovery import RecoveryOperation, normalize_recovery_operation
from etl.recovery_sync import RECOVERY_CURSOR
from etl.status import read_status
from etl.sync import backfill_all
from etl.warehouse import schema
from etl.zvm.reports import RECOVERY_REPORT
from tests.analyst import run_query
from tests.clocks import ManualTime
from tests.syncing import PASSWORD, assert_converged, cursors, make_config, one_pass
from tests.test_names_budget import clients
from zvm_simulator import Phase, Simulator, State
from zvm_simulator.clock import to_ms
from zvm_simulator.recovery import Operation

pytestmark = pytest.mark.sim(vpg_rename_after=None, vpg_delete_after=None)


FAILED = ("Failed", "Stopped")


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def truth(sim: Simulator) -> dict[str, Operation]:
    """The operations the simulated ZVM reports now, by identifier."""
    return {op.identifier: op for op in sim.recovery.operations(to_ms(sim.now()))}


def stored(engine: Engine) -> dict[str, Any]:
    table = schema.recovery_operations
    with engine.connect() as conn:
        return {row.operation_identifier: row for row in conn.execute(sa.select(table))}


def zvm_row(engine: Engine) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(schema.zvms)).one()


def assert_report_loaded(engine: Engine, sim: Simulator) -> None:
    """Every operation the ZVM reports is held once, with the ZVM's values, its steps, and
    the task and VPG it belongs to."""
    expected, held = truth(sim), stored(engine)
    assert set(held) == set(expected)
    with engine.connect() as conn:
        steps = sa.select(
            schema.recovery_operation_steps.c.operation_identifier, sa.func.count()
        ).group_by(schema.recovery_operation_steps.c.operation_identifier)
        step_counts: dict[str, int] = {key: count for key, count in conn.execute(steps)}
    for identifier, op in expected.items():
        row = held[identifier]
        assert (row.recovery_type, row.rto_seconds, row.status) == (
            op.recovery_type,
            op.rto_seconds,
            op.status,
        )
        assert (row.vpg_name, row.notes, row.initiated_by) == (
            op.vpg_name,
            op.notes,
            op.initiated_by,
        )
        assert (to_ms(row.started_at), to_ms(row.ended_at)) == (op.started_ms, op.ended_ms)
        assert step_counts.get(identifier, 0) == len(op.steps)
        assert (row.task_identifier, row.vpg_identifier) == (op.task_identifier, op.vpg_identifier)
        assert row.task_match_seconds == 0.0


def test_incremental_reads_page_by_page_link_every_operation(
    sim: Simulator, warehouse: Engine
) -> None:
    config = make_config(sim, url_of(warehouse), recovery_page_size=3)
    assert one_pass(config, warehouse).succeeded
    assert_converged(warehouse, sim)
    assert_report_loaded(warehouse, sim)
    pages = [r.params for r in sim.requests if r.path == RECOVERY_REPORT]
    assert {p["pagesize"] for p in pages} == {"3"} and max(int(p["pagenumber"]) for p in pages) > 2
    assert {row.vpg_link for row in stored(warehouse).values()} <= {"name", "task"}
    row = zvm_row(warehouse)
    assert row.recovery_report_read_at is not None and row.recovery_report_error is None
    first_seen = {k: r.first_seen_at for k, r in stored(warehouse).items()}
    earliest = min(r.started_at for r in stored(warehouse).values())
    # Later passes read on from the cursor: new operations come, none is doubled.
    for _ in range(3):
        sim.advance(timedelta(hours=2))
        sim.clear_requests()
        assert one_pass(config, warehouse).succeeded
        assert_report_loaded(warehouse, sim)
        asked = [r.params for r in sim.requests if r.path == RECOVERY_REPORT]
        assert asked and all("starttime" in p for p in asked)
        assert min(p["starttime"] for p in asked) > earliest.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(truth(sim)) > len(first_seen)
    assert all(stored(warehouse)[k].first_seen_at == v for k, v in first_seen.items())
    # The cursor never passes a failover, test or move still running.
    cursor = cursors(warehouse)[RECOVERY_CURSOR]
    with warehouse.connect() as conn:
        running = conn.execute(
            sa.select(sa.func.min(schema.tasks.c.started_at)).where(
                sa.func.lower(schema.tasks.c.type).in_(["failovertest", "failover", "move"]),
                schema.tasks.c.state.in_([1, 2, 3, 7]),
            )
        ).scalar()
    assert running is None or cursor <= running


@pytest.mark.sim(
    auth="keycloak",
    date_style="appliance",
    key_case="camel",
    include_task_identifier=False,
    vpg_rename_after=None,
    vpg_delete_after=None,
)
def test_the_appliance_report_gives_the_vpg_identifier(sim: Simulator, warehouse: Engine) -> None:
    config = make_config(sim, url_of(warehouse))
    assert one_pass(config, warehouse).succeeded
    assert_report_loaded(warehouse, sim)
    assert {row.vpg_link for row in stored(warehouse).values()} == {"reported"}


def test_an_operation_changed_on_the_zvm_is_updated_not_duplicated(
    sim: Simulator, warehouse: Engine
) -> None:
    config = make_config(sim, url_of(warehouse))
    assert one_pass(config, warehouse).succeeded
    operations = sorted(truth(sim).values(), key=lambda op: op.started_ms)
    newest, oldest = operations[-1], operations[0]
    before = stored(warehouse)
    sim.amend_recovery_operation(newest.identifier, notes="Re-tested after the storage fix.")
    sim.amend_recovery_operation(oldest.identifier, notes="Reviewed", status="Fail")
    sim.advance(timedelta(minutes=5))
    assert one_pass(config, warehouse).succeeded
    after = stored(warehouse)
    assert set(before) <= set(after) and len(after) == len(truth(sim))
    assert after[newest.identifier].notes == "Re-tested after the storage fix."
    assert after[newest.identifier].last_changed_at > before[newest.identifier].last_changed_at
    assert after[newest.identifier].first_seen_at == before[newest.identifier].first_seen_at
    # The oldest is behind the cursor: a backfill of its day reads it again.
    assert after[oldest.identifier].notes == oldest.notes
    start = before[oldest.identifier].started_at - timedelta(hours=1)
    cursor = cursors(warehouse)[RECOVERY_CURSOR]
    [result] = backfill_all(config, since=start, until=start + timedelta(hours=2), engine=warehouse)
    assert result.succeeded
    again = stored(warehouse)
    assert (again[oldest.identifier].notes, again[oldest.identifier].status) == ("Reviewed", "Fail")
    assert len(again) == len(after)
    assert cursors(warehouse)[RECOVERY_CURSOR] == cursor


def test_a_zvm_without_the_report_keeps_loading_tasks(sim: Simulator, warehouse: Engine) -> None:
    config = make_config(sim, url_of(warehouse))
    sim.faults.missing_listings.add(RECOVERY_REPORT)
    result = one_pass(config, warehouse)
    assert result.succeeded
    assert_converged(warehouse, sim)
    assert stored(warehouse) == {} and RECOVERY_CURSOR not in cursors(warehouse)
    error = zvm_row(warehouse).recovery_report_error
    assert "GET /v1/reports/recovery" in error and "HTTP 404" in error and PASSWORD not in error
    [status] = read_status(config, engine=warehouse)
    assert status.recovery_report_error == error and status.recovery_operations == 0
    sim.faults.reset()
    sim.advance(timedelta(minutes=5))
    assert one_pass(config, warehouse).succeeded
    assert_report_loaded(warehouse, sim)
    assert zvm_row(warehouse).recovery_report_error is None


def test_a_failing_report_costs_at_most_its_budget(
    sim: Simulator, warehouse: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(
        sim, url_of(warehouse), zvm_keys={"retry_for": "2m"}, recovery_report_budget="20s"
    )
    sim.faults.failing_listings.add(RECOVERY_REPORT)
    time = ManualTime()
    begun = time()
    with caplog.at_level(logging.WARNING):
        result = one_pass(config, warehouse, client_factory=clients(time))
    assert result.succeeded and result.counts.inserted > 0
    assert_converged(warehouse, sim)
    assert time() - begun <= 20  # only the client's retry waits move this clock
    error = zvm_row(warehouse).recovery_report_error
    assert "gave up on GET /v1/reports/recovery" in error and "500" in error
    assert any("recovery report" in r.getMessage() for r in caplog.records)


@pytest.mark.sim(vpg_rename_after=None, vpg_delete_after=None, tasks_per_hour=40)
def test_malformed_operations_are_rejected_and_nothing_else_is_lost(
    sim: Simulator, warehouse: Engine
) -> None:
    sim.faults.malformed_recovery_rate = 0.15
    config = make_config(sim, url_of(warehouse), recovery_page_size=7)
    assert one_pass(config, warehouse).succeeded
    served = sim.recovery_operations()
    good = [normalize_recovery_operation(e, zvm="sim") for e in served]
    bad = [e for e, op in zip(served, good, strict=True) if not isinstance(op, RecoveryOperation)]
    assert 0 < len(bad) < len(served)
    held = stored(warehouse)
    assert set(held) == {
        op.operation_identifier for op in good if isinstance(op, RecoveryOperation)
    }
    table = schema.rejected_recovery_operations
    with warehouse.connect() as conn:
        rejected = conn.execute(sa.select(table.c.reason, table.c.operation_identifier)).all()
    assert len(rejected) == len(bad)
    assert {r.operation_identifier for r in rejected} == {
        e["RecoveryOperationIdentifier"] for e in bad
    }
    assert all(
        r.reason.split(":")[0] in ("StartTime", "RTOInSeconds") or r.reason.startswith("step ")
        for r in rejected
    )
    assert f"{len(bad)} entries could not be loaded" in zvm_row(warehouse).recovery_report_error
    sim.advance(timedelta(minutes=5))
    assert one_pass(config, warehouse).succeeded  # the overlap brings some bad ones again
    served = sim.recovery_operations()
    still_bad = [
        e
        for e in served
        if not isinstance(normalize_recovery_operation(e, zvm="sim"), RecoveryOperation)
    ]
    with warehouse.connect() as conn:
        kept = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    assert kept == len(still_bad) >= len(bad)


@pytest.mark.parametrize(
    ("ignored", "problem"),
    [
        ({"starttime", "endtime"}, "it ignored startTime/endTime"),
        ({"pagenumber"}, None),  # windows split until each fits a page
    ],
)
def test_filters_and_paging_the_zvm_ignores_lose_nothing(
    sim: Simulator, warehouse: Engine, ignored: set[str], problem: str | None
) -> None:
    sim.faults.recovery_ignored_params = ignored
    config = make_config(sim, url_of(warehouse), recovery_page_size=10)
    assert one_pass(config, warehouse).succeeded
    assert_report_loaded(warehouse, sim)
    error = zvm_row(warehouse).recovery_report_error
    assert error is None if problem is None else problem in error


def test_backfill_reads_the_report_of_its_range_without_the_cursor(
    sim: Simulator, warehouse: Engine
) -> None:
    config = make_config(sim, url_of(warehouse), recovery_report=False)
    assert one_pass(config, warehouse).succeeded
    assert stored(warehouse) == {} and zvm_row(warehouse).recovery_report_read_at is None
    config = make_config(sim, url_of(warehouse))
    since = sim.now() - timedelta(days=3)
    [result] = backfill_all(config, since=since, until=None, engine=warehouse)
    assert result.succeeded
    assert_report_loaded(warehouse, sim)
    assert RECOVERY_CURSOR not in cursors(warehouse)


def test_failed_and_waiting_operations_keep_their_own_rto(
    sim: Simulator, warehouse: Engine
) -> None:
    """A move that waited two hours for its commit: its RTO leaves the wait out; the task's
    duration does not. A failed test is a failed operation."""
    start = sim.now() - timedelta(hours=5)
    vpg = sim.vpg_ids[1]
    move = sim.add_task(
        task_type="Move",
        started=start,
        vpgs=[vpg],
        phases=[
            Phase(timedelta(0), State.IN_PROGRESS, 0),
            Phase(timedelta(minutes=4), State.WAITING_FOR_USER_INPUT, 90),
            Phase(timedelta(hours=2), State.IN_PROGRESS, 90),
            Phase(timedelta(hours=2, minutes=1), State.COMPLETED, 100),
        ],
    )
    failed = sim.add_task(started=start + timedelta(minutes=20), vpgs=[vpg], state=State.FAILED)
    config = make_config(sim, url_of(warehouse))
    assert one_pass(config, warehouse).succeeded
    with warehouse.connect() as conn:
        rows = {
            r.task_identifier: r
            for r in conn.execute(
                sa.text(
                    "SELECT task_identifier, rto_seconds, outcome, task_duration_seconds, "
                    "failed_steps, vpg_identifier FROM v_recovery_operations"
                )
            )
        }
    assert (rows[move].rto_seconds, rows[move].outcome) == (300, "succeeded")
    assert rows[move].task_duration_seconds == pytest.approx(2 * 3600 + 60)
    assert (rows[failed].outcome, rows[failed].failed_steps) == ("failed", 1)
    assert rows[move].vpg_identifier == rows[failed].vpg_identifier == vpg


def test_the_views_and_queries_answer_what_the_simulator_generated(
    sim: Simulator, warehouse: Engine
) -> None:
    config = make_config(sim, url_of(warehouse))
    assert one_pass(config, warehouse).succeeded
    expected = truth(sim)
    names = sim.vpg_names()
    with warehouse.connect() as conn:
        view = {
            r.operation_identifier: r
            for r in conn.execute(sa.text("SELECT * FROM v_recovery_operations"))
        }
    assert set(view) == set(expected)
    task_types = {"FailoverTest": "FailOverTest", "Failover": "FailOver", "Move": "Move"}
    for identifier, op in expected.items():
        row = view[identifier]
        outcome = "succeeded" if op.status == "Success" else "failed"
        assert (row.vpg_name, row.reported_vpg_name, row.outcome) == (
            names[op.vpg_identifier],
            op.vpg_name,
            outcome,
        )
        assert (row.rto_seconds, row.steps) == (op.rto_seconds, len(op.steps))
        assert row.failed_steps == sum(step.result == "Failed" for step in op.steps)
        assert row.task_type == task_types[op.recovery_type]
        assert row.task_state_name in (("Completed",) if outcome == "succeeded" else FAILED)
        assert row.task_duration_seconds >= op.rto_seconds - 1
    # rto_per_vpg counts every successful operation once, under its VPG and month.
    counted: dict[tuple[str, str, str], int] = {}
    for op in expected.values():
        if op.status == "Success":
            month = datetime.fromtimestamp(op.started_ms / 1000, tz=UTC).strftime("%Y-%m")
            key = (op.vpg_identifier, op.recovery_type, month)
            counted[key] = counted.get(key, 0) + 1
    rows = run_query(warehouse, "rto_per_vpg")
    assert {(r.vpg_identifier, r.recovery_type, r.month): r.operations for r in rows} == counted
    # dr_test_evidence: the last successful test of each tested VPG has its report RTO.
    evidence = {r.vpg_identifier: r for r in run_query(warehouse, "dr_test_evidence")}
    tested = [r for r in evidence.values() if r.last_success_task_identifier is not None]
    assert tested and all(r.last_success_rto_source == "recovery_report" for r in tested)
    by_task = {op.task_identifier: op.rto_seconds for op in expected.values()}
    for row in tested:
        assert row.last_success_rto_seconds == by_task[row.last_success_task_identifier]
