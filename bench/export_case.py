"""The ``export`` case: ``zvm-etl export`` of a large warehouse's ``v_tasks`` view.

It exports the view of the ``large`` warehouse (1,000,000 tasks by default, PostgreSQL) to
CSV, JSON and Parquet files, each as a separate process, and records wall time and peak
RSS: the export reads the view in chunks, so memory stays flat whatever the row count
(the goal: under 300 MB for a million rows). The warehouse is the one the ``scale`` case
left; without one (``BENCH_CASES=export``) it is loaded first, outside the timing. Each
file's row count is checked against the warehouse before the file is removed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import ijson
import pyarrow.parquet as pq

from bench.cases import Bench, Result
from bench.env import PRODUCT_BIN, FakeZvmProcess
from bench.measure import run

__all__ = ["EXPORT_FORMATS", "EXPORT_RSS_LIMIT", "case_export"]

EXPORT_FORMATS = ("csv", "json", "parquet")
EXPORT_RSS_LIMIT = 300.0
"""MB: the most a million-row export may hold at its peak."""


def case_export(bench: Bench) -> None:
    """Export ``v_tasks`` of the ``large`` warehouse in every format, ``repeats`` times
    (at most two: a million-row export is long, and its memory does not vary)."""
    s = bench.settings
    size = s.large
    if not size:
        return
    db_kind = "postgres" if "postgres" in s.dbs else s.dbs[0]
    db = bench.kept.get(size)
    if db is None:
        bench.log(f"export: loading a warehouse of {size:,} tasks first (not timed)")
        dataset = bench.dataset(size)
        with FakeZvmProcess({"": dataset.folder}) as server:
            _, _, db = bench.etl_first_pass(
                db_kind, dataset, server.url(), label="export", keep=True
            )
        bench.kept[size] = db
    # export never talks to a ZVM: the configured one is a closed port.
    config = bench.write_config(db, [("bench", "http://127.0.0.1:9")], 30, f"{db.name}-export")
    rows = bench.dbs.scalar(db, "SELECT count(*) FROM v_tasks")
    repeats = max(1, min(s.repeats, 2))
    bench.log(f"export: v_tasks, {rows:,} rows, formats {', '.join(EXPORT_FORMATS)}")
    for fmt in EXPORT_FORMATS:
        result = Result(
            key=f"export/{fmt}/{size}",
            section="export",
            label=f"export v_tasks → {fmt}, {size:,}-task warehouse",
            tasks=int(rows),
        )
        out = bench.work / f"export.{fmt}"
        for _ in range(repeats):
            command = [
                str(PRODUCT_BIN / "zvm-etl"),
                "--config",
                str(config),
                "export",
                "v_tasks",
                "--format",
                fmt,
                "--out",
                str(out),
            ]
            sample = run(command, cwd=bench.work, timeout=s.timeout)
            sample.check(f"zvm-etl export --format {fmt}")
            written = _rows_in(out, fmt)
            out.unlink()
            if written != rows:
                raise RuntimeError(f"export --format {fmt} wrote {written} rows of {rows}")
            result.samples.append(sample)
        bench.add(result)


def _rows_in(path: Path, fmt: str) -> int:
    """The data rows of an exported file."""
    if fmt == "csv":
        with path.open(encoding="utf-8", newline="") as stream:
            return sum(1 for _ in csv.reader(stream)) - 1  # the header
    if fmt == "json":
        with path.open("rb") as stream:
            return sum(1 for _ in ijson.items(stream, "item", use_float=True))
    return int(pq.ParquetFile(path).metadata.num_rows)
