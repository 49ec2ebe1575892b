"""``make demo``: the whole job on the embedded default, in about half a minute.

It starts the bundled ZVM simulator on a free port, writes ``demo/config.yaml`` for it
(warehouse: ``demo/warehouse.db``, SQLite), then runs the real commands a user would:
``zvm-etl db upgrade``, a first ``sync`` (which loads the history the ZVM holds) and a few
more passes while the simulated clock moves on, ``zvm-etl status``, ``zvm-etl verify``
(complete), then, after deleting three tasks from the warehouse, ``verify`` again (the gap
and the command that repairs it), that ``backfill``, and ``verify`` once more (complete),
all while the simulator still runs; then two analyst queries from ``sql/queries/``, the
RTO of each VPG's last successful failover test (the simulated ZVM's Recovery Report's,
read by every pass) and the report. Every command is printed before it runs. The simulator
stops before the queries; the warehouse stays for you to query (``sqlite3
demo/warehouse.db``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from etl.queries import bind_parameters, read_query
from etl.warehouse import schema
from etl.warehouse.engine import make_engine
from etl.warehouse.sqlfiles import query_sql
from zvm_simulator import Simulator, SimulatorSettings

DEMO_DIR = Path("demo")
PASSWORD = "demo-password"
QUERIES: dict[str, tuple[str, ...]] = {
    "failure_rate_by_type_and_zvm": (),
    "failover_tests_this_quarter": (
        "vpg_name",
        "protected_site_name",
        "recovery_site_name",
        "priority",
        "tests",
        "successful_tests",
        "failed_tests",
        "last_test_started_at",
    ),
}
"""The analyst queries the demo prints, each with the columns it shows (none: all)."""
LAST_TESTS = (
    "vpg_name",
    "last_success_started_at",
    "last_success_duration_seconds",
    "last_success_rto_seconds",
    "last_success_rto_source",
)
"""The columns of dr_test_evidence the demo shows for each tested VPG."""
STEPS = (5, 5, 60)
"""Minutes the simulated clock moves on before each later pass."""
DELETED_FROM = [schema.task_status_changes, schema.task_vpgs, schema.task_hosts]
DELETED_FROM += [schema.task_sites, schema.task_flr_sessions, schema.tasks]
"""The tables a task's rows are in (the bridges and history first: they refer to it)."""


def _config_text(sim: Simulator, warehouse: Path) -> str:
    return (
        "# Written by `make demo`: the bundled simulator and a SQLite warehouse.\n"
        "warehouse:\n"
        f"  url: sqlite:///{warehouse}\n"
        "zvms:\n"
        "  - name: demo-zvm\n"
        f"    url: {sim.url}\n"
        "    auth: session\n"
        f"    username: {sim.settings.username}\n"
        "    password: ${ZVM_DEMO_PASSWORD}\n"
        "sync:\n"
        "  interval: 5m\n"
        "  overlap: 10m\n"
        "  entity_refresh_interval: 0s   # re-read VPG/site/host names every pass\n"
    )


def _run(*args: str, env: dict[str, str], expect: int = 0) -> str:
    """Run ``zvm-etl ARGS`` as a user would, printing the command and what it prints; its
    standard output. SystemExit when it does not exit ``expect``."""
    command = ["zvm-etl", *args]
    print(f"\n$ {shlex.join(command)}", flush=True)
    completed = subprocess.run(
        [sys.executable, "-m", "etl", *args],
        env=env,
        check=False,
        stdout=subprocess.PIPE,
        text=True,
    )
    print(completed.stdout, end="", flush=True)
    if completed.returncode != expect:
        raise SystemExit(f"demo: `{shlex.join(command)}` exited {completed.returncode}")
    if expect:
        print(f"(exit status {completed.returncode})", flush=True)
    return completed.stdout


def _delete_tasks(warehouse: Path, day: date, count: int) -> list[str]:
    """Delete ``count`` tasks that started on ``day`` from the warehouse (with their bridge
    and history rows), as a lost write would leave it; their identifiers."""
    tasks = schema.tasks
    start = datetime.combine(day, time(), UTC)
    engine = make_engine(f"sqlite:///{warehouse}")
    try:
        with engine.begin() as conn:
            identifiers = list(
                conn.execute(
                    sa.select(tasks.c.task_identifier)
                    .where(tasks.c.started_at >= start, tasks.c.started_at < start + timedelta(1))
                    .order_by(tasks.c.started_at)
                    .limit(count)
                ).scalars()
            )
            for table in DELETED_FROM:
                conn.execute(table.delete().where(table.c.task_identifier.in_(identifiers)))
    finally:
        engine.dispose()
    return identifiers


def _verify_and_repair(sim: Simulator, warehouse: Path, env: dict[str, str]) -> None:
    """verify (complete); three tasks deleted; verify (the gap, the repair); the repair;
    verify (complete again)."""
    _run("verify", env=env)
    day = sim.now().date() - timedelta(days=3)
    print(f"\n# deleting 3 tasks (started {day}) from the warehouse to show what verify reports")
    for identifier in _delete_tasks(warehouse, day, 3):
        print(f"#   {identifier}")
    report = _run("verify", env=env, expect=6)
    repairs = re.findall(r"repair: zvm-etl (backfill .*)", report)
    if not repairs:
        raise SystemExit("demo: verify printed no repair command")
    for repair in repairs:
        _run(*repair.split(), env=env)
    _run("verify", env=env)


def _print_last_tests(engine: sa.Engine) -> None:
    """The RTO of each VPG's last successful failover test (``dr_test_evidence``), by name."""
    query = read_query("dr_test_evidence")
    frame = pd.read_sql_query(
        sa.text(query.sql(dialect="sqlite")), engine, params=bind_parameters(query, {})
    )
    tested = frame[frame["last_success_task_identifier"].notna()].sort_values("vpg_name")
    print(
        "\n-- the RTO of each VPG's last successful failover test (sql/queries/"
        "dr_test_evidence.sql): the ZVM's Recovery Report's (recovery_report), else the test's "
        "task duration (task_duration)"
    )
    print(tested[list(LAST_TESTS)].to_string(index=False, na_rep="-"))


def main() -> None:
    """Run the demo (see the module docstring)."""
    DEMO_DIR.mkdir(exist_ok=True)
    warehouse = DEMO_DIR / "warehouse.db"
    for stale in DEMO_DIR.glob("warehouse.db*"):
        stale.unlink()
    # The simulated clock starts as far behind the real one as the demo will move it, so
    # that it ends at about now (a ZVM clock ahead of this host's would show a negative lag).
    start = datetime.now(UTC) - timedelta(minutes=sum(STEPS))
    settings = SimulatorSettings(
        seed=2026, days=14, tasks_per_hour=30, speed=0, password=PASSWORD, port=0, start=start
    )
    settings.faults.malformed_rate = 0.002
    settings.faults.malformed_recovery_rate = 0.01
    with Simulator(settings) as sim:
        config = DEMO_DIR / "config.yaml"
        config.write_text(_config_text(sim, warehouse))
        print(
            f"Simulated ZVM at {sim.url}: {settings.days:g} days of history, about "
            f"{settings.tasks_per_hour:g} tasks an hour; its clock is frozen and the demo "
            "moves it."
        )
        print(f"Configuration: {config} (warehouse {warehouse})")
        env = os.environ | {"ZVM_ETL_CONFIG": str(config), "ZVM_DEMO_PASSWORD": PASSWORD}
        env.pop("ZVM_ETL_WAREHOUSE_URL", None)
        _run("db", "upgrade", env=env)
        _run("sync", env=env)
        for minutes in STEPS:
            sim.advance(timedelta(minutes=minutes))
            print(f"\n# the simulated ZVM's clock moves {minutes} minutes on", flush=True)
            _run("sync", env=env)
        _run("status", env=env)
        _verify_and_repair(sim, warehouse, env)
    engine = sa.create_engine(f"sqlite:///{warehouse}")
    with pd.option_context("display.width", 160, "display.max_columns", 12):
        for name, columns in QUERIES.items():
            frame = pd.read_sql_query(sa.text(query_sql(name, dialect="sqlite")), engine)
            shown = f"columns {', '.join(columns)}; " if columns else ""
            print(f"\n-- sql/queries/{name}.sql ({shown}first rows)")
            frame = frame[list(columns)] if columns else frame
            print(frame.head(8).to_string(index=False, na_rep="-"))
        _print_last_tests(engine)
        counts = pd.read_sql_query(
            sa.text(
                "SELECT 'tasks' AS tbl, COUNT(*) AS n FROM tasks UNION ALL "
                "SELECT 'task_status_changes', COUNT(*) FROM task_status_changes UNION ALL "
                "SELECT 'task_vpgs', COUNT(*) FROM task_vpgs UNION ALL "
                "SELECT 'vpgs', COUNT(*) FROM vpgs UNION ALL "
                "SELECT 'vpgs named', COUNT(*) FROM vpgs WHERE name IS NOT NULL UNION ALL "
                "SELECT 'vpgs deleted on the ZVM', COUNT(*) FROM vpgs "
                "WHERE unlisted_at IS NOT NULL UNION ALL "
                "SELECT 'sites named', COUNT(*) FROM sites WHERE name IS NOT NULL UNION ALL "
                "SELECT 'hosts named', COUNT(*) FROM hosts WHERE name IS NOT NULL UNION ALL "
                "SELECT 'rejected_tasks', COUNT(*) FROM rejected_tasks UNION ALL "
                "SELECT 'recovery_operations', COUNT(*) FROM recovery_operations UNION ALL "
                "SELECT 'recovery operations linked to a task', COUNT(*) "
                "FROM recovery_operations WHERE task_identifier IS NOT NULL UNION ALL "
                "SELECT 'recovery_operation_steps', COUNT(*) FROM recovery_operation_steps "
                "UNION ALL SELECT 'rejected_recovery_operations', COUNT(*) "
                "FROM rejected_recovery_operations UNION ALL "
                "SELECT 'etl_runs', COUNT(*) FROM etl_runs UNION ALL "
                "SELECT 'verifications', COUNT(*) FROM verifications"
            ),
            engine,
        )
        print("\n-- row counts")
        print(counts.to_string(index=False))
    engine.dispose()
    report = DEMO_DIR / "report.html"
    _run("report", "--out", str(report), env=env)
    print(f"\nThe report: {report.resolve()} (open it in a browser; it needs no network)")
    print(
        f"\nDone. Query the warehouse yourself: sqlite3 {warehouse}  (views: v_tasks, "
        "v_task_daily, v_failover_tests, v_task_vpgs, v_open_tasks, v_etl_health, "
        "v_recovery_operations)"
    )


if __name__ == "__main__":
    main()
