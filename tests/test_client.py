"""The ZVM client against the simulator over real loopback HTTP(S)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from etl.config import ZvmConfig
from etl.errors import ZvmAuthError, ZvmResponseError, ZvmRetriesExhausted, ZvmTlsError
from etl.normalize import TaskRecord, normalize_task
from etl.zvm.client import TaskFilters, ZvmClient
from tests.clocks import ManualTime
from zvm_simulator import Simulator

PASSWORD = "cl1ent-Secret"


def zvm_for(sim: Simulator, **overrides: Any) -> ZvmConfig:
    settings: dict[str, Any] = {
        "name": "sim",
        "url": sim.url,
        "auth": sim.settings.auth,
        "username": sim.settings.username,
        "password": PASSWORD,
        "retry_for": "10s",
    }
    if sim.ca_path is not None:
        settings["ca_bundle"] = sim.ca_path
    return ZvmConfig(**(settings | overrides))


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(seed=4, speed=0, days=1, tasks_per_hour=60, password=PASSWORD) as simulator:
        yield simulator


KEYCLOAK: dict[str, Any] = {
    "seed": 4,
    "speed": 0,
    "days": 1,
    "auth": "keycloak",
    "password": PASSWORD,
    "client_secret": "cc-secret",
    "client_id": "zerto-client",
    "token_lifetime": 2.0,
    "date_style": "appliance",
    "key_case": "camel",
    "include_task_identifier": False,
}


@pytest.fixture
def keycloak_sim() -> Iterator[Simulator]:
    with Simulator(**KEYCLOAK) as simulator:
        yield simulator


def test_fetch_everything_and_one(sim: Simulator) -> None:
    with ZvmClient(zvm_for(sim)) as client:
        tasks = client.fetch_tasks()
        assert tasks == sim.ground_truth()
        assert len(tasks) > 20
        first = tasks[0]
        assert client.fetch_task(first["TaskIdentifier"]) == first
        assert client.fetch_task("00000000-0000-0000-0000-000000000000.x") is None
        types = client.fetch_task_types()
    assert "FailOverTest" in types and "Login" in types


def test_filters_select_exactly_what_the_zvm_would(sim: Simulator) -> None:
    records = [normalize_task(t) for t in sim.ground_truth()]
    tasks = {r.task_identifier: r for r in records if isinstance(r, TaskRecord)}
    middle = sorted(t.started_at for t in tasks.values())[len(tasks) // 2]
    # Filters go out in whole seconds: lower bounds round down, upper bounds up.
    lower = middle.replace(microsecond=0)
    upper = lower + timedelta(seconds=1) if middle.microsecond else middle
    with ZvmClient(zvm_for(sim)) as client:
        after = client.fetch_tasks(TaskFilters(started_after=middle))
        before = client.fetch_tasks(TaskFilters(started_before=middle))
        done = client.fetch_tasks(TaskFilters(completed_after=middle))
        failed = client.fetch_tasks(TaskFilters(status=4))

    def ids(items: list[Any]) -> set[str]:
        return {r.task_identifier for r in map(normalize_task, items) if isinstance(r, TaskRecord)}

    assert ids(after) == {i for i, t in tasks.items() if t.started_at >= lower}
    assert ids(before) == {i for i, t in tasks.items() if t.started_at <= upper}
    assert ids(done) == {
        i for i, t in tasks.items() if t.completed_at is not None and t.completed_at >= lower
    }
    assert ids(after) | ids(before) == set(tasks)
    assert failed and all(t["Status"]["State"] == 4 for t in failed)


def test_session_expiry_is_handled_by_logging_in_again(sim: Simulator) -> None:
    sim.faults.session_max_requests = 2
    with ZvmClient(zvm_for(sim)) as client:
        for _ in range(5):
            client.fetch_task_types()
        assert client.stats.retries == 0
    logins = [r for r in sim.requests if r.path.lower() == "/v1/session/add"]
    assert len(logins) >= 3
    assert sum(r.status == 401 for r in sim.requests) >= 2


def test_session_ttl_expiry() -> None:
    clock = ManualTime()
    with Simulator(seed=3, speed=0, days=0.5, monotonic=clock, password=PASSWORD) as sim:
        sim.faults.session_ttl = 0.3
        with ZvmClient(zvm_for(sim)) as client:
            client.fetch_task_types()
            clock.advance(0.4)
            client.fetch_task_types()
        assert sum(r.path.lower() == "/v1/session/add" for r in sim.requests) == 2


def test_logout_ends_the_session(sim: Simulator) -> None:
    client = ZvmClient(zvm_for(sim))
    client.fetch_task_types()
    client.close()
    assert sim.requests[-1].method == "DELETE" and sim.requests[-1].path == "/v1/session"


def test_keycloak_password_grant_renews_before_expiry() -> None:
    clock = ManualTime()  # the ZVM's token lifetime and the client's renewal, both by hand
    with (
        Simulator(**KEYCLOAK, monotonic=clock) as keycloak_sim,
        ZvmClient(zvm_for(keycloak_sim), monotonic=clock) as client,
    ):
        tasks = client.fetch_tasks()
        assert tasks and "taskIdentifier" not in tasks[0]
        record = normalize_task(tasks[0])
        assert (
            isinstance(record, TaskRecord)
            and record.task_identifier == tasks[0]["link"]["identifier"]
        )
        clock.advance(1.7)  # past 80 % of the 2 s token lifetime: renewed before use
        client.fetch_task_types()
        token_calls = [r for r in keycloak_sim.requests if r.path.endswith("/token")]
        assert len(token_calls) == 2
        assert not any(r.status == 401 for r in keycloak_sim.requests)


def test_keycloak_client_credentials_and_401_regrant(keycloak_sim: Simulator) -> None:
    zvm = zvm_for(keycloak_sim, username=None, password=None, client_secret="cc-secret")
    keycloak_sim.faults.session_max_requests = 1
    with ZvmClient(zvm) as client:
        client.fetch_task_types()
        client.fetch_task_types()
    assert sum(r.path.endswith("/token") for r in keycloak_sim.requests) == 2


@pytest.mark.parametrize("auth", ["session", "keycloak"])
def test_wrong_credentials(auth: str) -> None:
    sim = Simulator(seed=1, speed=0, days=0.1, auth=auth, password=PASSWORD)
    # Entered left to right: the simulator has its URL before the client is built.
    with (
        sim,
        pytest.raises(ZvmAuthError) as caught,
        ZvmClient(zvm_for(sim, password="wrong-one")) as client,
    ):
        client.fetch_tasks()
    assert "refused the login of user 'admin'" in str(caught.value)
    assert "wrong-one" not in str(caught.value)


def test_5xx_storm_is_retried(sim: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    sim.faults.error_rate = 0.5
    sim.faults.retry_after = 0.01
    with caplog.at_level(logging.INFO), ZvmClient(zvm_for(sim)) as client:
        for _ in range(6):
            assert client.fetch_tasks(TaskFilters(status=6))
    assert client.stats.retries > 0
    assert any("retrying in" in m for m in caplog.messages)


def test_retries_give_up_within_the_budget(sim: Simulator) -> None:
    sim.faults.error_rate = 1.0
    sim.faults.retry_after = 0.2
    began = time.monotonic()
    with (
        pytest.raises(ZvmRetriesExhausted) as caught,
        ZvmClient(zvm_for(sim, retry_for="1s")) as client,
    ):
        client.fetch_tasks()
    assert time.monotonic() - began < 5
    assert "HTTP 503" in str(caught.value) and caught.value.attempts >= 3


def test_dropped_connections_are_retried(sim: Simulator) -> None:
    sim.faults.drop_rate = 0.5
    with ZvmClient(zvm_for(sim)) as client:
        for _ in range(4):
            assert client.fetch_tasks() == sim.ground_truth()
    assert client.stats.retries > 0


def test_latency_is_waited_for_and_timeouts_retried(sim: Simulator) -> None:
    sim.faults.latency = 0.3
    with (
        ZvmClient(zvm_for(sim, timeout="0.1s", retry_for="1s")) as client,
        pytest.raises(ZvmRetriesExhausted, match="timed out"),
    ):
        client.fetch_task_types()
    with ZvmClient(zvm_for(sim, timeout="60s")) as client:
        assert client.fetch_task_types()


def test_malformed_records_pass_through_for_normalization(sim: Simulator) -> None:
    sim.faults.malformed_rate = 1.0
    with ZvmClient(zvm_for(sim)) as client:
        tasks = client.fetch_tasks()
    assert tasks and not any(isinstance(normalize_task(t), TaskRecord) for t in tasks)


def test_a_400_from_the_zvm_says_what_it_refused(sim: Simulator) -> None:
    with ZvmClient(zvm_for(sim)) as client, pytest.raises(ZvmResponseError) as caught:
        client.fetch_tasks(TaskFilters(type="NoSuchType"))
    assert caught.value.status_code == 400 and "HTTP 400" in str(caught.value)


def test_tls_with_ca_bundle_and_with_the_wrong_ca(tmp_path: Any) -> None:
    with Simulator(seed=1, speed=0, days=0.2, tls=True, password=PASSWORD) as sim:
        assert sim.url.startswith("https://") and sim.ca_path is not None
        with ZvmClient(zvm_for(sim)) as client:
            assert client.fetch_task_types()
        with Simulator(seed=2, speed=0, days=0.1, tls=True) as other:
            assert other.ca_path is not None
            wrong = zvm_for(sim, ca_bundle=other.ca_path)
            with pytest.raises(ZvmTlsError) as caught, ZvmClient(wrong) as client:
                client.fetch_task_types()
        message = str(caught.value)
        assert "could not be verified" in message and "set ca_bundle" in message
        no_ca = zvm_for(sim)
        no_ca = no_ca.model_copy(update={"ca_bundle": None})
        with pytest.raises(ZvmTlsError), ZvmClient(no_ca) as client:
            client.fetch_task_types()
        insecure = no_ca.model_copy(update={"verify_tls": False})
        with ZvmClient(insecure) as client:
            assert client.fetch_task_types()


def test_the_simulated_clock_moves_tasks_on(sim: Simulator) -> None:
    with ZvmClient(zvm_for(sim)) as client:
        running = [t for t in client.fetch_tasks() if t["Completed"] is None]
        sim.advance(timedelta(hours=13))
        later = [client.fetch_task(t["TaskIdentifier"]) for t in running]
    assert running and all(t is not None and t["Completed"] for t in later)
