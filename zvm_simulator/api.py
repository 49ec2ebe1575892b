"""The simulated ZVM's REST API, independent of the HTTP transport.

:meth:`ZvmApi.handle` takes a parsed request and returns a :class:`Response`; the server
(``server.py``) only moves bytes. Routing is case-insensitive and ignores a trailing slash:

- session mode: ``POST /v1/session/add``, ``DELETE /v1/session``;
- keycloak mode: ``POST /auth/realms/zerto/protocol/openid-connect/token`` and ``.../logout``;
- both: ``GET /v1/tasks``, ``GET /v1/tasks/types``, ``GET /v1/tasks/{taskIdentifier}``, and
  the entity listings of :mod:`~zvm_simulator.inventory` (``/v1/localsite``,
  ``/v1/peersites``, ``/v1/vpgs``, ``/v1/vras``, ``/v1/virtualizationsites`` and
  ``/v1/virtualizationsites/{site}/hosts``), which the ``missing_listings`` and
  ``failing_listings`` fault knobs turn into a 404 or a 500;
- the Recovery Report, ``GET /v1/reports/recovery`` (:mod:`~zvm_simulator.recovery`), which
  the same knobs (and ``misshapen_listings``) take too.

The endpoints of the other auth mode answer 404, as on the other kind of ZVM. An API call
(anything under ``/v1/`` but the session endpoints) meets, in order: a wrong method (405),
the ``error_rate`` fault (503 with ``Retry-After``), the ``outage_after`` fault (the same
503 once it has run out), authentication (401), then the endpoint itself. A 200 list
answer may be marked to be dropped mid-body (``drop_rate``).

What a list shows: tasks started at or before the simulated now, each in its state as of
now; tasks that completed more than ``retention`` ago are gone (lists and GET by id).
"""

from __future__ import annotations

import gc
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from random import Random
from types import TracebackType
from typing import Any

import orjson

from zvm_simulator.auth import AuthStore
from zvm_simulator.catalog import DOCUMENTED_TYPES
from zvm_simulator.clock import SimClock
from zvm_simulator.filters import TICKS_PER_MS, FilterError, TaskQuery, parse_query
from zvm_simulator.inventory import Inventory
from zvm_simulator.lifecycle import MAX_DURATION_MS
from zvm_simulator.recovery import RecoveryQuery, RecoveryReport, parse_recovery_query
from zvm_simulator.scenario import Scenario, TaskSpec
from zvm_simulator.settings import SimulatorSettings
from zvm_simulator.wire import WireFormat, error_body

__all__ = [
    "FAULTY_ROUTES",
    "JSON",
    "LISTINGS",
    "LOGOUT_PATH",
    "RECOVERY_REPORT",
    "TOKEN_PATH",
    "Response",
    "ZvmApi",
]

JSON = "application/json; charset=utf-8"
TOKEN_PATH = "/auth/realms/zerto/protocol/openid-connect/token"
LOGOUT_PATH = "/auth/realms/zerto/protocol/openid-connect/logout"
_DENIED = "Authorization has been denied for this request."
_UNAVAILABLE = "The service is temporarily unavailable. Please try again later."
_HOSTS = "/v1/virtualizationsites/{site}/hosts"
LISTINGS = (
    "/v1/localsite",
    "/v1/peersites",
    "/v1/vpgs",
    "/v1/vras",
    "/v1/virtualizationsites",
    _HOSTS,
)
"""The entity listings, as route templates (the names the fault knobs use)."""
RECOVERY_REPORT = "/v1/reports/recovery"
FAULTY_ROUTES = (*LISTINGS, RECOVERY_REPORT)
"""The routes the ``missing_listings``, ``failing_listings`` and ``misshapen_listings``
fault knobs take."""


@dataclass
class Response:
    """An answer to send. ``drop_after``: send only that many body bytes, then close."""

    status: int
    body: bytes = b""
    content_type: str | None = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    drop_after: int | None = None


def _json(status: int, obj: Any, *headers: tuple[str, str]) -> Response:
    return Response(status, orjson.dumps(obj), headers=list(headers))


def _message(status: int, message: str, *headers: tuple[str, str]) -> Response:
    return Response(status, error_body(message), headers=list(headers))


def _misshapen(kind: str, template: str) -> Response:
    """A 200 answer to a listing, not of the shape the API gives (``misshapen_listings``)."""
    if kind == "html":
        page = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body></body></html>"
        return Response(200, page, content_type="text/html; charset=utf-8")
    if kind == "invalid-json":
        return Response(200, b'[{"VpgName": "Finance 0')
    if template == "/v1/localsite":
        return _json(200, [{"SiteName": "an array, not the site"}])
    return _json(200, {"Message": "an object, not the array of the listing"})


def _seconds_text(value: float) -> str:
    """``1`` for integral seconds, ``0.05`` for fractional ones (never negative)."""
    value = max(float(value), 0.0)
    return str(int(value)) if value.is_integer() else repr(value)


class _Dice:
    """Seeded, thread-safe draws: one stream per fault knob, so that the same sequence of
    requests meets the same faults, and one knob's draws never shift another's."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._streams = {name: Random(f"zvm-sim:{seed}:{name}") for name in ("error", "drop")}

    def roll(self, knob: str, rate: float) -> bool:
        with self._lock:
            draw = self._streams[knob].random()  # always drawn: decisions follow request order
        return draw < rate


class _GcPause:
    """Pauses the cyclic garbage collector while big answers are built (two thirds of the
    time of building 100,000 tasks is otherwise spent in collections that find nothing).
    Nested and concurrent uses are counted; the collector is re-enabled by the last user,
    and only if it was enabled before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._restore = False

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0:
                self._restore = gc.isenabled()
                gc.disable()
            self._users += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._restore:
                gc.enable()


_GC_PAUSE = _GcPause()


class ZvmApi:
    """The endpoints of one simulated ZVM (see the module docstring)."""

    def __init__(
        self,
        *,
        settings: SimulatorSettings,
        clock: SimClock,
        scenario: Scenario,
        wire: WireFormat,
        auth: AuthStore,
        inventory: Inventory,
        recovery: RecoveryReport,
    ) -> None:
        self.settings = settings
        self.faults = settings.faults
        self.clock = clock
        self.scenario = scenario
        self.wire = wire
        self.auth = auth
        self.inventory = inventory
        self.recovery = recovery
        self._dice = _Dice(settings.seed)
        self._outage_lock = threading.Lock()
        self._retention_ms = settings.retention // timedelta(milliseconds=1)
        self._known_types = frozenset(name.lower() for name in DOCUMENTED_TYPES)
        self._types_body = orjson.dumps(list(DOCUMENTED_TYPES))

    # ---- entry point ---------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Response:
        """Answer one request. ``params`` and ``headers`` have lower-cased names."""
        route = urllib.parse.unquote(path).rstrip("/").lower() or "/"
        session_mode = self.settings.auth == "session"
        if session_mode and route == "/v1/session/add":
            return self._allow(method, "POST") or self._login(headers)
        if session_mode and route == "/v1/session":
            return self._allow(method, "DELETE") or self._logout_session(headers)
        if not session_mode and route == TOKEN_PATH:
            return self._allow(method, "POST") or self._token(headers, body)
        if not session_mode and route == LOGOUT_PATH:
            return self._allow(method, "POST") or self._logout_keycloak(headers, body)
        if route == "/v1/tasks":
            return self._api(method, headers, lambda: self._list(params))
        if route == "/v1/tasks/types":
            return self._api(method, headers, lambda: Response(200, self._types_body))
        if route.startswith("/v1/tasks/") and "/" not in route[len("/v1/tasks/") :]:
            task_id = urllib.parse.unquote(path).rstrip("/").rsplit("/", 1)[-1]
            return self._api(method, headers, lambda: self._get(task_id))
        if route == RECOVERY_REPORT:
            return self._api(method, headers, lambda: self._recovery(params))
        if route in LISTINGS:
            return self._api(method, headers, lambda: self._listing(route, None))
        parts = route.split("/")
        if (
            len(parts) == 5
            and parts[:3] == ["", "v1", "virtualizationsites"]
            and parts[4] == "hosts"
        ):
            return self._api(method, headers, lambda: self._listing(_HOSTS, parts[3]))
        return _message(404, f"No HTTP resource was found that matches the request URI '{path}'.")

    # ---- auth endpoints ------------------------------------------------------------------

    def _login(self, headers: Mapping[str, str]) -> Response:
        session_id = self.auth.open_session(headers.get("authorization"))
        if session_id is None:
            return _message(401, _DENIED, ("WWW-Authenticate", 'Basic realm="ZVM"'))
        return Response(200, b"", content_type=None, headers=[("x-zerto-session", session_id)])

    def _logout_session(self, headers: Mapping[str, str]) -> Response:
        if not self.auth.end_session(headers.get("x-zerto-session")):
            return _message(401, _DENIED)
        return Response(200, b"", content_type=None)

    def _form(self, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return {}
        pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return dict(pairs)

    def _token(self, headers: Mapping[str, str], body: bytes) -> Response:
        result = self.auth.grant(self._form(headers, body), headers.get("authorization"))
        return _json(
            result.status, result.body, ("Cache-Control", "no-store"), ("Pragma", "no-cache")
        )

    def _logout_keycloak(self, headers: Mapping[str, str], body: bytes) -> Response:
        if self.auth.logout(self._form(headers, body), headers.get("authorization")):
            return Response(204, b"", content_type=None)
        return _json(400, {"error": "invalid_grant", "error_description": "Invalid refresh token"})

    # ---- API endpoints -------------------------------------------------------------------

    def _allow(self, method: str, allowed: str) -> Response | None:
        if method == allowed:
            return None
        return _message(
            405,
            f"The requested resource does not support http method '{method}'.",
            ("Allow", allowed),
        )

    def _api(
        self, method: str, headers: Mapping[str, str], endpoint: Callable[[], Response]
    ) -> Response:
        refused = self._allow(method, "GET")
        if refused is not None:
            return refused
        fault = "error" if self._dice.roll("error", self.faults.error_rate) else None
        if fault is not None or self._in_outage():
            self.faults.injected.add(fault or "outage")
            retry_after = _seconds_text(self.faults.retry_after)
            return _message(503, _UNAVAILABLE, ("Retry-After", retry_after))
        if not self.auth.authorize(headers):
            challenge = "Basic" if self.settings.auth == "session" else "Bearer"
            return _message(401, _DENIED, ("WWW-Authenticate", challenge))
        return endpoint()

    def _in_outage(self) -> bool:
        """Whether ``outage_after`` has run out; counts this request down when it has not."""
        with self._outage_lock:
            left = self.faults.outage_after
            if left is None:
                return False
            if left <= 0:
                return True
            self.faults.outage_after = left - 1
            return False

    def _list(self, params: Mapping[str, str]) -> Response:
        try:
            query = parse_query(
                params,
                utc_offset_minutes=self.settings.utc_offset_minutes,
                known_types=self._known_types,
            )
        except FilterError as error:
            return _message(400, str(error))
        response = Response(200, self.list_body(query))
        if self._dice.roll("drop", self.faults.drop_rate):
            self.faults.injected.add("drop")
            response.drop_after = max(1, len(response.body) // 2)
        return response

    def _get(self, task_id: str) -> Response:
        body = self.task_body(task_id)
        if body is None:
            return _message(404, f"Task '{task_id}' was not found.")
        return Response(200, body)

    def _recovery(self, params: Mapping[str, str]) -> Response:
        refused = self._faulty(RECOVERY_REPORT)
        if refused is not None:
            return refused
        try:
            query = parse_recovery_query(
                params,
                utc_offset_minutes=self.settings.utc_offset_minutes,
                ignored=self.faults.recovery_ignored_params,
            )
        except FilterError as error:
            return _message(400, str(error))
        return Response(200, self.recovery_body(query))

    def recovery_body(self, query: RecoveryQuery, *, every_page: bool = False) -> bytes:
        """The JSON array ``GET /v1/reports/recovery`` answers for ``query`` now (all pages
        with ``every_page``); no fault knob applies but ``malformed_recovery_rate``."""
        now_ms = self.clock.now_ms()
        report = self.recovery
        found = report.operations(now_ms, query) if every_page else report.page(now_ms, query)
        entries = [
            report.entry(
                operation,
                date_text=self.wire.date_text,
                windows=self.settings.date_style == "windows",
                with_vpg_identifier=not self.settings.include_task_identifier,
                malformed_rate=self.faults.malformed_recovery_rate,
            )
            for operation in found
        ]
        return self.wire.encode(entries)

    def _faulty(self, template: str) -> Response | None:
        """The answer the listing fault knobs give ``template`` now, or None."""
        if template in self.faults.missing_listings:
            self.faults.injected.add("missing_listing")
            return _message(404, f"No HTTP resource was found that matches '{template}'.")
        if template in self.faults.failing_listings:
            self.faults.injected.add("failing_listing")
            return _message(500, "An error has occurred.")
        kind = self.faults.misshapen_listings.get(template)
        if kind is not None:
            self.faults.injected.add("misshapen_listing")
            return _misshapen(kind, template)
        return None

    def _listing(self, template: str, site: str | None) -> Response:
        refused = self._faulty(template)
        if refused is not None:
            return refused
        base = self.wire.base_url
        inventory = self.inventory
        settings = self.settings
        ten_x = not settings.include_task_identifier
        body: Any
        if template == "/v1/localsite":
            body = inventory.local_site(base, utc_offset_minutes=settings.utc_offset_minutes)
        elif template == "/v1/peersites":
            body = inventory.peer_sites(base, with_identifiers=not ten_x)
        elif template == "/v1/vpgs":
            body = inventory.vpgs(base, self.clock.now_ms(), ten_x=ten_x)
        elif template == "/v1/vras":
            body = inventory.vras(base, appliance=settings.auth == "keycloak")
        elif template == "/v1/virtualizationsites":
            body = inventory.virtualization_sites()
        else:
            body = inventory.hosts_of(site or "")
            if body is None:
                return _message(404, f"Virtualization site '{site}' was not found.")
        return Response(200, self.wire.document(body))

    # ---- selection -----------------------------------------------------------------------

    def list_body(self, query: TaskQuery) -> bytes:
        """The JSON array ``GET /v1/tasks`` answers for ``query`` now (no faults but
        malformed records)."""
        now_ms = self.clock.now_ms()
        with _GC_PAUSE:
            tasks = self.select(query, now_ms)
            return self.wire.tasks(tasks, now_ms, malformed_rate=self.faults.malformed_rate)

    def select(self, query: TaskQuery, now_ms: int) -> Iterator[TaskSpec]:
        """Tasks matching ``query`` as of ``now_ms``, ascending by Started."""
        purged_before = now_ms - self._retention_ms
        lo = purged_before - MAX_DURATION_MS  # anything older completed and is purged
        hi = now_ms
        sa, sb = query.started_after, query.started_before
        ca, cb = query.completed_after, query.completed_before
        if sa is not None:
            lo = max(lo, -(-sa // TICKS_PER_MS))
        if ca is not None:
            lo = max(lo, -(-ca // TICKS_PER_MS) - MAX_DURATION_MS)
        if sb is not None:
            hi = min(hi, sb // TICKS_PER_MS)
        if cb is not None:
            hi = min(hi, cb // TICKS_PER_MS)
        task_type, state = query.task_type, query.state
        need_completed = query.has_completed_bounds
        for task in self.scenario.tasks_until(hi, generated_from_ms=lo):
            started = task.started_ms * TICKS_PER_MS
            if (sa is not None and started < sa) or (sb is not None and started > sb):
                continue
            completed_ms = task.completed_ms
            if completed_ms is not None and completed_ms <= now_ms:
                if completed_ms < purged_before:
                    continue
                if need_completed:
                    completed = completed_ms * TICKS_PER_MS
                    if (ca is not None and completed < ca) or (cb is not None and completed > cb):
                        continue
            elif need_completed:
                continue
            if task_type is not None and task.type.lower() != task_type:
                continue
            if state is not None and task.status_at(now_ms)[0] != state:
                continue
            yield task

    def task_body(self, task_id: str) -> bytes | None:
        """The object ``GET /v1/tasks/{task_id}`` answers now, or None for a 404: unknown,
        not started yet, or purged (completed longer ago than ``retention``)."""
        now_ms = self.clock.now_ms()
        task = self.scenario.find(task_id, latest_ms=now_ms)
        if task is None or task.started_ms > now_ms:
            return None
        completed_ms = task.completed_ms
        if completed_ms is not None and completed_ms < now_ms - self._retention_ms:
            return None
        return self.wire.task(task, now_ms, malformed_rate=self.faults.malformed_rate)
