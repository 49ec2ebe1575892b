"""The benchmark's cases, each run as separate processes, each checked against the data.

- ``first``: a first pass of ``tasks`` tasks into an empty warehouse, side by side:
  ``zvm-etl sync``, the dlt pipeline (``dlt_case.py``) and the hand-written limit
  (``handwritten.py``, into the same tables), into PostgreSQL and SQLite; the runs are
  interleaved (one of each, then again) so that a burst of load on the shared machine hits
  every tool alike;
- ``scale``: ``zvm-etl sync`` of ``large`` tasks into PostgreSQL, with per-window times;
- ``export`` (``export_case.py``): ``zvm-etl export`` of that warehouse's ``v_tasks``;
- ``names`` (``names_case.py``): what reading 5,000 VPGs' and 1,000 hosts' names adds to a pass;
- ``incremental``: on the warehouses the first passes left (``tasks`` and ``large`` tasks):
  three passes with no change, then three that bring ``new_tasks`` new tasks each (whatever
  ``repeats`` says: the goal compares the medians of three);
- ``many``: ``zvms`` small ZVMs behind one fake ZVM (path prefixes): one ZVM alone, all of
  them in one process, and two processes sharing them on one PostgreSQL warehouse;
- ``startup``: ``zvm-etl --version`` and a no-change ``sync`` of one small ZVM.

Every zvm-etl run gets a fresh database (``zvm-etl db upgrade`` outside the timing) and a
config file written for it; ``--log-format json`` gives the pass's own ``duration_seconds``
and one timestamped line per window. Row counts are compared with the dataset after every
run: a run that loaded the wrong number of tasks or bridge rows stops the benchmark. After a
first pass every table it writes is counted (a status row per task, an entity row per
identifier the bridges name...), and the hand-written limit must match zvm-etl's counts
table by table.
"""

from __future__ import annotations

import itertools
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.datasets import Dataset, ensure_dataset
from bench.env import (
    BENCH_DIR,
    DLT_BIN,
    PRODUCT_BIN,
    ROOT,
    Databases,
    Db,
    FakeZvmProcess,
    Settings,
    clean_dir,
)
from bench.measure import Sample, run, start

__all__ = ["Bench", "Result"]

DB_NAMES = {"postgres": "PostgreSQL", "sqlite": "SQLite"}
_BRIDGES = ("task_vpgs", "task_hosts", "task_sites", "task_flr_sessions")
# (entity table, the bridge table naming it, its key column)
_ENTITIES = (
    ("vpgs", "task_vpgs", "vpg_identifier"),
    ("hosts", "task_hosts", "host_identifier"),
    ("sites", "task_sites", "site_identifier"),
    ("flr_sessions", "task_flr_sessions", "flr_session_identifier"),
)
_FIRST_PASS_TABLES = (
    "zvms",
    "task_types",
    "tasks",
    *(entity for entity, _, _ in _ENTITIES),
    *_BRIDGES,
    "task_status_changes",
    "etl_runs",
    "sync_cursors",
)
"""The tables a first pass writes (zvm-etl's, and the hand-written limit's)."""
INCREMENTAL_RUNS = 3
"""Passes of each incremental case per warehouse size: its goal compares medians of three."""
_DLT_CHILDREN = tuple(
    f"tasks__related_entities__{kind}" for kind in ("vpgs", "hosts", "sites", "flr_sessions")
)
_WINDOW = re.compile(r"window (\d+)/(\d+) .*: (\d+) tasks$")


def _differing(found: dict[str, Any], expected: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """(found, expected) of every key of ``expected`` whose value ``found`` does not have."""
    return {key: (found[key], value) for key, value in expected.items() if found[key] != value}


@dataclass
class Result:
    """The runs of one case: wall times, peak RSS, and what the runs reported."""

    key: str
    section: str
    label: str
    tasks: int
    samples: list[Sample] = field(default_factory=list)
    in_process: list[float] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def walls(self) -> list[float]:
        return [sample.wall for sample in self.samples]

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.walls), max(self.walls)

    @property
    def rss(self) -> float:
        """The highest peak RSS of the runs, in MB."""
        return max(sample.max_rss_mb for sample in self.samples)

    @property
    def rate(self) -> float | None:
        return self.tasks / self.median if self.tasks else None

    @property
    def in_process_median(self) -> float | None:
        return statistics.median(self.in_process) if self.in_process else None


@dataclass
class EtlLog:
    """What a zvm-etl run logged: its passes and its window lines, with timestamps."""

    passes: list[dict[str, Any]]
    windows: list[tuple[datetime, int, int, int]]
    first_pass_at: datetime | None

    @classmethod
    def parse(cls, stderr: str) -> EtlLog:
        passes: list[dict[str, Any]] = []
        windows: list[tuple[datetime, int, int, int]] = []
        first: datetime | None = None
        for line in stderr.splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            message = str(entry.get("message", ""))
            ts = datetime.fromisoformat(entry["ts"])
            if entry.get("event") == "pass":
                passes.append(entry)
            elif "first pass, loading history" in message:
                first = ts
            else:
                match = _WINDOW.search(message)
                if match:
                    done, total, count = (int(group) for group in match.groups())
                    windows.append((ts, done, total, count))
        return cls(passes, windows, first)

    def window_times(self) -> list[dict[str, Any]]:
        """Seconds of each logged window (empty windows are logged at DEBUG only: their
        time, milliseconds, falls into the next logged one)."""
        times: list[dict[str, Any]] = []
        previous = self.first_pass_at
        for ts, done, total, count in self.windows:
            if previous is not None:
                seconds = (ts - previous).total_seconds()
                times.append({"window": done, "of": total, "tasks": count, "seconds": seconds})
            previous = ts
        return times


class Bench:
    """Runs the cases of :class:`~bench.env.Settings` and collects :class:`Result`\\ s."""

    def __init__(self, settings: Settings, *, log: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.log = log
        self.work = clean_dir(BENCH_DIR / "work")
        self.dbs = Databases(settings.pg, self.work)
        self.results: dict[str, Result] = {}
        self.kept: dict[int, Db] = {}  # warehouses left by first passes, by task count
        self.datasets: dict[int, Dataset] = {}
        self.profiles: dict[str, Any] = {}
        self.analyst: list[dict[str, Any]] = []  # the analyst case's timings, per warehouse
        self.failures: list[str] = []
        self._many: tuple[FakeZvmProcess, list[Dataset]] | None = None

    # ---- helpers -------------------------------------------------------------------------

    def dataset(self, base: int) -> Dataset:
        if base not in self.datasets:
            folder = ensure_dataset(
                base=base,
                extra=self.settings.extra,
                seed=self.settings.seed,
                tasks_per_hour=self.settings.rate,
                log=self.log,
            )
            self.datasets[base] = Dataset.open(folder)
        return self.datasets[base]

    def add(self, result: Result) -> Result:
        self.results[result.key] = result
        rss = f"{result.rss:.0f} MB"
        inner = result.in_process_median
        extra = f", in-process {inner:.2f}s" if inner is not None else ""
        self.log(
            f"  {result.label}: median {result.median:.2f}s "
            f"({result.spread[0]:.2f}-{result.spread[1]:.2f}), peak {rss}{extra}"
        )
        return result

    def write_config(
        self,
        db: Db,
        zvms: Sequence[tuple[str, str]],
        retention_days: int,
        name: str,
        *,
        sync: dict[str, str] | None = None,
    ) -> Path:
        """A zvm-etl config (JSON, which YAML reads) for ``zvms`` (name, url) into ``db``;
        ``sync`` adds to the ``sync`` section."""
        config = {
            "warehouse": {"url": db.url},
            "zvms": [
                {
                    "name": zvm,
                    "url": url,
                    "username": "admin",
                    "password": "zerto",
                    "task_retention": f"{retention_days}d",
                    "retry_for": "30s",
                    "timeout": "600s",
                }
                for zvm, url in zvms
            ],
            "sync": {"backfill_window": self.settings.window, **(sync or {})},
        }
        path = self.work / f"{name}.yaml"
        path.write_text(json.dumps(config, indent=1))
        return path

    def etl(self, config: Path, *args: str) -> list[str]:
        return [
            str(PRODUCT_BIN / "zvm-etl"),
            "--config",
            str(config),
            "--log-format",
            "json",
            *args,
        ]

    def upgrade(self, config: Path) -> None:
        run(self.etl(config, "db", "upgrade"), cwd=self.work).check("zvm-etl db upgrade")

    def sync(self, config: Path, *args: str) -> tuple[Sample, EtlLog]:
        sample = run(self.etl(config, "sync", *args), cwd=self.work, timeout=self.settings.timeout)
        sample.check("zvm-etl sync")
        parsed = EtlLog.parse(sample.stderr)
        failed = [p for p in parsed.passes if p.get("status") == "failed"]
        if failed:
            raise RuntimeError(f"zvm-etl sync: a pass failed: {failed[0].get('error')}")
        return sample, parsed

    def check_etl(self, db: Db, tasks: int, entities: int | None, what: str) -> None:
        found = self.dbs.scalar(db, "SELECT count(*) FROM tasks")
        bridges = " + ".join(f"(SELECT count(*) FROM {table})" for table in _BRIDGES)
        rows = self.dbs.scalar(db, f"SELECT {bridges}")
        self._compare(what, tasks, found, entities, rows)

    def check_first_pass(self, db: Db, dataset: Dataset, what: str) -> dict[str, int]:
        """:meth:`check_etl` of a first pass of ``dataset``, then the rest of what it
        writes: one ``zvms`` and one ``etl_runs`` row, a status row per task, an entity row
        per identifier its bridge rows name. Returns every table's row count."""
        self.check_etl(db, dataset.base, dataset.entity_rows(dataset.base), what)
        names = list(_FIRST_PASS_TABLES)
        counts = [f"(SELECT count(*) FROM {table})" for table in names]
        for _, bridge, key in _ENTITIES:
            names.append(bridge + " keys")
            counts.append(f"(SELECT count(DISTINCT {key}) FROM {bridge})")
        found = dict(zip(names, self.dbs.rows(db, "SELECT " + ", ".join(counts))[0], strict=True))
        expected = {"zvms": 1, "etl_runs": 1, "task_status_changes": dataset.base}
        expected |= {entity: found[bridge + " keys"] for entity, bridge, _ in _ENTITIES}
        wrong = _differing(found, expected)
        if wrong:
            raise RuntimeError(f"{what}: row counts (found, expected) {wrong}")
        return {table: int(found[table]) for table in _FIRST_PASS_TABLES}

    def _compare(self, what: str, tasks: int, found: Any, entities: int | None, rows: Any) -> None:
        if found != tasks or (entities is not None and rows != entities):
            raise RuntimeError(
                f"{what}: the warehouse holds {found} tasks and {rows} bridge rows; "
                f"the data has {tasks} tasks and {entities} related entities"
            )

    def retention(self, *datasets: Dataset) -> int:
        now_ms = int(time.time() * 1000)
        return max(dataset.retention_days(now_ms) for dataset in datasets)

    # ---- first pass ----------------------------------------------------------------------

    def etl_first_pass(
        self, db_kind: str, dataset: Dataset, url: str, *, label: str, keep: bool
    ) -> tuple[Sample, EtlLog, Db]:
        db = self.dbs.new(db_kind, label)
        config = self.write_config(db, [("bench", url)], self.retention(dataset), db.name)
        self.upgrade(config)
        sample, parsed = self.sync(config)
        sample.info["rows"] = self.check_first_pass(db, dataset, label)
        if not keep:
            self.dbs.drop(db)
        sample.info["config"] = config
        return sample, parsed, db

    def dlt_first_pass(self, db_kind: str, dataset: Dataset, url: str) -> Sample:
        db = self.dbs.new(db_kind, "dlt")
        pipelines = clean_dir(self.work / f"{db.name}-pipelines")
        if db_kind == "postgres":
            # dlt insists on a password; trust authentication ignores it.
            scheme, rest = db.dsn.split("://", 1)
            user, _, host = rest.partition("@")
            credentials = f"{scheme}://{user.split(':')[0]}:bench@{host}"
        else:
            credentials = db.dsn
        command = [
            str(DLT_BIN / "python"),
            str(BENCH_DIR / "dlt_case.py"),
            "--url",
            url,
            "--destination",
            db_kind,
            "--credentials",
            credentials,
            "--pipelines-dir",
            str(pipelines),
        ]
        sample = run(command, cwd=self.work, timeout=self.settings.timeout)
        sample.check("the dlt pipeline")
        children = " + ".join(f"(SELECT count(*) FROM zvm.{table})" for table in _DLT_CHILDREN)
        attach = None
        if db.path is not None:
            attach = {"zvm": db.path.with_name(f"{db.path.stem}__zvm.db")}
        found = self.dbs.scalar(db, "SELECT count(*) FROM zvm.tasks", attach=attach)
        rows = self.dbs.scalar(db, f"SELECT {children}", attach=attach)
        self._compare("dlt", dataset.base, found, dataset.entity_rows(dataset.base), rows)
        self.dbs.drop(db)
        return sample

    def hand_first_pass(
        self, db_kind: str, dataset: Dataset, url: str, etl_rows: dict[str, int]
    ) -> Sample:
        """The hand-written limit into a warehouse made by ``zvm-etl db upgrade`` (outside
        the timing); it must write as many rows into every table as zvm-etl's first pass of
        the same data did (``etl_rows``)."""
        db = self.dbs.new(db_kind, "hand")
        self.upgrade(self.write_config(db, [("bench", url)], self.retention(dataset), db.name))
        command = [sys.executable, "-m", "bench.handwritten", "--url", url, "--db", db.dsn]
        sample = run([*command, "--zvm", "bench"], cwd=ROOT, timeout=self.settings.timeout)
        sample.check("the hand-written pipeline")
        rows = self.check_first_pass(db, dataset, "hand-written")
        differ = _differing(rows, etl_rows)
        if differ:
            raise RuntimeError(f"hand-written: row counts (its, zvm-etl's) differ: {differ}")
        self.dbs.drop(db)
        return sample

    def case_first(self) -> None:
        s = self.settings
        dataset = self.dataset(s.tasks)
        self.log(f"first pass: {s.tasks:,} tasks, {s.repeats} runs each, {', '.join(s.dbs)}")
        results: dict[tuple[str, str], Result] = {}
        for db_kind in s.dbs:
            for tool, label in (
                ("zvm-etl", "zvm-etl sync"),
                ("dlt", "dlt pipeline"),
                ("hand", "hand-written limit"),
            ):
                results[(tool, db_kind)] = Result(
                    key=f"first/{tool}/{db_kind}",
                    section="first pass",
                    label=f"{label} → {DB_NAMES[db_kind]}",
                    tasks=s.tasks,
                )
        keep_pg = "incremental" in s.cases
        with FakeZvmProcess({"": dataset.folder}) as server:
            url = server.url()
            for number in range(s.repeats):
                last = number == s.repeats - 1
                for db_kind in s.dbs:
                    keep = keep_pg and last and db_kind == "postgres"
                    sample, parsed, db = self.etl_first_pass(
                        db_kind, dataset, url, label="etl", keep=keep
                    )
                    if keep:
                        self.kept[s.tasks] = db
                    result = results[("zvm-etl", db_kind)]
                    result.samples.append(sample)
                    result.in_process.append(float(parsed.passes[0]["duration_seconds"]))
                    result.detail.setdefault("windows", []).append(parsed.window_times())
                    results[("dlt", db_kind)].samples.append(
                        self.dlt_first_pass(db_kind, dataset, url)
                    )
                    results[("hand", db_kind)].samples.append(
                        self.hand_first_pass(db_kind, dataset, url, sample.info["rows"])
                    )
                self.log(f"  run {number + 1}/{s.repeats} done")
        for result in results.values():
            self.add(result)

    # ---- scale ---------------------------------------------------------------------------

    def case_scale(self) -> None:
        s = self.settings
        if not s.large:
            return
        db_kind = "postgres" if "postgres" in s.dbs else s.dbs[0]
        dataset = self.dataset(s.large)
        self.log(f"scale: {s.large:,} tasks into {DB_NAMES[db_kind]}, {s.large_repeats} run(s)")
        result = Result(
            key=f"scale/zvm-etl/{db_kind}",
            section="scale",
            label=f"zvm-etl sync → {DB_NAMES[db_kind]}",
            tasks=s.large,
        )
        keep_it = "export" in s.cases or ("incremental" in s.cases and db_kind == "postgres")
        with FakeZvmProcess({"": dataset.folder}) as server:
            for number in range(s.large_repeats):
                keep = keep_it and number == s.large_repeats - 1
                sample, parsed, db = self.etl_first_pass(
                    db_kind, dataset, server.url(), label="scale", keep=keep
                )
                if keep:
                    self.kept[s.large] = db
                result.samples.append(sample)
                result.in_process.append(float(parsed.passes[0]["duration_seconds"]))
                result.detail.setdefault("windows", []).append(parsed.window_times())
        self.add(result)

    # ---- incremental ---------------------------------------------------------------------

    def case_incremental(self, sizes: Sequence[int]) -> None:
        s = self.settings
        if "postgres" not in s.dbs:
            self.log("incremental: skipped (PostgreSQL is not among BENCH_DBS)")
            return
        repeats = max(1, min(INCREMENTAL_RUNS, s.extra // max(s.new_tasks, 1)))
        for size in sizes:
            if not size:
                continue
            dataset = self.dataset(size)
            self.log(f"incremental: a PostgreSQL warehouse of {size:,} tasks, {repeats} runs each")
            with FakeZvmProcess({"": dataset.folder}) as server:
                db = self.kept.pop(size, None)
                config: Path
                if db is None:
                    self.log("  (loading it first: the first-pass case did not leave one)")
                    _, _, db = self.etl_first_pass(
                        "postgres", dataset, server.url(), label="incr", keep=True
                    )
                retention = self.retention(dataset)
                config = self.write_config(db, [("bench", server.url())], retention, db.name)
                nochange = Result(
                    key=f"incremental/nochange/{size}",
                    section="incremental",
                    label=f"no change, {size:,} in the warehouse",
                    tasks=0,
                )
                for _ in range(repeats):
                    sample, parsed = self.sync(config)
                    counts = parsed.passes[0]
                    if counts["tasks_inserted"] or counts["tasks_updated"]:
                        raise RuntimeError(f"a pass with no change changed rows: {counts}")
                    nochange.samples.append(sample)
                    nochange.in_process.append(float(counts["duration_seconds"]))
                    nochange.detail.setdefault("passes", []).append(counts)
                self.add(nochange)
                fresh = Result(
                    key=f"incremental/new/{size}",
                    section="incremental",
                    label=f"{s.new_tasks:,} new tasks, {size:,} in the warehouse",
                    tasks=s.new_tasks,
                )
                for number in range(1, repeats + 1):
                    visible = size + number * s.new_tasks
                    server.set_visible(visible)
                    sample, parsed = self.sync(config)
                    counts = parsed.passes[0]
                    if counts["tasks_inserted"] != s.new_tasks:
                        raise RuntimeError(f"expected {s.new_tasks} new tasks: {counts}")
                    self.check_etl(db, visible, dataset.entity_rows(visible), "incremental")
                    fresh.samples.append(sample)
                    fresh.in_process.append(float(counts["duration_seconds"]))
                    fresh.detail.setdefault("passes", []).append(counts)
                self.add(fresh)
                if "profile" in s.cases and s.extra >= (repeats + 1) * s.new_tasks:
                    self.profile_incremental(server, db, config, size, repeats + 1)
            self.dbs.drop(db)

    def profile_incremental(
        self, server: FakeZvmProcess, db: Db, config: Path, size: int, step: int
    ) -> None:
        """One no-change pass and one with new tasks, under py-spy and the statement log."""
        self.log(f"  profile: a no-change pass and a {self.settings.new_tasks:,}-task pass")
        entry = profiled_sync(self, db, config, f"incremental-nochange-{size}")
        entry["title"] = f"incremental, no change, {size:,} tasks in the warehouse"
        self.profiles[f"incremental-nochange-{size}"] = entry
        server.set_visible(size + step * self.settings.new_tasks)
        entry = profiled_sync(self, db, config, f"incremental-new-{size}")
        entry["title"] = (
            f"incremental, {self.settings.new_tasks:,} new tasks, {size:,} tasks in the warehouse"
        )
        self.profiles[f"incremental-new-{size}"] = entry

    # ---- many ZVMs -----------------------------------------------------------------------

    def many_server(self) -> tuple[FakeZvmProcess, list[Dataset]]:
        if self._many is None:
            s = self.settings
            self.log(f"{s.zvms} small datasets of {s.zvm_tasks:,} tasks (made once, cached)")
            datasets = [
                Dataset.open(
                    ensure_dataset(
                        base=s.zvm_tasks,
                        extra=0,
                        seed=100 + number,
                        tasks_per_hour=s.zvm_rate,
                        base_url=f"https://zvm{number:02d}.bench.invalid:9669",
                        log=lambda message: None,
                    )
                )
                for number in range(1, s.zvms + 1)
            ]
            prefixes = {f"z{number:02d}": d.folder for number, d in enumerate(datasets, 1)}
            self._many = (FakeZvmProcess(prefixes), datasets)
        return self._many

    def many_config(self, db: Db, count: int) -> Path:
        server, datasets = self.many_server()
        zvms = [(f"z{number:02d}", server.url(f"z{number:02d}")) for number in range(1, count + 1)]
        return self.write_config(db, zvms, self.retention(*datasets[:count]), db.name)

    def case_many(self) -> None:
        s = self.settings
        if "postgres" not in s.dbs:
            self.log("many ZVMs: skipped (PostgreSQL is not among BENCH_DBS)")
            return
        _, datasets = self.many_server()
        self.log(f"many ZVMs: {s.zvms} ZVMs of {s.zvm_tasks:,} tasks, PostgreSQL")
        entities = sum(d.entity_rows(d.base) for d in datasets)
        one = Result("many/one", "many ZVMs", "one ZVM, one process", s.zvm_tasks)
        every = Result("many/all", "many ZVMs", f"{s.zvms} ZVMs, one process", s.zvms * s.zvm_tasks)
        two = Result("many/two", "many ZVMs", f"{s.zvms} ZVMs, two processes", s.zvms * s.zvm_tasks)
        for _ in range(s.repeats):
            db = self.dbs.new("postgres", "one")
            config = self.many_config(db, 1)
            self.upgrade(config)
            sample, parsed = self.sync(config)
            self.check_etl(db, s.zvm_tasks, datasets[0].entity_rows(s.zvm_tasks), "one ZVM")
            one.samples.append(sample)
            one.in_process.append(float(parsed.passes[0]["duration_seconds"]))
            self.dbs.drop(db)

            db = self.dbs.new("postgres", "all")
            config = self.many_config(db, s.zvms)
            self.upgrade(config)
            sample, parsed = self.sync(config)
            self.check_etl(db, s.zvms * s.zvm_tasks, entities, "many ZVMs")
            every.samples.append(sample)
            self.dbs.drop(db)

            db = self.dbs.new("postgres", "two")
            config = self.many_config(db, s.zvms)
            self.upgrade(config)
            first, second = (
                start(self.etl(config, "sync"), cwd=self.work),
                start(self.etl(config, "sync"), cwd=self.work),
            )
            samples = [first.wait(s.timeout), second.wait(s.timeout)]
            began = min(first.began, second.began)
            ended = max(first.began + samples[0].wall, second.began + samples[1].wall)
            split = []
            for sample in samples:
                sample.check("zvm-etl sync (two processes)")
                passes = EtlLog.parse(sample.stderr).passes
                split.append(
                    {
                        status: sum(1 for p in passes if p["status"] == status)
                        for status in ("succeeded", "skipped", "failed")
                    }
                )
            runs = self.dbs.rows(
                db,
                "SELECT zvm, status, started_at, finished_at FROM etl_runs "
                "ORDER BY zvm, started_at",
            )
            per_zvm: dict[str, list[tuple[Any, ...]]] = {}
            for row in runs:
                per_zvm.setdefault(str(row[0]), []).append(row)
            once = len(per_zvm) == s.zvms and all(
                len(rows) == 1 and rows[0][1] == "succeeded" for rows in per_zvm.values()
            )
            twice = [rows for rows in per_zvm.values() if len(rows) > 1]
            overlapping = sum(
                1
                for rows in twice
                if any(a[2] < b[3] and b[2] < a[3] for a, b in itertools.pairwise(rows))
            )
            two.detail.setdefault("more_than_once", []).append(len(twice))
            two.detail.setdefault("overlapping", []).append(overlapping)
            self.check_etl(db, s.zvms * s.zvm_tasks, entities, "two processes")
            combined = Sample(
                command=samples[0].command,
                wall=ended - began,
                max_rss_mb=max(sample.max_rss_mb for sample in samples),
                returncode=0,
                stdout="",
                stderr="",
                info={"split": split},
            )
            two.samples.append(combined)
            two.detail.setdefault("split", []).append(split)
            two.detail.setdefault("each_once", []).append(once)
            self.dbs.drop(db)
        for result in (one, every, two):
            self.add(result)

    # ---- start-up ------------------------------------------------------------------------

    def case_startup(self) -> None:
        s = self.settings
        runs = max(s.repeats, 5)
        version = Result("startup/version", "start-up", "zvm-etl --version", 0)
        for _ in range(runs):
            sample = run([str(PRODUCT_BIN / "zvm-etl"), "--version"], cwd=self.work)
            sample.check("zvm-etl --version")
            version.samples.append(sample)
        self.add(version)
        if "postgres" not in s.dbs:
            return
        _, datasets = self.many_server()
        db = self.dbs.new("postgres", "startup")
        config = self.many_config(db, 1)
        self.upgrade(config)
        self.sync(config)
        self.check_etl(db, s.zvm_tasks, datasets[0].entity_rows(s.zvm_tasks), "start-up")
        idle = Result(
            "startup/nochange",
            "start-up",
            f"no-change sync, one ZVM of {s.zvm_tasks:,} tasks",
            0,
        )
        for _ in range(runs):
            sample, parsed = self.sync(config)
            idle.samples.append(sample)
            idle.in_process.append(float(parsed.passes[0]["duration_seconds"]))
        self.add(idle)
        self.profiles["startup_config"] = config
        self.profiles["startup_db"] = db

    def close(self) -> None:
        if self._many is not None:
            self._many[0].close()
            self._many = None
        for db in list(self.kept.values()):
            self.dbs.drop(db)
        self.kept.clear()
        startup_db = self.profiles.pop("startup_db", None)
        if isinstance(startup_db, Db):
            self.dbs.drop(startup_db)


def profiled_sync(bench: Bench, db: Db, config: Path, name: str) -> dict[str, Any]:
    """One ``zvm-etl sync`` under py-spy; on PostgreSQL with every statement logged (for
    that database only, reset afterwards). Returns what the report shows of it."""
    from bench.profiles import log_size, pyspy_command, statement_costs, summarise_pyspy

    def log_statements(value: str) -> None:
        import psycopg

        with psycopg.connect(f"{bench.settings.pg}/postgres", autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{db.name}" SET log_min_duration_statement {value}')

    keep = BENCH_DIR / "profiles"
    keep.mkdir(exist_ok=True)
    if db.kind == "postgres":
        log_statements("= 0")
    since = log_size()
    raw = keep / f"pyspy-{name}.txt"
    sample = run(pyspy_command(raw, bench.etl(config, "sync")), cwd=bench.work)
    sample.check("py-spy record zvm-etl sync")
    time.sleep(0.5)  # let the server write its last log lines
    until = log_size()
    if db.kind == "postgres":
        log_statements("TO DEFAULT")
    parsed = EtlLog.parse(sample.stderr)
    entry: dict[str, Any] = {
        "wall": sample.wall,
        "in_process": float(parsed.passes[0]["duration_seconds"]),
        "pass": parsed.passes[0],
        "spy": summarise_pyspy(raw),
        "raw": raw,
    }
    if db.kind == "postgres":
        entry["statements"] = statement_costs(db.name, since, until)
    return entry


def profile_first_pass(bench: Bench) -> None:
    """py-spy (and, on PostgreSQL, the statement log) over one first pass per database,
    and the imports of ``zvm-etl --version`` and of a no-change sync."""
    from bench.floor import server_floor
    from bench.profiles import import_times

    s = bench.settings
    dataset = bench.dataset(s.tasks)
    with FakeZvmProcess({"": dataset.folder}) as server:
        for db_kind in s.dbs:
            bench.log(f"profile: py-spy on a first pass of {s.tasks:,} tasks → {DB_NAMES[db_kind]}")
            db = bench.dbs.new(db_kind, "prof")
            config = bench.write_config(
                db, [("bench", server.url())], bench.retention(dataset), db.name
            )
            bench.upgrade(config)
            entry = profiled_sync(bench, db, config, f"first-pass-{s.tasks}-{db_kind}")
            entry["title"] = f"{DB_NAMES[db_kind]}: zvm-etl first pass of {s.tasks:,} tasks"
            bench.check_etl(db, dataset.base, dataset.entity_rows(dataset.base), "profile")
            bench.profiles[db_kind] = entry
            if db_kind == "postgres":
                bench.log("profile: PostgreSQL's own cost of those rows (bench/floor.py)")
                bench.profiles["floor"] = server_floor(db.dsn)
            bench.dbs.drop(db)
    product_python = str(PRODUCT_BIN / "python")
    bench.profiles["imports_version"] = import_times([product_python, "-m", "etl", "--version"])
    startup_config = bench.profiles.get("startup_config")
    if isinstance(startup_config, Path):
        bench.profiles["imports_sync"] = import_times(
            [product_python, "-m", "etl", "--config", str(startup_config), "sync"]
        )
