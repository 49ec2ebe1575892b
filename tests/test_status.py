"""``zvm-etl status`` as a health check: exit 0 when healthy, 4 when a configured ZVM is
stale, and the retention warning when the gap since a ZVM's last success nears its
task retention (status, ``sync`` and the scheduler's logs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from etl.cli import EXIT_STALE, cli
from etl.warehouse.load import LoadCounts
from etl.warehouse.runs import finish_run, start_run
from etl.warehouse.verifications import save_verification

ENV = {"ETL_TEST_PASSWORD": "Unmistakable-Pa55phrase-7f3e"}


def write_config(tmp_path: Path, url: str, *names: str, **sync: str) -> Path:
    lines = ["warehouse:", f"  url: {url}", "zvms:"]
    for name in names:
        lines += [
            f"  - name: {name}",
            "    url: http://127.0.0.1:9",  # nothing listens: a sync fails at once
            "    username: svc",
            "    password: ${ETL_TEST_PASSWORD}",
            "    retry_for: 0s",
            "    task_retention: 30d",
        ]
    lines += ["sync:", "  interval: 5m"] + [f"  {k}: {v}" for k, v in sync.items()]
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def succeeded(engine: Engine, zvm: str, ago: timedelta) -> None:
    """A succeeded etl_runs row for ``zvm`` that finished ``ago``."""
    finished = datetime.now(UTC) - ago
    run_id = start_run(
        engine, zvm=zvm, url="http://127.0.0.1:9", trigger="sync", now=finished - timedelta(1e-3)
    )
    with engine.begin() as conn:
        finish_run(conn, run_id, LoadCounts(), requests=1, retries=0, now=finished)


def verified(engine: Engine, zvm: str, status: str, ago: timedelta, **row: Any) -> datetime:
    """A verifications row for ``zvm`` that finished ``ago``; its finished_at."""
    finished = (datetime.now(UTC) - ago).replace(microsecond=0)
    began = finished - timedelta(seconds=30)
    values = {"zvm": zvm, "status": status, "started_at": began, "finished_at": finished}
    save_verification(engine, values | {"since": began - timedelta(days=30), "until": began} | row)
    return finished


def status(config: Path, *args: str) -> Result:
    return CliRunner(env=ENV).invoke(
        cli, ["--config", str(config), "status", *args], catch_exceptions=False
    )


def test_healthy_zvms_exit_0(warehouse: Engine, warehouse_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, warehouse_url, "nyc", "lon")
    succeeded(warehouse, "nyc", timedelta(minutes=1))
    succeeded(warehouse, "lon", timedelta(minutes=14))  # stale after 3 x 5m
    result = status(config)
    assert result.exit_code == 0, result.output
    assert result.output.count("ok (stale after 15.0m)") == 2
    rows = orjson.loads(status(config, "--json").output)
    assert [(r["zvm"], r["stale"], r["retention_at_risk"]) for r in rows] == [
        ("nyc", False, False),
        ("lon", False, False),
    ]
    assert rows[0]["stale_after_seconds"] == 900 and rows[0]["task_retention_seconds"] == 2592000


def test_a_stale_zvm_exits_4(warehouse: Engine, warehouse_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, warehouse_url, "nyc", "lon")
    succeeded(warehouse, "nyc", timedelta(minutes=1))
    succeeded(warehouse, "lon", timedelta(hours=2))
    result = status(config)
    assert result.exit_code == EXIT_STALE == 4, result.output
    assert "STALE: no successful pass for 2.0h (stale after 15.0m)" in result.output
    json_result = status(config, "--json")
    assert json_result.exit_code == 4
    assert [r["stale"] for r in orjson.loads(json_result.output)] == [False, True]
    assert status(config, "--stale-after", "3h").exit_code == 0
    assert status(write_config(tmp_path, warehouse_url, "nyc", stale_after="30s")).exit_code == 4


def test_never_synced_is_stale_and_unconfigured_zvms_do_not_count(
    warehouse: Engine, warehouse_url: str, tmp_path: Path
) -> None:
    succeeded(warehouse, "nyc", timedelta(minutes=1))
    succeeded(warehouse, "retired", timedelta(days=90))  # in the warehouse, not configured
    config = write_config(tmp_path, warehouse_url, "nyc")
    rows = orjson.loads(status(config, "--json").output)
    assert [(r["zvm"], r["configured"], r["stale"]) for r in rows] == [
        ("nyc", True, False),
        ("retired", False, True),
    ]
    assert status(config).exit_code == 0
    result = status(write_config(tmp_path, warehouse_url, "nyc", "new"))
    assert result.exit_code == 4
    assert "STALE: no successful pass ever" in result.output


def test_retention_warning_in_status_and_sync_logs(
    warehouse: Engine, warehouse_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, warehouse_url, "nyc", "lon")
    succeeded(warehouse, "nyc", timedelta(days=16))  # more than half of 30d
    succeeded(warehouse, "lon", timedelta(days=14))
    rows = orjson.loads(status(config, "--json").output)
    assert [r["retention_at_risk"] for r in rows] == [True, False]
    warning = rows[0]["retention_warning"]
    assert "ZVM nyc: the last successful pass was 16.0d ago, more than 50% of its 30d" in warning
    assert rows[1]["retention_warning"] is None
    result = status(config)
    assert result.exit_code == 4
    assert "WARNING" in result.output and "lost" in result.output

    runner = CliRunner(env=ENV)
    synced = runner.invoke(cli, ["--config", str(config), "--log-format", "json", "sync"])
    assert synced.exit_code == 1
    events = [orjson.loads(line) for line in synced.stderr.splitlines()]
    retention = [e for e in events if e.get("event") == "retention"]
    assert [(e["zvm"], e["level"]) for e in retention] == [("nyc", "warning")]
    assert ENV["ETL_TEST_PASSWORD"] not in synced.output + synced.stderr


def test_status_says_when_the_history_was_last_proven_complete(
    warehouse: Engine, warehouse_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, warehouse_url, "nyc", "lon", "ams")
    for zvm in ("nyc", "lon", "ams"):
        succeeded(warehouse, zvm, timedelta(minutes=1))
    proven = verified(warehouse, "nyc", "complete", timedelta(days=1))
    last = verified(warehouse, "nyc", "incomplete", timedelta(hours=1), days_differing=2)
    error = "ZVM lon at http://127.0.0.1:9 answered GET /v1/tasks with HTTP 503"
    verified(warehouse, "lon", "failed", timedelta(hours=2), since=None, until=None, error=error)
    result = status(config, "--json")
    assert result.exit_code == 0  # verify's outcome is verify's exit status, not status's
    rows = {row["zvm"]: row for row in orjson.loads(result.output)}
    nyc, lon, ams = rows["nyc"], rows["lon"], rows["ams"]
    assert nyc["proven_complete_at"] == proven.isoformat()
    until = proven - timedelta(seconds=30)
    assert nyc["proven_complete_until"] == until.isoformat()
    assert (nyc["last_verification_at"], nyc["last_verification_status"]) == (
        last.isoformat(),
        "incomplete",
    )
    assert nyc["last_verification_days_differing"] == 2
    assert (lon["last_verification_status"], lon["last_verification_error"]) == ("failed", error)
    assert lon["proven_complete_at"] is None
    assert (ams["last_verification_status"], ams["proven_complete_at"]) == (None, None)
    text = " ".join(status(config).output.split())
    assert (
        f"completeness proven complete {proven:%Y-%m-%d %H:%M:%S} UTC (up to "
        f"{until:%Y-%m-%d %H:%M:%S} UTC); last verification {last:%Y-%m-%d %H:%M:%S} UTC "
        "INCOMPLETE: 2 day(s) differ" in text
    )
    assert "completeness never proven complete; last verification" in text
    assert f"FAILED: {error}" in text
    assert "completeness never verified (run zvm-etl verify)" in text


@pytest.mark.parametrize("bad", ["soon", "-5m"])
def test_bad_stale_after_is_refused(tmp_path: Path, bad: str) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'w.db'}", "nyc")
    result = CliRunner(env=ENV).invoke(
        cli, ["--config", str(config), "status", "--stale-after", bad]
    )
    assert result.exit_code == 2 and "--stale-after" in result.output


def test_commands_that_never_talk_to_a_zvm_need_no_zvm_secret(
    warehouse: Engine, warehouse_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, warehouse_url, "nyc")
    succeeded(warehouse, "nyc", timedelta(minutes=1))
    runner = CliRunner(env={"ETL_TEST_PASSWORD": None})  # the variable is not set
    for command in (["status"], ["status", "--json"], ["db", "current"], ["db", "check"]):
        result = runner.invoke(cli, ["--config", str(config), *command])
        assert result.exit_code == 0, (command, result.output)
    synced = runner.invoke(cli, ["--config", str(config), "sync"])
    assert synced.exit_code == 2
    assert "zvms[0].password: the environment variable ETL_TEST_PASSWORD is not set" in (
        synced.output
    )
