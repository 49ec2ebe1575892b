"""The ``analyst`` case: what analysts and dashboards wait for on a large warehouse.

Warehouses: PostgreSQL and SQLite of ``analyst`` tasks (1,000,000 by default: about five
weeks at 1,200 tasks an hour), loaded by ``zvm-etl sync`` from the fake ZVM (the PostgreSQL
one then ``VACUUM ANALYZE``d, as autovacuum would soon after the load: :func:`settle`;
SQLite has no such daemon, so its warehouse is timed as the pass left it), and a
PostgreSQL one of ``analyst_huge`` tasks (10,000,000; 0 skips it). The huge one is the
PostgreSQL warehouse of ``analyst`` tasks, once timed, grown in SQL (:func:`replicate`):
``analyst_huge / analyst - 1`` copies of its tasks, each shifted five weeks further back
(about a year of history at 10,000,000), with new identifiers, their bridge rows, status
history and recovery operations (and steps), then ``VACUUM ANALYZE``. The entities (VPGs, hosts,
sites) are shared by every copy, as they would be over a year of one ZVM.

Then, in one process per warehouse (``python -m bench.analyst_case --url URL``, a
SQLAlchemy connection made by the product's ``make_engine``, statements made by the
product's own functions), each statement is run once to warm up and three times timed, every
row fetched (``stream_results``): every view with a 30-day filter on its time column
(``started_at``; ``day`` for ``v_task_daily``; none for ``v_etl_health``) through
:func:`etl.export.resolve`, every ready query with its defaults (the same), and on
PostgreSQL every Grafana panel's query (:func:`etl.dashboards.panels.panel_sql`, Grafana's
variables and macros expanded as its data source does for a 30-day range, every ZVM and VPG
chosen). Each statement's plan is read (PostgreSQL: ``EXPLAIN (ANALYZE, BUFFERS)``, which
also gives the server's own execution time; SQLite: ``EXPLAIN QUERY PLAN``): the report
lists the indexes each one uses and shows the whole plan of each statement over its goal.
Last, ``zvm-etl report`` (its 30-day default) runs as a process, once to warm up and three
times measured (wall time, peak RSS).

Goals: each statement under 1 s at 1,000,000 tasks and under 2 s at 10,000,000 on
PostgreSQL; the report under 10 s and 300 MB.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.cases import DB_NAMES, Bench, Result
from bench.env import PRODUCT_BIN, ROOT, Db, FakeZvmProcess
from bench.measure import run

__all__ = [
    "ANALYST_LIMIT",
    "HUGE_LIMIT",
    "REPORT_RSS_LIMIT",
    "REPORT_TIME_LIMIT",
    "case_analyst",
    "replicate",
    "settle",
    "time_statements",
]

ANALYST_LIMIT = 1.0
"""Seconds: the most a statement may take at 1,000,000 tasks (PostgreSQL)."""
HUGE_LIMIT = 2.0
"""Seconds: the most a statement may take at 10,000,000 tasks (PostgreSQL)."""
REPORT_TIME_LIMIT = 10.0
REPORT_RSS_LIMIT = 300.0
LOOK_BACK_DAYS = 30
COPY_SHIFT_DAYS = 35
"""Each copy of the huge warehouse starts this many days before the one after it."""
REPEATS = 3
_INDEX = re.compile(
    r"(?:Index|Index Only|Bitmap Index) Scan (?:Backward )?(?:using|on) (\w+)"
    r"|USING (?:COVERING |INTEGER PRIMARY KEY )?INDEX (\w+)"
)
"""An index a plan scans: PostgreSQL's plan nodes, or SQLite's ``USING ... INDEX name``."""
_EXECUTION = re.compile(r"Execution Time: ([0-9.]+) ms")


# ---- the case ------------------------------------------------------------------------------


def case_analyst(bench: Bench) -> None:
    """Load the warehouses, time each (see the module docstring), record the results in
    ``bench.analyst`` (one entry per warehouse) and ``zvm-etl report``'s runs as results."""
    s = bench.settings
    if not s.analyst:
        return
    dataset = bench.dataset(s.analyst)
    kinds = [kind for kind in ("postgres", "sqlite") if kind in s.dbs]
    for kind in kinds:
        bench.log(f"analyst: loading {s.analyst:,} tasks into {DB_NAMES[kind]} (not timed)")
        with FakeZvmProcess({"": dataset.folder}) as server:
            _, _, db = bench.etl_first_pass(kind, dataset, server.url(), label="analyst", keep=True)
        try:
            how = "loaded by zvm-etl sync"
            if kind == "postgres":
                settle(db)
                how += ", then VACUUM ANALYZE"
            _time_warehouse(bench, db, s.analyst, how)
            if kind == "postgres" and s.analyst_huge > s.analyst:
                copies = s.analyst_huge // s.analyst - 1
                bench.log(f"analyst: growing it to {s.analyst * (copies + 1):,} tasks in SQL")
                began = time.perf_counter()
                replicate(db, copies)
                made = time.perf_counter() - began
                tasks = int(bench.dbs.scalar(db, "SELECT count(*) FROM tasks"))
                how = (
                    f"the {s.analyst:,}-task warehouse and {copies} copies made in SQL in "
                    f"{made:.0f}s (each five weeks earlier), then VACUUM ANALYZE"
                )
                _time_warehouse(bench, db, tasks, how)
        finally:
            bench.dbs.drop(db)


def _time_warehouse(bench: Bench, db: Db, tasks: int, how: str) -> None:
    s = bench.settings
    limit = HUGE_LIMIT if tasks > s.analyst else ANALYST_LIMIT
    bench.log(f"analyst: timing {DB_NAMES[db.kind]}, {tasks:,} tasks")
    out = bench.work / f"{db.name}-analyst.json"
    command = [
        sys.executable,
        "-m",
        "bench.analyst_case",
        "--url",
        db.url,
        "--repeats",
        str(REPEATS),
        "--out",
        str(out),
        "--plan-over",
        str(limit),
    ]
    run(command, cwd=ROOT, timeout=s.timeout).check("the analyst timings")
    timings = json.loads(out.read_text())
    for entry in timings:
        flag = "" if entry["median"] < limit else "  <-- slow"
        bench.log(f"  {entry['kind']:6} {entry['name']}: {entry['median']:.3f}s{flag}")
    config = bench.write_config(
        db, [("bench", "http://127.0.0.1:9")], 30, f"{db.name}-{tasks}-report"
    )
    page = bench.work / f"{db.name}-report.html"
    result = Result(
        key=f"analyst/report/{db.kind}/{tasks}",
        section="analyst",
        label=f"zvm-etl report (30 days), {DB_NAMES[db.kind]}, {tasks:,} tasks",
        tasks=tasks,
    )
    report = [str(PRODUCT_BIN / "zvm-etl"), "--config", str(config), "report", "--out", str(page)]
    for number in range(REPEATS + 1):
        sample = run(report, cwd=bench.work, timeout=s.timeout)
        sample.check("zvm-etl report")
        if number:  # the first run warms the caches up
            result.samples.append(sample)
    bench.add(result)
    bench.analyst.append(
        {
            "kind": db.kind,
            "tasks": tasks,
            "how": how,
            "timings": timings,
            "report": result.key,
        }
    )


def settle(db: Db) -> None:
    """``VACUUM ANALYZE`` PostgreSQL warehouse ``db``: what autovacuum does within a minute
    or so of a large load (PostgreSQL 13 and later vacuum after inserts too), done at once so
    that the timings are of the warehouse in its steady state, not of a race with it."""
    import psycopg

    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# ---- the huge warehouse ----------------------------------------------------------------------


def replicate(db: Db, copies: int, *, shift_days: int = COPY_SHIFT_DAYS) -> None:
    """Add ``copies`` copies of every task of PostgreSQL warehouse ``db`` (with its bridge
    rows, status changes, recovery operations and their steps), copy ``k`` with identifiers
    prefixed ``x<k>-`` (no hexadecimal identifier starts with x) and every timestamp
    ``k * shift_days`` days earlier; then the summaries recounted over every day, and
    VACUUM ANALYZE."""
    import psycopg

    from etl.warehouse import schema

    with psycopg.connect(db.dsn, autocommit=True) as conn:
        for k in range(1, copies + 1):
            shift = f"interval '{k * shift_days} days'"
            prefix = f"'x{k}-'"
            for table, ids in _COPIED:
                columns = list(schema.metadata.tables[table].columns)
                names = ", ".join(c.name for c in columns)
                values = ", ".join(
                    _copied_value(c.name, type(c.type).__name__, ids, prefix, shift)
                    for c in columns
                )
                conn.execute(
                    f"INSERT INTO {table} ({names}) SELECT {values} FROM {table} "
                    f"WHERE {ids[0]} NOT LIKE 'x%'"
                )
    _recount_summaries(db)
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def _recount_summaries(db: Db) -> None:
    """Count every day of the grown warehouse into its summaries (``task_daily_totals``,
    ``vpg_daily_tests``) with the pass's own code, as passes that had loaded the copies
    would have."""
    import sqlalchemy as sa

    from etl.warehouse import db as warehouse_db
    from etl.warehouse import schema
    from etl.warehouse.daily import save_daily_totals

    engine = warehouse_db.make_engine(db.url)
    try:
        with engine.begin() as conn:
            t = schema.tasks
            day = sa.func.date_trunc("day", sa.func.timezone("UTC", t.c.started_at))
            days: dict[str, set[Any]] = {}
            for zvm, midnight in conn.execute(sa.select(t.c.zvm, day).group_by(t.c.zvm, day)):
                days.setdefault(zvm, set()).add(midnight.date())
            save_daily_totals(conn, days)
    finally:
        engine.dispose()


_COPIED = (
    ("tasks", ("task_identifier", "task_id")),
    ("task_vpgs", ("task_identifier",)),
    ("task_hosts", ("task_identifier",)),
    ("task_sites", ("task_identifier",)),
    ("task_flr_sessions", ("task_identifier",)),
    ("task_status_changes", ("task_identifier",)),
    ("recovery_operations", ("operation_identifier", "task_identifier")),
    ("recovery_operation_steps", ("operation_identifier",)),
)
"""Each table copied, and its identifier columns (the first one tells originals apart)."""


def _copied_value(name: str, type_name: str, ids: tuple[str, ...], prefix: str, shift: str) -> str:
    if name in ids:
        return f"{prefix} || {name}"
    if type_name == "UtcDateTime":
        return f"{name} - {shift}"
    return name


# ---- the timings (run in a process of its own) ---------------------------------------------


def _statements(connection: Any) -> Iterator[tuple[str, str, Any, dict[str, Any]]]:
    """(kind, name, statement, parameters) of everything timed on this warehouse."""
    import sqlalchemy as sa

    from etl.export import resolve
    from etl.warehouse.sqlfiles import query_names, view_names

    dialect = connection.dialect.name
    since = datetime.now(UTC) - timedelta(days=LOOK_BACK_DAYS)
    for name in sorted(view_names()):
        with connection.execute(sa.text(f"SELECT * FROM {name} WHERE 1 = 0")) as probe:
            columns = list(probe.keys())
        if "started_at" in columns:
            source = resolve(connection, name, since=since)
            yield "view", name, source.statement, source.params
        elif "day" in columns:
            statement = sa.text(f"SELECT * FROM {name} WHERE day >= :day")
            yield "view", name, statement, {"day": since.date().isoformat()}
        else:
            source = resolve(connection, name)
            yield "view", name, source.statement, source.params
    for name in query_names():
        source = resolve(connection, name)
        yield "query", name, source.statement, source.params
    if dialect == "postgresql":
        yield from _panels(connection, since)


def _panels(connection: Any, since: datetime) -> Iterator[tuple[str, str, Any, dict[str, Any]]]:
    import sqlalchemy as sa

    from etl.dashboards.panels import DASHBOARDS, VARIABLES, panel_sql, variable_sql

    sys.path.insert(0, str(ROOT))
    from tests.grafana_macros import expand

    dialect = "postgresql"
    end = datetime.now(UTC)
    values: dict[str, str | list[str]] = {"days": str(LOOK_BACK_DAYS)}
    for name in ("zvm", "vpg"):  # every ZVM, then every VPG of them: "All"
        sql = expand(
            variable_sql(VARIABLES[name], dialect=dialect),
            dialect=dialect,
            start=since,
            end=end,
            variables=values,
        )
        values[name] = [str(row[-1]) for row in connection.execute(sa.text(sql))]
    for dashboard in DASHBOARDS:
        for panel in dashboard.panels:
            sql = expand(
                panel_sql(panel, dialect=dialect),
                dialect=dialect,
                start=since,
                end=end,
                variables=values,
            )
            yield "panel", f"{dashboard.slug}: {panel.title}", sa.text(sql), {}


def _fetch(connection: Any, statement: Any, params: dict[str, Any]) -> int:
    result = connection.execute(
        statement, params, execution_options={"stream_results": True, "max_row_buffer": 10_000}
    )
    rows = 0
    for part in result.partitions(10_000):
        rows += len(part)
    return rows


def _plan(
    connection: Any, statement: Any, params: dict[str, Any]
) -> tuple[list[str], float | None]:
    """The plan of ``statement`` as its database gives it, and (PostgreSQL) the server's own
    execution time in seconds: ``EXPLAIN (ANALYZE, BUFFERS)`` runs it once more, without
    sending its rows; SQLite's ``EXPLAIN QUERY PLAN`` only plans it."""
    compiled = statement.compile(dialect=connection.dialect)
    bound = {**compiled.params, **params}
    if connection.dialect.name == "postgresql":
        plan = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}", bound)
        lines = [str(row[0]) for row in plan]
        found = _EXECUTION.search("\n".join(lines))
        return lines, float(found.group(1)) / 1000 if found else None
    plan = connection.exec_driver_sql(
        f"EXPLAIN QUERY PLAN {compiled}", _positional(compiled, bound)
    )
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _unused, detail in plan:  # depth first, each node after its parent
        depth[node] = depth.get(parent, -1) + 1
        lines.append(f"{'  ' * depth[node]}{detail}")
    return lines, None


def _positional(compiled: Any, bound: dict[str, Any]) -> Any:
    """SQLite's driver takes positional parameters in the order the statement names them."""
    names = compiled.positiontup
    return tuple(bound[name] for name in names) if names is not None else bound


def _plan_indexes(lines: list[str]) -> list[str]:
    """The indexes a plan scans, in plan order (PostgreSQL's or SQLite's wording)."""
    found = (m.group(1) or m.group(2) for line in lines for m in _INDEX.finditer(line))
    return list(dict.fromkeys(name for name in found if name))


def time_statements(
    url: str, repeats: int = REPEATS, *, plan_over: float = ANALYST_LIMIT
) -> list[dict[str, Any]]:
    """Every statement of :func:`_statements` on the warehouse at ``url``: a warm-up run,
    then ``repeats`` timed runs (seconds, every row fetched), its row count, the indexes its
    plan uses, on PostgreSQL the server's own execution time (``server``: the rest of the
    median is sending and building the rows), and the whole plan of each statement whose
    median is at least ``plan_over`` seconds."""
    from etl.warehouse.engine import make_engine

    engine = make_engine(url)
    timings: list[dict[str, Any]] = []
    try:
        with engine.connect() as connection:
            for kind, name, statement, params in list(_statements(connection)):
                rows = _fetch(connection, statement, params)
                seconds = []
                for _ in range(repeats):
                    began = time.perf_counter()
                    _fetch(connection, statement, params)
                    seconds.append(time.perf_counter() - began)
                median = statistics.median(seconds)
                lines, server = _plan(connection, statement, params)
                entry: dict[str, Any] = {
                    "kind": kind,
                    "name": name,
                    "rows": rows,
                    "seconds": seconds,
                    "median": median,
                    "indexes": _plan_indexes(lines),
                    "server": server,
                }
                if median >= plan_over:
                    entry["plan"] = lines
                timings.append(entry)
                connection.rollback()
    finally:
        engine.dispose()
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analyst_case", description=__doc__)
    parser.add_argument("--url", required=True, help="the warehouse (a SQLAlchemy URL)")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--out", type=Path, help="write the timings here as JSON")
    parser.add_argument(
        "--plan-over",
        type=float,
        default=ANALYST_LIMIT,
        help="keep the whole plan of each statement at least this slow (seconds)",
    )
    args = parser.parse_args(argv)
    timings = time_statements(args.url, args.repeats, plan_over=args.plan_over)
    if args.out is not None:
        args.out.write_text(json.dumps(timings, indent=1))
    for entry in timings:
        used = ", ".join(entry["indexes"])
        server = "" if entry["server"] is None else f" (server {entry['server']:.3f}s)"
        print(
            f"{entry['median']:8.3f}s{server} {entry['rows']:>9} rows  {entry['kind']:6} "
            f"{entry['name']}  [{used}]"
        )
        for line in entry.get("plan", []):
            print(f"            {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
