"""The two ways a ZVM lets a client in, as httpx auth flows.

* :class:`SessionAuth` (Windows ZVM): ``POST /v1/session/add`` with HTTP Basic; the
  ``x-zerto-session`` response header goes on every later call. A 401 (or 403) means the
  session expired (they die after 30 idle minutes): log in again once and resend.
* :class:`KeycloakAuth` (Linux appliance): an OpenID Connect token from
  ``/auth/realms/zerto/protocol/openid-connect/token`` with the password grant (client
  ``zerto-client``) or the client_credentials grant; sent as ``Authorization: Bearer``.
  It is renewed before ``expires_in`` runs out (at 80 % of its lifetime) and on a 401/403.

A refused login raises :class:`~etl.errors.ZvmAuthError` naming the user, never the
password. A login answered with 5xx/429 raises :class:`TransientLoginError`, which the
client's retry loop treats like any other transient failure.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Generator

import httpx
import orjson

from etl.errors import ZvmAuthError, ZvmResponseError

__all__ = ["KeycloakAuth", "SessionAuth", "TransientLoginError"]

SESSION_PATH = "/v1/session/add"
TOKEN_PATH = "/auth/realms/zerto/protocol/openid-connect/token"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
RELOGIN_STATUS = frozenset({401, 403})
"""A call answered with one of these logs in again once and is resent: an expired session
is documented nowhere, and servers answer it with either."""


class TransientLoginError(Exception):
    """The login endpoint answered with a status worth retrying (429 or 5xx)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"login answered HTTP {response.status_code}")
        self.response = response


def _refused(zvm: str, url: str, who: str, response: httpx.Response) -> ZvmAuthError:
    detail = ""
    try:
        body = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        text = body.get("error_description") or body.get("Message") or body.get("error")
        if isinstance(text, str) and text:
            detail = f" ({text.strip()})"
    return ZvmAuthError(
        f"ZVM {zvm} at {url} refused the login of {who} with HTTP {response.status_code}{detail}: "
        f"check the username and password (or client_id/client_secret) configured for {zvm}",
        zvm=zvm,
        url=url,
    )


def _check_login(zvm: str, url: str, who: str, response: httpx.Response) -> None:
    if response.status_code in RETRYABLE_STATUS:
        raise TransientLoginError(response)
    if response.status_code in (400, 401, 403):
        raise _refused(zvm, url, who, response)
    if response.status_code >= 300:
        raise ZvmResponseError(
            f"ZVM {zvm} at {url} answered the login with HTTP {response.status_code}: "
            "is url pointing at the ZVM API (port 9669 for a Windows ZVM, 443 for the appliance)?",
            zvm=zvm,
            url=url,
            status_code=response.status_code,
        )


class _LoginBodies(httpx.Auth):
    """Reads the body of the login answers only (a refused login's body says why); an API
    answer is left unread, so that a big one can be streamed (httpx's
    ``requires_response_body`` would read every answer into memory)."""

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        # A login built here has no timeouts of its own (httpx would wait forever on it):
        # it gets those of the call it is for, the client's.
        timeout = request.extensions.get("timeout")
        flow = self.auth_flow(request)
        request = next(flow)
        while True:
            if timeout is not None:
                request.extensions.setdefault("timeout", timeout)
            response = yield request
            if request.url.path.endswith((SESSION_PATH, TOKEN_PATH)):
                response.read()
            try:
                request = flow.send(response)
            except StopIteration:
                break


class SessionAuth(_LoginBodies):
    """Windows ZVM session login; re-logs in once when a call comes back 401 or 403."""

    def __init__(self, *, zvm: str, base_url: str, username: str, password: str) -> None:
        self._zvm = zvm
        self._base_url = base_url
        self._username = username
        raw = f"{username}:{password}".encode()
        self._basic = "Basic " + base64.b64encode(raw).decode("ascii")
        self._session: str | None = None
        self._lock = threading.Lock()
        self.logins = 0

    @property
    def session(self) -> str | None:
        """The current session id (None before the first login)."""
        return self._session

    def _login(self) -> Generator[httpx.Request, httpx.Response, str]:
        request = httpx.Request(
            "POST",
            self._base_url + SESSION_PATH,
            headers={"Authorization": self._basic, "Content-Type": "application/json"},
        )
        response = yield request
        _check_login(self._zvm, self._base_url, f"user {self._username!r}", response)
        session = response.headers.get("x-zerto-session")
        if not session:
            raise ZvmResponseError(
                f"ZVM {self._zvm} at {self._base_url} accepted the login but sent no "
                "x-zerto-session header: is this a Windows ZVM? "
                "For the appliance use auth: keycloak",
                zvm=self._zvm,
                url=self._base_url,
            )
        with self._lock:
            self._session = session
            self.logins += 1
        return str(session)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        session = self._session
        if session is None:
            session = yield from self._login()
        request.headers["x-zerto-session"] = session
        response = yield request
        if response.status_code in RELOGIN_STATUS:
            request.headers["x-zerto-session"] = yield from self._login()
            yield request

    def logout_request(self) -> httpx.Request | None:
        """``DELETE /v1/session`` for the current session, or None when not logged in."""
        if self._session is None:
            return None
        request = httpx.Request(
            "DELETE", self._base_url + "/v1/session", headers={"x-zerto-session": self._session}
        )
        self._session = None
        return request


class KeycloakAuth(_LoginBodies):
    """Appliance (ZVMA) OpenID Connect bearer token, renewed before it expires."""

    refresh_fraction = 0.8

    def __init__(
        self,
        *,
        zvm: str,
        base_url: str,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        client_secret: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._zvm = zvm
        self._base_url = base_url
        if client_secret is not None:
            self._form = {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
            }
            self._who = f"client {client_id!r}"
        else:
            self._form = {
                "grant_type": "password",
                "client_id": client_id,
                "username": username or "",
                "password": password or "",
            }
            self._who = f"user {username!r}"
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self.logins = 0

    def _now(self) -> float:
        return self._clock()

    def _grant(self) -> Generator[httpx.Request, httpx.Response, str]:
        request = httpx.Request("POST", self._base_url + TOKEN_PATH, data=self._form)
        asked_at = self._now()
        response = yield request
        _check_login(self._zvm, self._base_url, self._who, response)
        try:
            body = orjson.loads(response.content)
            token = body["access_token"]
            lifetime = float(body.get("expires_in") or 60)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ZvmResponseError(
                f"ZVM {self._zvm} at {self._base_url}: the token endpoint answered without an "
                "access_token: is this a Zerto appliance? For a Windows ZVM use auth: session",
                zvm=self._zvm,
                url=self._base_url,
            ) from None
        self._token = str(token)
        self._renew_at = asked_at + lifetime * self.refresh_fraction
        self.logins += 1
        return str(token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._token
        if token is None or self._now() >= self._renew_at:
            token = yield from self._grant()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code in RELOGIN_STATUS:
            request.headers["Authorization"] = f"Bearer {(yield from self._grant())}"
            yield request
