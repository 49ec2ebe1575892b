"""``make demo``: the whole job on the embedded default, in about half a minute.

It starts the bundled ZVM simulator on a free port, writes ``demo/config.yaml`` for it
(warehouse: ``demo/warehouse.db``, SQLite), then runs the real commands a user would:
``zvm-etl db upgrade``, a first ``sync`` (which loads the history the ZVM holds) and a few
more passes while the simulated clock moves on, ``zvm-etl status``, and two analyst
queries from ``sql/queries/``. Every command is printed before it runs. The simulator
stops at the end; the warehouse stays for you to query (``sqlite3 demo/warehouse.db``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

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
STEPS = (5, 5, 60)
"""Minutes the simulated clock moves on before each later pass."""


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


def _run(*args: str, env: dict[str, str]) -> None:
    command = ["zvm-etl", *args]
    print(f"\n$ {shlex.join(command)}", flush=True)
    completed = subprocess.run([sys.executable, "-m", "etl", *args], env=env, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"demo: `{shlex.join(command)}` exited {completed.returncode}")


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
    engine = sa.create_engine(f"sqlite:///{warehouse}")
    with pd.option_context("display.width", 160, "display.max_columns", 12):
        for name, columns in QUERIES.items():
            frame = pd.read_sql_query(sa.text(query_sql(name, dialect="sqlite")), engine)
            shown = f"columns {', '.join(columns)}; " if columns else ""
            print(f"\n-- sql/queries/{name}.sql ({shown}first rows)")
            frame = frame[list(columns)] if columns else frame
            print(frame.head(8).to_string(index=False, na_rep="-"))
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
                "SELECT 'etl_runs', COUNT(*) FROM etl_runs"
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
        "v_task_daily, v_failover_tests, v_task_vpgs, v_open_tasks, v_etl_health)"
    )


if __name__ == "__main__":
    main()
