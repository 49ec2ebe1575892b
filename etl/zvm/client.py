"""The ZVM tasks API client: the only code that talks to a ZVM.

:class:`ZvmClient` wraps one ``httpx.Client`` per ZVM with its auth flow
(:mod:`etl.zvm.auth`), TLS settings and timeouts from the configuration, and a retry loop
(tenacity) for what is worth retrying: connection errors, timeouts, dropped connections,
429 and 5xx. Waits grow exponentially with jitter and honour ``Retry-After``; the total
time spent on one call is bounded by ``retry_for``, and a group of calls can share a
shorter budget (a :class:`~etl.zvm.deadline.Deadline`: the entity listings of a names
refresh). Everything else becomes one clear :class:`~etl.errors.ZvmError` that names the
ZVM, the URL and what to do.

Usage::

    with ZvmClient(config.zvm("nyc")) as client:
        tasks = client.fetch_tasks(TaskFilters(started_after=cursor))
        one = client.fetch_task("5e81d46e-....d2da8a37-...")   # None when the ZVM has no such task
"""

from __future__ import annotations

import email.utils
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_random_exponential,
)

from etl import __version__
from etl.config import ZvmConfig
from etl.errors import (
    ZvmAuthError,
    ZvmConnectionError,
    ZvmError,
    ZvmResponseError,
    ZvmRetriesExhausted,
    ZvmTlsError,
)
from etl.logs import redact_http_logs
from etl.zvm.answers import Spool, TaskList, gc_paused
from etl.zvm.auth import RETRYABLE_STATUS, KeycloakAuth, SessionAuth, TransientLoginError
from etl.zvm.dates import format_filter_date
from etl.zvm.deadline import Deadline

__all__ = [
    "Attempt",
    "AttemptObserver",
    "TaskFilters",
    "ZvmClient",
]

log = logging.getLogger(__name__)
# httpcore's DEBUG lines show every answer's headers, the ZVM session id among them: they
# are redacted whatever logging the program that uses this client sets up.
redact_http_logs()

MAX_RETRY_AFTER = 120.0
"""A Retry-After longer than this is capped: the total retry budget still applies."""


@dataclass(frozen=True)
class TaskFilters:
    """The six filters of ``GET /v1/tasks``. Dates must be timezone-aware; they are sent
    as UTC in whole seconds with a trailing ``Z``, lower bounds rounded down and upper
    bounds up, so a filter never excludes a task its exact value would include."""

    started_after: datetime | None = None
    started_before: datetime | None = None
    completed_after: datetime | None = None
    completed_before: datetime | None = None
    type: str | None = None
    status: int | str | None = None

    def to_params(self) -> dict[str, str]:
        """The query parameters, with Zerto's names."""
        params: dict[str, str] = {}
        for name, value, upper in (
            ("startedAfterDate", self.started_after, False),
            ("startedBeforeDate", self.started_before, True),
            ("completedAfterDate", self.completed_after, False),
            ("completedBeforeDate", self.completed_before, True),
        ):
            if value is not None:
                params[name] = format_filter_date(value, round_up=upper)
        if self.type is not None:
            params["type"] = self.type
        if self.status is not None:
            params["status"] = str(self.status)
        return params


class _Transient(Exception):
    """One failed attempt worth retrying; ``cause`` says why in words. ``unreachable`` when
    no connection could be made at all (refused, unknown host): a ZVM that is down, or a
    wrong url, for which the shorter ``connect_retry_for`` budget applies."""

    def __init__(
        self,
        cause: str,
        *,
        response: httpx.Response | None = None,
        refused: bool = False,
        unreachable: bool = False,
    ):
        super().__init__(cause)
        self.cause = cause
        self.response = response
        self.refused = refused
        self.unreachable = unreachable or refused


@dataclass(frozen=True)
class Attempt:
    """One HTTP attempt of an API call, as reported to an ``on_attempt`` observer.

    ``path`` is the request path as sent (task ids included); ``status`` the HTTP status,
    or None when no answer came; ``error`` None for an answer, else what went wrong:
    ``timeout``, ``connection``, ``tls``, ``login_http_<status>`` or an exception's class
    name. ``seconds`` includes a login the attempt needed first.
    """

    zvm: str
    method: str
    path: str
    status: int | None
    seconds: float
    error: str | None = None


AttemptObserver = Callable[[Attempt], None]


def _failure_kind(exc: BaseException) -> str:
    if isinstance(exc, TransientLoginError):
        return f"login_http_{exc.response.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "tls" if _is_tls_failure(exc) else "connection"
    if isinstance(exc, httpx.TransportError):
        return "connection"
    return type(exc).__name__


@dataclass
class ClientStats:
    """What one client did: HTTP requests sent (logins included) and retries made."""

    requests: int = 0
    retries: int = 0


def _ssl_context(zvm: ZvmConfig) -> ssl.SSLContext | bool:
    if not zvm.verify_tls:
        return False
    if zvm.ca_bundle is not None:
        return ssl.create_default_context(cafile=str(zvm.ca_bundle))
    return True


def _is_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def _message_of(response: httpx.Response) -> str:
    """The ZVM's own error text (``{"Message": ...}``) when it sent one."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(body, dict):
        for key in ("Message", "message", "error_description", "errorMessage"):
            if isinstance(body.get(key), str):
                return str(body[key]).strip()
    return ""


class ZvmClient:
    """A connection to one ZVM's tasks API.

    Not thread-safe across threads that share it for logins; one client per ZVM pass.
    ``transport`` replaces the network (tests pass ``httpx.MockTransport``); ``sleep``
    replaces ``time.sleep`` between retries and ``monotonic`` the clock the retry budgets
    (``retry_for``, ``connect_retry_for``) and the Keycloak token's renewal are measured
    on. ``on_attempt``, when given, is called after every HTTP attempt with an
    :class:`Attempt` (metrics hook in there; it must not raise).
    """

    def __init__(
        self,
        zvm: ZvmConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_attempt: AttemptObserver | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.zvm = zvm
        self._on_attempt = on_attempt
        self.name = zvm.name
        self.base_url = zvm.url
        self.stats = ClientStats()
        self._sleep = sleep
        self._monotonic = monotonic
        self._auth = self._make_auth(zvm, monotonic)
        if not zvm.verify_tls:
            log.warning(
                "TLS verification is off for ZVM %s (verify_tls: false): anyone on the path can "
                "read its credentials; set ca_bundle to trust its certificate instead",
                zvm.name,
            )
        self._http = httpx.Client(
            base_url=zvm.url,
            auth=self._auth,
            verify=_ssl_context(zvm),
            timeout=httpx.Timeout(
                zvm.timeout.total_seconds(), connect=zvm.connect_timeout.total_seconds()
            ),
            headers={"Accept": "application/json", "User-Agent": f"zvm-task-etl/{__version__}"},
            transport=transport,
            event_hooks={"request": [self._count_request]},
            follow_redirects=False,
        )

    @staticmethod
    def _make_auth(zvm: ZvmConfig, monotonic: Callable[[], float]) -> SessionAuth | KeycloakAuth:
        password = zvm.password.get_secret_value() if zvm.password is not None else None
        if zvm.auth == "keycloak":
            secret = zvm.client_secret.get_secret_value() if zvm.client_secret is not None else None
            return KeycloakAuth(
                zvm=zvm.name,
                base_url=zvm.url,
                client_id=zvm.client_id,
                username=zvm.username,
                password=password,
                client_secret=secret,
                clock=monotonic,
            )
        return SessionAuth(
            zvm=zvm.name, base_url=zvm.url, username=zvm.username or "", password=password or ""
        )

    def _count_request(self, request: httpx.Request) -> None:
        self.stats.requests += 1

    # -- public API ------------------------------------------------------------------

    def fetch_task_list(self, filters: TaskFilters | None = None) -> TaskList:
        """``GET /v1/tasks`` with ``filters``: the answer, whose tasks are decoded one at a
        time as it is iterated.

        The body is received (with retries) before this returns, into a spool that keeps
        up to :data:`~etl.zvm.answers.SPOOL_MEMORY` bytes in memory and the rest in a
        temporary file, so an answer of any size takes bounded memory and iterating never
        waits on the network.
        Raises ZvmResponseError when the answer is HTML or does not start as a JSON array;
        iterating raises it when the JSON turns out invalid.
        """
        params = (filters or TaskFilters()).to_params()
        what = "GET /v1/tasks"
        spool = Spool()
        try:
            response = self._request("GET", "/v1/tasks", params=params, spool=spool)
            start = spool.first_byte()
            if "html" in spool.content_type.lower() or start == b"<":
                raise self._html_error(response, what)
            if start != b"[":
                body = spool.read_all()
                error = self._invalid_json(response, what, size=len(body))
                try:
                    parsed = json.loads(body)
                except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
                    raise error(exc) from None
                raise self._shape_error(what, "a JSON array of tasks", parsed)
        except BaseException:
            spool.close()
            raise
        return TaskList(spool, self._invalid_json(response, what, size=spool.size))

    def fetch_tasks(self, filters: TaskFilters | None = None) -> list[Any]:
        """``GET /v1/tasks`` with ``filters``: every task as a decoded JSON object.

        The items are returned as received (not validated): normalization decides what is
        a usable task. Raises ZvmResponseError when the answer is not a JSON array. Passes
        use :meth:`fetch_task_list`, which never holds every decoded task at once.
        """
        return list(self.fetch_task_list(filters))

    def fetch_task(self, identifier: str) -> dict[str, Any] | None:
        """``GET /v1/tasks/{identifier}``: the task, or None when the ZVM no longer has it."""
        path = "/v1/tasks/" + quote(identifier, safe="")
        response = self._request("GET", path, allow=frozenset({404}))
        if response.status_code == 404:
            return None
        body = self._json(response, f"GET {path}")
        if not isinstance(body, dict):
            raise self._shape_error(f"GET {path}", "a JSON object", body)
        return body

    def fetch_task_types(self) -> list[str]:
        """``GET /v1/tasks/types``: the task types this ZVM knows."""
        response = self._request("GET", "/v1/tasks/types")
        body = self._json(response, "GET /v1/tasks/types")
        if not isinstance(body, list) or not all(isinstance(item, str) for item in body):
            raise self._shape_error("GET /v1/tasks/types", "a JSON array of strings", body)
        return body

    def fetch_listing(
        self,
        path: str,
        *,
        expected: type[list[Any]] | type[dict[str, Any]],
        deadline: Deadline | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """``GET path`` of an entity listing (``/v1/vpgs``...) or a report page, with the query
        ``params``: the decoded JSON, which must be a JSON array (``expected=list``) or object
        (``expected=dict``).

        The same auth, retries and TLS as the tasks; a 404 (a ZVM version or role without
        the listing) raises ZvmResponseError with ``status_code`` 404, like any other 4xx.
        With ``deadline`` (from :meth:`deadline`), retries stop at its ``retry_end`` (or
        ``retry_for``, whichever comes first), no attempt starts after its ``end`` and each
        attempt's timeout is cut to what is left before it; ZvmRetriesExhausted then names
        the deadline's setting.
        """
        response = self._request("GET", path, params=params, deadline=deadline)
        body = self._json(response, f"GET {path}")
        if not isinstance(body, expected):
            shape = "a JSON array" if expected is list else "a JSON object"
            raise self._shape_error(f"GET {path}", shape, body)
        return body

    def deadline(self, seconds: float, *, setting: str) -> Deadline:
        """A budget of ``seconds`` from now, on this client's clock (the one its retry
        budgets use), for calls that must be done together (see :mod:`etl.zvm.deadline`);
        ``setting`` is the configuration key that sets it."""
        return Deadline.after(seconds, clock=self._monotonic, setting=setting)

    def close(self) -> None:
        """End the ZVM session (best effort) and close the connections."""
        if isinstance(self._auth, SessionAuth):
            logout = self._auth.logout_request()
            if logout is not None:
                try:
                    self._http.send(logout, auth=None)
                except httpx.HTTPError as exc:
                    log.debug("logout from ZVM %s failed: %s", self.name, exc)
        self._http.close()

    def __enter__(self) -> ZvmClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        allow: frozenset[int] = frozenset(),
        spool: Spool | None = None,
        deadline: Deadline | None = None,
    ) -> httpx.Response:
        """Send with retries; return a response that is 2xx or in ``allow``.

        With ``spool``, a successful answer's body is written to it as it arrives (and the
        response's own body is left empty): an answer of any size then takes a bounded
        amount of memory. A connection lost mid-body is retried like any other. With
        ``deadline``, retries also stop at its ``retry_end``, no attempt starts after its
        ``end``, and each attempt's timeout is cut to what is left before it."""
        budget = self.zvm.retry_for.total_seconds()
        connect_budget = min(budget, self.zvm.connect_retry_for.total_seconds())
        attempts = 0
        last: _Transient | None = None

        def left(state: RetryCallState) -> float:
            # Unreachable (refused, unknown host): the short budget; any other failure of a
            # ZVM that answers (5xx, 429, timeouts, dropped connections): retry_for.
            exc = state.outcome.exception() if state.outcome is not None else None
            unreachable = isinstance(exc, _Transient) and exc.unreachable
            limit = connect_budget if unreachable else budget
            own = limit - (self._monotonic() - started)
            return own if deadline is None else min(own, deadline.retry_left())

        def stop(state: RetryCallState) -> bool:
            return left(state) <= 0

        def wait(state: RetryCallState) -> float:
            # Never sleep past the budget: the last attempt comes when it ends, at the latest.
            return max(0.0, min(self._wait(state), left(state)))

        started = self._monotonic()
        retrying = Retrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception_type(_Transient),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    if last is not None and deadline is not None and deadline.expired:
                        raise last  # the deadline passed while waiting: no time to answer
                    attempts += 1
                    try:
                        return self._attempt(
                            method, path, params, allow, spool, timeout=self._timeout(deadline)
                        )
                    except _Transient as exc:
                        last = exc
                        raise
        except _Transient as exc:
            elapsed = self._monotonic() - started
            setting = None
            if deadline is not None and (deadline.expired or deadline.retry_left() <= 0):
                setting = deadline.setting
            raise self._exhausted(method, path, exc, attempts, elapsed, setting=setting) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _timeout(self, deadline: Deadline | None) -> httpx.Timeout | None:
        """The timeouts of one attempt: the configured ones, cut to what ``deadline`` has
        left (None: the client's own)."""
        if deadline is None:
            return None
        left = deadline.left()
        return httpx.Timeout(
            min(self.zvm.timeout.total_seconds(), left),
            connect=min(self.zvm.connect_timeout.total_seconds(), left),
        )

    def _attempt(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        allow: frozenset[int],
        spool: Spool | None = None,
        *,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        begun = time.monotonic()
        try:
            response = self._send(method, path, params, spool, timeout)
        except TransientLoginError as exc:
            raise _Transient(
                f"the login answered HTTP {exc.response.status_code}", response=exc.response
            ) from None
        except httpx.ConnectError as exc:
            if _is_tls_failure(exc):
                raise self._tls_error(exc) from None
            refused = "refused" in str(exc).lower()
            raise _Transient(
                "connection refused" if refused else f"cannot connect: {exc}",
                refused=refused,
                unreachable=True,
            ) from None
        except httpx.ConnectTimeout:
            # No connection made at all (a firewall dropping it, a wrong address): unreachable.
            seconds = self.zvm.connect_timeout.total_seconds()
            raise _Transient(
                f"connecting timed out after {seconds:g}s (connect_timeout)", unreachable=True
            ) from None
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise _Transient(f"connection lost: {exc or type(exc).__name__}") from None
        log.debug(
            "ZVM %s %s %s -> %s in %.3fs",
            self.name,
            method,
            path,
            response.status_code,
            time.monotonic() - begun,
        )
        status = response.status_code
        if status < 300 or status in allow:
            return response
        if status in RETRYABLE_STATUS:
            raise _Transient(f"HTTP {status} {response.reason_phrase}".strip(), response=response)
        if status == 401:
            raise ZvmAuthError(
                f"ZVM {self.name} at {self.base_url} refused {method} {path} with HTTP 401 right "
                "after a fresh login: the account may lack the rights to read tasks",
                zvm=self.name,
                url=self.base_url,
            )
        message = _message_of(response)
        raise ZvmResponseError(
            f"ZVM {self.name} at {self.base_url} answered {method} {path} with HTTP {status}"
            + (f": {message}" if message else "")
            + ("" if status != 400 else " (a filter value it does not accept)"),
            zvm=self.name,
            url=self.base_url,
            status_code=status,
        )

    def _send(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        spool: Spool | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """One HTTP request, reported to the ``on_attempt`` observer when there is one."""
        if self._on_attempt is None:
            return self._exchange(method, path, params, spool, timeout)
        begun = time.monotonic()
        try:
            response = self._exchange(method, path, params, spool, timeout)
        except Exception as exc:
            self._on_attempt(
                Attempt(self.name, method, path, None, time.monotonic() - begun, _failure_kind(exc))
            )
            raise
        self._on_attempt(
            Attempt(self.name, method, path, response.status_code, time.monotonic() - begun)
        )
        return response

    def _exchange(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        spool: Spool | None,
        timeout: httpx.Timeout | None,
    ) -> httpx.Response:
        limits = httpx.USE_CLIENT_DEFAULT if timeout is None else timeout
        if spool is None:
            return self._http.request(method, path, params=params, timeout=limits)
        request = self._http.build_request(method, path, params=params, timeout=limits)
        response = self._http.send(request, stream=True)
        try:
            if response.status_code >= 300:
                response.read()  # an error's body is small, and says why
                return response
            spool.reset()
            for chunk in response.iter_bytes():
                spool.write(chunk)
            spool.content_type = response.headers.get("Content-Type", "")
        finally:
            response.close()
        return response

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        response = exc.response if isinstance(exc, _Transient) else None
        after = _retry_after(response)
        if after is not None:
            return after
        backoff: float = wait_random_exponential(multiplier=0.5, max=30)(state)
        return backoff

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.info(
            "ZVM %s: %s; retrying in %.1fs (attempt %d)",
            self.name,
            exc,
            wait,
            state.attempt_number + 1,
        )

    def _exhausted(
        self,
        method: str,
        path: str,
        exc: _Transient,
        attempts: int,
        elapsed: float,
        *,
        setting: str | None = None,
    ) -> ZvmError:
        """The error for a call whose retries ran out; ``setting`` names the budget that
        stopped them when it was a deadline's (see :mod:`etl.zvm.deadline`)."""
        if exc.unreachable:
            what = "connection refused" if exc.refused else exc.cause
            return ZvmConnectionError(
                f"cannot connect to ZVM {self.name} at {self.base_url}: {what} "
                f"({attempts} attempts in {elapsed:.0f}s). Check the url's host and port (9669 "
                "for a Windows ZVM, 443 for the appliance) and that the ZVM is up and "
                "reachable from here (connect_retry_for sets how long to keep trying)",
                zvm=self.name,
                url=self.base_url,
            )
        return ZvmRetriesExhausted(
            f"gave up on {method} {path} at ZVM {self.name} ({self.base_url}) after {attempts} "
            f"attempts in {elapsed:.0f}s; the last failure was: {exc.cause}. The ZVM may be "
            "overloaded or restarting; the next pass will try again "
            f"(raise {setting or 'retry_for'} to wait longer)",
            zvm=self.name,
            url=self.base_url,
            attempts=attempts,
        )

    def _tls_error(self, exc: httpx.ConnectError) -> ZvmTlsError:
        reason = str(exc).split("] ", 1)[-1] or "certificate verify failed"
        return ZvmTlsError(
            f"the TLS certificate of ZVM {self.name} at {self.base_url} could not be verified "
            f"({reason}). ZVMs often use a private or self-signed CA: set ca_bundle to that CA's "
            "PEM file for this ZVM (verify_tls: false also works, but is not recommended)",
            zvm=self.name,
            url=self.base_url,
        )

    def _invalid_json(
        self, response: httpx.Response, what: str, *, size: int | None = None
    ) -> Callable[[Exception], ZvmResponseError]:
        received = len(response.content) if size is None else size

        def error(exc: Exception) -> ZvmResponseError:
            return ZvmResponseError(
                f"ZVM {self.name} at {self.base_url} answered {what} with invalid JSON "
                f"({exc}; {received} bytes received)",
                zvm=self.name,
                url=self.base_url,
                status_code=response.status_code,
            )

        return error

    def _refuse_html(self, response: httpx.Response, what: str) -> None:
        content_type = response.headers.get("Content-Type", "")
        if "html" in content_type.lower() or response.content.lstrip()[:1] == b"<":
            raise self._html_error(response, what)

    def _html_error(self, response: httpx.Response, what: str) -> ZvmResponseError:
        return ZvmResponseError(
            f"ZVM {self.name} at {self.base_url} answered {what} with an HTML page "
            f"(HTTP {response.status_code}), not JSON: is url the ZVM API (port 9669 for a "
            "Windows ZVM, 443 for the appliance) and not a proxy or web console?",
            zvm=self.name,
            url=self.base_url,
            status_code=response.status_code,
        )

    def _json(self, response: httpx.Response, what: str) -> Any:
        self._refuse_html(response, what)
        with gc_paused():
            try:
                return orjson.loads(response.content)
            except orjson.JSONDecodeError as exc:
                error = exc
            try:
                # orjson refuses escaped lone surrogates ("\ud800") that .NET may write;
                # the standard library reads them, and normalization rejects such records.
                return json.loads(response.content)
            except (ValueError, RecursionError):  # RecursionError: nested too deep
                raise self._invalid_json(response, what)(error) from None

    def _shape_error(self, what: str, expected: str, body: object) -> ZvmResponseError:
        return ZvmResponseError(
            f"ZVM {self.name} at {self.base_url} answered {what} with a JSON "
            f"{type(body).__name__}, expected {expected}",
            zvm=self.name,
            url=self.base_url,
        )
