"""Who may call the simulated API: Windows-ZVM sessions and ZVMA Keycloak tokens.

Session mode: ``POST /v1/session/add`` with HTTP Basic credentials opens a session whose id
goes back in the ``x-zerto-session`` header; the session ends with ``DELETE /v1/session`` or
after ``session_idle_timeout`` real seconds without use (30 minutes by default, like a ZVM).

Keycloak mode: the token endpoint takes the ``password`` grant (``client_id`` must be the
configured public client), the ``client_credentials`` grant (only when a client secret is
configured; the client may authenticate in the form or with HTTP Basic) and the
``refresh_token`` grant. Access tokens are JWT-shaped (the signature is random bytes, the
payload is readable) and expire after ``token_lifetime`` real seconds; refresh tokens after
``session_idle_timeout``.

Both modes apply the live fault knobs :attr:`Faults.session_max_requests` and
:attr:`Faults.session_ttl` to every session or access token, counted per credential. All
times here are real (monotonic) time, never the simulated clock.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from zvm_simulator.settings import Faults, SimulatorSettings

__all__ = ["AuthStore", "GrantResult"]

_INVALID_CLIENT = {
    "error": "invalid_client",
    "error_description": "Invalid client or Invalid client credentials",
}
_INVALID_USER = {"error": "invalid_grant", "error_description": "Invalid user credentials"}


@dataclass
class _Credential:
    kind: Literal["session", "access", "refresh"]
    family: str  # a login: the session id, or Keycloak's session_state shared by its tokens
    client_id: str
    username: str
    created: float
    last_used: float
    expires_at: float | None = None
    requests: int = 0


@dataclass(frozen=True)
class GrantResult:
    """The answer of the token endpoint: an HTTP status and its JSON body."""

    status: int
    body: dict[str, Any]


def _seconds(value: float) -> int | float:
    """An integral number of seconds as an int (``300``), anything else as given (``0.5``)."""
    return int(value) if float(value).is_integer() else value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _basic(authorization: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an HTTP Basic ``Authorization`` header, or None."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class AuthStore:
    """Sessions and tokens of one simulated ZVM (see the module docstring)."""

    def __init__(
        self,
        settings: SimulatorSettings,
        *,
        issuer: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._faults: Faults = settings.faults
        self._issuer = issuer
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._credentials: dict[str, _Credential] = {}

    # ---- session mode --------------------------------------------------------------------

    def open_session(self, authorization: str | None) -> str | None:
        """A new session id for valid HTTP Basic credentials, else None."""
        creds = _basic(authorization)
        if creds is None or not self._user_ok(*creds):
            return None
        session_id = str(uuid.uuid4())
        self._add(session_id, kind="session", family=session_id, client_id="", username=creds[0])
        return session_id

    def end_session(self, session_id: str | None) -> bool:
        """End a live session; False when there is no such live session."""
        if not session_id or not self.check(session_id.strip(), count=False):
            return False
        with self._lock:
            self._credentials.pop(session_id.strip(), None)
        return True

    # ---- keycloak mode -------------------------------------------------------------------

    def grant(self, form: Mapping[str, str], authorization: str | None) -> GrantResult:
        """Answer a token request (form fields already decoded)."""
        grant_type = form.get("grant_type", "")
        basic = _basic(authorization)
        client_id = form.get("client_id") or (basic[0] if basic else "")
        if not grant_type:
            return GrantResult(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "Missing form parameter: grant_type",
                },
            )
        if grant_type == "password":
            if client_id != self._settings.client_id:
                return GrantResult(401, _INVALID_CLIENT)
            username = form.get("username", "")
            if not self._user_ok(username, form.get("password", "")):
                return GrantResult(401, _INVALID_USER)
            return GrantResult(200, self._issue(client_id, username, form.get("scope", "")))
        if grant_type == "client_credentials":
            secret = form.get("client_secret") or (basic[1] if basic else "")
            expected = self._settings.client_secret
            if expected is None:
                return GrantResult(
                    401,
                    {
                        "error": "unauthorized_client",
                        "error_description": "Client not enabled to retrieve service account",
                    },
                )
            if not (
                secrets.compare_digest(client_id.encode(), self._settings.client_id.encode())
                and secrets.compare_digest(secret.encode(), expected.encode())
            ):
                return GrantResult(401, _INVALID_CLIENT)
            username = f"service-account-{client_id}"
            return GrantResult(200, self._issue(client_id, username, form.get("scope", "")))
        if grant_type == "refresh_token":
            return self._refresh(form.get("refresh_token", ""), client_id, form.get("scope", ""))
        return GrantResult(
            400,
            {"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"},
        )

    def logout(self, form: Mapping[str, str], authorization: str | None) -> bool:
        """End the Keycloak session of a refresh token (or of a bearer token); False when
        neither names a live session."""
        token = form.get("refresh_token", "").strip() or _bearer(authorization)
        with self._lock:
            credential = self._credentials.get(token or "")
            if credential is None:
                return False
            family = credential.family
            for key in [k for k, c in self._credentials.items() if c.family == family]:
                del self._credentials[key]
        return True

    # ---- API calls -----------------------------------------------------------------------

    def authorize(self, headers: Mapping[str, str]) -> bool:
        """Whether an API request carries a valid credential; counts it as one request.

        ``headers`` must have lower-cased names.
        """
        if self._settings.auth == "session":
            token = headers.get("x-zerto-session", "").strip()
        else:
            token = _bearer(headers.get("authorization")) or ""
        return bool(token) and self.check(token, count=True)

    def check(self, token: str, *, count: bool) -> bool:
        """Whether ``token`` is a live session or access token; with ``count``, use it once.

        A credential found expired (idle, lifetime, ``session_ttl``, ``session_max_requests``)
        is forgotten, so it stays refused.
        """
        now = self._monotonic()
        faults = self._faults
        with self._lock:
            credential = self._credentials.get(token)
            if credential is None or credential.kind == "refresh":
                return False
            idle = self._settings.session_idle_timeout
            expired = (credential.expires_at is not None and now >= credential.expires_at) or (
                credential.kind == "session" and now - credential.last_used >= idle
            )
            cut_short = (
                faults.session_ttl is not None and now - credential.created >= faults.session_ttl
            ) or (
                faults.session_max_requests is not None
                and count
                and credential.requests >= faults.session_max_requests
            )
            if expired or cut_short:
                if cut_short and not expired:
                    faults.injected.add("session_expired")
                del self._credentials[token]
                return False
            if count:
                credential.requests += 1
                credential.last_used = now
            return True

    def expire_all(self) -> None:
        """Forget every session and token (the next API call with any of them gets 401)."""
        with self._lock:
            self._credentials.clear()

    # ---- internals -----------------------------------------------------------------------

    def _user_ok(self, username: str, password: str) -> bool:
        return secrets.compare_digest(
            username.encode(), self._settings.username.encode()
        ) & secrets.compare_digest(password.encode(), self._settings.password.encode())

    def _add(
        self,
        token: str,
        *,
        kind: Literal["session", "access", "refresh"],
        family: str,
        client_id: str,
        username: str,
        lifetime: float | None = None,
    ) -> None:
        now = self._monotonic()
        credential = _Credential(
            kind=kind,
            family=family,
            client_id=client_id,
            username=username,
            created=now,
            last_used=now,
            expires_at=None if lifetime is None else now + lifetime,
        )
        with self._lock:
            self._purge(now)
            self._credentials[token] = credential

    def _purge(self, now: float) -> None:
        """Drop credentials that can no longer be valid (keeps memory bounded)."""
        idle = self._settings.session_idle_timeout
        dead = [
            key
            for key, c in self._credentials.items()
            if (c.expires_at is not None and now >= c.expires_at)
            or (c.kind == "session" and now - c.last_used >= idle)
        ]
        for key in dead:
            del self._credentials[key]

    def _jwt(self, payload: dict[str, Any]) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": "zvm-simulator"}
        return ".".join(
            (_b64(orjson.dumps(header)), _b64(orjson.dumps(payload)), _b64(secrets.token_bytes(32)))
        )

    def _issue(
        self, client_id: str, username: str, scope: str, *, family: str | None = None
    ) -> dict[str, Any]:
        lifetime = self._settings.token_lifetime
        refresh_lifetime = self._settings.session_idle_timeout
        session_state = family or str(uuid.uuid4())
        granted = "profile email"
        if "openid" in scope.split():
            granted = "openid " + granted
        issued = time.time()
        claims = {
            "iat": int(issued),
            "iss": self._issuer,
            "aud": "account",
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"zvm-simulator:{username}")),
            "azp": client_id,
            "session_state": session_state,
            "sid": session_state,
            "scope": granted,
            "preferred_username": username,
        }
        access = self._jwt(
            {**claims, "exp": int(issued + lifetime), "jti": str(uuid.uuid4()), "typ": "Bearer"}
        )
        refresh = self._jwt(
            {
                **claims,
                "exp": int(issued + refresh_lifetime),
                "jti": str(uuid.uuid4()),
                "typ": "Refresh",
            }
        )
        common = {"family": session_state, "client_id": client_id, "username": username}
        self._add(access, kind="access", lifetime=lifetime, **common)
        self._add(refresh, kind="refresh", lifetime=refresh_lifetime, **common)
        return {
            "access_token": access,
            "expires_in": _seconds(lifetime),
            "refresh_expires_in": _seconds(refresh_lifetime),
            "refresh_token": refresh,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": session_state,
            "scope": granted,
        }

    def _refresh(self, token: str, client_id: str, scope: str) -> GrantResult:
        now = self._monotonic()
        with self._lock:
            credential = self._credentials.get(token.strip())
            valid = (
                credential is not None
                and credential.kind == "refresh"
                and (credential.expires_at is None or now < credential.expires_at)
            )
        if not valid or credential is None:
            return GrantResult(
                400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}
            )
        if client_id != credential.client_id:
            return GrantResult(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "Token client and authorized client don't match",
                },
            )
        body = self._issue(client_id, credential.username, scope, family=credential.family)
        return GrantResult(200, body)


def _bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
