"""The `zvm-etl` command as users run it: exit codes, messages, and a real wheel install."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import sysconfig
from datetime import datetime, timedelta
from pathlib import Path

import click
import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from etl.cli import EXIT_INCOMPLETE, cli
from etl.warehouse import db, schema
from etl.warehouse.engine import make_engine
from tests.syncing import PASSWORD, delete_tasks
from zvm_simulator import Simulator

pytestmark = pytest.mark.sim(seed=9, days=1)
"""The ``sim`` fixture (conftest.py) of every test here."""

ROOT = Path(__file__).resolve().parent.parent


def write_config(tmp_path: Path, warehouse_url: str, zvms: list[tuple[str, str]]) -> Path:
    lines = ["warehouse:", f"  url: {warehouse_url}", "zvms:"]
    for name, url in zvms:
        lines += [
            f"  - name: {name}",
            f"    url: {url}",
            "    username: admin",
            "    password: ${SIM_PASSWORD}",
            "    retry_for: 1s",
        ]
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def invoke(*args: str) -> tuple[int, str]:
    runner = CliRunner()
    result = runner.invoke(cli, list(args), env={"SIM_PASSWORD": PASSWORD}, catch_exceptions=False)
    return result.exit_code, result.output


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_every_command_has_help_with_an_example_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    commands: list[str] = []
    assert isinstance(cli, click.Group)
    for name, command in cli.commands.items():
        if isinstance(command, click.Group):
            commands += [f"{name} {sub}" for sub in command.commands]
        else:
            commands.append(name)
    for line in commands:
        code, output = invoke(*line.split(), "--help")
        assert code == 0 and "Example:" in output, line
        assert f"zvm-etl {line}" in readme, f"`zvm-etl {line}` is not in the README"


def test_db_commands(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url, [("a", "http://zvm.test")])
    code, output = invoke("--config", str(config), "db", "current")
    assert code == 0 and "no schema yet (run `zvm-etl db upgrade`)" in output
    code, output = invoke("--config", str(config), "db", "check")
    assert code == 3 and "has no schema" in output
    head = db.head_revision()
    code, output = invoke("--config", str(config), "db", "upgrade")
    assert code == 0 and f"is at revision {head}" in output
    code, output = invoke("--config", str(config), "db", "downgrade", "0001")
    assert code == 0 and "is at revision 0001" in output
    code, output = invoke("--config", str(config), "db", "current")
    assert code == 0 and output.strip() == f"0001 (newest is {head}: run `zvm-etl db upgrade`)"
    code, output = invoke("--config", str(config), "sync")
    assert code == 3 and f"is at revision 0001, this version of zvm-task-etl needs {head}" in output
    invoke("--config", str(config), "db", "upgrade")
    code, output = invoke("--config", str(config), "db", "current")
    assert code == 0 and output.strip() == f"{head} (newest)"
    code, output = invoke("--config", str(config), "db", "check")
    assert code == 0 and "no drift" in output
    code, output = invoke("--config", str(config), "db", "downgrade", "base")
    assert code == 0 and "base (empty)" in output
    code, output = invoke("--config", str(config), "sync")
    assert code == 3 and "run `zvm-etl db upgrade`" in output


def test_sync_exit_status_and_status_json(
    tmp_path: Path, sim: Simulator, warehouse_url: str
) -> None:
    config = write_config(tmp_path, warehouse_url, [("good", sim.url), ("down", closed_port_url())])
    code, output = invoke("--config", str(config), "sync")
    assert code == 1
    code, output = invoke("--config", str(config), "sync", "--zvm", "good")
    assert code == 0
    code, output = invoke("--config", str(config), "sync", "--zvm", "nope")
    assert code == 2 and "no ZVM is named 'nope' (known: good, down)" in output
    code, output = invoke("--config", str(config), "status", "--json")
    assert code == 4  # a stale ZVM: "down" never synced
    rows = {row["zvm"]: row for row in json.loads(output)}
    assert rows["good"]["last_run_status"] == "succeeded" and rows["good"]["tasks"] > 0
    assert rows["down"]["last_run_status"] == "failed"
    assert "connection refused" in rows["down"]["last_error"]
    assert PASSWORD not in output
    assert rows["good"]["names_refreshed_at"] and rows["good"]["names_error"] is None
    assert rows["down"]["names_refreshed_at"] is None
    code, output = invoke("--config", str(config), "status")
    words = " ".join(output.split())
    assert "good" in words and "last success" in words and "connection refused" in words
    assert "names never read" in words  # "down"


def test_status_says_when_names_were_read_and_what_failed(
    tmp_path: Path, sim: Simulator, warehouse_url: str
) -> None:
    config = write_config(tmp_path, warehouse_url, [("good", sim.url)])
    with config.open("a") as text:
        text.write("sync:\n  entity_refresh_interval: 0s\n")
    assert invoke("--config", str(config), "sync")[0] == 0
    code, output = invoke("--config", str(config), "status", "--json")
    [row] = json.loads(output)
    assert code == 0 and row["names_error"] is None
    first_read = datetime.fromisoformat(row["names_refreshed_at"])
    code, output = invoke("--config", str(config), "status")
    words = " ".join(output.split())
    assert f"names read {first_read:%Y-%m-%d %H:%M:%S} UTC ok" in words
    sim.faults.missing_listings.add("/v1/vpgs")
    sim.faults.failing_listings.add("/v1/vras")
    assert invoke("--config", str(config), "sync")[0] == 0  # a warning, not a failed pass
    code, output = invoke("--config", str(config), "status", "--json")
    [row] = json.loads(output)
    assert code == 0 and datetime.fromisoformat(row["names_refreshed_at"]) >= first_read
    error = row["names_error"]
    assert "GET /v1/vpgs: ZVM good" in error and "HTTP 404" in error
    assert "GET /v1/vras: gave up on GET /v1/vras at ZVM good" in error and "HTTP 500" in error
    code, output = invoke("--config", str(config), "status")
    words = " ".join(output.split())
    assert "with problems (the names known before stay): GET /v1/vpgs: ZVM good" in words
    assert "GET /v1/vras" in words and PASSWORD not in output


def test_backfill_command_logs_windows_when_not_a_terminal(
    tmp_path: Path, sim: Simulator, warehouse_url: str
) -> None:
    config = write_config(tmp_path, warehouse_url, [("good", sim.url)])
    env = os.environ | {"SIM_PASSWORD": PASSWORD}
    since = (sim.now().date()).isoformat()
    done = subprocess.run(
        [sys.executable, "-m", "etl", "--config", str(config), "backfill", "--since", since],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"window 1/\d+", done.stderr)
    assert "backfill succeeded" in done.stderr
    code, output = invoke(
        "--config", str(config), "backfill", "--since", "2025-02-01", "--until", "2025-01-01"
    )
    assert code == 2 and "--until must be later than --since" in output


def test_simulate_serves_until_sigterm() -> None:
    command = [sys.executable, "-m", "etl", "simulate", "--port", "0", "--password", PASSWORD]
    with subprocess.Popen(
        [*command, "--days", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", first)
            assert match, first
            url = match.group(1)
            login = httpx.post(f"{url}/v1/session/add", auth=("admin", PASSWORD))
            assert login.status_code == 200
            session = {"x-zerto-session": login.headers["x-zerto-session"]}
            assert "FailOverTest" in httpx.get(f"{url}/v1/tasks/types", headers=session).json()
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0


def test_a_wheel_install_carries_migrations_and_sql(tmp_path: Path) -> None:
    """Build the wheel, install it (not editable) into a fresh venv, run from elsewhere."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    site.mkdir(parents=True, exist_ok=True)
    # The dependencies come from this environment; the package itself only from the wheel.
    deps = sysconfig.get_paths()["purelib"]
    (site / "deps.pth").write_text(deps + "\n")
    [wheel] = wheels.glob("*.whl")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "config.yaml").write_text(
        "warehouse:\n  url: sqlite:///w.db\n"
        "zvms:\n  - {name: a, url: 'http://zvm.test', username: u, password: p}\n"
    )
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ZVM_ETL_CONFIG")}
    code = (
        "import etl, sys; assert etl.__file__.startswith(sys.argv[1]), etl.__file__;"
        "from etl.cli import main; sys.argv = ['zvm-etl', 'db', 'upgrade']; main()"
    )
    done = subprocess.run(
        [python, "-c", code, str(venv)], cwd=work, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert f"is at revision {db.head_revision()}" in done.stdout
    check = subprocess.run(
        [
            python,
            "-c",
            "import sys; from etl.cli import main; sys.argv=['zvm-etl','db','check']; main()",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def test_simulate_hands_its_arguments_to_the_simulator() -> None:
    code, output = invoke("simulate", "--help")
    assert code == 0 and "Usage: zvm-etl simulate [OPTIONS]" in output and "--error-rate" in output
    code, output = invoke("simulate", "--utc-offset", "3 hours")
    assert code == 2 and "Invalid value for --utc-offset" in output and "+03:00" in output
    code, output = invoke("simulate", "--days", "-1")
    assert code == 2 and "days must be >= 0" in output


def test_sql_prints_a_view_or_a_query_for_a_database(tmp_path: Path) -> None:
    code, output = invoke("sql", "v_etl_health", "--dialect", "postgresql")
    assert code == 0 and "EXTRACT(EPOCH FROM" in output and "${" not in output
    code, output = invoke("sql", "v_etl_health", "--dialect", "sqlite")
    assert code == 0 and "julianday('now')" in output
    config = write_config(tmp_path, "mysql+pymysql://u@h/d", [("a", "http://zvm.test")])
    code, output = invoke("--config", str(config), "sql", "failover_tests_this_quarter")
    assert code == 0 and "UTC_DATE()" in output  # the configured warehouse's database
    code, output = invoke("sql", "nope", "--dialect", "sqlite")
    assert code == 2 and "'nope'" in output and "dr_test_evidence" in output


def test_verify_exit_statuses_the_printed_repair_and_json(
    tmp_path: Path, sim: Simulator, warehouse_url: str
) -> None:
    config = str(write_config(tmp_path, warehouse_url, [("good", sim.url), ("new", sim.url)]))
    assert invoke("--config", config, "sync", "--zvm", "good")[0] == 0
    code, output = invoke("--config", config, "verify", "--zvm", "good")
    assert (
        code == 0 and "ZVM good: complete: every task the ZVM holds is in the warehouse" in output
    )

    engine = make_engine(warehouse_url)
    try:
        tasks = schema.tasks
        with engine.connect() as conn:
            rows = conn.execute(sa.select(tasks.c.task_identifier, tasks.c.started_at)).all()
        lost = sorted(rows, key=lambda row: row.started_at)[len(rows) // 2 :][:3]
        delete_tasks(engine, [row.task_identifier for row in lost])
    finally:
        engine.dispose()
    code, output = invoke("--config", config, "verify", "--zvm", "good")
    assert code == EXIT_INCOMPLETE and "ZVM good: INCOMPLETE:" in output
    assert all(row.task_identifier in output for row in lost)
    repairs = re.findall(r"repair: (zvm-etl backfill .*)", output)
    days = sorted({row.started_at.date() for row in lost})
    assert repairs == [
        f"zvm-etl backfill --zvm good --since {day} --until {day + timedelta(days=1)}"
        for day in days
    ]
    for repair in repairs:  # as printed
        assert invoke("--config", config, *repair.split()[1:])[0] == 0
    done = CliRunner(env={"SIM_PASSWORD": PASSWORD}).invoke(
        cli, ["--config", config, "verify", "--zvm", "good", "--json"], catch_exceptions=False
    )
    [result] = json.loads(done.stdout)  # the log lines go to stderr
    assert done.exit_code == 0 and result["status"] == "complete"
    assert result["missing_in_warehouse"] == 0
    assert result["days_checked"] == len(result["days"]) > 0

    sim.faults.error_rate, sim.faults.retry_after = 1.0, 0
    code, output = invoke("--config", config, "verify")
    assert code == 1  # a failed ZVM outranks an incomplete one
    assert "ZVM good: FAILED: " in output and "run `zvm-etl verify --zvm good` again" in output
    assert "ZVM new: INCOMPLETE: never synced" in output and PASSWORD not in output
    sim.faults.reset()
    code, output = invoke("--config", config, "verify", "--zvm", "new")
    assert code == EXIT_INCOMPLETE and "run `zvm-etl sync --zvm new`, then verify again" in output
    code, output = invoke(
        "--config", config, "verify", "--since", "2025-02-01", "--until", "2025-01-01"
    )
    assert code == 2 and "--until must be later than --since" in output
