"""The fault knobs of the ZVM simulator (session expiry knobs are in test_simulator.py)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.simulator.wire_reading import read_date
from zvm_simulator import Faults, Simulator

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
Task = dict[str, Any]


def make(**overrides: Any) -> Simulator:
    settings: dict[str, Any] = {"seed": 6, "speed": 0, "start": START, "days": 1}
    settings.update(overrides)
    return Simulator(**settings)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with make() as simulator:
        yield simulator


@contextlib.contextmanager
def client_for(sim: Simulator) -> Iterator[httpx.Client]:
    """A logged-in client, closed afterwards."""
    with httpx.Client(base_url=sim.url) as http:
        login = http.post("/v1/session/add", auth=("admin", "zerto"))
        assert login.status_code == 200
        http.headers["x-zerto-session"] = login.headers["x-zerto-session"]
        yield http


# ---- error_rate ----------------------------------------------------------------------------


@pytest.mark.parametrize(("retry_after", "header"), [(1.0, "1"), (0.05, "0.05"), (2, "2")])
def test_error_rate_one_answers_503_with_retry_after(
    sim: Simulator, retry_after: float, header: str
) -> None:
    with client_for(sim) as http:
        sim.faults.error_rate = 1.0
        sim.faults.retry_after = retry_after
        for path in ("/v1/tasks", "/v1/tasks/types", "/v1/tasks/x.y"):
            response = http.get(path)
            assert response.status_code == 503
            assert response.headers["retry-after"] == header
            assert response.headers["content-type"] == "application/json; charset=utf-8"
            assert response.json()["Message"]
        # Logins are not API requests: they still work.
        assert http.post("/v1/session/add", auth=("admin", "zerto")).status_code == 200
        sim.faults.error_rate = 0.0
        assert http.get("/v1/tasks/types").status_code == 200


def test_error_rate_does_not_touch_keycloak_logins() -> None:
    with (
        make(auth="keycloak", faults=Faults(error_rate=1.0)) as sim,
        httpx.Client(base_url=sim.url) as http,
    ):
        form = {
            "grant_type": "password",
            "client_id": "zerto-client",
            "username": "admin",
            "password": "zerto",
        }
        grant = http.post("/auth/realms/zerto/protocol/openid-connect/token", data=form)
        assert grant.status_code == 200
        headers = {"Authorization": f"Bearer {grant.json()['access_token']}"}
        assert http.get("/v1/tasks", headers=headers).status_code == 503


def test_error_rate_fraction_is_reproducible_from_the_seed() -> None:
    def statuses(seed: int) -> list[int]:
        with (
            make(seed=seed, days=0.1, faults=Faults(error_rate=0.5)) as sim,
            client_for(sim) as http,
        ):
            return [http.get("/v1/tasks/types").status_code for _ in range(60)]

    first, again, other = statuses(1), statuses(1), statuses(2)
    assert first == again
    assert first != other
    assert set(first) == {200, 503}
    assert 15 <= first.count(503) <= 45


# ---- outage_after --------------------------------------------------------------------------


def test_outage_after_lets_n_api_requests_through_then_answers_503(sim: Simulator) -> None:
    with client_for(sim) as http:
        sim.faults.outage_after = 3
        sim.faults.retry_after = 2
        statuses = [http.get(path).status_code for path in ("/v1/tasks/types", "/v1/tasks") * 3]
        assert statuses == [200, 200, 200, 503, 503, 503]
        assert sim.faults.outage_after == 0
        refused = http.get("/v1/tasks")
        assert refused.headers["retry-after"] == "2" and refused.json()["Message"]
        # Logins are not API requests: they still work, and count nothing down.
        assert http.post("/v1/session/add", auth=("admin", "zerto")).status_code == 200
        assert sim.faults.injected.snapshot()["outage"] == 4
        sim.faults.outage_after = None
        assert http.get("/v1/tasks/types").status_code == 200


# ---- drop_rate -----------------------------------------------------------------------------


def test_drop_rate_one_truncates_list_answers(sim: Simulator) -> None:
    with client_for(sim) as http:
        sim.faults.drop_rate = 1.0
        with pytest.raises(httpx.RemoteProtocolError):
            http.get("/v1/tasks")
        # Only list answers are dropped.
        assert http.get("/v1/tasks/types").status_code == 200
        task_id = sim.ground_truth()[0]["TaskIdentifier"]
        assert http.get(f"/v1/tasks/{task_id}").status_code == 200
        assert http.get("/v1/tasks", params={"type": "nope"}).status_code == 400
        sim.faults.drop_rate = 0.0
        assert http.get("/v1/tasks").json() == sim.ground_truth()
    assert next(r.status for r in sim.requests if r.path == "/v1/tasks") == 200


def test_dropped_answer_announces_the_full_length(sim: Simulator) -> None:
    with client_for(sim) as http:
        session = http.headers["x-zerto-session"]
        full = len(http.get("/v1/tasks").content)
    sim.faults.drop_rate = 1.0
    host, port = sim.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(
            f"GET /v1/tasks HTTP/1.1\r\nHost: {host}\r\nx-zerto-session: {session}\r\n\r\n".encode()
        )
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    lengths = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    assert lengths == [f"Content-Length: {full}".encode()]
    assert 0 < len(body) < full


def test_drop_rate_partial() -> None:
    with make(days=0.05, faults=Faults(drop_rate=0.5)) as sim:
        outcomes: Counter[str] = Counter()
        with client_for(sim) as http:
            for _ in range(30):  # a dropped connection is replaced by a new one
                try:
                    http.get("/v1/tasks")
                    outcomes["ok"] += 1
                except httpx.RemoteProtocolError:
                    outcomes["dropped"] += 1
        assert outcomes["ok"] > 3 and outcomes["dropped"] > 3


# ---- latency -------------------------------------------------------------------------------


def test_latency_is_added_to_every_answer(sim: Simulator) -> None:
    sim.faults.latency = 0.25
    with httpx.Client(base_url=sim.url) as http:
        began = time.monotonic()
        login = http.post("/v1/session/add", auth=("admin", "zerto"))
        assert time.monotonic() - began >= 0.25
        headers = {"x-zerto-session": login.headers["x-zerto-session"]}
        began = time.monotonic()
        assert http.get("/v1/tasks/types", headers=headers).status_code == 200
        assert time.monotonic() - began >= 0.25
        sim.faults.latency = 0.0
        began = time.monotonic()
        http.get("/v1/tasks/types", headers=headers)
        assert time.monotonic() - began < 0.25


# ---- malformed_rate ------------------------------------------------------------------------


def kind(task: Task) -> str:
    """Which kind of malformed task this is ("ok" when it is well-formed)."""
    if "TaskIdentifier" not in task and "identifier" not in (task["Link"] or {}):
        return "missing_identifier"
    if task["Status"]["State"] not in range(8):
        return "bad_state"
    try:
        read_date(task["Started"])
    except ValueError:
        return "bad_started"
    return "ok"


@pytest.mark.parametrize("style", ["windows", "appliance"])
def test_malformed_rate_one_yields_the_three_kinds(style: str) -> None:
    with make(date_style=style, faults=Faults(malformed_rate=1.0)) as sim, client_for(sim) as http:
        response = http.get("/v1/tasks")
        tasks = response.json()
        kinds = Counter(kind(task) for task in tasks)
        assert set(kinds) == {"missing_identifier", "bad_state", "bad_started"}
        assert min(kinds.values()) > len(tasks) / 6
        assert http.get("/v1/tasks").json() == tasks  # stable across requests
        assert sim.ground_truth() == tasks
        states = {t["Status"]["State"] for t in tasks if kind(t) == "bad_state"}
        assert states <= {9, -1}
        if style == "windows":
            assert b'"\\/Date(abc)\\/"' in response.content
        bad_state = next(t for t in tasks if kind(t) == "bad_state")
        by_id = http.get(f"/v1/tasks/{bad_state['TaskIdentifier']}")
        assert by_id.json() == bad_state


def test_malformed_tasks_are_stable_and_grow_with_the_rate() -> None:
    with make(days=2) as sim:
        clean = sim.ground_truth()

        def malformed(rate: float) -> set[int]:
            sim.faults.malformed_rate = rate
            served = sim.ground_truth()
            return {i for i, (a, b) in enumerate(zip(clean, served, strict=True)) if a != b}

        low, high = malformed(0.2), malformed(0.6)
        assert low < high
        assert 0.1 < len(low) / len(clean) < 0.3
        assert 0.5 < len(high) / len(clean) < 0.7
        assert malformed(0.2) == low
        assert malformed(0.0) == set()
    with make(days=2, seed=6) as again:
        again.faults.malformed_rate = 0.2
        served = again.ground_truth()
        assert {
            i for i, (a, b) in enumerate(zip(clean, served, strict=True)) if kind(a) != kind(b)
        } == low


def test_a_503_does_not_use_up_a_session(sim: Simulator) -> None:
    with client_for(sim) as http:
        sim.faults.session_max_requests = 2
        sim.faults.error_rate = 1.0
        assert [http.get("/v1/tasks/types").status_code for _ in range(3)] == [503] * 3
        sim.faults.error_rate = 0.0
        statuses = [http.get("/v1/tasks/types").status_code for _ in range(3)]
        assert statuses == [200, 200, 401]
