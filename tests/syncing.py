"""Helpers for the sync tests: a simulated ZVM, a config for it, and warehouse comparisons."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.config import Config, parse_config
from etl.normalize import Rejected, TaskRecord, normalize_task
from etl.sync import RunResult, sync_all
from etl.warehouse import schema
from zvm_simulator import Simulator

PASSWORD = "Zerto-s3cret!"

# Columns that record when the ETL did something, not what the ZVM said.
BOOKKEEPING = {
    "first_seen_at",
    "last_seen_at",
    "last_changed_at",
    "observed_at",
    "updated_at",
    "added_at",
    "received_at",
    "listed_at",
    "unlisted_at",
    "names_refreshed_at",
    "recovery_report_read_at",
    "run_id",
    "id",
}


def make_config(
    sim: Simulator, url: str, *, zvm_keys: dict[str, Any] | None = None, **sync: Any
) -> Config:
    """A configuration with one ZVM, ``sim``, and the warehouse at ``url``; ``zvm_keys``
    adds or replaces keys of the ZVM."""
    zvm: dict[str, Any] = {
        "name": "sim",
        "url": sim.url,
        "auth": sim.settings.auth,
        "username": sim.settings.username,
        "password": PASSWORD,
        "retry_for": "20s",
        "task_retention": f"{int(sim.settings.retention.total_seconds())}s",
    }
    if sim.ca_path is not None:
        zvm["ca_bundle"] = str(sim.ca_path)
    zvm |= zvm_keys or {}
    settings = {"overlap": "10m", "backfill_window": "1d"} | sync
    return parse_config({"warehouse": {"url": url}, "zvms": [zvm], "sync": settings}, env={})


def start_sim(**settings: Any) -> Simulator:
    """A started simulator with a frozen clock (tests move it) and the test password."""
    options: dict[str, Any] = {"speed": 0, "days": 2, "tasks_per_hour": 30, "password": PASSWORD}
    return Simulator(**(options | settings)).start()


def one_pass(config: Config, engine: Engine, **kw: Any) -> RunResult:
    [result] = sync_all(config, engine=engine, **kw)
    return result


def expected_tasks(sim: Simulator) -> tuple[dict[str, TaskRecord], list[Rejected]]:
    """What the ZVM holds now, normalized: the tasks and the records that must be rejected."""
    good: dict[str, TaskRecord] = {}
    bad: list[Rejected] = []
    for raw in sim.ground_truth():
        result = normalize_task(raw)
        if isinstance(result, TaskRecord):
            good[result.task_identifier] = result
        else:
            bad.append(result)
    return good, bad


def assert_converged(engine: Engine, sim: Simulator) -> None:
    """Every task the ZVM holds is in ``tasks`` with the ZVM's values, and every record it
    holds that cannot be loaded is in ``rejected_tasks``."""
    good, bad = expected_tasks(sim)
    t = schema.tasks
    with engine.connect() as conn:
        rows = {
            row.task_identifier: row
            for row in conn.execute(
                sa.select(
                    t.c.task_identifier,
                    t.c.state,
                    t.c.progress,
                    t.c.started_at,
                    t.c.completed_at,
                    t.c.payload_hash,
                    t.c.type,
                )
            )
        }
        rejected = set(conn.execute(sa.select(schema.rejected_tasks.c.payload)).scalars())
        vpgs = {
            (a, b)
            for a, b in conn.execute(
                sa.select(schema.task_vpgs.c.task_identifier, schema.task_vpgs.c.vpg_identifier)
            )
        }
    missing = sorted(set(good) - set(rows))
    assert not missing, (
        f"{len(missing)} tasks the ZVM holds are not in the warehouse: {missing[:3]}"
    )
    stale = [
        identifier
        for identifier, task in good.items()
        if (
            rows[identifier].payload_hash,
            rows[identifier].state,
            rows[identifier].progress,
            rows[identifier].completed_at,
        )
        != (task.payload_hash, task.state, task.progress, task.completed_at)
    ]
    assert not stale, f"{len(stale)} tasks differ from the ZVM's version: {stale[:3]}"
    for identifier, task in good.items():
        assert rows[identifier].started_at == task.started_at
        for vpg, _href in task.vpgs:
            assert (identifier, vpg) in vpgs
    not_kept = [r.raw for r in bad if r.raw not in rejected]
    assert not not_kept, f"{len(not_kept)} bad records are not in rejected_tasks"


def snapshot(
    engine: Engine, *, skip: set[str] = BOOKKEEPING, skip_in: dict[str, set[str]] | None = None
) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's content but etl_runs, without the ``skip`` columns (and, per table, the
    ``skip_in`` ones), sorted."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            if table.name == "etl_runs":
                continue
            left_out = skip | (skip_in or {}).get(table.name, set())
            columns = [c for c in table.c if c.name not in left_out]
            rows = conn.execute(sa.select(*columns)).all()
            tables[table.name] = sorted(tuple(map(repr, row)) for row in rows)
    return tables


def full_snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table but etl_runs, every column but when tasks and recovery operations were
    last received and the report last read: what a pass over an unchanged ZVM must leave
    exactly as it was."""
    skip_in = {
        "tasks": {"last_seen_at"},
        "recovery_operations": {"last_seen_at"},
        "zvms": {"recovery_report_read_at"},
    }
    return snapshot(engine, skip=set(), skip_in=skip_in)


def reset(engine: Engine) -> None:
    """Empty every table the sync writes (task_states keeps its seed)."""
    with engine.begin() as conn:
        for table in reversed(schema.metadata.sorted_tables):
            if table.name != "task_states":
                conn.execute(table.delete())


def advance(sim: Simulator, minutes: float) -> None:
    sim.advance(timedelta(minutes=minutes))


def cursors(engine: Engine) -> dict[str, datetime]:
    table = schema.sync_cursors
    with engine.connect() as conn:
        return {
            name: value for name, value in conn.execute(sa.select(table.c.cursor, table.c.value))
        }


def assert_no_task_skipped(engine: Engine, sim: Simulator) -> None:
    """The committed cursors are not past any task the warehouse lacks: a pass that starts
    from them (minus nothing) still finds every missing task."""
    started = cursors(engine).get("started")
    if started is None:
        return
    good, _ = expected_tasks(sim)
    with engine.connect() as conn:
        held = set(conn.execute(sa.select(schema.tasks.c.task_identifier)).scalars())
    skipped = [i for i, task in good.items() if i not in held and task.started_at < started]
    assert not skipped, f"the cursor moved past {len(skipped)} tasks never loaded"


def delete_tasks(engine: Engine, identifiers: list[str]) -> None:
    """Remove tasks from the warehouse as a lost write would leave it: their rows in
    ``tasks``, the bridges and ``task_status_changes`` (the entities stay)."""
    dependents = [schema.task_status_changes, schema.task_vpgs, schema.task_hosts]
    dependents += [schema.task_sites, schema.task_flr_sessions, schema.tasks]
    with engine.begin() as conn:
        for table in dependents:
            conn.execute(table.delete().where(table.c.task_identifier.in_(identifiers)))
