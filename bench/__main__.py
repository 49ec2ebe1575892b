"""``python -m bench [--quick]``: run the benchmark, print the report, write results.md.

Settings come from environment variables (defaults in brackets; ``--quick`` changes them to
10,000 tasks, one run, first-pass cases only, written to ``bench/results-quick.md``):

  BENCH_TASKS [100000]        tasks of the first-pass, incremental and profile cases
  BENCH_REPEATS [3]           runs of each case (a separate process each; the incremental
                              passes run three times whatever it says)
  BENCH_LARGE [1000000]       tasks of the scale case (and the large incremental); 0 skips
  BENCH_LARGE_REPEATS [1]     runs of the scale case
  BENCH_ANALYST [1000000]     tasks of the analyst case's warehouses (PostgreSQL, SQLite);
                              0 skips it
  BENCH_ANALYST_HUGE [10000000]  tasks of its huge PostgreSQL warehouse (grown from the
                              first in SQL); 0 skips it
  BENCH_ZVMS [50]             ZVMs of the many-ZVM case
  BENCH_ZVM_TASKS [2000]      tasks of each of them
  BENCH_NEW_TASKS [1000]      new tasks an incremental pass brings
  BENCH_DBS [postgres,sqlite] warehouses of the first-pass and profile cases
  BENCH_CASES [first,scale,export,incremental,many,names,startup,profile,analyst]
  BENCH_PG [postgresql://postgres@127.0.0.1:5432]   server for the fresh databases
  BENCH_OUTPUT [bench/results.md]
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from datetime import UTC, datetime

from bench.analyst_case import case_analyst
from bench.cases import Bench, profile_first_pass
from bench.env import DLT_BIN, PRODUCT_BIN, Settings
from bench.export_case import case_export
from bench.names_case import case_names
from bench.report import render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="the 10,000-task version")
    args = parser.parse_args(argv)
    settings = Settings.from_env(quick=args.quick)
    for needed in (PRODUCT_BIN / "zvm-etl", DLT_BIN / "python"):
        if not needed.exists():
            print(f"{needed} is missing: run `make bench` (or `make install`) first")
            return 2
    started = datetime.now(UTC)
    began = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - began:7.1f}s] {message}", flush=True)

    bench = Bench(settings, log=log)
    command = "make bench-quick" if settings.quick else "make bench"
    status = 0
    steps = [
        ("first", bench.case_first),
        ("startup", bench.case_startup),
        ("profile", lambda: profile_first_pass(bench)),
        ("incremental", lambda: bench.case_incremental([settings.tasks])),
        ("many", bench.case_many),
        ("names", lambda: case_names(bench)),
        ("scale", bench.case_scale),
        ("export", lambda: case_export(bench)),
        ("incremental", lambda: bench.case_incremental([settings.large])),
        ("analyst", lambda: case_analyst(bench)),
    ]
    try:
        for name, step in steps:
            if name not in settings.cases:
                continue
            try:
                step()
            except Exception as exc:
                status = 1
                bench.failures.append(f"{name}: {type(exc).__name__}: {exc}")
                log(f"{name} FAILED:\n{traceback.format_exc()}")
            # The report so far, after every case: a long run that dies keeps what it did.
            settings.output.write_text(render(bench, started=started, command=command))
    finally:
        bench.close()
    report = render(bench, started=started, command=command)
    settings.output.write_text(report)
    print()
    print(report)
    log(f"done; written to {settings.output}")
    return status


if __name__ == "__main__":
    sys.exit(main())
