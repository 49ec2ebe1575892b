"""`zvm-etl export` on every database: formats, filters, errors, UTF-8 and chunking."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from etl.cli import cli
from etl.errors import ExportError, UnknownExportName
from etl.export import export, export_names
from etl.warehouse import schema
from tests.analyst import NOW, TASKS, load_scenario


@pytest.fixture
def config(tmp_path: Path, warehouse: Engine) -> Path:
    load_scenario(warehouse)
    url = warehouse.url.render_as_string(hide_password=False)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"warehouse:\n  url: {url}\n"
        "zvms:\n  - {name: nyc, url: 'https://nyc:9669', username: u, password: p}\n"
    )
    return path


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), "export", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_csv_of_a_view_to_stdout_in_utf8(config: Path) -> None:
    code, out, _ = run(config, "v_task_vpgs")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == sum(len(t.vpgs) for t in TASKS)
    by_task = {r["task_identifier"]: r for r in rows}
    assert by_task["ft3.s"]["vpg_name"] == "Médical Records ✓"
    assert by_task["ft1.s"]["initiated_by"] == "José Álvarez"
    assert by_task["ft1.s"]["started_at"] == iso(NOW - timedelta(days=10))
    assert by_task["ft1.s"]["duration_seconds"] == "120.0"
    assert by_task["ft1.s"]["priority"] == "2"
    assert by_task["ft5.s"]["vpg_name"] == ""  # no name known


def test_json_of_a_query_with_parameters(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "dr.json"
    code, _, err = run(
        config, "dr_test_evidence", "--format", "json", "--out", str(out), "--param", "days=200"
    )
    assert code == 0 and f"Wrote 4 rows of dr_test_evidence to {out} (json)" in err
    records = json.loads(out.read_text(encoding="utf-8"))
    assert [r["vpg_identifier"] for r in records] == ["vpg-e", "vpg-b", "vpg-c", "vpg-a"]
    b = records[1]
    assert b["vpg_name"] == "Médical Records ✓" and b["tested_in_window"] == 1
    assert b["tests_in_window"] == 2 and isinstance(b["tests_in_window"], int)
    assert b["last_success_started_at"] == iso(NOW - timedelta(days=120))
    assert records[0]["last_success_started_at"] is None
    code, out_text, _ = run(config, "dr_test_evidence", "--format", "json", "--zvm", "lon")
    assert [r["vpg_identifier"] for r in json.loads(out_text)] == ["vpg-e", "vpg-c"]


def test_parquet_keeps_types(config: Path, tmp_path: Path) -> None:
    import pandas as pd

    out = tmp_path / "tasks.parquet"
    code, _, err = run(config, "v_tasks", "--format", "parquet", "--out", str(out))
    assert code == 0, err
    frame = pd.read_parquet(out)
    assert len(frame) == len(TASKS)
    assert str(frame["started_at"].dtype) == "datetime64[us, UTC]"
    row = frame.set_index("task_identifier").loc["ft1.s"]
    assert row["started_at"] == pd.Timestamp(NOW - timedelta(days=10))
    assert row["initiated_by"] == "José Álvarez" and row["state"] == 6
    code, _, err = run(config, "v_tasks", "--format", "parquet")
    assert code == 2 and "Parquet is a binary file format: give --out PATH" in err


def test_view_filters(config: Path) -> None:
    since = NOW - timedelta(days=11)
    until = NOW - timedelta(days=4)
    code, out, _ = run(
        config,
        "v_tasks",
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
        "--zvm",
        "nyc",
    )
    assert code == 0
    got = {r["task_identifier"] for r in csv.DictReader(io.StringIO(out))}
    assert got == {t.identifier for t in TASKS if t.zvm == "nyc" and since <= t.started_at < until}
    assert got  # the window holds some tasks


def test_errors_exit_2_and_say_what_to_do(config: Path) -> None:
    code, _, err = run(config, "v_nothing")
    assert code == 2
    assert "there is no view or ready query named 'v_nothing'" in err
    assert all(name in err for name in export_names())
    code, _, err = run(config, "v_task_daily", "--since", "2025-01-01")
    assert code == 2 and "v_task_daily has no started_at column" in err
    code, _, err = run(config, "v_failover_tests", "--param", "days=3")
    assert code == 2 and "--param is for ready queries" in err
    code, _, err = run(config, "failure_rate_by_type_and_zvm", "--zvm", "nyc")
    assert code == 2 and "has no zvm parameter" in err
    code, _, err = run(config, "slowest_tasks", "--since", "2025-01-01")
    assert code == 2 and "a query's window is its days parameter" in err
    code, _, err = run(config, "slowest_tasks", "--param", "limit=many")
    assert code == 2 and "parameter limit takes a whole number" in err
    code, _, err = run(config, "slowest_tasks", "--param", "limit")
    assert code == 2 and "is not NAME=VALUE" in err


def test_an_empty_answer_still_has_its_header(config: Path) -> None:
    code, out, _ = run(config, "etl_health_daily", "--zvm", "lon")
    assert code == 0 and out.splitlines()[0].startswith("day,zvm,runs,")
    assert len(out.splitlines()) == 1
    code, out, _ = run(config, "etl_health_daily", "--zvm", "lon", "--format", "json")
    assert code == 0 and json.loads(out) == []


def test_large_exports_are_read_and_written_in_bounded_chunks(
    warehouse: Engine, tmp_path: Path
) -> None:
    load_scenario(warehouse)
    extra = 2_345
    rows = [
        {
            "task_identifier": f"bulk{i}.s",
            "zvm": "nyc",
            "task_id": f"bulk{i}",
            "type": "Login",
            "state": 6,
            "initiated_by": "Zoë",
            "started_at": NOW - timedelta(seconds=i),
            "payload": {},
            "payload_hash": "0" * 64,
            "first_seen_at": NOW,
            "last_seen_at": NOW,
            "last_changed_at": NOW,
        }
        for i in range(extra)
    ]
    with warehouse.begin() as connection:
        connection.execute(schema.task_types.insert().values(name="Login", first_seen_at=NOW))
        connection.execute(schema.tasks.insert(), rows)
    out = tmp_path / "tasks.json"
    result = export(warehouse, "v_tasks", fmt="json", out=out, chunk_rows=200)
    total = extra + len(TASKS)
    assert result.rows == total
    assert result.chunks == -(-total // 200)  # every chunk full but the last
    records = json.loads(out.read_text(encoding="utf-8"))
    assert len(records) == total and len({r["task_identifier"] for r in records}) == total
    csv_out = tmp_path / "tasks.csv"
    result = export(warehouse, "v_tasks", fmt="csv", out=csv_out, chunk_rows=500)
    lines = csv_out.read_text(encoding="utf-8").splitlines()
    assert result.chunks == -(-total // 500) and len(lines) == total + 1  # one header
    assert not list(tmp_path.glob(".tasks.*"))  # no temporary file left behind


def test_library_errors(warehouse: Engine, tmp_path: Path) -> None:
    with pytest.raises(UnknownExportName) as caught:
        export(warehouse, "tasks", out=tmp_path / "x.csv")
    assert caught.value.name == "tasks" and "v_tasks" in caught.value.valid
    with pytest.raises(ExportError, match="unknown format 'xml'"):
        export(warehouse, "v_tasks", fmt="xml", out=tmp_path / "x.xml")
    assert not (tmp_path / "x.csv").exists()
    with warehouse.connect() as connection:  # names never reach SQL unchecked
        assert connection.execute(sa.text("SELECT COUNT(*) FROM tasks")).scalar_one() == 0
