"""Benchmark task histories: rendered once by ``zvm_simulator``, cached under ``bench/data/``.

A dataset is the last ``base + extra`` tasks that the simulator's own :class:`Scenario`
generates up to the hour the dataset was made, each rendered by its :class:`WireFormat`
(a Windows ZVM: ``/Date(ms+0300)/`` dates, PascalCase keys) in its state at that hour:
about 1.1 KB and 3 related entities per task. The first ``base`` tasks are what the fake ZVM
serves by default; the ``extra`` newest ones are held back for the incremental cases
("1,000 new tasks arrive").

On disk (one folder per dataset, see :func:`dataset_dir`)::

    tasks.json   the task objects joined by b"," (no brackets): a slice is a JSON array body
    offsets.bin  int64 start offset of each task, plus one past the end (size + 1)
    started.bin  int64 Started of each task, epoch ms, ascending
    completed.bin int64 Completed of each task, epoch ms, -1 while it runs
    entities.bin int8 related entities of each task (the bridge rows it makes)
    ids.txt      one task identifier a line (for GET /v1/tasks/{id})
    meta.json    sizes, seed, rate, time span, task types, format version

Making one streams hour buckets (the simulator generates an hour at a time), so memory stays
small even for 1,000,000 tasks; the folder is written under a temporary name and renamed
when complete, so an interrupted run never leaves a half dataset behind.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DATA_DIR",
    "FORMAT_VERSION",
    "Dataset",
    "dataset_dir",
    "ensure_dataset",
    "make_dataset",
]

FORMAT_VERSION = 1
DATA_DIR = Path(__file__).resolve().parent / "data"
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def dataset_dir(
    *, base: int, extra: int, seed: int, tasks_per_hour: float, root: Path = DATA_DIR
) -> Path:
    """The folder of the dataset with these parameters."""
    return root / f"tasks-{base}+{extra}-seed{seed}-rate{tasks_per_hour:g}"


def _entity_count(task: Any) -> int:
    entities = task.entities
    if entities is None:
        return 0
    return (
        len(entities.vpgs)
        + len(entities.hosts)
        + (1 if entities.local_site else 0)
        + len(entities.peer_sites)
        + len(entities.flr_sessions or ())
    )


def make_dataset(
    folder: Path,
    *,
    base: int,
    extra: int,
    seed: int,
    tasks_per_hour: float,
    base_url: str,
    end_ms: int | None = None,
) -> None:
    """Render ``base + extra`` tasks into ``folder`` (replaced if it exists)."""
    import gc

    from zvm_simulator.catalog import DOCUMENTED_TYPES
    from zvm_simulator.scenario import Scenario
    from zvm_simulator.wire import WireFormat

    total = base + extra
    if end_ms is None:
        end_ms = int(time.time() * 1000) // HOUR_MS * HOUR_MS
    end_hour = end_ms // HOUR_MS
    scenario = Scenario(seed=seed, tasks_per_hour=tasks_per_hour, history_start_ms=0, cache_tasks=1)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of small objects, no cycles: the collector only slows this down
    try:
        # Pass 1: walk back an hour at a time until the hours hold enough tasks.
        hour, found = end_hour, 0
        while found < total:
            hour -= 1
            found += len(scenario.bucket(hour))
        first_hour, skip = hour, found - total
        # Pass 2: generate those hours again (deterministic) and render the tasks in order.
        wire = WireFormat(
            base_url=base_url,
            seed=seed,
            site_id=scenario.site_id,
            date_style="windows",
            utc_offset_minutes=180,
        )
        tmp = folder.with_name(folder.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        offsets, started, completed = array("q"), array("q"), array("q")
        entities = array("b")
        position = 0
        base_bytes = base_entities = 0
        with (tmp / "tasks.json").open("wb") as out, (tmp / "ids.txt").open("w") as ids:
            for hour in range(first_hour, end_hour):
                tasks = scenario.bucket(hour)
                if skip:
                    dropped = min(skip, len(tasks))
                    tasks, skip = tasks[dropped:], skip - dropped
                for task in tasks:
                    body = wire.task(task, end_ms)
                    if position:
                        out.write(b",")
                        position += 1
                    index = len(started)
                    offsets.append(position)
                    out.write(body)
                    position += len(body)
                    started.append(task.started_ms)
                    done = task.completed_ms
                    completed.append(done if done is not None and done <= end_ms else -1)
                    count = _entity_count(task)
                    entities.append(count)
                    ids.write(task.identifier + "\n")
                    if index < base:
                        base_bytes += len(body)
                        base_entities += count
                    task.wire = None  # the bucket is dropped next hour anyway
        offsets.append(position + 1)
        for name, values in (
            ("offsets", offsets),
            ("started", started),
            ("completed", completed),
            ("entities", entities),
        ):
            with (tmp / f"{name}.bin").open("wb") as out:
                values.tofile(out)
        open_tasks = sum(1 for value in completed[:base] if value < 0)
        meta = {
            "format": FORMAT_VERSION,
            "tasks": len(started),
            "base": base,
            "extra": extra,
            "seed": seed,
            "tasks_per_hour": tasks_per_hour,
            "base_url": base_url,
            "site_id": scenario.site_id,
            "start_ms": started[0],
            "end_ms": end_ms,
            "base_last_started_ms": started[base - 1],
            "base_json_bytes": base_bytes + base - 1 + 2,
            "base_entities": base_entities,
            "base_open_tasks": open_tasks,
            "types": list(DOCUMENTED_TYPES),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        if gc_was_enabled:
            gc.enable()


def ensure_dataset(
    *,
    base: int,
    extra: int,
    seed: int,
    tasks_per_hour: float,
    base_url: str = "https://zvm.bench.invalid:9669",
    root: Path = DATA_DIR,
    log: Any = print,
) -> Path:
    """The dataset's folder, made first when it is not cached yet."""
    folder = dataset_dir(
        base=base, extra=extra, seed=seed, tasks_per_hour=tasks_per_hour, root=root
    )
    meta = folder / "meta.json"
    if meta.is_file() and json.loads(meta.read_text()).get("format") == FORMAT_VERSION:
        return folder
    log(f"making dataset {folder.name} ({base:,} + {extra:,} tasks, once; cached after)")
    began = time.perf_counter()
    make_dataset(
        folder,
        base=base,
        extra=extra,
        seed=seed,
        tasks_per_hour=tasks_per_hour,
        base_url=base_url,
    )
    log(f"  made in {time.perf_counter() - began:.1f}s")
    return folder


def _read_array(path: Path, code: str) -> array[int]:
    values: array[int] = array(code)
    with path.open("rb") as stream:
        values.frombytes(stream.read())
    return values


@dataclass
class Dataset:
    """A dataset opened for serving and checking (arrays in memory, the bytes on disk)."""

    folder: Path
    meta: dict[str, Any]
    offsets: array[int]
    started: array[int]
    completed: array[int]
    entities: array[int]

    @classmethod
    def open(cls, folder: Path) -> Dataset:
        meta = json.loads((folder / "meta.json").read_text())
        return cls(
            folder=folder,
            meta=meta,
            offsets=_read_array(folder / "offsets.bin", "q"),
            started=_read_array(folder / "started.bin", "q"),
            completed=_read_array(folder / "completed.bin", "q"),
            entities=_read_array(folder / "entities.bin", "b"),
        )

    @property
    def tasks(self) -> int:
        return len(self.started)

    @property
    def base(self) -> int:
        return int(self.meta["base"])

    @property
    def json_path(self) -> Path:
        return self.folder / "tasks.json"

    def span(self, first: int, stop: int) -> tuple[int, int]:
        """(byte offset, length) of tasks ``first..stop-1`` with their commas."""
        start = self.offsets[first]
        return start, self.offsets[stop] - 1 - start

    def entity_rows(self, count: int) -> int:
        """Bridge rows the first ``count`` tasks make."""
        return sum(self.entities[:count])

    def retention_days(self, now_ms: int) -> int:
        """Whole days from the first task to ``now_ms``, plus one: a ``task_retention``
        that makes a first pass scan the whole dataset and nothing much older."""
        return math.ceil((now_ms - self.started[0]) / DAY_MS) + 1
