"""The simulator's settings, its live fault knobs, and the request log entry.

:class:`SimulatorSettings` is read once, when the :class:`~zvm_simulator.Simulator` is
built. :class:`Faults` is different: the server reads it on every request, so a test may
change ``sim.faults.error_rate`` (or any other knob) while the simulator runs and the next
request sees it.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timedelta
from typing import Literal

__all__ = ["MISSHAPEN_KINDS", "FaultCounts", "Faults", "RequestRecord", "SimulatorSettings"]

MISSHAPEN_KINDS = ("wrong-type", "html", "invalid-json")
"""The kinds of answer ``Faults.misshapen_listings`` gives a listing."""


class FaultCounts:
    """How many times each fault knob of :class:`Faults` changed an answer, by kind.

    Counted by the server's threads as the faults happen (thread-safe):

    - ``error``: API requests answered 503 (``error_rate``);
    - ``drop``: list answers cut mid-body (``drop_rate``);
    - ``latency``: answers delayed by ``latency``;
    - ``session_expired``: sessions or tokens refused because of ``session_ttl`` or
      ``session_max_requests`` (not those that expired on their own);
    - ``missing_listing`` / ``failing_listing``: entity listings answered 404 / 500;
    - ``outage``: API requests answered 503 because ``outage_after`` ran out.

    ``malformed_rate`` is not counted here: whether a task is malformed is a property of
    the task (stable across requests), which :meth:`Simulator.ground_truth` shows.
    """

    KINDS = (
        "error",
        "drop",
        "latency",
        "session_expired",
        "missing_listing",
        "failing_listing",
        "misshapen_listing",
        "outage",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, kind: str) -> None:
        """Count one fault of ``kind`` (one of :attr:`KINDS`)."""
        with self._lock:
            self._counts[kind] += 1

    def snapshot(self) -> dict[str, int]:
        """The counts so far, every kind of :attr:`KINDS` included (0 when none)."""
        with self._lock:
            return {kind: self._counts[kind] for kind in self.KINDS}

    def clear(self) -> None:
        """Back to zero."""
        with self._lock:
            self._counts.clear()


@dataclass
class Faults:
    """Misbehaviour injected into the answers; every field is read at request time.

    - ``error_rate``: fraction of API requests (everything but login/logout/token calls)
      answered ``503`` with a ``Retry-After`` header and ``{"Message": ...}``. It is decided
      before authentication, like an overloaded front end: a 503 never uses up a session.
    - ``retry_after``: seconds written in that ``Retry-After`` header: an integral value is
      written as an integer (``"1"``), a fractional one as given (``"0.05"``).
    - ``outage_after``: how many more API requests are let through before an outage: each
      one counts it down, and once it is 0 every API request is answered ``503`` (with
      ``Retry-After``, like ``error_rate``) until the knob is set again; logins still work.
      A ZVM that goes down in the middle of a pass. None: no outage.
    - ``latency``: seconds slept before every answer (logins included).
    - ``drop_rate``: fraction of ``GET /v1/tasks`` list answers whose connection is closed
      mid-body: the headers (with the full ``Content-Length``) and part of the body are sent,
      then the socket is shut down.
    - ``session_max_requests``: a session or bearer token is refused (401) once it has been
      used for this many API requests.
    - ``session_ttl``: ... or once it is this many real (wall-clock) seconds old.
    - ``malformed_rate``: fraction of tasks served malformed. Whether a task is malformed, and
      how, is a pure function of the seed and the task id, so it is stable across requests;
      raising the rate only adds malformed tasks. The kinds rotate among a bad ``Started``
      string, a ``State`` outside 0-7, and a missing identifier (no ``TaskIdentifier`` and no
      ``Link.identifier``).

    - ``missing_listings`` / ``failing_listings``: entity listings (route templates:
      ``/v1/localsite``, ``/v1/peersites``, ``/v1/vpgs``, ``/v1/vras``,
      ``/v1/virtualizationsites``, ``/v1/virtualizationsites/{site}/hosts``) answered 404
      (a ZVM version or role without them) or 500 ``{"Message": "An error has occurred."}``.
    - ``misshapen_listings``: entity listing (route template, as above) -> kind of answer,
      each a ``200``: ``"wrong-type"`` (a JSON object where the API gives an array, an array
      where it gives an object), ``"html"`` (a login page, as a proxy in front of the ZVM
      serves) or ``"invalid-json"`` (a body cut short).
    - The three listing knobs also take the Recovery Report's route, ``/v1/reports/recovery``
      (a ZVM without the report, or failing it).
    - ``malformed_recovery_rate``: fraction of recovery operations served malformed, drawn
      like ``malformed_rate`` (stable per operation); the kinds rotate among a ``StartTime``
      that is not a date, an ``RTOInSeconds`` that is not a number and a step that is not
      an object (:data:`~zvm_simulator.recovery.MALFORMED_OPERATION_KINDS`).
    - ``recovery_ignored_params``: Recovery Report parameters (lower-cased names:
      ``starttime``, ``endtime``, ``pagenumber``...) the ZVM ignores, as a version that does
      not know them would: it answers as if they had not been sent.

    The random draws for ``error_rate`` and ``drop_rate`` come from generators seeded by the
    simulator's seed (one per knob), so the same sequence of requests meets the same faults.

    ``injected`` is not a knob: it counts the faults the knobs caused (:class:`FaultCounts`);
    :meth:`reset` keeps it, and it takes no part in comparisons.
    """

    error_rate: float = 0.0
    retry_after: float = 1.0
    outage_after: int | None = None
    latency: float = 0.0
    drop_rate: float = 0.0
    session_max_requests: int | None = None
    session_ttl: float | None = None
    malformed_rate: float = 0.0
    missing_listings: set[str] = field(default_factory=set)
    failing_listings: set[str] = field(default_factory=set)
    misshapen_listings: dict[str, str] = field(default_factory=dict)
    malformed_recovery_rate: float = 0.0
    recovery_ignored_params: set[str] = field(default_factory=set)
    injected: FaultCounts = field(default_factory=FaultCounts, compare=False, repr=False)

    def reset(self) -> None:
        """Put every knob back to its default (no faults); the counts of ``injected`` stay."""
        for knob in fields(self):
            if knob.name == "injected":
                continue
            if knob.default_factory is not MISSING:
                setattr(self, knob.name, knob.default_factory())
            else:
                setattr(self, knob.name, knob.default)


@dataclass
class SimulatorSettings:
    """How the simulated ZVM behaves. See the package docstring for the whole picture.

    Scenario: ``seed`` fixes every generated task (and the site/VPG/host ids); ``days`` of
    history exist before the simulated now at construction; ``tasks_per_hour`` is the mean
    arrival rate. Auth: ``auth`` picks the Windows-ZVM session login or the ZVMA Keycloak
    token endpoint; ``username``/``password`` are the accepted user; ``client_id`` is the
    Keycloak client of the password grant, and with ``client_secret`` set the
    client_credentials grant accepts ``(client_id, client_secret)``; ``token_lifetime`` is the
    token's ``expires_in``; sessions expire after ``session_idle_timeout`` idle seconds.
    Wire: ``date_style``, ``date_offsets``, ``key_case``, ``include_task_identifier``.
    Time: ``utc_offset_minutes`` is the ZVM's zone (filters without ``Z`` are read in it),
    ``clock_skew`` the ZVM clock minus the real clock (used when ``start`` is None),
    ``speed`` simulated seconds per real second (0 freezes), ``start`` the simulated now at
    construction. ``retention``: tasks completed longer ago vanish. Network: ``host``,
    ``port`` (0 = any free port), ``tls`` (HTTPS with a generated CA). Entities: one VPG is
    renamed ``vpg_rename_after`` and another deleted ``vpg_delete_after`` after the start
    (None: never; see :mod:`zvm_simulator.inventory`); ``untouched_vpgs`` VPGs and
    ``extra_hosts`` hosts are listed that no task refers to (a large estate: thousands).
    """

    seed: int = 1
    days: float = 7.0
    tasks_per_hour: float = 20.0
    auth: Literal["session", "keycloak"] = "session"
    username: str = "admin"
    password: str = "zerto"
    client_id: str = "zerto-client"
    client_secret: str | None = None
    token_lifetime: float = 300.0
    date_style: Literal["windows", "appliance"] = "windows"
    date_offsets: bool = True
    key_case: Literal["pascal", "camel"] = "pascal"
    include_task_identifier: bool = True
    utc_offset_minutes: int = 180
    clock_skew: timedelta = timedelta(0)
    speed: float = 1.0
    start: datetime | None = None
    retention: timedelta = timedelta(days=30)
    host: str = "127.0.0.1"
    port: int = 0
    tls: bool = False
    faults: Faults = field(default_factory=Faults)
    session_idle_timeout: float = 1800.0
    vpg_rename_after: timedelta | None = timedelta(minutes=30)
    vpg_delete_after: timedelta | None = timedelta(minutes=65)
    untouched_vpgs: int = 3
    extra_hosts: int = 0

    def validate(self) -> None:
        """Raise ValueError naming the first setting that cannot work."""
        problems: list[str] = []
        if self.days < 0:
            problems.append(f"days must be >= 0, got {self.days}")
        if self.tasks_per_hour < 0:
            problems.append(f"tasks_per_hour must be >= 0, got {self.tasks_per_hour}")
        if self.auth not in ("session", "keycloak"):
            problems.append(f"auth must be 'session' or 'keycloak', got {self.auth!r}")
        if self.date_style not in ("windows", "appliance"):
            problems.append(f"date_style must be 'windows' or 'appliance', got {self.date_style!r}")
        if self.key_case not in ("pascal", "camel"):
            problems.append(f"key_case must be 'pascal' or 'camel', got {self.key_case!r}")
        if not -14 * 60 <= self.utc_offset_minutes <= 14 * 60:
            problems.append(
                f"utc_offset_minutes must be within ±840 (±14 h), got {self.utc_offset_minutes}"
            )
        if self.speed < 0:
            problems.append(f"speed must be >= 0, got {self.speed}")
        if self.token_lifetime <= 0:
            problems.append(f"token_lifetime must be > 0 seconds, got {self.token_lifetime}")
        if self.session_idle_timeout <= 0:
            problems.append(
                f"session_idle_timeout must be > 0 seconds, got {self.session_idle_timeout}"
            )
        if self.start is not None and self.start.tzinfo is None:
            problems.append("start must be timezone-aware (UTC)")
        if self.retention <= timedelta(0):
            problems.append(f"retention must be positive, got {self.retention}")
        for name in ("vpg_rename_after", "vpg_delete_after"):
            after = getattr(self, name)
            if after is not None and after < timedelta(0):
                problems.append(f"{name} must not be negative, got {after}")
        for name in ("untouched_vpgs", "extra_hosts"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must not be negative, got {getattr(self, name)}")
        if self.faults.outage_after is not None and self.faults.outage_after < 0:
            problems.append(f"outage_after must not be negative, got {self.faults.outage_after}")
        for template, kind in self.faults.misshapen_listings.items():
            if kind not in MISSHAPEN_KINDS:
                problems.append(
                    f"misshapen_listings[{template!r}] must be one of "
                    f"{', '.join(MISSHAPEN_KINDS)}, got {kind!r}"
                )
        if not 0 <= self.port <= 65535:
            problems.append(f"port must be within 0-65535, got {self.port}")
        if problems:
            raise ValueError("invalid simulator settings: " + "; ".join(problems))


@dataclass(frozen=True)
class RequestRecord:
    """One request the simulator answered (or dropped).

    ``at`` is the real time it arrived (aware UTC); ``path`` is the request path without the
    query string, as sent; ``params`` the query parameters with lower-cased names (the last
    value wins when a name repeats); ``status`` the HTTP status sent (200 for a list answer
    whose connection was then dropped).
    """

    at: datetime
    method: str
    path: str
    params: dict[str, str]
    status: int
