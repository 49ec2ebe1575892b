"""Exact protocol cases of the ZVM client, with httpx.MockTransport.

Everything that can be shown against the simulator over real HTTP is tested in
test_client.py; this file pins down request shapes and retry decisions exactly.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from etl.config import ZvmConfig
from etl.errors import (
    ZvmAuthError,
    ZvmConnectionError,
    ZvmResponseError,
    ZvmRetriesExhausted,
)
from etl.zvm.client import TaskFilters, ZvmClient

Handler = Callable[[httpx.Request], httpx.Response]


def zvm(**overrides: Any) -> ZvmConfig:
    settings: dict[str, Any] = {
        "name": "nyc",
        "url": "http://zvm.test:9669",
        "username": "svc-etl",
        "password": "pa55word",
        "retry_for": "5s",
    }
    return ZvmConfig(**(settings | overrides))


class Recorder:
    """A MockTransport handler that logs every request and answers from a script."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


def session_zvm(api: Handler) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/session/add":
            return httpx.Response(200, headers={"x-zerto-session": "s-1"})
        if request.url.path == "/v1/session":
            return httpx.Response(200)
        return api(request)

    return answer


def make_client(
    handler: Handler, *, sleeps: list[float] | None = None, **overrides: Any
) -> ZvmClient:
    record = sleeps if sleeps is not None else []
    return ZvmClient(zvm(**overrides), transport=httpx.MockTransport(handler), sleep=record.append)


def test_session_login_then_header_on_every_call() -> None:
    recorder = Recorder(session_zvm(lambda r: httpx.Response(200, json=[])))
    with make_client(recorder) as client:
        assert client.fetch_tasks() == []
        assert client.fetch_task_types() == []
    login, first, second, logout = recorder.requests
    assert login.method == "POST" and login.url.path == "/v1/session/add"
    assert (
        login.headers["Authorization"] == "Basic " + base64.b64encode(b"svc-etl:pa55word").decode()
    )
    assert first.headers["x-zerto-session"] == second.headers["x-zerto-session"] == "s-1"
    assert "Authorization" not in first.headers
    assert logout.method == "DELETE" and logout.url.path == "/v1/session"
    assert client.stats.requests == 4


def test_expired_session_logs_in_again_once() -> None:
    calls = {"n": 0}

    def api(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(401 if calls["n"] == 1 else 200, json=[{"x": 1}])

    recorder = Recorder(session_zvm(api))
    client = make_client(recorder)
    assert client.fetch_tasks() == [{"x": 1}]
    paths = [r.url.path for r in recorder.requests]
    assert paths == ["/v1/session/add", "/v1/tasks", "/v1/session/add", "/v1/tasks"]


def test_401_after_fresh_login_is_an_auth_error() -> None:
    client = make_client(session_zvm(lambda r: httpx.Response(401)))
    with pytest.raises(ZvmAuthError, match="HTTP 401 right after a fresh login"):
        client.fetch_tasks()


def test_refused_login_names_user_never_password() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"Message": "Authorization has been denied"})

    client = make_client(answer)
    with pytest.raises(ZvmAuthError) as caught:
        client.fetch_tasks()
    message = str(caught.value)
    assert "refused the login of user 'svc-etl'" in message and "http://zvm.test:9669" in message
    assert "pa55word" not in message


def test_keycloak_password_grant_and_bearer() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 300})
        return httpx.Response(200, json=["FailOver"])

    recorder = Recorder(answer)
    client = make_client(recorder, auth="keycloak")
    assert client.fetch_task_types() == ["FailOver"]
    token, call = recorder.requests
    assert token.url.path == "/auth/realms/zerto/protocol/openid-connect/token"
    assert token.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token.content.decode()) == {
        "grant_type": ["password"],
        "client_id": ["zerto-client"],
        "username": ["svc-etl"],
        "password": ["pa55word"],
    }
    assert call.headers["Authorization"] == "Bearer tok"


def test_keycloak_client_credentials_grant() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 300})
        return httpx.Response(200, json=[])

    recorder = Recorder(answer)
    client = make_client(
        recorder, auth="keycloak", username=None, password=None, client_id="etl", client_secret="sh"
    )
    client.fetch_tasks()
    assert parse_qs(recorder.requests[0].content.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": ["etl"],
        "client_secret": ["sh"],
    }


def test_filters_are_sent_as_utc_with_z() -> None:
    recorder = Recorder(session_zvm(lambda r: httpx.Response(200, json=[])))
    client = make_client(recorder)
    plus_530 = timezone(timedelta(hours=5, minutes=30))
    client.fetch_tasks(
        TaskFilters(
            started_after=datetime(2025, 2, 8, 21, 50, 46, 574000, tzinfo=UTC),
            completed_after=datetime(2025, 2, 9, 3, 20, tzinfo=plus_530),
            started_before=datetime(2025, 3, 1, tzinfo=UTC),
            completed_before=datetime(2025, 3, 2, 0, 0, 0, 1000, tzinfo=UTC),
            type="FailOverTest",
            status=6,
        )
    )
    params = dict(recorder.requests[1].url.params)
    assert params == {
        "startedAfterDate": "2025-02-08T21:50:46Z",
        "startedBeforeDate": "2025-03-01T00:00:00Z",
        "completedAfterDate": "2025-02-08T21:50:00Z",
        "completedBeforeDate": "2025-03-02T00:00:01Z",
        "type": "FailOverTest",
        "status": "6",
    }


def test_5xx_is_retried_honouring_retry_after() -> None:
    answers = iter([httpx.Response(503, headers={"Retry-After": "2"}), httpx.Response(502)])

    def api(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(200, json=[{"ok": True}]))

    sleeps: list[float] = []
    client = make_client(session_zvm(api), sleeps=sleeps)
    assert client.fetch_tasks() == [{"ok": True}]
    assert sleeps[0] == 2.0
    assert 0 <= sleeps[1] <= 30
    assert client.stats.retries == 2


def test_429_and_dropped_connections_are_retried() -> None:
    answers: list[Any] = [
        httpx.Response(429, headers={"Retry-After": "1"}),
        httpx.RemoteProtocolError("cut"),
    ]

    def api(request: httpx.Request) -> httpx.Response:
        if answers:
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            assert isinstance(answer, httpx.Response)
            return answer
        return httpx.Response(200, json=[])

    client = make_client(session_zvm(api))
    assert client.fetch_tasks() == []
    assert client.stats.retries == 2


def test_retries_exhausted_says_how_many_and_last_cause() -> None:
    client = make_client(session_zvm(lambda r: httpx.Response(503)), retry_for="0s")
    with pytest.raises(ZvmRetriesExhausted) as caught:
        client.fetch_tasks()
    message = str(caught.value)
    assert "gave up on GET /v1/tasks at ZVM nyc (http://zvm.test:9669) after 1 attempts" in message
    assert "the last failure was: HTTP 503 Service Unavailable" in message
    assert caught.value.attempts == 1


def test_login_5xx_is_retried() -> None:
    answers = iter([httpx.Response(503)])

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/session/add":
            return next(answers, httpx.Response(200, headers={"x-zerto-session": "s"}))
        return httpx.Response(200, json=[])

    client = make_client(answer)
    assert client.fetch_tasks() == []
    assert client.stats.retries == 1


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            httpx.Response(200, html="<html>Sign in</html>"),
            "with an HTML page (HTTP 200), not JSON",
        ),
        (
            httpx.Response(200, content=b"[{", headers={"Content-Type": "application/json"}),
            "invalid JSON",
        ),
        (
            httpx.Response(200, json={"tasks": []}),
            "with a JSON dict, expected a JSON array of tasks",
        ),
        (
            httpx.Response(
                400, json={"Message": "The value 'x' is not valid for startedAfterDate."}
            ),
            "HTTP 400: The value 'x' is not valid for startedAfterDate.",
        ),
        (httpx.Response(403, json={"Message": "Valid License is not provided "}), "Valid License"),
    ],
)
def test_unusable_answers(response: httpx.Response, expected: str) -> None:
    client = make_client(session_zvm(lambda r: response))
    with pytest.raises(ZvmResponseError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        client.fetch_tasks()


def test_fetch_task_none_on_404_and_quoted_identifier() -> None:
    recorder = Recorder(session_zvm(lambda r: httpx.Response(404, json={"Message": "not found"})))
    client = make_client(recorder)
    assert client.fetch_task("a/b.c") is None
    assert recorder.requests[1].url.raw_path == b"/v1/tasks/a%2Fb.c"


def test_connection_refused_names_the_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ZvmClient(zvm(url=f"http://127.0.0.1:{port}", retry_for="0s"))
    with pytest.raises(ZvmConnectionError) as caught:
        client.fetch_tasks()
    assert f"cannot connect to ZVM nyc at http://127.0.0.1:{port}: connection refused" in str(
        caught.value
    )


def test_a_403_for_an_expired_session_also_logs_in_again() -> None:
    answers = iter([httpx.Response(403, json={"Message": "Session expired"})])

    def api(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(200, json=["Move"]))

    recorder = Recorder(session_zvm(api))
    assert make_client(recorder).fetch_task_types() == ["Move"]
    assert [r.url.path for r in recorder.requests].count("/v1/session/add") == 2


def test_a_403_that_persists_says_what_the_zvm_said() -> None:
    answer = httpx.Response(403, json={"Message": "Valid License is not provided "})
    client = make_client(session_zvm(lambda r: answer))
    with pytest.raises(ZvmResponseError, match="HTTP 403: Valid License is not provided"):
        client.fetch_task_types()


class FakeTime:
    """The client's clock and sleep: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("failure", "budget", "error"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), 15, ZvmConnectionError),
        (httpx.ConnectError("[Errno -2] Name or service not known"), 15, ZvmConnectionError),
        (httpx.ReadTimeout("timed out"), 120, ZvmRetriesExhausted),
        (httpx.RemoteProtocolError("peer closed connection"), 120, ZvmRetriesExhausted),
    ],
)
def test_each_kind_of_failure_has_its_own_retry_budget(
    failure: Exception, budget: float, error: type[Exception]
) -> None:
    """Unreachable (refused, unknown host): connect_retry_for (15s by default), so an
    interactive sync says so quickly; a ZVM that answers badly: retry_for (2m)."""

    def api(request: httpx.Request) -> httpx.Response:
        raise failure

    clock = FakeTime()
    client = ZvmClient(
        zvm(retry_for="2m", connect_retry_for="15s"),
        transport=httpx.MockTransport(api),
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    with pytest.raises(error) as caught:
        client.fetch_tasks()
    spent = clock.now - 1000.0
    assert spent == pytest.approx(budget)  # the last wait ends with the budget, never past it
    assert len(clock.slept) >= 3
    if error is ZvmConnectionError:
        assert "connect_retry_for" in str(caught.value)
    else:
        assert "raise retry_for" in str(caught.value)


def test_a_503_storm_longer_than_the_budget_gives_up_with_what_it_saw() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "10"})

    clock = FakeTime()
    client = ZvmClient(
        zvm(retry_for="1m"),
        transport=httpx.MockTransport(session_zvm(api)),
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    with pytest.raises(ZvmRetriesExhausted, match="HTTP 503"):
        client.fetch_tasks()
    assert clock.slept[:3] == [10.0, 10.0, 10.0]  # Retry-After honoured
    assert clock.now - 1000.0 == pytest.approx(60)  # and never past the budget


def timed_listing(
    clock: FakeTime, answer: httpx.Response
) -> tuple[ZvmClient, list[tuple[float, float]]]:
    """A client of a ZVM answering ``GET /v1/vpgs`` with ``answer``, and the (time, read
    timeout) of each attempt at it."""
    seen: list[tuple[float, float]] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append((clock.now - 1000.0, request.extensions["timeout"]["read"]))
        return answer

    client = ZvmClient(
        zvm(retry_for="2m", timeout="120s"),
        transport=httpx.MockTransport(session_zvm(api)),
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    return client, seen


def test_a_deadline_share_stops_the_retries_of_one_call_and_names_its_setting() -> None:
    """A group of calls sharing a 10 s budget: one of four gets at most a quarter of it,
    however long retry_for is, and its error says which setting to raise."""
    clock = FakeTime()
    client, seen = timed_listing(clock, httpx.Response(500, json={"Message": "An error"}))
    deadline = client.deadline(10.0, setting="sync.entity_refresh_budget")
    with pytest.raises(ZvmRetriesExhausted) as caught:
        client.fetch_listing("/v1/vpgs", expected=list, deadline=deadline.share(4))
    assert clock.now - 1000.0 == pytest.approx(2.5)  # its share, never retry_for's 2 minutes
    assert len(seen) >= 2 and seen[-1][0] == pytest.approx(2.5)
    assert all(timeout == pytest.approx(10.0 - at) for at, timeout in seen)  # cut to the end
    assert "HTTP 500" in str(caught.value)
    assert "raise sync.entity_refresh_budget to wait longer" in str(caught.value)
    assert deadline.left() == pytest.approx(7.5)  # what is left for the other calls


def test_no_attempt_starts_once_a_deadline_has_passed() -> None:
    """Retry-After 4 s against a 10 s deadline: attempts at 0, 4 and 8 s (timeouts cut to
    10, 6 and 2 s), a last wait of 2 s to the deadline, and then no attempt that could not
    answer in time: the error is the last failure seen."""
    clock = FakeTime()
    client, seen = timed_listing(clock, httpx.Response(503, headers={"Retry-After": "4"}))
    deadline = client.deadline(10.0, setting="sync.entity_refresh_budget")
    with pytest.raises(ZvmRetriesExhausted, match="HTTP 503") as caught:
        client.fetch_listing("/v1/vpgs", expected=list, deadline=deadline)
    assert seen == [(0.0, 10.0), (4.0, 6.0), (8.0, 2.0)]
    assert clock.slept == [4.0, 4.0, 2.0] and deadline.expired
    assert caught.value.attempts == 3 and "raise sync.entity_refresh_budget" in str(caught.value)
    # Without a deadline the same client keeps its own budget and timeouts.
    clock.slept.clear()
    with pytest.raises(ZvmRetriesExhausted, match="raise retry_for"):
        client.fetch_listing("/v1/vpgs", expected=list)
    assert sum(clock.slept) == pytest.approx(120.0) and seen[3][1] == 120.0
