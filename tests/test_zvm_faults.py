"""ZVM-side faults: the client retries what is worth retrying and reports the rest clearly,
and a whole pass never loads part of a broken answer.

What this file proves (no test waits on the retry budgets: the client's clock and sleep
are injected; the real timeouts are 0.5 s, only against servers that stall until the
client hangs up):

- an unknown host (real DNS: ``zvm.invalid``) is a ZvmConnectionError that names the url
  and says what to check, given up when ``connect_retry_for`` ends;
- a connect timeout (httpx.ConnectTimeout, and a real listening socket whose accept
  backlog is full) is retried until ``connect_retry_for`` ends, then a ZvmConnectionError
  that says connecting timed out; a connection made on a later attempt gets the answer;
- an answer that stalls mid-body (a loopback server sends the headers and half the JSON,
  then nothing) times out after ``timeout`` and is retried, and the complete second answer
  is used; a ZVM that always stalls is given up with "timed out (ReadTimeout)";
- a connection reset (RST) mid-body is retried;
- a login that never answers times out (logins have the client's timeouts) and is
  retried; a logout that never answers does not hold up closing the client;
- a truncated JSON answer whose Content-Length matches the cut body fails the pass with
  "invalid JSON", loads nothing of its window (not even the batch decoded before the cut)
  and moves no cursor; the next good pass loads everything;
- a 429 storm longer than ``retry_for`` gives up (ZvmRetriesExhausted) naming HTTP 429,
  having waited each Retry-After (the last wait cut where the budget ends);
- a 200 MB answer, streamed, is decoded with a tracemalloc peak far below its size;
- one TaskIdentifier twice in one answer leaves one row with the later record's values
  (and the status history ends with them), whichever order, next to each other or in
  different batches, on every database;
- an open task the ZVM no longer has (404 when re-read) keeps its last known version
  and the pass succeeds.

Covered elsewhere (not repeated here): an HTML page and a JSON object instead of the array
(test_client_protocol.py::test_unusable_answers), a connection closed cleanly mid-body
(test_client.py::test_dropped_connections_are_retried,
test_client_protocol.py::test_429_and_dropped_connections_are_retried), the budgets of
refused connections and "Name or service not known" as raised by a MockTransport
(test_client_protocol.py::test_each_kind_of_failure_has_its_own_retry_budget).
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.config import Config, ZvmConfig, parse_config
from etl.errors import ZvmConnectionError, ZvmRetriesExhausted
from etl.normalize import TaskRecord, normalize_task
from etl.passes import BATCH_SIZE
from etl.warehouse import schema
from etl.zvm.client import Attempt, ZvmClient
from tests.syncing import cursors, one_pass, snapshot
from tests.test_client_protocol import FakeTime, Recorder, session_zvm
from tests.test_client_protocol import zvm as zvm_config

SITE = "6b5b30d6-c090-4233-8466-5fe18bf39a4c"
RUNNING, COMPLETED = 1, 6


def timed_client(
    config: ZvmConfig,
    clock: FakeTime,
    *,
    transport: httpx.BaseTransport | None = None,
    attempts: list[Attempt] | None = None,
) -> ZvmClient:
    """A client whose retry waits move ``clock`` instead of waiting."""
    return ZvmClient(
        config,
        transport=transport,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        on_attempt=None if attempts is None else attempts.append,
    )


# ---- tasks as a Windows ZVM writes them ----------------------------------------------------


def wire_date(moment: datetime) -> str:
    return f"/Date({int(moment.timestamp() * 1000)})/"


def read_wire_date(value: str) -> datetime:
    return datetime.fromtimestamp(int(value.removeprefix("/Date(").removesuffix(")/")) / 1000, UTC)


def make_task(
    number: int, started: datetime, *, state: int = COMPLETED, progress: int = 100
) -> dict[str, Any]:
    """Task ``number`` (its identifier depends on nothing else); open unless ``state`` is final."""
    identifier = f"{uuid.UUID(int=number)}.{SITE}"
    completed = None if state == RUNNING else started + timedelta(seconds=30)
    return {
        "TaskIdentifier": identifier,
        "Type": "FailOverTest",
        "Started": wire_date(started),
        "Completed": wire_date(completed) if completed is not None else None,
        "Status": {"Progress": progress, "State": state},
        "InitiatedBy": "svc-etl",
        "CompleteReason": "",
        "IsCancellable": state == RUNNING,
        "Link": {
            "href": f"https://zvm.test:9669/v1/tasks/{identifier}",
            "identifier": identifier,
            "rel": None,
            "type": "TaskApi",
        },
        "RelatedEntities": {"Hosts": [], "Sites": [], "Vpgs": []},
    }


def record(raw: dict[str, Any]) -> TaskRecord:
    result = normalize_task(raw)
    assert isinstance(result, TaskRecord), result
    return result


# ---- DNS and connect timeouts ---------------------------------------------------------------


def test_an_unknown_host_is_named_with_what_to_check_within_connect_retry_for() -> None:
    try:
        socket.getaddrinfo("zvm.invalid", 9669)
    except socket.gaierror:
        pass
    else:  # pragma: no cover - RFC 6761 says .invalid never resolves
        pytest.skip("this machine's resolver answers for the .invalid domain")
    clock = FakeTime()
    began = clock.now
    attempts: list[Attempt] = []
    config = zvm_config(url="https://zvm.invalid:9669", retry_for="2m", connect_retry_for="15s")
    with (
        pytest.raises(ZvmConnectionError) as caught,
        timed_client(config, clock, attempts=attempts) as client,
    ):
        client.fetch_task_list()
    message = str(caught.value)
    assert "cannot connect to ZVM nyc at https://zvm.invalid:9669" in message
    assert "Check the url's host and port" in message and "connect_retry_for" in message
    assert "refused" not in message
    assert caught.value.url == "https://zvm.invalid:9669"
    assert clock.now - began == pytest.approx(15)  # connect_retry_for, not retry_for
    assert len(attempts) >= 3 and {a.error for a in attempts} == {"connection"}


def test_a_connect_timeout_is_retried_within_connect_retry_for_then_says_so() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    clock = FakeTime()
    began = clock.now
    attempts: list[Attempt] = []
    config = zvm_config(retry_for="2m", connect_retry_for="15s", connect_timeout="7s")
    transport = httpx.MockTransport(api)
    with (
        pytest.raises(ZvmConnectionError) as caught,
        timed_client(config, clock, transport=transport, attempts=attempts) as client,
    ):
        client.fetch_task_list()
    message = str(caught.value)
    assert "cannot connect to ZVM nyc at http://zvm.test:9669" in message
    assert "connecting timed out after 7s (connect_timeout)" in message
    assert "Check the url's host and port" in message and "connect_retry_for" in message
    assert clock.now - began == pytest.approx(15)
    assert len(attempts) >= 3 and {a.error for a in attempts} == {"timeout"}


def test_after_connect_timeouts_a_connection_that_is_made_gets_the_answer() -> None:
    failures = [httpx.ConnectTimeout("timed out"), httpx.ConnectTimeout("timed out")]
    zvm_api = session_zvm(lambda request: httpx.Response(200, json=[{"n": 1}]))

    def answer(request: httpx.Request) -> httpx.Response:
        if failures:
            raise failures.pop(0)
        return zvm_api(request)

    clock = FakeTime()
    with timed_client(zvm_config(), clock, transport=httpx.MockTransport(answer)) as client:
        assert client.fetch_tasks() == [{"n": 1}]
    assert client.stats.retries == 2 and len(clock.slept) == 2


@contextlib.contextmanager
def full_backlog() -> Iterator[str]:
    """The url of a listening socket that never accepts and whose accept queue is full:
    Linux drops a new connection's SYN, so connecting to it times out."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        with socket.socket() as filler:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            # Established (and queued) once writable: the queue of backlog 0 is then full.
            _, writable, _ = select.select([], [filler], [], 30)
            assert writable and filler.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            yield f"http://127.0.0.1:{port}"


@pytest.mark.skipif(sys.platform != "linux", reason="drops SYNs on a full accept queue")
def test_a_zvm_whose_accept_backlog_is_full_times_out_at_connect_then_says_so() -> None:
    """The first connection is the login's: it must have the connect timeout too."""
    clock = FakeTime()
    attempts: list[Attempt] = []
    with full_backlog() as url:
        # The socket never accepts: the 0.5 s connect timeout cannot be too short.
        config = zvm_config(
            url=url, connect_timeout="0.5s", timeout="30s", retry_for="2m", connect_retry_for="4s"
        )
        with (
            pytest.raises(ZvmConnectionError) as caught,
            timed_client(config, clock, attempts=attempts) as client,
        ):
            client.fetch_task_list()
    assert f"cannot connect to ZVM nyc at {url}" in str(caught.value)
    assert "connecting timed out after 0.5s" in str(caught.value)
    assert len(attempts) >= 2 and {a.error for a in attempts} == {"timeout"}


# ---- a loopback ZVM that stalls or resets ------------------------------------------------

STALL_LIMIT = 60.0
"""Seconds a stall lasts when the client never hangs up: a client without a timeout would
wait that long (the stall is then noted in ``gave_up``, which the tests check), never forever."""


class LoopbackZvm(ThreadingHTTPServer):
    """A ZVM on 127.0.0.1 for the faults only a real socket shows. ``plans`` says how each
    request is answered, by method, in turn (the last one repeats):

    - ``POST`` (the login) and ``DELETE`` (the logout): ``ok``, or ``stall`` (no answer);
    - ``GET /v1/tasks``, answered with ``body``: ``whole``; ``stall``: the headers (with the
      full Content-Length) and half the body, then nothing; ``reset``: the same half, then
      a TCP reset (RST).

    A stall ends when the client hangs up (the method is noted in ``hung_up``), or after
    :data:`STALL_LIMIT` (noted in ``gave_up``)."""

    daemon_threads = True

    def __init__(self, body: bytes, plans: dict[str, list[str]]) -> None:
        super().__init__(("127.0.0.1", 0), _LoopbackHandler)
        self.body = body
        self.plans = {"POST": ["ok"], "GET": ["whole"], "DELETE": ["ok"]} | plans
        self.served: dict[str, list[str]] = {method: [] for method in self.plans}
        self.hung_up: list[str] = []
        self.gave_up: list[str] = []
        self.released = threading.Event()
        self._lock = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def stalls_ended(self, count: int) -> None:
        """Wait until ``count`` stalls have ended (the client hung up, or the limit passed)."""
        with self._lock:
            ended = self._lock.wait_for(
                lambda: len(self.hung_up) + len(self.gave_up) >= count, STALL_LIMIT + 30
            )
        assert ended, f"{count} stalls never ended"

    def next_answer(self, method: str) -> str:
        with self._lock:
            plan = self.plans[method]
            how = plan.pop(0) if len(plan) > 1 else plan[0]
            self.served[method].append(how)
            return how

    def stalled(self, method: str, *, hung_up: bool) -> None:
        with self._lock:
            (self.hung_up if hung_up else self.gave_up).append(method)
            self._lock.notify_all()


class _LoopbackHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackZvm

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _stall(self) -> None:
        """Send nothing more until the client hangs up, or STALL_LIMIT passes."""
        self.close_connection = True
        deadline = time.monotonic() + STALL_LIMIT
        while not self.server.released.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                try:
                    hung_up = not self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    hung_up = True
                if hung_up:
                    self.server.stalled(self.command, hung_up=True)
                    return
        self.server.stalled(self.command, hung_up=False)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.next_answer("POST") == "stall":
            self._stall()
            return
        self._empty(200, {"x-zerto-session": "s-1"})

    def do_DELETE(self) -> None:
        if self.server.next_answer("DELETE") == "stall":
            self._stall()
            return
        self._empty(200)

    def do_GET(self) -> None:
        if self.path.partition("?")[0] != "/v1/tasks":
            self._empty(404)
            return
        how = self.server.next_answer("GET")
        body = self.server.body
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if how == "whole":
            self.wfile.write(body)
            return
        self.wfile.write(body[: len(body) // 2])
        if how == "stall":
            self._stall()
            return
        # A reset: linger 0, then close (no shutdown first, which would send a FIN).
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.connection.close()


@contextlib.contextmanager
def loopback_zvm(body: bytes, **plans: list[str]) -> Iterator[LoopbackZvm]:
    """A started :class:`LoopbackZvm`; ``login``, ``lists`` and ``logout`` are its plans."""
    methods = {"login": "POST", "lists": "GET", "logout": "DELETE"}
    server = LoopbackZvm(body, {methods[name]: plan for name, plan in plans.items()})
    thread = threading.Thread(target=server.serve_forever, name="loopback-zvm", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
        thread.join()


def tasks_body(count: int) -> bytes:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    return orjson.dumps([make_task(n, start + timedelta(minutes=n)) for n in range(count)])


def test_an_answer_that_stalls_mid_body_times_out_and_the_next_answer_is_used() -> None:
    body = tasks_body(400)
    clock = FakeTime()
    attempts: list[Attempt] = []
    with loopback_zvm(body, lists=["stall", "whole"]) as server:
        # The stalled answer never goes on: the 0.5 s timeout cannot be too short.
        config = zvm_config(url=server.url, timeout="0.5s", retry_for="1m")
        with timed_client(config, clock, attempts=attempts) as client:
            tasks = client.fetch_tasks()
        server.stalls_ended(1)
    assert tasks == orjson.loads(body)
    assert server.served["GET"] == ["stall", "whole"]
    assert (server.hung_up, server.gave_up) == (["GET"], [])
    assert [a.error for a in attempts] == ["timeout", None]
    assert client.stats.retries == 1


def test_a_zvm_that_always_stalls_mid_body_is_given_up_saying_it_timed_out() -> None:
    clock = FakeTime()
    began = clock.now
    attempts: list[Attempt] = []
    with loopback_zvm(tasks_body(400), lists=["stall"]) as server:
        config = zvm_config(url=server.url, timeout="0.5s", retry_for="3s")
        with (
            pytest.raises(ZvmRetriesExhausted) as caught,
            timed_client(config, clock, attempts=attempts) as client,
        ):
            client.fetch_task_list()
        server.stalls_ended(len(attempts))
    message = str(caught.value)
    assert "gave up on GET /v1/tasks at ZVM nyc" in message
    assert "the last failure was: timed out (ReadTimeout)" in message
    assert caught.value.attempts == len(attempts) == len(server.served["GET"]) >= 2
    assert set(server.served["GET"]) == {"stall"} and {a.error for a in attempts} == {"timeout"}
    assert server.hung_up == ["GET"] * len(attempts) and not server.gave_up
    assert clock.now - began == pytest.approx(3)


def test_a_connection_reset_mid_body_is_retried() -> None:
    body = tasks_body(400)
    clock = FakeTime()
    attempts: list[Attempt] = []
    with (
        loopback_zvm(body, lists=["reset", "reset", "whole"]) as server,
        timed_client(zvm_config(url=server.url), clock, attempts=attempts) as client,
    ):
        tasks = client.fetch_tasks()
    assert tasks == orjson.loads(body)
    assert server.served["GET"] == ["reset", "reset", "whole"]
    assert [a.error for a in attempts] == ["connection", "connection", None]
    assert client.stats.retries == 2


def test_a_login_that_never_answers_times_out_and_is_retried() -> None:
    """Logins are requests the auth builds: they have the client's timeouts too."""
    body = tasks_body(10)
    clock = FakeTime()
    attempts: list[Attempt] = []
    with loopback_zvm(body, login=["stall", "ok"]) as server:
        config = zvm_config(url=server.url, timeout="0.5s", retry_for="1m")
        with timed_client(config, clock, attempts=attempts) as client:
            tasks = client.fetch_tasks()
        server.stalls_ended(1)
    assert tasks == orjson.loads(body)
    assert server.served["POST"] == ["stall", "ok"]
    assert (server.hung_up, server.gave_up) == (["POST"], [])
    assert [a.error for a in attempts] == ["timeout", None]


def test_a_logout_that_never_answers_does_not_hold_up_closing() -> None:
    clock = FakeTime()
    with loopback_zvm(tasks_body(10), logout=["stall"]) as server:
        config = zvm_config(url=server.url, timeout="0.5s")
        with timed_client(config, clock) as client:
            assert len(client.fetch_tasks()) == 10
        # Closed: the logout timed out, and the client hung up on it.
        server.stalls_ended(1)
        assert server.served["DELETE"] == ["stall"]
        assert (server.hung_up, server.gave_up) == (["DELETE"], [])


# ---- 429 storm ------------------------------------------------------------------------------


def test_a_429_storm_longer_than_retry_for_gives_up_having_waited_each_retry_after() -> None:
    too_many = httpx.Response(429, headers={"Retry-After": "7"}, json={"Message": "Slow down"})
    recorder = Recorder(session_zvm(lambda request: too_many))
    clock = FakeTime()
    began = clock.now
    config = zvm_config(retry_for="1m")
    with (
        pytest.raises(ZvmRetriesExhausted) as caught,
        timed_client(config, clock, transport=httpx.MockTransport(recorder)) as client,
    ):
        client.fetch_task_list()
    message = str(caught.value)
    # Tries at 0, 7, ... 56 s, then when the minute ends (a last wait cut to 4 s), at 60 s.
    assert clock.slept == [7.0] * 8 + [pytest.approx(4.0)]
    assert clock.now - began == pytest.approx(60)
    assert caught.value.attempts == 10
    assert "after 10 attempts in 60s" in message
    assert "the last failure was: HTTP 429 Too Many Requests" in message
    paths = [r.url.path for r in recorder.requests]
    assert paths.count("/v1/tasks") == 10 and paths.count("/v1/session/add") == 1


# ---- a huge answer ----------------------------------------------------------------------------

HUGE_BYTES = 200 * 1024 * 1024
TASKS_PER_CHUNK = 50


@pytest.mark.slow
def test_a_200_mb_answer_is_decoded_in_bounded_memory() -> None:
    """Generated as it is sent, in ~220 KB chunks of 4.4 KB tasks (the decoding costs per
    task: big tasks keep the test short under tracemalloc)."""
    start = datetime(2025, 3, 1, tzinfo=UTC)
    reason = "the datastore of the recovery site is full " * 100
    sent = {"bytes": 0, "tasks": 0}

    def body() -> Iterator[bytes]:
        yield b"["
        while sent["bytes"] < HUGE_BYTES:
            first = sent["tasks"]
            tasks = [
                make_task(n, start + timedelta(seconds=n)) | {"CompleteReason": reason}
                for n in range(first, first + TASKS_PER_CHUNK)
            ]
            chunk = orjson.dumps(tasks)[1:-1]
            chunk = chunk if first == 0 else b"," + chunk
            sent["bytes"] += len(chunk)
            sent["tasks"] += TASKS_PER_CHUNK
            yield chunk
        yield b"]"

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Type": "application/json"}, content=body())

    client = ZvmClient(zvm_config(), transport=httpx.MockTransport(session_zvm(api)))
    count, last = 0, None
    tracemalloc.start()
    try:
        with client:
            for task in client.fetch_task_list():
                count += 1
                last = task
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent["bytes"] >= HUGE_BYTES
    assert count == sent["tasks"] > 40_000
    assert last is not None
    assert last["TaskIdentifier"] == f"{uuid.UUID(int=count - 1)}.{SITE}"
    assert peak < 64 * 1024 * 1024, f"peak {peak / 2**20:.0f} MB for a 200 MB answer"


# ---- whole passes against a fake ZVM ------------------------------------------------------


class FakeZvm:
    """A ZVM over httpx.MockTransport for whole passes: session login; ``GET /v1/tasks``
    with the started/completed filters (inclusive bounds), ``tasks`` in their list order;
    ``GET /v1/tasks/{id}`` (404 for a task not in ``tasks``); ``/v1/tasks/types``. The
    entity listings answer 404 (a pass only warns). With ``cut_at``, every list answer
    ends in the middle of its record of that index, its Content-Length matching the cut."""

    def __init__(self, tasks: list[dict[str, Any]]) -> None:
        self.tasks = tasks
        self.cut_at: int | None = None
        self.reads: list[tuple[str, int]] = []
        """``GET /v1/tasks/{id}`` answered: (id, status)."""
        self._lock = threading.Lock()

    def client(self, zvm: ZvmConfig) -> ZvmClient:
        return ZvmClient(zvm, transport=httpx.MockTransport(session_zvm(self.answer)))

    def answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/tasks/types":
            return httpx.Response(200, json=["FailOverTest"])
        if path == "/v1/tasks":
            return self._list(request.url.params)
        if path.startswith("/v1/tasks/"):
            identifier = path.removeprefix("/v1/tasks/")
            task = next((t for t in self.tasks if t["TaskIdentifier"] == identifier), None)
            with self._lock:
                self.reads.append((identifier, 200 if task else 404))
            if task is None:
                return httpx.Response(404, json={"Message": "Task not found"})
            return httpx.Response(200, json=task)
        return httpx.Response(404, json={"Message": "No such resource"})

    def _list(self, params: httpx.QueryParams) -> httpx.Response:
        def bound(name: str) -> datetime | None:
            value = params.get(name)
            return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))

        started_after, started_before = bound("startedAfterDate"), bound("startedBeforeDate")
        completed_after = bound("completedAfterDate")
        parts: list[bytes] = []
        for task in self.tasks:
            started = read_wire_date(task["Started"])
            completed = read_wire_date(task["Completed"]) if task["Completed"] else None
            if (
                (started_after is not None and started < started_after)
                or (started_before is not None and started > started_before)
                or (
                    completed_after is not None
                    and (completed is None or completed < completed_after)
                )
            ):
                continue
            parts.append(orjson.dumps(task))
        body = b"[" + b",".join(parts) + b"]"
        if self.cut_at is not None and len(parts) > self.cut_at:
            whole = len(b"[" + b",".join(parts[: self.cut_at]))
            body = body[: whole + 1 + len(parts[self.cut_at]) // 2]
        # content=bytes: the Content-Length is the length of what is sent, cut or not.
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})


def pass_config(warehouse_url: str) -> Config:
    zvm = {
        "name": "fake",
        "url": "http://zvm.test:9669",
        "username": "svc-etl",
        "password": "pa55word",
        "retry_for": "5s",
        "task_retention": "3d",
    }
    return parse_config(
        {
            "warehouse": {"url": warehouse_url},
            "zvms": [zvm],
            "sync": {"overlap": "10m", "backfill_window": "1d"},
        },
        env={},
    )


def task_rows(engine: Engine) -> dict[str, sa.Row[Any]]:
    with engine.connect() as conn:
        return {row.task_identifier: row for row in conn.execute(sa.select(schema.tasks))}


def test_a_truncated_answer_fails_the_pass_loading_nothing_of_its_window_nor_cursors(
    warehouse: Engine, warehouse_url: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    fake = FakeZvm([make_task(n, now - timedelta(hours=20, minutes=n)) for n in range(20)])
    config = pass_config(warehouse_url)
    first = one_pass(config, warehouse, client_factory=fake.client)
    assert first.succeeded, first.error
    before, moved = snapshot(warehouse), cursors(warehouse)
    assert len(task_rows(warehouse)) == 20 and "started" in moved

    new = [
        make_task(1000 + n, now - timedelta(hours=2) + timedelta(seconds=n)) for n in range(2500)
    ]
    fake.tasks.extend(new)
    # More complete records than a batch before the cut: a streaming pass has decoded (and
    # may have written) a whole batch of the window when the JSON turns out invalid.
    fake.cut_at = BATCH_SIZE + 400
    failed = one_pass(config, warehouse, client_factory=fake.client)
    assert failed.failed
    assert "answered GET /v1/tasks with invalid JSON" in (failed.error or "")
    assert snapshot(warehouse) == before
    assert cursors(warehouse) == moved
    with warehouse.connect() as conn:
        last = conn.execute(
            sa.select(schema.etl_runs.c.status).order_by(schema.etl_runs.c.run_id.desc())
        ).first()
    assert last is not None and last.status == "failed"

    fake.cut_at = None
    again = one_pass(config, warehouse, client_factory=fake.client)
    assert again.succeeded, again.error
    assert set(task_rows(warehouse)) == {t["TaskIdentifier"] for t in fake.tasks}


@pytest.mark.parametrize("between", [0, BATCH_SIZE + 500], ids=["adjacent", "other-batch"])
@pytest.mark.parametrize("later", ["completed", "running"])
def test_one_identifier_twice_in_an_answer_leaves_one_row_with_the_later_record(
    warehouse: Engine, warehouse_url: str, later: str, between: int
) -> None:
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    running = make_task(7, started, state=RUNNING, progress=40)
    completed = make_task(7, started, state=COMPLETED, progress=100)
    earlier, latest = (running, completed) if later == "completed" else (completed, running)
    others = [make_task(100 + n, started + timedelta(seconds=1 + n)) for n in range(between)]
    fake = FakeZvm([earlier, *others, latest])
    result = one_pass(pass_config(warehouse_url), warehouse, client_factory=fake.client)
    assert result.succeeded, result.error
    rows = task_rows(warehouse)
    assert len(rows) == 1 + between
    row, expected = rows[latest["TaskIdentifier"]], record(latest)
    assert (row.state, row.progress, row.completed_at, row.payload_hash) == (
        expected.state,
        expected.progress,
        expected.completed_at,
        expected.payload_hash,
    )
    # The status history ends with the state the row holds.
    changes = schema.task_status_changes
    with warehouse.connect() as conn:
        history = conn.execute(
            sa.select(changes.c.state, changes.c.progress)
            .where(changes.c.task_identifier == row.task_identifier)
            .order_by(changes.c.observed_at)
        ).all()
    assert tuple(history[-1]) == (expected.state, expected.progress)


def test_an_open_task_gone_from_the_zvm_keeps_its_last_known_version(
    warehouse: Engine, warehouse_url: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    gone = make_task(1, now - timedelta(hours=5), state=RUNNING, progress=40)
    others = [make_task(10 + n, now - timedelta(hours=4, minutes=n)) for n in range(5)]
    fake = FakeZvm([gone, *others])
    config = pass_config(warehouse_url)
    assert one_pass(config, warehouse, client_factory=fake.client).succeeded
    identifier = gone["TaskIdentifier"]
    known = task_rows(warehouse)[identifier]
    assert known.state == RUNNING

    fake.tasks.remove(gone)
    result = one_pass(config, warehouse, client_factory=fake.client)
    assert result.succeeded, result.error
    assert fake.reads == [(identifier, 404)]  # re-read, and gone
    assert task_rows(warehouse)[identifier] == known
