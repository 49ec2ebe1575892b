"""The Prometheus metrics: what each pass and each HTTP attempt to a ZVM adds, and serving."""

from __future__ import annotations

import dataclasses
import math
import socket
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from sqlalchemy.engine import Engine

from etl.config import parse_config
from etl.errors import EtlError, ZvmError
from etl.metrics import Metrics, endpoint_of
from etl.status import ZvmStatus, zvm_status
from etl.sync import RunResult
from etl.warehouse.load import LoadCounts
from etl.warehouse.verifications import save_verification
from tests.service import PASSWORD, start_sim


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def result(status: Literal["succeeded", "failed", "skipped"], **counts: int) -> RunResult:
    began = datetime.now(UTC) - timedelta(seconds=3)
    return RunResult(
        "nyc",
        "schedule",
        status,
        began,
        began + timedelta(seconds=2),
        run_id=1,
        counts=LoadCounts(**counts),
        requests=7,
        retries=2,
    )


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/v1/tasks", "/v1/tasks"),
        ("/v1/tasks/types", "/v1/tasks/types"),
        ("/v1/tasks/5e81d46e-0000.d2da8a37-1111", "/v1/tasks/{id}"),
        ("/v1/tasks/a%2Fb.c", "/v1/tasks/{id}"),
        ("/v1/session/add", "/v1/session/add"),
        ("/auth/realms/zerto/protocol/openid-connect/token", "/auth/token"),
    ],
)
def test_endpoints_are_templates(path: str, endpoint: str) -> None:
    assert endpoint_of(path) == endpoint


def test_a_pass_counts_outcome_tasks_and_retries() -> None:
    metrics = Metrics()
    metrics.track("nyc")
    assert value(metrics, "zvm_etl_passes_total", zvm="nyc", outcome="failed") == 0
    assert value(metrics, "zvm_etl_seconds_since_last_success", zvm="nyc") == math.inf
    assert value(metrics, "zvm_etl_last_success_timestamp_seconds", zvm="nyc") == 0

    metrics.observe_pass(
        result("succeeded", received=10, inserted=4, updated=3, unchanged=2, rejected=1)
    )
    metrics.observe_pass(result("failed"))
    metrics.observe_pass(result("skipped"))
    assert value(metrics, "zvm_etl_passes_total", zvm="nyc", outcome="succeeded") == 1
    assert value(metrics, "zvm_etl_passes_total", zvm="nyc", outcome="failed") == 1
    assert value(metrics, "zvm_etl_passes_total", zvm="nyc", outcome="skipped") == 1
    assert value(metrics, "zvm_etl_tasks_received_total", zvm="nyc") == 10
    assert value(metrics, "zvm_etl_tasks_loaded_total", zvm="nyc", change="inserted") == 4
    assert value(metrics, "zvm_etl_tasks_loaded_total", zvm="nyc", change="updated") == 3
    assert value(metrics, "zvm_etl_tasks_loaded_total", zvm="nyc", change="unchanged") == 2
    assert value(metrics, "zvm_etl_tasks_rejected_total", zvm="nyc") == 1
    assert value(metrics, "zvm_etl_api_retries_total", zvm="nyc") == 4  # skipped: none
    assert value(metrics, "zvm_etl_pass_duration_seconds_count", zvm="nyc") == 2
    assert value(metrics, "zvm_etl_pass_duration_seconds_sum", zvm="nyc") == 4
    since = value(metrics, "zvm_etl_seconds_since_last_success", zvm="nyc")
    assert since is not None and 0 < since < 60


def test_status_rows_set_the_gauges_and_never_move_last_success_back() -> None:
    metrics = Metrics()
    recent = datetime.now(UTC).replace(microsecond=0)
    row = ZvmStatus(
        zvm="nyc",
        url=None,
        last_run_at=None,
        last_run_trigger=None,
        last_run_status=None,
        last_error=None,
        last_success_at=recent.isoformat(),
        cursor_started=None,
        cursor_completed=None,
        tasks=9,
        open_tasks=5,
        lag_seconds=None,
        cursor_age_seconds=None,
        retention_at_risk=True,
    )
    metrics.observe_status(row)
    older = (recent - timedelta(hours=1)).isoformat()
    metrics.observe_status(dataclasses.replace(row, last_success_at=older, open_tasks=2))
    assert value(metrics, "zvm_etl_open_tasks", zvm="nyc") == 2
    assert value(metrics, "zvm_etl_retention_at_risk", zvm="nyc") == 1
    stamp = value(metrics, "zvm_etl_last_success_timestamp_seconds", zvm="nyc")
    assert stamp == recent.timestamp()


def test_the_last_complete_verification_gauge_is_read_from_the_warehouse(
    warehouse: Engine, warehouse_url: str
) -> None:
    config = parse_config(
        {"warehouse": {"url": warehouse_url}, "zvms": [{"name": "nyc", "url": "http://z.test"}]},
        env={},
        zvm_secrets=False,
    )
    metrics = Metrics()
    metrics.observe_status(zvm_status(warehouse, config, "nyc"))
    gauge = "zvm_etl_last_complete_verification_timestamp_seconds"
    assert value(metrics, gauge, zvm="nyc") == 0  # never verified
    now = datetime.now(UTC).replace(microsecond=0)
    for ago, outcome in ((timedelta(hours=5), "complete"), (timedelta(hours=1), "incomplete")):
        row = {"zvm": "nyc", "status": outcome, "started_at": now - ago, "finished_at": now - ago}
        save_verification(warehouse, row)
    metrics.observe_status(zvm_status(warehouse, config, "nyc"))
    assert value(metrics, gauge, zvm="nyc") == (now - timedelta(hours=5)).timestamp()


def test_the_client_hook_measures_every_attempt_and_its_errors() -> None:
    sim = start_sim(days=0.2)
    sim.faults.error_rate = 0.5
    sim.faults.retry_after = 0.01
    config = parse_config(
        {
            "zvms": [
                {
                    "name": "sim",
                    "url": sim.url,
                    "username": "admin",
                    "password": PASSWORD,
                    "retry_for": "20s",
                },
                {"name": "down", "url": "http://127.0.0.1:9", "username": "a", "password": "b"},
            ]
        },
        env={},
    )
    metrics = Metrics()
    try:
        with metrics.client_factory(config.zvm("sim")) as client:
            for _ in range(6):
                client.fetch_task_types()
            assert client.stats.retries > 0
        sent = [r for r in sim.requests if r.path == "/v1/tasks/types"]
        failed = [r for r in sent if r.status == 503]
    finally:
        sim.stop()
    assert failed, "the simulator answered every request: raise error_rate"
    labels = {"zvm": "sim", "endpoint": "/v1/tasks/types"}
    assert value(metrics, "zvm_etl_api_request_duration_seconds_count", **labels) == len(sent)
    assert value(metrics, "zvm_etl_api_errors_total", **labels, error="http_503") == len(failed)

    down = config.zvm("down").model_copy(update={"retry_for": timedelta(0)})
    with metrics.client_factory(down) as client, pytest.raises(ZvmError):
        client.fetch_tasks()
    assert value(
        metrics, "zvm_etl_api_errors_total", zvm="down", endpoint="/v1/tasks", error="connection"
    )


def test_served_over_http_and_a_taken_port_is_a_clear_error() -> None:
    metrics = Metrics()
    metrics.observe_pass(result("succeeded", received=3, inserted=3))
    port = metrics.serve(0, address="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        assert 'zvm_etl_passes_total{outcome="succeeded",zvm="nyc"} 1.0' in text
        assert "# HELP zvm_etl_seconds_since_last_success" in text
        assert "python_gc" not in text, "the global registry leaked in"
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            with pytest.raises(EtlError, match=r"cannot serve metrics on 127\.0\.0\.1"):
                Metrics().serve(taken.getsockname()[1], address="127.0.0.1")
    finally:
        metrics.close()
