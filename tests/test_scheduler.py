"""The scheduler in this process, with a short interval, against two simulated ZVMs.

One ZVM keeps answering, the other fails every pass and backs off (intervals x 2 up to
``max_backoff``) without delaying the first; once it answers again it is back to the
normal interval. The metrics endpoint is scraped over HTTP on the way.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from etl.config import SyncConfig, ZvmConfig, load_config, parse_config
from etl.metrics import Metrics
from etl.scheduler import (
    StopReport,
    backoff_interval,
    effective_jitter,
    first_pass_delay,
    pass_trigger,
    run_schedule,
)
from etl.status import zvm_status
from etl.warehouse.db import upgrade
from etl.zvm.client import ZvmClient
from tests.service import PASSWORD, runs, start_sim, wait_until, write_config

INTERVAL = timedelta(seconds=0.5)
CAP = timedelta(seconds=2)


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(0, 60), (-1, 60), (1, 120), (2, 240), (3, 480), (4, 600), (10, 600), (10**6, 600)],
)
def test_backoff_doubles_up_to_the_cap(failures: int, expected: float) -> None:
    interval = backoff_interval(timedelta(minutes=1), failures, cap=timedelta(minutes=10))
    assert interval == timedelta(seconds=expected)


def test_backoff_never_goes_below_the_interval() -> None:
    interval = timedelta(minutes=5)
    assert backoff_interval(interval, 3, cap=timedelta(minutes=1)) == interval
    assert backoff_interval(interval, 0, cap=timedelta(minutes=1)) == interval


@pytest.mark.parametrize(
    ("interval", "jitter", "expected"),
    [
        ("3s", "10s", 0.3),  # the reported case: 3-13 s between passes before
        ("1h", "10s", 10),  # a long interval keeps the whole jitter
        ("100s", "10s", 10),  # exactly a tenth
        ("50s", "10s", 5),
        ("3s", "0.1s", 0.1),  # a jitter below the cap is kept
        ("3s", "0s", 0),
        ("0.5s", "10s", 0.05),
    ],
)
def test_the_jitter_is_at_most_a_tenth_of_the_interval(
    interval: str, jitter: str, expected: float
) -> None:
    sync = SyncConfig.model_validate({"interval": interval, "jitter": jitter})
    assert effective_jitter(sync) == timedelta(seconds=expected)


class _Upper(random.Random):
    """Always draws the upper bound: the longest delay the jitter allows."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_the_first_pass_waits_at_most_the_effective_jitter() -> None:
    short = SyncConfig.model_validate({"interval": "3s"})  # default jitter 10s
    long = SyncConfig.model_validate({"interval": "1h"})
    assert first_pass_delay(short, rng=_Upper()) == timedelta(seconds=0.3)
    assert first_pass_delay(long, rng=_Upper()) == timedelta(seconds=10)
    no_jitter = SyncConfig.model_validate({"interval": "3s", "jitter": "0s"})
    assert first_pass_delay(no_jitter, rng=_Upper()) == timedelta(0)
    rng = random.Random(7)
    assert all(
        timedelta(0) <= first_pass_delay(short, rng=rng) <= timedelta(seconds=0.3)
        for _ in range(1000)
    )


def test_the_trigger_of_a_short_interval_has_a_short_jitter() -> None:
    short = SyncConfig.model_validate({"interval": "3s"})
    trigger = pass_trigger(short)
    assert trigger.interval == timedelta(seconds=3)
    assert trigger.jitter is not None and trigger.jitter <= 0.3
    long = SyncConfig.model_validate({"interval": "1h"})
    assert pass_trigger(long).jitter == 10
    # backing off lengthens the interval; the jitter stays the configured interval's
    backoff = pass_trigger(short, timedelta(seconds=24))
    assert backoff.interval == timedelta(seconds=24) and backoff.jitter == pytest.approx(0.3)
    no_jitter = SyncConfig.model_validate({"interval": "3s", "jitter": "0s"})
    assert pass_trigger(no_jitter).jitter is None


def test_the_start_up_line_states_the_effective_jitter(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    upgrade(url)
    config = parse_config(
        {
            "warehouse": {"url": url},
            "zvms": [{"name": "z", "url": "http://127.0.0.1:9", "username": "u", "password": "p"}],
            "sync": {"interval": "1h"},
        },
        env={},
    )
    short = config.model_copy(
        update={"sync": config.sync.model_copy(update={"interval": timedelta(seconds=3)})}
    )

    def no_client(zvm: ZvmConfig) -> ZvmClient:
        # The schedule stops before its first pass is due; one that starts anyway (a delay
        # drawn near 0) fails at once instead of waiting for a ZVM.
        raise RuntimeError("no ZVM in this test")

    messages: list[tuple[str, object]] = []
    for each in (short, config):
        stop = threading.Event()
        stop.set()  # the schedule starts, logs its start-up line, and stops at once
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="etl.scheduler"):
            run_schedule(each, stop_event=stop, handle_signals=False, client_factory=no_client)
        [started] = [r for r in caplog.records if getattr(r, "event", None) == "started"]
        messages.append((started.getMessage(), getattr(started, "jitter_seconds", None)))
    (short_line, short_jitter), (long_line, long_jitter) = messages
    assert "a pass every 3s (+ up to 0.3s jitter: sync.jitter 10s capped at a tenth" in short_line
    assert short_jitter == pytest.approx(0.3)
    assert "a pass every 1h (+ up to 10s jitter)" in long_line
    assert long_jitter == 10


def scrape(port: int) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return text, samples


def test_schedule_runs_passes_and_backs_off_a_failing_zvm(
    warehouse: Engine, warehouse_url: str, tmp_path: Path
) -> None:
    good, bad = start_sim(days=0.5, seed=1), start_sim(days=0.5, seed=2)
    bad.faults.error_rate = 1.0
    bad.faults.retry_after = 0.01
    config_path = write_config(
        tmp_path / "config.yaml",
        {"good": good, "bad": bad},
        warehouse_url,
        zvm={"retry_for": "0.2s"},
        interval="0.5s",
        max_backoff="2s",
    )
    config = load_config(config_path, env={"ETL_TEST_PASSWORD": PASSWORD})
    metrics = Metrics()
    stop = threading.Event()
    reports: list[StopReport] = []
    thread = threading.Thread(
        target=lambda: reports.append(
            run_schedule(
                config, metrics=metrics, metrics_port=0, stop_event=stop, handle_signals=False
            )
        )
    )
    thread.start()
    try:

        def failed(name: str) -> list[Any]:
            return [r for r in runs(warehouse, name) if r.status == "failed"]

        wait_until(lambda: len(failed("bad")) >= 3, what="three failed passes of bad")
        attempts = failed("bad")
        gaps = [b.started_at - a.started_at for a, b in itertools.pairwise(attempts)]
        # after 1 failure it waits 1s, after 2 (and more) the 2s cap, never the 0.5s interval
        assert gaps[0] >= timedelta(seconds=1) and gaps[1] >= CAP, gaps
        wait_until(  # the gauges follow right after the run's row is written
            lambda: metrics.failures.labels("bad")._value.get() >= 3, what="the failures gauge"
        )
        assert metrics.interval.labels("bad")._value.get() == CAP.total_seconds()
        succeeded = [r for r in runs(warehouse, "good") if r.status == "succeeded"]
        assert len(succeeded) >= 4, "the failing ZVM held the other one back"
        assert metrics.interval.labels("good")._value.get() == INTERVAL.total_seconds()

        bad.faults.error_rate = 0
        wait_until(lambda: runs(warehouse, "bad")[-1].status == "succeeded", what="bad to recover")
        wait_until(
            lambda: metrics.interval.labels("bad")._value.get() == INTERVAL.total_seconds(),
            what="bad back to the normal interval",
        )
        assert metrics.failures.labels("bad")._value.get() == 0

        assert metrics.port is not None
        text, samples = scrape(metrics.port)
    finally:
        stop.set()
        thread.join(timeout=60)
        good.stop()
        bad.stop()
    assert reports == [StopReport()]
    assert PASSWORD not in text

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("zvm_etl_passes_total", zvm="good", outcome="succeeded") >= 4
    assert value("zvm_etl_passes_total", zvm="bad", outcome="failed") >= 3
    assert value("zvm_etl_passes_total", zvm="bad", outcome="succeeded") >= 1
    assert value("zvm_etl_tasks_loaded_total", zvm="good", change="inserted") > 0
    assert value("zvm_etl_tasks_loaded_total", zvm="bad", change="inserted") > 0
    assert value(
        "zvm_etl_api_errors_total", zvm="bad", endpoint="/v1/tasks/types", error="http_503"
    )
    assert value("zvm_etl_api_request_duration_seconds_count", zvm="good", endpoint="/v1/tasks")
    assert value("zvm_etl_api_retries_total", zvm="bad") > 0
    for zvm in ("good", "bad"):
        since = value("zvm_etl_seconds_since_last_success", zvm=zvm)
        assert 0 <= since < 60
        assert value("zvm_etl_last_success_timestamp_seconds", zvm=zvm) > 0
        row = zvm_status(warehouse, config, zvm)
        assert value("zvm_etl_open_tasks", zvm=zvm) == row.open_tasks
        assert value("zvm_etl_retention_at_risk", zvm=zvm) == 0
