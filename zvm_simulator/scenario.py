"""The simulated ZVM's task history: deterministic, lazy, and time-aware.

Tasks are generated per hour of simulated time (an *hour bucket*, indexed from the Unix
epoch) with a :class:`random.Random` seeded from ``(seed, hour)``. Nothing is precomputed:
a bucket is generated the first time a request needs it and kept in a bounded LRU cache,
so the clock may run for weeks and the same seed always yields the same tasks, whatever
the order of the requests.

Within a bucket, arrivals are a Poisson process (exponential gaps) at ``tasks_per_hour``;
about 2% of arrivals are *bursts*: 2-6 tasks of one type, one per VPG, with the same
``Started`` millisecond. About 1% of tasks have a type missing from the documented list.
Each task has a :class:`~zvm_simulator.lifecycle.Lifecycle`; related entities come from
fixed pools drawn from the seed (the ZVM's own site, one peer site, 8-20 VPGs, 3-8 hosts).

Task ids look like ``<task uuid>.<site uuid>``. The task uuid is a valid version-4 uuid whose
top 32 bits hide the bucket index (XOR-ed with its own low bits and a seeded key), so
``GET /v1/tasks/{id}`` regenerates exactly one bucket instead of keeping an index of every
task ever served.

Tasks added with :meth:`Scenario.inject` (tests) live beside the generated ones and are
found by id directly.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from random import Random
from typing import NamedTuple

from zvm_simulator.catalog import (
    BURST_TYPES,
    CANCELLABLE_TYPES,
    DOCUMENTED_TYPES,
    FLR_TYPES,
    HOST_TYPES,
    SITE_ONLY_TYPES,
    SYSTEM_TYPES,
    TYPE_WEIGHTS,
    UNDOCUMENTED_SHARE,
    UNDOCUMENTED_TYPES,
    State,
)
from zvm_simulator.lifecycle import HOUR_MS, Lifecycle, Phase, between, draw_lifecycle

__all__ = ["DEFAULT_CACHE_TASKS", "Entities", "Scenario", "TaskSpec"]

BURST_SHARE = 0.02
"""Fraction of arrivals that are bursts of same-millisecond tasks."""
_BURST_SIZES = (2, 6)
DEFAULT_CACHE_TASKS = 200_000
"""How many generated tasks the bucket cache keeps before evicting the least used buckets."""

_MASK32 = 0xFFFFFFFF
# Version 4 in bits 76-79, RFC 4122 variant (binary 10) in bits 62-63.
_UUID_CLEAR = ~((0xF << 76) | (0x3 << 62))
_UUID_SET = (0x4 << 76) | (0x2 << 62)

_USERS = ("Administrator", "ZertoUser", "admin@vsphere.local", "CORP\\jsmith", "ZertoAccount")
_DONE_REASONS = (
    "Task completed successfully.",
    "Completed",
    "The operation completed successfully.",
)
_FAIL_REASONS = (
    "VRA on host {host} is not responding.",
    "Insufficient storage on the recovery datastore.",
    "The operation timed out.",
    "Failed to connect to vCenter Server.",
    "Peer site is not connected.",
    "Journal hard limit reached.",
)
_STOP_REASONS = ("Stopped by user.", "Task was cancelled by the user.", "Aborted by system.")


class Entities(NamedTuple):
    """``RelatedEntities`` of a task. ``flr_sessions`` None means the key is absent."""

    vpgs: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    local_site: bool = False
    peer_sites: tuple[str, ...] = ()
    flr_sessions: tuple[str, ...] | None = ()


class TaskSpec:
    """Everything about one task, for all time; its state at a moment is :meth:`status_at`.

    ``reason_running``/``reason_done`` are the ``CompleteReason`` before and after
    completion; ``entities`` None serves ``RelatedEntities: null``; ``completed_ms`` is None
    for a task that never completes. ``wire`` and ``fault`` are cache slots of the renderer.
    """

    __slots__ = (
        "cancellable",
        "completed_ms",
        "entities",
        "fault",
        "identifier",
        "initiated_by",
        "lifecycle",
        "reason_done",
        "reason_running",
        "started_ms",
        "type",
        "wire",
    )

    def __init__(
        self,
        *,
        identifier: str,
        task_type: str,
        started_ms: int,
        lifecycle: Lifecycle,
        initiated_by: str,
        cancellable: bool,
        reason_running: str | None,
        reason_done: str | None,
        entities: Entities | None,
    ) -> None:
        self.identifier = identifier
        self.type = task_type
        self.started_ms = started_ms
        self.lifecycle = lifecycle
        self.completed_ms = started_ms + lifecycle.duration_ms if lifecycle.completes else None
        self.initiated_by = initiated_by
        self.cancellable = cancellable
        self.reason_running = reason_running
        self.reason_done = reason_done
        self.entities = entities
        self.wire: object = None
        self.fault: tuple[float, int] | None = None

    def status_at(self, now_ms: int) -> tuple[int, int]:
        """``(State, Progress)`` as of ``now_ms``."""
        return self.lifecycle.status_at(now_ms - self.started_ms)

    def __repr__(self) -> str:
        return f"TaskSpec({self.identifier!r}, {self.type!r}, started_ms={self.started_ms})"


def _format_uuid(value: int) -> str:
    text = f"{(value & _UUID_CLEAR) | _UUID_SET:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _random_uuid(rng: Random) -> str:
    """A version-4 uuid drawn from ``rng``."""
    return _format_uuid(rng.getrandbits(128))


def _pick(rng: Random, items: Sequence[str]) -> str:
    return items[int(rng.random() * len(items))]


class Scenario:
    """The task history of one simulated ZVM (see the module docstring).

    ``history_start_ms``: generated tasks started before it do not exist.
    ``cache_tasks``: bound of the bucket cache, in tasks.
    """

    def __init__(
        self,
        *,
        seed: int,
        tasks_per_hour: float,
        history_start_ms: int,
        cache_tasks: int = DEFAULT_CACHE_TASKS,
    ) -> None:
        self.seed = seed
        self.history_start_ms = history_start_ms
        mean_burst = (_BURST_SIZES[0] + _BURST_SIZES[1]) / 2
        events_per_hour = tasks_per_hour / (1 + BURST_SHARE * (mean_burst - 1))
        self._events_per_ms = events_per_hour / HOUR_MS

        ids = Random(f"zvm-sim:{seed}:ids")
        self.site_id = _random_uuid(ids)
        self.peer_site_id = _random_uuid(ids)
        self.vcenter_id = _random_uuid(ids)
        self.vpg_ids = tuple(_random_uuid(ids) for _ in range(between(ids, 8, 20)))
        host_numbers = sorted({between(ids, 10, 9999) for _ in range(between(ids, 3, 8))})
        self.host_ids = tuple(f"{self.vcenter_id}.host-{n}" for n in host_numbers)
        self._key = ids.getrandbits(32)

        self._entities_cache: dict[tuple[str, int, int, bool], Entities] = {}
        self._type_cum = tuple(itertools.accumulate(TYPE_WEIGHTS[t] for t in DOCUMENTED_TYPES))

        self._lock = threading.Lock()
        self._cache: OrderedDict[int, tuple[TaskSpec, ...]] = OrderedDict()
        self._cached_tasks = 0
        self._cache_limit = cache_tasks
        self._injected: dict[str, TaskSpec] = {}
        self._injected_order: list[tuple[int, int, TaskSpec]] = []
        self._injected_seq = itertools.count()
        self._injected_ids = Random(f"zvm-sim:{seed}:injected")
        self._retired: dict[str, int] = {}

    def retire_vpg(self, identifier: str, at_ms: int) -> None:
        """No generated task started at or after ``at_ms`` names this VPG (it was deleted):
        such a task names the next VPG of the pool instead. Call it before any generation
        (generated hours are cached)."""
        self._retired[identifier] = at_ms

    # ---- queries -------------------------------------------------------------------------

    def tasks_until(self, hi_ms: int, *, generated_from_ms: int) -> Iterator[TaskSpec]:
        """Tasks started at or before ``hi_ms``, ascending by Started (then by arrival).

        Generated tasks are scanned from ``generated_from_ms`` (and never before the history
        start); injected tasks are all included, however old: the caller filters further.
        """
        generated = self._generated_between(max(generated_from_ms, self.history_start_ms), hi_ms)
        with self._lock:
            injected = [t for _, _, t in self._injected_order if t.started_ms <= hi_ms]
        if not injected:
            return generated
        return heapq.merge(generated, injected, key=lambda task: task.started_ms)

    def find(self, identifier: str, *, latest_ms: int) -> TaskSpec | None:
        """The task with this id (case-insensitive), or None; ``latest_ms`` bounds the buckets
        worth generating (no task starts after the simulated now)."""
        key = identifier.strip().lower()
        with self._lock:
            injected = self._injected.get(key)
        if injected is not None:
            return injected
        task_part, _, site = key.partition(".")
        if site != self.site_id:
            return None
        hour = self._hour_of(task_part)
        if hour is None or not self.history_start_ms // HOUR_MS <= hour <= latest_ms // HOUR_MS:
            return None
        for task in self.bucket(hour):
            if task.identifier == key:
                # The first bucket is only partly history: earlier tasks never existed.
                return task if task.started_ms >= self.history_start_ms else None
        return None

    def bucket(self, hour: int) -> tuple[TaskSpec, ...]:
        """The generated tasks of one hour bucket (all of it, ignoring the history start)."""
        with self._lock:
            cached = self._cache.get(hour)
            if cached is not None:
                self._cache.move_to_end(hour)
                return cached
        tasks = self._generate(hour)  # deterministic: a racing thread computes the same
        with self._lock:
            cached = self._cache.get(hour)
            if cached is not None:
                return cached
            self._cache[hour] = tasks
            self._cached_tasks += len(tasks)
            while self._cached_tasks > self._cache_limit and len(self._cache) > 1:
                _, evicted = self._cache.popitem(last=False)
                self._cached_tasks -= len(evicted)
        return tasks

    # ---- injected tasks ------------------------------------------------------------------

    def inject(
        self,
        *,
        task_type: str,
        started_ms: int,
        phases: Sequence[Phase],
        initiated_by: str,
        complete_reason: str | None,
        vpgs: Sequence[str],
        is_cancellable: bool,
        task_uuid: str | None,
    ) -> TaskSpec:
        """Add a task built from explicit phases and return it.

        Raises ValueError when the phases are unusable (see
        :meth:`Lifecycle.from_phases`), ``task_uuid`` is not a UUID, or the id is taken.
        """
        lifecycle = Lifecycle.from_phases(phases)
        if task_uuid is not None:
            try:
                raw = str(uuid.UUID(task_uuid.strip()))
            except ValueError:
                raise ValueError(f"task_uuid {task_uuid!r} is not a UUID") from None
        else:
            with self._lock:
                raw = _random_uuid(self._injected_ids)
        identifier = f"{raw}.{self.site_id}"
        task = TaskSpec(
            identifier=identifier,
            task_type=task_type,
            started_ms=started_ms,
            lifecycle=lifecycle,
            initiated_by=initiated_by,
            cancellable=is_cancellable,
            reason_running="",
            reason_done=complete_reason,
            entities=Entities(vpgs=tuple(vpgs), local_site=True, peer_sites=(self.peer_site_id,)),
        )
        with self._lock:
            if identifier in self._injected:
                raise ValueError(f"a task {identifier} was already added")
            self._injected[identifier] = task
            entry = (started_ms, next(self._injected_seq), task)
            bisect.insort(self._injected_order, entry, key=lambda item: (item[0], item[1]))
        return task

    # ---- generation ----------------------------------------------------------------------

    def _generated_between(self, lo_ms: int, hi_ms: int) -> Iterator[TaskSpec]:
        if lo_ms > hi_ms:
            return
        for hour in range(lo_ms // HOUR_MS, hi_ms // HOUR_MS + 1):
            tasks = self.bucket(hour)
            if tasks and lo_ms <= tasks[0].started_ms and tasks[-1].started_ms <= hi_ms:
                yield from tasks
            else:
                yield from (task for task in tasks if lo_ms <= task.started_ms <= hi_ms)

    def _generate(self, hour: int) -> tuple[TaskSpec, ...]:
        if self._events_per_ms <= 0:
            return ()
        rng = Random(f"zvm-sim:{self.seed}:{hour}")
        rand = rng.random
        base = hour * HOUR_MS
        tasks: list[TaskSpec] = []
        pool = self.vpg_ids
        elapsed = 0.0
        while True:
            elapsed += rng.expovariate(self._events_per_ms)
            if elapsed >= HOUR_MS:
                break
            started = base + int(elapsed)
            if rand() < BURST_SHARE:
                task_type = _pick(rng, BURST_TYPES)
                first = int(rand() * len(pool))
                for step in range(min(between(rng, *_BURST_SIZES), len(pool))):
                    vpg = pool[(first + step) % len(pool)]
                    tasks.append(self._task(rng, hour, started, task_type, vpg))
            else:
                tasks.append(self._task(rng, hour, started, self._pick_type(rng), None))
        return tuple(tasks)

    def _pick_type(self, rng: Random) -> str:
        if rng.random() < UNDOCUMENTED_SHARE:
            return _pick(rng, UNDOCUMENTED_TYPES)
        index = bisect.bisect_right(self._type_cum, rng.random() * self._type_cum[-1])
        return DOCUMENTED_TYPES[min(index, len(DOCUMENTED_TYPES) - 1)]

    def _task(
        self, rng: Random, hour: int, started_ms: int, task_type: str, vpg: str | None
    ) -> TaskSpec:
        rand = rng.random
        task_uuid = self._task_uuid(rng, hour)
        lifecycle = draw_lifecycle(rng, task_type)
        entities = self._entities(rng, task_type, vpg)
        if self._retired and entities is not None and entities.vpgs:
            entities = self._without_retired(entities, started_ms)
        final = lifecycle.final_state
        if final == State.COMPLETED:
            reason_done = "" if rand() < 0.7 else _pick(rng, _DONE_REASONS)
        elif final == State.FAILED:
            host = entities.hosts[0] if entities and entities.hosts else self.host_ids[0]
            reason_done = _pick(rng, _FAIL_REASONS).format(host=host)
        else:
            reason_done = _pick(rng, _STOP_REASONS)
        return TaskSpec(
            identifier=f"{task_uuid}.{self.site_id}",
            task_type=task_type,
            started_ms=started_ms,
            lifecycle=lifecycle,
            initiated_by="System" if task_type in SYSTEM_TYPES else _pick(rng, _USERS),
            cancellable=task_type in CANCELLABLE_TYPES,
            reason_running="" if rand() < 0.6 else None,
            reason_done=reason_done,
            entities=entities,
        )

    def _entities(self, rng: Random, task_type: str, vpg: str | None) -> Entities | None:
        rand = rng.random
        roll = rand()
        if roll < 0.01:
            return None
        flr: tuple[str, ...] | None = ()
        if task_type in FLR_TYPES:
            flr = (_random_uuid(rng),)
        elif roll > 0.85:
            flr = None
        if task_type == "Login":
            kind, first, count = "login", 0, 0
        elif task_type in HOST_TYPES:
            kind = "hosts"
            count = between(rng, 2, 3) if task_type.startswith("Bulk") else 1
            first = int(rand() * len(self.host_ids))
        elif task_type in SITE_ONLY_TYPES:
            kind, first, count = "sites", 0, 0
        else:
            kind = "vpgs"
            if vpg is not None:
                first, count = self.vpg_ids.index(vpg), 1
            else:
                roll = rand()
                first = int(rand() * len(self.vpg_ids))
                count = 0 if roll < 0.05 else 3 if roll < 0.08 else 2 if roll < 0.15 else 1
        if flr:
            return self._entities_of(kind, first, count, flr)
        # Most tasks share one of a few hundred combinations: build each once.
        key = (kind, first, count, flr is None)
        entities = self._entities_cache.get(key)
        if entities is None:
            entities = self._entities_cache[key] = self._entities_of(kind, first, count, flr)
        return entities

    def _entities_of(
        self, kind: str, first: int, count: int, flr: tuple[str, ...] | None
    ) -> Entities:
        if kind == "login":
            return Entities((), (), False, (), flr)
        if kind == "hosts":
            hosts = self.host_ids
            chosen = tuple(hosts[(first + i) % len(hosts)] for i in range(min(count, len(hosts))))
            return Entities((), chosen, True, (), flr)
        peers = (self.peer_site_id,)
        if kind == "sites":
            return Entities((), (), True, peers, flr)
        pool = self.vpg_ids
        vpgs = tuple(pool[(first + i) % len(pool)] for i in range(min(count, len(pool))))
        return Entities(vpgs, (), True, peers, flr)

    def _without_retired(self, entities: Entities, started_ms: int) -> Entities:
        pool = self.vpg_ids

        def alive(vpg: str) -> bool:
            return self._retired.get(vpg, started_ms + 1) > started_ms

        if all(alive(vpg) for vpg in entities.vpgs):
            return entities
        vpgs: list[str] = []
        for vpg in entities.vpgs:
            index = pool.index(vpg)
            for step in range(len(pool)):
                candidate = pool[(index + step) % len(pool)]
                if alive(candidate) and candidate not in vpgs:
                    vpgs.append(candidate)
                    break
        return entities._replace(vpgs=tuple(vpgs))

    def _task_uuid(self, rng: Random, hour: int) -> str:
        value = rng.getrandbits(128)
        # Hide the hour in the top 32 bits, keyed by bits 0-31 (never touched by the
        # version/variant bits) so that ids still look random.
        top = (hour ^ value ^ self._key) & _MASK32
        return _format_uuid((value & ~(_MASK32 << 96)) | (top << 96))

    def _hour_of(self, task_uuid: str) -> int | None:
        digits = task_uuid.replace("-", "")
        if len(digits) != 32:
            return None
        try:
            value = int(digits, 16)
        except ValueError:
            return None
        hour = ((value >> 96) ^ value ^ self._key) & _MASK32
        return hour - (1 << 32) if hour >= 1 << 31 else hour
