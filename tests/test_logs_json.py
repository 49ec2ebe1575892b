"""Log lines for people and for collectors: ``--log-format json`` gives one JSON object per
line, the pass summary's numbers as separate fields, and never a secret."""

from __future__ import annotations

from pathlib import Path

import orjson

from etl.warehouse.db import upgrade
from tests.service import PASSWORD, Proc, start_sim, write_config

SUMMARY_FIELDS = {
    "zvm": str,
    "trigger": str,
    "status": str,
    "duration_seconds": float,
    "tasks_received": int,
    "tasks_inserted": int,
    "tasks_updated": int,
    "tasks_unchanged": int,
    "tasks_rejected": int,
    "requests": int,
    "retries": int,
}


def test_sync_json_lines_carry_the_summary_fields_and_no_secret(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    upgrade(url)
    good = start_sim(days=0.5)
    good.faults.malformed_rate = 0.05
    good.faults.error_rate = 0.2
    good.faults.retry_after = 0.01
    locked_out = start_sim(days=0.5, password="another-" + PASSWORD)  # refuses our password
    try:
        config = write_config(tmp_path / "config.yaml", {"nyc": good, "lon": locked_out}, url)
        proc = Proc(["sync"], config)
        assert proc.wait() == 1, proc.output  # lon failed, nyc still ran
        text = Proc(["sync", "--zvm", "nyc"], config, json_logs=False)
        assert text.wait() == 0, text.output
    finally:
        good.stop()
        locked_out.stop()

    events = proc.json_lines()
    assert all({"ts", "level", "logger", "message"} <= set(e) for e in events)
    summaries = {e["zvm"]: e for e in events if e.get("event") == "pass"}
    assert set(summaries) == {"nyc", "lon"}
    for summary in summaries.values():
        for key, kind in SUMMARY_FIELDS.items():
            assert isinstance(summary[key], kind), (key, summary)
    nyc, lon = summaries["nyc"], summaries["lon"]
    assert nyc["status"] == "succeeded" and nyc["level"] == "info"
    assert nyc["tasks_received"] >= nyc["tasks_inserted"] > 0
    assert nyc["tasks_rejected"] > 0 and nyc["retries"] > 0 and nyc["requests"] > nyc["retries"]
    assert f"{nyc['tasks_inserted']} inserted" in nyc["message"]
    assert lon["status"] == "failed" and lon["level"] == "error" and lon["error"]

    assert PASSWORD not in proc.output and PASSWORD not in text.output
    assert "Unmistakable" not in proc.output + text.output
    for line in text.lines:
        assert not line.startswith("{")
    assert any("nyc: sync succeeded in" in line for line in text.lines)
    assert orjson.loads(proc.lines[-1])  # the last line too is whole
