"""Task objects as bytes on the wire, the way the simulated ZVM writes them.

Keys come in the documented order (CompleteReason, Completed, InitiatedBy, IsCancellable,
Link, RelatedEntities, Started, Status, TaskIdentifier, Type), PascalCase or camelCase.
Windows-style dates are written exactly like a Windows ZVM does, with escaped slashes in
the JSON text: ``"\\/Date(1520423876840+0300)\\/"``; appliance-style dates are ISO-8601.

Speed matters (100,000 tasks in one answer), so tasks are cached as bytes on their
:class:`~zvm_simulator.scenario.TaskSpec`: a completed task never changes, so its whole
object is cached; a running task caches the pieces that never change (ids, links, entities,
Started, the final Completed and reason) and only its status is assembled per request.
Malformed tasks (a fault knob) take a slower path through a plain dict,
:meth:`WireFormat.task_object`, which is also the reference the fast path is tested against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Literal, NamedTuple

import orjson

from zvm_simulator.catalog import State
from zvm_simulator.dates import iso_date, wcf_date
from zvm_simulator.scenario import Entities, TaskSpec

__all__ = ["MALFORMED_KINDS", "WireFormat", "error_body"]

_RUNNING_STATES = frozenset({State.IN_PROGRESS, State.WAITING_FOR_USER_INPUT, State.PAUSED})

MALFORMED_KINDS = ("bad_started", "bad_state", "missing_identifier")
"""The kinds of malformed task, in rotation order (see :class:`~.settings.Faults`)."""

_KEYS = (
    "CompleteReason",
    "Completed",
    "InitiatedBy",
    "IsCancellable",
    "Link",
    "RelatedEntities",
    "Hosts",
    "Sites",
    "Vpgs",
    "FlrSessions",
    "Started",
    "Status",
    "Progress",
    "State",
    "TaskIdentifier",
    "Type",
)


def error_body(message: str) -> bytes:
    """An ASP.NET-style error body: ``{"Message": ...}``."""
    return orjson.dumps({"Message": message})


def _quote(value: str | None) -> str:
    """A JSON string (or null) as text."""
    return orjson.dumps(value).decode()


def _camel(name: str) -> str:
    """camelCase as .NET writes it: a leading run of capitals is lowered but for the one
    that starts the next word (``RTOInSeconds`` → ``rtoInSeconds``, ``Vpgs`` → ``vpgs``)."""
    run = len(name) - len(name.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    if run > 1 and run < len(name):
        run -= 1  # the last capital of the run starts the next word
    return name[:run].lower() + name[run:]


def _camel_keys(value: Any) -> Any:
    """``value`` with the first letter of every dict key lower-cased, recursively."""
    if isinstance(value, dict):
        return {_camel(key): _camel_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel_keys(item) for item in value]
    return value


class _Pieces(NamedTuple):
    """The never-changing byte pieces of a task that is still running."""

    reason_running: bytes
    initiated_by: bytes  # ,"InitiatedBy":"..","IsCancellable":
    middle: bytes  # ,"Link":{..},"RelatedEntities":..,"Started":"..","Status":
    tail: bytes  # ,"TaskIdentifier":"..","Type":".."}


class WireFormat:
    """Renders tasks for one simulated ZVM: its base URL (for hrefs), seed (for the malformed
    draw), own site id (``LocalSiteApi``), date style and offsets, key case, and whether
    ``TaskIdentifier`` is written.

    Windows style writes ``/Date(ms+hhmm)/`` with the zone's offset, or ``/Date(ms)/`` when
    ``date_offsets`` is False; appliance style writes ISO-8601 in the zone's local time with
    its offset, or in UTC with ``Z`` when ``date_offsets`` is False.
    """

    def __init__(
        self,
        *,
        base_url: str,
        seed: int,
        site_id: str,
        date_style: Literal["windows", "appliance"] = "windows",
        date_offsets: bool = True,
        key_case: Literal["pascal", "camel"] = "pascal",
        include_task_identifier: bool = True,
        utc_offset_minutes: int = 0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._seed = seed
        self._site_id = site_id
        self._windows = date_style == "windows"
        if self._windows:
            self._offset: int | None = utc_offset_minutes if date_offsets else None
        else:
            self._offset = utc_offset_minutes if date_offsets else 0
        self._camel = key_case == "camel"
        self._with_id = include_task_identifier
        self._keys = {name: _quote(_camel(name) if self._camel else name) for name in _KEYS}
        k = {name: key.encode() for name, key in self._keys.items()}
        self._head = b"{" + k["CompleteReason"] + b":"
        self._completed_null = b"," + k["Completed"] + b":null"
        self._status = b"{" + k["Progress"] + b":%d," + k["State"] + b":%d}"
        # Windows dates: the text around the milliseconds, taken from wcf_date itself.
        self._wcf: tuple[str, str] | None = None
        if self._windows:
            head, _, tail = wcf_date(0, self._offset).partition("(0")
            self._wcf = ('"' + head.replace("/", "\\/") + "(", tail.replace("/", "\\/") + '"')
        self._entity_cache: dict[tuple[str, str], str] = {}
        self._entities_cache: dict[Entities, str] = {}
        self._quoted: dict[str | None, str] = {}
        self._task_href = _quote(f"{self.base_url}/v1/tasks/")[:-1]  # open JSON string

    # ---- public rendering ----------------------------------------------------------------

    def date_text(self, ms: int) -> str:
        """A date as the decoded JSON string reads (``/Date(ms+hhmm)/`` or ISO-8601)."""
        if self._windows:
            return wcf_date(ms, self._offset)
        return iso_date(ms, self._offset)

    def task(self, task: TaskSpec, now_ms: int, *, malformed_rate: float = 0.0) -> bytes:
        """One task object as bytes, in its state as of ``now_ms``."""
        if malformed_rate > 0:
            kind = self._malformed(task, malformed_rate)
            if kind is not None:
                return self.encode(self._malform(self.task_object(task, now_ms), *kind))
        cached = task.wire
        completed_ms = task.completed_ms
        if completed_ms is not None and now_ms >= completed_ms:
            if type(cached) is bytes:
                return cached
            whole = self._completed(task)
            task.wire = whole
            return whole
        if isinstance(cached, _Pieces):
            pieces = cached
        else:
            pieces = self._pieces(task)
            if cached is None:  # cached bytes stay: the clock went back before Completed
                task.wire = pieces
        state, progress = task.status_at(now_ms)
        cancellable = task.cancellable and state in _RUNNING_STATES
        return b"".join(
            (
                self._head,
                pieces.reason_running,
                self._completed_null,
                pieces.initiated_by,
                b"true" if cancellable else b"false",
                pieces.middle,
                self._status % (progress, state),
                pieces.tail,
            )
        )

    def tasks(
        self, tasks: Iterable[TaskSpec], now_ms: int, *, malformed_rate: float = 0.0
    ) -> bytes:
        """A JSON array of tasks."""
        render = self.task
        items = [render(task, now_ms, malformed_rate=malformed_rate) for task in tasks]
        return b"[" + b",".join(items) + b"]"

    def task_object(self, task: TaskSpec, now_ms: int) -> dict[str, Any]:
        """The task as a PascalCase dict whose dates are the decoded strings."""
        state, progress = task.status_at(now_ms)
        completed_ms = task.completed_ms
        done = completed_ms is not None and now_ms >= completed_ms
        obj: dict[str, Any] = {
            "CompleteReason": task.reason_done if done else task.reason_running,
            "Completed": self.date_text(completed_ms)
            if done and completed_ms is not None
            else None,
            "InitiatedBy": task.initiated_by,
            "IsCancellable": task.cancellable and not done and state in _RUNNING_STATES,
            "Link": {
                "href": f"{self.base_url}/v1/tasks/{task.identifier}",
                "identifier": task.identifier,
                "rel": None,
                "type": "TaskApi",
            },
            "RelatedEntities": self._entities(task.entities),
            "Started": self.date_text(task.started_ms),
            "Status": {"Progress": progress, "State": state},
        }
        if self._with_id:
            obj["TaskIdentifier"] = task.identifier
        obj["Type"] = task.type
        return obj

    def document(self, obj: Any) -> bytes:
        """Any other answer (entity listings) as bytes, in this ZVM's key case."""
        return orjson.dumps(_camel_keys(obj) if self._camel else obj)

    def encode(self, obj: dict[str, Any] | list[Any]) -> bytes:
        """A PascalCase task dict (or a list of such documents) as wire bytes: key case
        applied, Windows dates escaped."""
        if self._camel:
            obj = _camel_keys(obj)
        data = orjson.dumps(obj)
        if self._windows:
            data = data.replace(b'"/Date(', b'"\\/Date(').replace(b')/"', b')\\/"')
        return data

    # ---- fast path -----------------------------------------------------------------------

    def _date_token(self, ms: int) -> str:
        """A date as JSON text on the wire (Windows dates with escaped slashes)."""
        if self._wcf is not None:
            return f"{self._wcf[0]}{ms}{self._wcf[1]}"
        return _quote(self.date_text(ms))

    def _entity_json(self, api: str, identifier: str) -> str:
        cached = self._entity_cache.get((api, identifier))
        if cached is None:
            href = _quote(self._entity_href(api, identifier))
            cached = (
                f'{{"href":{href},"identifier":{_quote(identifier)},"rel":null,"type":"{api}"}}'
            )
            if api != "FlrSessionInformationApi":  # sessions are one-off: not worth keeping
                self._entity_cache[(api, identifier)] = cached
        return cached

    def _entities_json(self, entities: Entities | None) -> str:
        if entities is None:
            return "null"
        cached = self._entities_cache.get(entities)
        if cached is not None:
            return cached
        k, ent = self._keys, self._entity_json
        hosts = ",".join([ent("HostApi", host) for host in entities.hosts])
        sites = ",".join([ent(api, i) for api, i in self._sites(entities)])
        vpgs = ",".join([ent("VpgApi", vpg) for vpg in entities.vpgs])
        text = f"{{{k['Hosts']}:[{hosts}],{k['Sites']}:[{sites}],{k['Vpgs']}:[{vpgs}]"
        if entities.flr_sessions is not None:
            flrs = ",".join([ent("FlrSessionInformationApi", f) for f in entities.flr_sessions])
            text += f",{k['FlrSessions']}:[{flrs}]"
        text += "}"
        if not entities.flr_sessions:  # the same few combinations recur: keep them
            self._entities_cache[entities] = text
        return text

    def _text(self, value: str | None) -> str:
        """``value`` as JSON text, memoised: types, users and reasons recur endlessly."""
        quoted = self._quoted.get(value)
        if quoted is None:
            quoted = _quote(value)
            if len(self._quoted) < 10_000:
                self._quoted[value] = quoted
        return quoted

    def _common(self, task: TaskSpec) -> tuple[str, str, str]:
        """The ``InitiatedBy`` piece, the Link-to-Status piece and the tail, as text."""
        k = self._keys
        # Task ids are uuid.uuid (the scenario guarantees it): no JSON escaping needed.
        ident = task.identifier
        link = (
            f'{{"href":{self._task_href}{ident}","identifier":"{ident}","rel":null,'
            '"type":"TaskApi"}'
        )
        initiated_by = f",{k['InitiatedBy']}:{self._text(task.initiated_by)},{k['IsCancellable']}:"
        middle = (
            f",{k['Link']}:{link},{k['RelatedEntities']}:{self._entities_json(task.entities)}"
            f",{k['Started']}:{self._date_token(task.started_ms)},{k['Status']}:"
        )
        tail = f',{k["TaskIdentifier"]}:"{ident}",' if self._with_id else ","
        tail += f"{k['Type']}:{self._text(task.type)}}}"
        return initiated_by, middle, tail

    def _pieces(self, task: TaskSpec) -> _Pieces:
        initiated_by, middle, tail = self._common(task)
        return _Pieces(
            reason_running=self._text(task.reason_running).encode(),
            initiated_by=initiated_by.encode(),
            middle=middle.encode(),
            tail=tail.encode(),
        )

    def _completed(self, task: TaskSpec) -> bytes:
        """The whole object of a completed task (it never changes again)."""
        assert task.completed_ms is not None
        k = self._keys
        initiated_by, middle, tail = self._common(task)
        lifecycle = task.lifecycle
        return (
            f"{{{k['CompleteReason']}:{self._text(task.reason_done)}"
            f",{k['Completed']}:{self._date_token(task.completed_ms)}"
            f"{initiated_by}false{middle}"
            f"{{{k['Progress']}:{lifecycle.final_progress},{k['State']}:{lifecycle.final_state}}}"
            f"{tail}"
        ).encode()

    # ---- reference path (and malformed tasks) --------------------------------------------

    def _entity_href(self, api: str, identifier: str) -> str:
        if api == "VpgApi":
            return f"{self.base_url}/v1/vpgs/{identifier}"
        if api == "HostApi":
            site = identifier.partition(".")[0]
            return f"{self.base_url}/v1/virtualizationsites/{site}/hosts/{identifier}"
        if api == "LocalSiteApi":
            return f"{self.base_url}/v1/localsite"
        if api == "PeerSiteApi":
            return f"{self.base_url}/v1/peersites/{identifier}"
        return f"{self.base_url}/v1/flrs/{identifier}"

    def _sites(self, entities: Entities) -> list[tuple[str, str]]:
        # The local site's id is the site part of every task id of this ZVM.
        sites = [("LocalSiteApi", self._site_id)] if entities.local_site else []
        return sites + [("PeerSiteApi", peer) for peer in entities.peer_sites]

    def _entity(self, api: str, identifier: str) -> dict[str, Any]:
        href = self._entity_href(api, identifier)
        return {"href": href, "identifier": identifier, "rel": None, "type": api}

    def _entities(self, entities: Entities | None) -> dict[str, Any] | None:
        if entities is None:
            return None
        obj: dict[str, Any] = {
            "Hosts": [self._entity("HostApi", host) for host in entities.hosts],
            "Sites": [self._entity(api, ident) for api, ident in self._sites(entities)],
            "Vpgs": [self._entity("VpgApi", vpg) for vpg in entities.vpgs],
        }
        if entities.flr_sessions is not None:
            obj["FlrSessions"] = [
                self._entity("FlrSessionInformationApi", flr) for flr in entities.flr_sessions
            ]
        return obj

    def _malformed(self, task: TaskSpec, rate: float) -> tuple[int, int] | None:
        """``(kind index, variant)`` when ``task`` is served malformed at ``rate``, else None.

        The draw is a hash of the seed and the task id: stable across requests, and a task
        malformed at some rate stays malformed (the same way) at any higher rate.
        """
        fault = task.fault
        if fault is None:
            digest = hashlib.blake2b(
                f"{self._seed}:{task.identifier}".encode(), digest_size=8, person=b"malformd"
            ).digest()
            number = int.from_bytes(digest, "big")
            fault = task.fault = ((number >> 11) / float(1 << 53), number & 0x3F)
        draw, bits = fault
        if draw >= rate:
            return None
        return bits % len(MALFORMED_KINDS), bits // len(MALFORMED_KINDS) % 2

    def _malform(self, obj: dict[str, Any], kind: int, variant: int) -> dict[str, Any]:
        name = MALFORMED_KINDS[kind]
        if name == "bad_started":
            if self._windows:
                obj["Started"] = "not a date" if variant else "/Date(abc)/"
            else:
                obj["Started"] = "2024-13-45T25:61:00Z" if variant else "not a date"
        elif name == "bad_state":
            obj["Status"]["State"] = -1 if variant else 9
        else:
            obj.pop("TaskIdentifier", None)
            obj["Link"] = {"href": None, "rel": None, "type": "TaskApi"}
        return obj
