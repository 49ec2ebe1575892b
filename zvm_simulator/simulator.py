"""The :class:`Simulator` facade and :func:`serve_forever` for the CLI."""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import orjson

from zvm_simulator.api import ZvmApi
from zvm_simulator.auth import AuthStore
from zvm_simulator.catalog import State
from zvm_simulator.clock import SimClock, to_ms
from zvm_simulator.filters import TaskQuery
from zvm_simulator.inventory import Inventory
from zvm_simulator.lifecycle import Phase
from zvm_simulator.recovery import RecoveryQuery, RecoveryReport
from zvm_simulator.scenario import Scenario
from zvm_simulator.server import SimulatorServer
from zvm_simulator.settings import Faults, RequestRecord, SimulatorSettings
from zvm_simulator.tls import TlsFiles
from zvm_simulator.wire import WireFormat

__all__ = ["Simulator", "serve_forever"]

_SETTING_NAMES = frozenset(f.name for f in dataclasses.fields(SimulatorSettings))
_DAY_MS = 86_400_000


class Simulator:
    """A simulated ZVM serving the tasks API over real HTTP(S) on loopback.

    ``Simulator(settings, **overrides)``: ``overrides`` are :class:`SimulatorSettings` fields
    (``Simulator(seed=3, speed=0)``). The clock and the task history exist from
    construction; :meth:`start` binds the port and serves (also as a context manager).

    Live knobs: :attr:`faults` (the same object as ``settings.faults``), :meth:`advance` and
    :meth:`set_time`. :attr:`requests` logs every request answered. ``monotonic`` is the
    real-time clock behind the simulated one and behind session and token lifetimes
    (``time.monotonic``; tests pass a clock they move by hand).
    """

    def __init__(
        self,
        settings: SimulatorSettings | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        **overrides: Any,
    ) -> None:
        unknown = sorted(set(overrides) - _SETTING_NAMES)
        if unknown:
            raise TypeError(f"unknown simulator setting(s): {', '.join(unknown)}")
        base = settings if settings is not None else SimulatorSettings()
        self.settings = dataclasses.replace(base, **overrides) if overrides else base
        self.settings.validate()
        self.faults: Faults = self.settings.faults
        start = self.settings.start
        if start is None:
            start = datetime.now(UTC) + self.settings.clock_skew
        self._monotonic = monotonic
        self._clock = SimClock(start, speed=self.settings.speed, monotonic=monotonic)
        self._scenario = Scenario(
            seed=self.settings.seed,
            tasks_per_hour=self.settings.tasks_per_hour,
            history_start_ms=to_ms(start) - int(self.settings.days * _DAY_MS),
        )
        scenario = self._scenario
        self.inventory = Inventory(
            seed=self.settings.seed,
            site_id=scenario.site_id,
            peer_site_id=scenario.peer_site_id,
            vcenter_id=scenario.vcenter_id,
            task_vpg_ids=scenario.vpg_ids,
            host_ids=scenario.host_ids,
            untouched_vpgs=self.settings.untouched_vpgs,
            extra_hosts=self.settings.extra_hosts,
        )
        self.recovery = RecoveryReport(
            seed=self.settings.seed,
            scenario=scenario,
            inventory=self.inventory,
            retention_ms=self.settings.retention // timedelta(milliseconds=1),
        )
        self._plan_vpg_changes(to_ms(start))
        self.requests: list[RequestRecord] = []
        self._requests_lock = threading.Lock()
        self._server: SimulatorServer | None = None
        self._api: ZvmApi | None = None
        self._tls: TlsFiles | None = None
        self.ca_path: Path | None = None

    def _plan_vpg_changes(self, start_ms: int) -> None:
        """The default timeline: the first VPG is renamed, the last one of the task pool is
        deleted (after a RemoveProtectionGroup task; later tasks name another VPG)."""
        settings, pool = self.settings, self._scenario.vpg_ids
        if settings.vpg_rename_after is not None:
            first = pool[0]
            name = self.inventory.vpg_names(start_ms)[first]
            at = start_ms + settings.vpg_rename_after // timedelta(milliseconds=1)
            self.inventory.rename_vpg(first, f"{name} – Tier 1", at_ms=at)
        if settings.vpg_delete_after is not None and len(pool) > 1:
            last = pool[-1]
            at = start_ms + settings.vpg_delete_after // timedelta(milliseconds=1)
            self._scenario.retire_vpg(last, at)
            self.inventory.delete_vpg(last, at_ms=at)
            self._scenario.inject(
                task_type="RemoveProtectionGroup",
                started_ms=at - 45_000,
                phases=[
                    Phase(timedelta(0), State.IN_PROGRESS, 0),
                    Phase(timedelta(seconds=40), State.COMPLETED, 100),
                ],
                initiated_by="Administrator",
                complete_reason="",
                vpgs=(last,),
                is_cancellable=False,
                task_uuid=None,
            )

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> Simulator:
        """Bind the port and start serving; returns self. RuntimeError if already started."""
        if self._server is not None:
            raise RuntimeError("the simulator is already started")
        settings = self.settings
        tls = TlsFiles(settings.host) if settings.tls else None
        try:
            server = SimulatorServer(
                settings.host,
                settings.port,
                ssl_context=tls.context if tls else None,
                record=self._record,
                server_version="Microsoft-HTTPAPI/2.0"
                if settings.date_style == "windows"
                else "nginx",
            )
        except BaseException:
            if tls is not None:
                tls.cleanup()
            raise
        wire = WireFormat(
            base_url=server.url,
            seed=settings.seed,
            site_id=self._scenario.site_id,
            date_style=settings.date_style,
            date_offsets=settings.date_offsets,
            key_case=settings.key_case,
            include_task_identifier=settings.include_task_identifier,
            utc_offset_minutes=settings.utc_offset_minutes,
        )
        self._api = ZvmApi(
            settings=settings,
            clock=self._clock,
            scenario=self._scenario,
            wire=wire,
            auth=AuthStore(
                settings, issuer=f"{server.url}/auth/realms/zerto", monotonic=self._monotonic
            ),
            inventory=self.inventory,
            recovery=self.recovery,
        )
        self._tls = tls
        self.ca_path = tls.ca_path if tls else None
        self._server = server
        server.serve(self._api)
        return self

    def stop(self) -> None:
        """Stop serving, close connections, remove the CA file. Idempotent."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._tls is not None:
            self._tls.cleanup()
            self._tls = None
        self.ca_path = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL (``http://127.0.0.1:54321``); RuntimeError before :meth:`start`."""
        if self._server is None:
            raise RuntimeError("the simulator is not started: call start() first")
        return self._server.url

    # ---- time ----------------------------------------------------------------------------

    def now(self) -> datetime:
        """The simulated now, aware UTC."""
        return self._clock.now()

    def advance(self, delta: timedelta) -> None:
        """Move simulated time forward by ``delta`` (whatever the speed)."""
        self._clock.advance(delta)

    def set_time(self, moment: datetime) -> None:
        """Make ``moment`` (aware) the simulated now; the clock runs on from there."""
        self._clock.set_time(moment)

    # ---- observation ---------------------------------------------------------------------

    def clear_requests(self) -> None:
        """Empty :attr:`requests` (in place)."""
        with self._requests_lock:
            self.requests.clear()

    def ground_truth(self) -> list[dict[str, Any]]:
        """Exactly what ``GET /v1/tasks`` with no filter returns now, decoded: dates as the
        API writes them, malformed tasks as served (``malformed_rate`` applies; the other
        fault knobs do not). Needs a started simulator (links contain its URL)."""
        data: list[dict[str, Any]] = orjson.loads(self._started().list_body(TaskQuery()))
        return data

    def task(self, identifier: str) -> dict[str, Any] | None:
        """What ``GET /v1/tasks/{identifier}`` returns now, decoded; None where it gives 404
        (no fault knob applies but ``malformed_rate``)."""
        body = self._started().task_body(identifier)
        if body is None:
            return None
        data: dict[str, Any] = orjson.loads(body)
        return data

    def recovery_operations(self) -> list[dict[str, Any]]:
        """Every operation ``GET /v1/reports/recovery`` lists now, all pages, decoded (the
        ``malformed_recovery_rate`` knob applies; no other fault knob does)."""
        body = self._started().recovery_body(RecoveryQuery(), every_page=True)
        data: list[dict[str, Any]] = orjson.loads(body)
        return data

    def amend_recovery_operation(
        self, identifier: str, *, notes: str | None, status: str | None = None
    ) -> None:
        """From now on the report shows the operation with these ``notes`` (and ``status``,
        when given): a ZVM that changes an operation it already reported."""
        self.recovery.amend(identifier, notes=notes, status=status)

    @property
    def site_id(self) -> str:
        """The simulated ZVM's own site id (the second half of every task id)."""
        return self._scenario.site_id

    @property
    def vpg_ids(self) -> tuple[str, ...]:
        """The ids of the VPGs tasks refer to."""
        return self._scenario.vpg_ids

    @property
    def all_vpg_ids(self) -> tuple[str, ...]:
        """Every VPG the ZVM has listed: those tasks refer to, then some no task touches."""
        return self.inventory.vpg_ids

    def vpg_names(self) -> dict[str, str]:
        """The VPGs ``GET /v1/vpgs`` lists now, with their names."""
        return self.inventory.vpg_names(self._clock.now_ms())

    def rename_vpg(self, identifier: str, name: str) -> None:
        """From the simulated now on, the VPG is listed under ``name``."""
        self.inventory.rename_vpg(identifier, name, at_ms=self._clock.now_ms())

    def delete_vpg(self, identifier: str) -> None:
        """From the simulated now on, the VPG is no longer listed (tasks are unchanged)."""
        self.inventory.delete_vpg(identifier, at_ms=self._clock.now_ms())

    def restore_vpg(self, identifier: str) -> None:
        """From the simulated now on, a deleted VPG is listed again."""
        self.inventory.restore_vpg(identifier, at_ms=self._clock.now_ms())

    def rename_site(self, identifier: str, name: str, *, in_vpgs: str | None = None) -> None:
        """From now on the site is listed as ``name``, and named ``in_vpgs`` (default
        ``name``) by the VPG listing (:meth:`Inventory.rename_site`)."""
        self.inventory.rename_site(identifier, name, in_vpgs=in_vpgs)

    def expire_sessions(self) -> None:
        """End every session and token now: the next API call with any of them gets 401."""
        self._started().auth.expire_all()

    # ---- injection -----------------------------------------------------------------------

    def add_task(
        self,
        *,
        task_type: str = "FailOverTest",
        started: datetime | None = None,
        duration: timedelta | None = timedelta(seconds=30),
        state: int = State.COMPLETED,
        phases: Sequence[Phase] | None = None,
        initiated_by: str = "Administrator",
        complete_reason: str | None = "",
        vpgs: Sequence[str] | None = None,
        is_cancellable: bool = False,
        task_uuid: str | None = None,
    ) -> str:
        """Add a task to the history and return its identifier (``<uuid>.<site id>``).

        It starts at ``started`` (default: the simulated now; may be in the future, it then
        appears when the clock gets there). Its lifecycle is either ``phases`` (a sequence of
        :class:`~zvm_simulator.lifecycle.Phase`: offset from Started, State, Progress;
        the first at 0, offsets strictly increasing, at most 12 h), or built from
        ``duration`` and ``state``: InProgress 0% at Started, 50% at half the duration, then
        ``state`` at ``duration`` (progress 100 for Completed, else 50). A final ``state``
        (Failed 4, Stopped 5, Completed 6) completes the task; any other state stays for
        ever, and ``duration=None`` means the task runs (InProgress 0%) for ever. ``state``
        outside 0-7 is served as is (a bad record). ``complete_reason`` is the
        ``CompleteReason`` once completed (``""`` while running); ``vpgs`` default to the
        first VPG of the pool; ``task_uuid`` fixes the task half of the id.
        Raises ValueError for unusable phases or an id already added.
        """
        if phases is None:
            final_progress = 100 if state == State.COMPLETED else 50
            if duration is None:
                phases = [Phase(timedelta(0), State.IN_PROGRESS, 0)]
            elif duration < timedelta(milliseconds=2):
                phases = [Phase(timedelta(0), state, final_progress)]
            else:
                phases = [
                    Phase(timedelta(0), State.IN_PROGRESS, 0),
                    Phase(duration / 2, State.IN_PROGRESS, 50),
                    Phase(duration, state, final_progress),
                ]
        moment = started if started is not None else self.now()
        if moment.tzinfo is None:
            raise ValueError("started must be timezone-aware")
        task = self._scenario.inject(
            task_type=task_type,
            started_ms=to_ms(moment),
            phases=phases,
            initiated_by=initiated_by,
            complete_reason=complete_reason,
            vpgs=tuple(vpgs) if vpgs is not None else self._scenario.vpg_ids[:1],
            is_cancellable=is_cancellable,
            task_uuid=task_uuid,
        )
        return task.identifier

    # ---- internals -----------------------------------------------------------------------

    def _record(self, record: RequestRecord) -> None:
        with self._requests_lock:
            self.requests.append(record)

    def _started(self) -> ZvmApi:
        if self._api is None or self._server is None:
            raise RuntimeError("the simulator is not started: call start() first")
        return self._api


def serve_forever(
    settings: SimulatorSettings, *, on_ready: Callable[[Simulator], None] | None = None
) -> None:
    """Serve a simulator until SIGINT or SIGTERM, then stop cleanly and return.

    ``on_ready`` is called with the started simulator (to print its URL, say). Must run in
    the main thread (signal handlers); the previous handlers are restored on return.
    """
    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Simulator(settings) as simulator:
            if on_ready is not None:
                on_ready(simulator)
            while not stopping.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
