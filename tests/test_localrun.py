"""``make run`` (``scripts/localrun.py``): the bundled simulator when there is no
``./config.yaml``, the user's configuration when there is one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.service import wait_until

LOCALRUN = Path(__file__).resolve().parent.parent / "scripts" / "localrun.py"


def test_without_config_it_schedules_the_simulator_into_warehouse_db(tmp_path: Path) -> None:
    env = os.environ | {"METRICS_PORT": "0", "PYTHONPATH": str(Path(__file__).parent.parent)}
    env.pop("ZVM_ETL_WAREHOUSE_URL", None)
    env.pop("ZVM_ETL_CONFIG", None)
    process = subprocess.Popen(
        [sys.executable, str(LOCALRUN)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    warehouse = tmp_path / "warehouse.db"

    def loaded() -> bool:
        if not warehouse.exists():
            return False
        engine = sa.create_engine(f"sqlite:///{warehouse}")
        try:
            with engine.connect() as conn:
                query = "SELECT COUNT(*) FROM etl_runs WHERE status = 'succeeded'"
                return bool(conn.exec_driver_sql(query).scalar())
        except sa.exc.OperationalError:
            return False  # the schema is being created
        finally:
            engine.dispose()

    try:
        wait_until(loaded, what="a first pass into ./warehouse.db")
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert "no ./config.yaml, so this schedules the bundled ZVM simulator" in output
    assert "into ./warehouse.db every 30s" in output
    assert "stopped cleanly" in output


def test_with_config_it_runs_schedule_with_it(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("zvms: []\n")
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parent.parent)}
    done = subprocess.run(
        [sys.executable, str(LOCALRUN)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "./config.yaml found: zvm-etl --config config.yaml schedule" in done.stdout
    assert done.returncode == 2 and "config.yaml: zvms:" in done.stderr
