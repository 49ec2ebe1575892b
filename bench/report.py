"""The benchmark's report: one markdown document, printed and written to ``results.md``.

Every figure in it comes from the run that wrote it: the results table (median wall time,
tasks/s, peak RSS, min–max spread, in-process time), the ratios and the issue's goals with
met / not met, the per-window times of the large first pass, the profiles, the machine,
the versions, and the commands that reproduce it.
"""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.analyst_case import (
    ANALYST_LIMIT,
    HUGE_LIMIT,
    LOOK_BACK_DAYS,
    REPORT_RSS_LIMIT,
    REPORT_TIME_LIMIT,
)
from bench.cases import DB_NAMES, INCREMENTAL_RUNS, Bench, Result
from bench.env import ROOT, tool_versions
from bench.export_case import EXPORT_RSS_LIMIT
from bench.floor import SHAPES, FloorRow
from bench.names_case import NAMES_HOSTS, NAMES_LIMIT, NAMES_VPGS, names_cost
from bench.profiles import SpySummary, Statement

__all__ = ["machine", "render"]

WINDOW_GROWTH_LIMIT = 1.25
"""Time per task of the last third of the windows over the first third: "does not grow"."""
FINDINGS = ROOT / "bench" / "findings.md"
"""The written analysis of the goals a run did not meet (what stands in the way, what was
tried), kept by hand and placed after the goals table of a full run's report."""
MANY_LIMIT = 25.0
"""50 ZVMs in one process against one ZVM: "well under 50x", read as at most half of it."""
DLT_FACTOR = 2.5
"""A first pass: at least this many times dlt's throughput, into each database."""
HAND_FACTOR = 1.5
"""A first pass: at most this many times the hand-written limit's time (the same tables)."""
RSS_LIMIT = 250.0
"""Peak RSS of any zvm-etl run, the first passes included, in MB."""
INCREMENTAL_FACTOR = 1.3
"""New tasks into the large warehouse against the same into the small one (medians)."""


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    text = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in text)) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in text:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine(pg: str) -> dict[str, str]:
    """CPU, cores, memory, OS, load and the PostgreSQL server's version and settings."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    memory = next(
        (
            line.split()[1]
            for line in _read("/proc/meminfo").splitlines()
            if line.startswith("MemTotal")
        ),
        "0",
    )
    pretty = next(
        (
            line.split("=", 1)[1].strip('"')
            for line in _read("/etc/os-release").splitlines()
            if line.startswith("PRETTY_NAME=")
        ),
        platform.system(),
    )
    info = {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{int(memory) / 1024 / 1024:.1f} GiB",
        "OS": f"{pretty}, Linux {platform.release()}",
        "load average (1, 5, 15 min) at the end": ", ".join(f"{v:.2f}" for v in os.getloadavg()),
    }
    try:
        import psycopg

        with psycopg.connect(f"{pg}/postgres") as conn:
            version = conn.execute("SHOW server_version").fetchone()
            info["PostgreSQL"] = str(version[0]) if version else "?"
            settings = []
            for name in ("shared_buffers", "fsync", "synchronous_commit", "work_mem"):
                row = conn.execute(f"SHOW {name}").fetchone()
                settings.append(f"{name}={row[0] if row else '?'}")
            info["PostgreSQL settings"] = ", ".join(settings)
    except Exception as exc:  # the report still says what it could not read
        info["PostgreSQL"] = f"unreachable ({type(exc).__name__})"
    return info


def _git() -> str:
    def out(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    dirty = " (with uncommitted changes)" if out("status", "--porcelain", "--", "etl") else ""
    branch = out("rev-parse", "--abbrev-ref", "HEAD")
    return f"{branch} at {out('rev-parse', '--short', 'HEAD')}{dirty}"


def _fmt(value: float | None, unit: str = "s", digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}{unit}"


def _results_table(results: Sequence[Result]) -> str:
    rows = []
    for r in results:
        low, high = r.spread
        rows.append(
            [
                r.section,
                r.label,
                f"{r.tasks:,}" if r.tasks else "—",
                len(r.samples),
                _fmt(r.median),
                f"{r.rate:,.0f}" if r.rate else "—",
                f"{r.rss:.0f} MB",
                f"{low:.2f}–{high:.2f}s",
                _fmt(r.in_process_median, "s", 3),
            ]
        )
    headers = [
        "case",
        "what",
        "tasks",
        "runs",
        "median wall",
        "tasks/s",
        "peak RSS",
        "min–max",
        "in-process",
    ]
    return _table(headers, rows)


def window_growth(windows: list[dict[str, Any]]) -> float | None:
    """Seconds per task of the last third of the full windows over the first third."""
    if len(windows) < 6:
        return None
    typical = statistics.median(w["tasks"] for w in windows)
    full = [w for w in windows if w["tasks"] >= 0.8 * typical][1:]
    if len(full) < 6:
        return None
    third = len(full) // 3
    per_task = [float(w["seconds"]) / float(w["tasks"]) for w in full]
    return statistics.median(per_task[-third:]) / statistics.median(per_task[:third])


class _Goals:
    def __init__(self) -> None:
        self.rows: list[list[str]] = []

    def add(self, goal: str, measured: str, met: bool | None, *, verdict: str = "") -> None:
        if not verdict:
            verdict = "not measured" if met is None else ("met" if met else "NOT met")
        self.rows.append([goal, measured, verdict])


def _goals(bench: Bench) -> tuple[str, str]:
    r = bench.results
    s = bench.settings
    ratios: list[list[str]] = []
    goals = _Goals()
    for db, name in (("postgres", "PostgreSQL"), ("sqlite", "SQLite")):
        etl, dlt, hand = (r.get(f"first/{tool}/{db}") for tool in ("zvm-etl", "dlt", "hand"))
        faster = dlt.median / etl.median if etl and dlt else None
        slower = etl.median / hand.median if etl and hand else None
        if faster is not None:
            ratios.append([f"zvm-etl / dlt throughput, {name}", f"{faster:.2f}x"])
        if slower is not None:
            ratios.append([f"zvm-etl / hand-written time (same tables), {name}", f"{slower:.2f}x"])
        goals.add(
            f"first pass of {s.tasks:,} tasks: at least {DLT_FACTOR:g}x dlt's throughput into "
            f"{name}",
            _fmt(faster, "x"),
            None if faster is None else faster >= DLT_FACTOR,
        )
        goals.add(
            f"first pass: within {HAND_FACTOR:g}x of the hand-written limit writing the same "
            f"tables, {name}",
            _fmt(slower, "x"),
            None if slower is None else slower <= HAND_FACTOR,
        )
        goals.add(
            f"first pass: peak RSS under {RSS_LIMIT:.0f} MB, {name}",
            f"{etl.rss:.0f} MB" if etl else "—",
            None if etl is None else etl.rss < RSS_LIMIT,
        )
    scale = next((v for k, v in r.items() if k.startswith("scale/")), None)
    small = r.get(f"first/zvm-etl/{scale.key.rsplit('/', 1)[1]}") if scale else None
    if scale and small:
        ratio = scale.median / small.median
        size = scale.tasks / small.tasks
        ratios.append(
            [f"{scale.tasks:,} / {small.tasks:,} tasks, time", f"{ratio:.1f}x (data {size:.0f}x)"]
        )
        goals.add(
            f"linear: {scale.tasks:,} tasks in at most {1.1 * size:.0f}x the {small.tasks:,} case",
            f"{ratio:.1f}x",
            ratio <= 1.1 * size,
        )
        growth = window_growth(scale.detail["windows"][-1])
        if growth is not None:
            ratios.append(["time per task, last third of windows / first third", f"{growth:.2f}x"])
        goals.add(
            f"time per window does not grow (last third / first third ≤ {WINDOW_GROWTH_LIMIT})",
            _fmt(growth, "x"),
            None if growth is None else growth <= WINDOW_GROWTH_LIMIT,
        )
    else:
        goals.add("linear: 1,000,000 tasks in at most 11x the 100,000 case", "—", None)
        goals.add("time per window does not grow", "—", None)
    etl_rss = [v for k, v in r.items() if "zvm-etl" in k or k.startswith(("incremental", "many"))]
    if etl_rss:
        worst = max(etl_rss, key=lambda v: v.rss)
        goals.add(
            f"memory: peak RSS under {RSS_LIMIT:.0f} MB at any history size (every zvm-etl run)",
            f"{worst.rss:.0f} MB ({worst.section}: {worst.label})",
            worst.rss < RSS_LIMIT,
        )
    big = max((k for k in bench.datasets if f"incremental/new/{k}" in r), default=None)
    little = min((k for k in bench.datasets if f"incremental/new/{k}" in r), default=None)
    if big is not None and little is not None:
        new_big = r[f"incremental/new/{big}"]
        new_little = r[f"incremental/new/{little}"]
        inner = new_big.in_process_median
        goals.add(
            f"{s.new_tasks:,} new tasks with {big:,} in the warehouse: under 1 s in-process",
            _fmt(inner),
            None if inner is None else inner < 1.0,
        )
        if big != little and inner and new_little.in_process_median:
            ratio = inner / new_little.in_process_median
            ratios.append(
                [f"{s.new_tasks:,} new tasks, {big:,} / {little:,} warehouse", f"{ratio:.2f}x"]
            )
            runs = min(len(new_big.in_process), len(new_little.in_process))
            goals.add(
                f"... and within {INCREMENTAL_FACTOR:g}x of the same pass into {little:,} tasks, "
                f"over {INCREMENTAL_RUNS} runs (medians)",
                f"{ratio:.2f}x ({len(new_big.in_process)} and {len(new_little.in_process)} runs)",
                None if runs < INCREMENTAL_RUNS else ratio <= INCREMENTAL_FACTOR,
            )
        idle = [r[k] for k in r if k.startswith("incremental/nochange/")]
        slowest = max(idle, key=lambda v: v.in_process_median or 0.0) if idle else None
        goals.add(
            "a pass with no change: under 0.5 s in-process",
            f"{_fmt(slowest.in_process_median)} ({slowest.label})" if slowest else "—",
            None
            if slowest is None or slowest.in_process_median is None
            else slowest.in_process_median < 0.5,
        )
    else:
        goals.add("incremental: 1,000 new tasks at 1,000,000 under 1 s", "—", None)
    one, every, two = r.get("many/one"), r.get("many/all"), r.get("many/two")
    if one and every:
        ratio = every.median / one.median
        ratios.append([f"{s.zvms} ZVMs / one ZVM, one process", f"{ratio:.1f}x"])
        goals.add(
            f"{s.zvms} ZVMs in one process well under {s.zvms}x one ZVM (≤ {MANY_LIMIT:.0f}x)",
            f"{ratio:.1f}x",
            ratio <= MANY_LIMIT,
        )
    if two:
        once = all(two.detail.get("each_once", [False]))
        more = two.detail.get("more_than_once", [])
        goals.add(
            f"two processes split {s.zvms} ZVMs, each pass run once (etl_runs)",
            "every ZVM once in every run"
            if once
            else f"ZVMs synced twice per run: {', '.join(str(m) for m in more)}",
            once,
        )
    exports = [v for k, v in r.items() if k.startswith("export/")]
    if exports:
        worst = max(exports, key=lambda v: v.rss)
        goals.add(
            f"export: a {worst.tasks:,}-row view under {EXPORT_RSS_LIMIT:.0f} MB peak RSS "
            "(CSV, JSON, Parquet)",
            f"{worst.rss:.0f} MB ({worst.label})",
            worst.rss < EXPORT_RSS_LIMIT,
        )
    for db, name in (("postgres", "PostgreSQL"), ("sqlite", "SQLite")):
        cost = names_cost(bench, db)
        if cost is not None:
            seconds, requests = cost
            goals.add(
                f"names of {NAMES_VPGS:,} VPGs and {NAMES_HOSTS:,} hosts add well under "
                f"{NAMES_LIMIT:.0f} s to a pass, {name}",
                f"{seconds:.2f}s ({requests} requests)",
                seconds < NAMES_LIMIT,
            )
    version, idle_sync = r.get("startup/version"), r.get("startup/nochange")
    if version:
        measured = f"--version {version.median:.2f}s"
        if idle_sync:
            measured += f"; no-change sync {idle_sync.median:.2f}s wall"
            if idle_sync.in_process_median is not None:
                measured += f" ({idle_sync.in_process_median:.2f}s in the pass)"
        goals.add(
            "start-up: --version and a no-change sync start fast",
            measured,
            None,
            verdict="reported (the issue gives no number)",
        )
    return _table(["ratio", "value"], ratios) if ratios else "", _table(
        ["goal", "measured", "verdict"], goals.rows
    )


def _analyst_section(bench: Bench) -> str:
    """The analyst case: per warehouse, each statement's median (of three, after a warm-up),
    its rows and the indexes its plan uses (PostgreSQL), then its goal lines."""
    parts: list[str] = []
    for entry in bench.analyst:
        tasks, kind = entry["tasks"], entry["kind"]
        limit = HUGE_LIMIT if tasks > bench.settings.analyst else ANALYST_LIMIT
        timings = entry["timings"]
        server = kind == "postgres"
        rows = [
            [
                t["kind"],
                t["name"],
                f"{t['median']:.3f}",
                f"{min(t['seconds']):.3f}-{max(t['seconds']):.3f}",
                *([_seconds(t.get("server"))] if server else []),
                f"{t['rows']:,}",
                ", ".join(t.get("indexes", [])) or "-",
            ]
            for t in timings
        ]
        slow = [t for t in timings if t["median"] >= limit]
        worst = max(timings, key=lambda t: t["median"])
        report = bench.results.get(entry["report"])
        goals = _Goals()
        if kind == "postgres":
            goals.add(
                f"every statement under {limit:g} s at {tasks:,} tasks (PostgreSQL)",
                f"slowest {worst['median']:.2f}s ({worst['name']}); {len(slow)} over",
                not slow,
            )
        else:
            goals.add(
                f"statements on {DB_NAMES[kind]} at {tasks:,} tasks",
                f"slowest {worst['median']:.2f}s ({worst['name']}); {len(slow)} over {limit:g} s",
                None,
                verdict="reported (the goal is PostgreSQL's)",
            )
        if report is not None:
            goals.add(
                f"zvm-etl report (30 days) under {REPORT_TIME_LIMIT:g} s and "
                f"{REPORT_RSS_LIMIT:g} MB",
                f"{report.median:.2f}s, {report.rss:.0f} MB",
                report.median < REPORT_TIME_LIMIT and report.rss < REPORT_RSS_LIMIT,
            )
        parts += [
            f"### {DB_NAMES[kind]}, {tasks:,} tasks ({entry['how']})",
            "",
            _table(
                [
                    "kind",
                    "name",
                    "median s",
                    "min-max s",
                    *(["server s"] if server else []),
                    "rows",
                    "indexes (plan)",
                ],
                rows,
            ),
            "",
            _table(["goal", "measured", "verdict"], goals.rows),
            "",
            *_plans(slow, kind),
        ]
    if not parts:
        return ""
    intro = (
        f"Views read with a {LOOK_BACK_DAYS}-day filter on their time column, ready queries "
        "with their defaults, Grafana panels (PostgreSQL) for a "
        f"{LOOK_BACK_DAYS}-day range, in one process per warehouse, every row fetched; "
        "median of three runs after a warm-up; on PostgreSQL, server s is the server's own "
        "execution time (`EXPLAIN ANALYZE`: the rest of the median is sending and building "
        "the rows). `python -m bench.analyst_case --url URL` prints the same for any "
        "warehouse."
    )
    return "\n".join(["## Analysts and dashboards", "", intro, "", *parts])


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _plans(slow: list[dict[str, Any]], kind: str) -> list[str]:
    """The plans of the statements over their goal, slowest first, each in a fold."""
    planned = sorted((t for t in slow if t.get("plan")), key=lambda t: -t["median"])
    if not planned:
        return []
    how = (
        "`EXPLAIN (ANALYZE, BUFFERS)`: actual times in ms, on the server only"
        if kind == "postgres"
        else "`EXPLAIN QUERY PLAN`"
    )
    parts = [f"Plans of the statements over the goal ({how}):", ""]
    for t in planned:
        parts += [
            f"<details><summary>{t['name']} ({t['median']:.2f} s, {t['rows']:,} rows)</summary>",
            "",
            "```",
            *t["plan"],
            "```",
            "",
            "</details>",
            "",
        ]
    return parts


def _windows_section(bench: Bench) -> str:
    parts = []
    for key, result in bench.results.items():
        if not result.detail.get("windows"):
            continue
        windows = result.detail["windows"][-1]
        if not windows:
            continue
        rows = [
            [
                f"{w['window']}/{w['of']}",
                f"{w['tasks']:,}",
                f"{w['seconds']:.2f}",
                f"{1000 * w['seconds'] / w['tasks']:.2f}" if w["tasks"] else "—",
            ]
            for w in windows
        ]
        growth = window_growth(windows)
        head = f"**{result.section}, {result.label}, {result.tasks:,} tasks** (last run)"
        if growth is not None:
            head += f": time per task, last third / first third of the windows = {growth:.2f}x"
        if key.startswith("scale/") or len(windows) <= 12:
            parts.append(
                head + "\n\n" + _table(["window", "tasks", "seconds", "s per 1k tasks"], rows)
            )
    return "\n\n".join(parts)


def _profile_entries(bench: Bench) -> list[dict[str, Any]]:
    """The profiled runs, first passes first."""
    keys = ["postgres", "sqlite", *sorted(k for k in bench.profiles if k.startswith("incr"))]
    return [e for k in keys if isinstance(e := bench.profiles.get(k), dict) and "spy" in e]


def _floor_section(rows: list[FloorRow]) -> str:
    """bench/floor.py's figures: the server's own cost of a first pass's rows."""
    totals = [sum(row.seconds[i] for row in rows) for i in range(len(SHAPES))]
    table = _table(
        ["table", "rows", *SHAPES],
        [
            *[[r.table, f"{r.rows:,}", *(f"{s:.2f}s" for s in r.seconds)] for r in rows],
            ["all", "", *(f"{s:.2f}s" for s in totals)],
        ],
    )
    return (
        "### PostgreSQL's floor: the server's own cost of the first pass's rows\n\n"
        "`bench/floor.py`, on the profiled PostgreSQL first pass's database: each table's "
        "rows, read out as COPY text, copied back into empty copies of the tables (one "
        "transaction, rolled back; no Python runs while the server works). The first "
        "column is the warehouse as it is (indexes and foreign keys), then without foreign "
        "keys, then bare heaps: what any program storing these rows spends in the server, "
        "and what each part of the design costs.\n\n" + table
    )


def _spy_section(entry: dict[str, Any], *, top: int = 15) -> str:
    spy: SpySummary = entry["spy"]
    total = spy.seconds or 1.0
    counts = entry.get("pass", {})
    lines = [
        f"### {entry['title']}, under py-spy",
        "",
        f"Wall {entry['wall']:.2f}s under py-spy (the pass itself: {entry['in_process']:.2f}s; "
        f"{counts.get('tasks_received', '?')} tasks received, "
        f"{counts.get('tasks_inserted', '?')} inserted, {counts.get('requests', '?')} requests); "
        f"{spy.seconds:.1f}s of samples, idle (waiting) included. "
        f"Raw stacks: `{Path(entry['raw']).relative_to(ROOT)}`.",
        "",
        "Time by function group (the first group, in this order, whose marks a sample's stack "
        "holds: a group excludes the ones above it):",
        "",
        _table(
            ["group", "seconds", "share"],
            [[group, f"{sec:.2f}", f"{100 * sec / total:.0f}%"] for group, sec in spy.groups],
        ),
        "",
        "Innermost product function of each sample (the product code that was running, "
        "or whose call into a library was):",
        "",
        _table(
            ["function", "seconds", "share"],
            [
                [f"`{fn}`", f"{sec:.2f}", f"{100 * sec / total:.0f}%"]
                for fn, sec in spy.innermost[:top]
            ],
        ),
        "",
        "Product functions, inclusive time (a caller includes its callees; the CLI and "
        "`etl/sync.py` wrappers left out):",
        "",
        _table(
            ["function", "seconds", "share"],
            [
                [f"`{fn}`", f"{sec:.2f}", f"{100 * sec / total:.0f}%"]
                for fn, sec in spy.product[:top]
            ],
        ),
        "",
        "Leaf functions, own time:",
        "",
        _table(
            ["function", "seconds", "share"],
            [
                [f"`{fn}`", f"{sec:.2f}", f"{100 * sec / total:.0f}%"]
                for fn, sec in spy.leaves[:top]
            ],
        ),
    ]
    statements: tuple[float, list[Statement]] | None = entry.get("statements")
    if statements is not None:
        total_ms, ranked = statements
        lines += [
            "",
            f"PostgreSQL, the same run's statements from the server log "
            f"(`log_min_duration_statement = 0` on that database): {total_ms / 1000:.2f}s in "
            f"{sum(s.calls for s in ranked):,} statements. By shape (parse + bind + execute; "
            "a COPY's time includes waiting for the client to send the rows):",
            "",
            _table(
                ["statement", "calls", "total", "share", "per call"],
                [
                    [
                        f"`{s.text}`",
                        f"{s.calls:,}",
                        f"{s.ms / 1000:.2f}s",
                        f"{100 * s.ms / (total_ms or 1):.0f}%",
                        f"{s.ms / max(s.calls, 1):.1f} ms",
                    ]
                    for s in ranked[:top]
                ],
            ),
        ]
    return "\n".join(lines)


def _findings(bench: Bench) -> list[str]:
    """A few sentences computed from the profiles: the biggest costs, named."""
    found = []
    for entry in _profile_entries(bench):
        db = entry["title"]
        spy: SpySummary = entry["spy"]
        total = spy.seconds or 1.0
        top = ", ".join(f"{g} {sec:.1f}s ({100 * sec / total:.0f}%)" for g, sec in spy.groups[:4])
        found.append(f"- {db}: the largest groups are {top}.")
        names = ", ".join(f"`{fn}` {sec:.2f}s" for fn, sec in spy.innermost[:8])
        found.append(f"- {db}: where the samples were, by innermost product function: {names}.")
        statements = entry.get("statements")
        if statements:
            total_ms, ranked = statements
            heavy = "; ".join(
                f"`{s.text[:70]}…` {s.ms / 1000:.2f}s in {s.calls:,} calls" for s in ranked[:3]
            )
            found.append(
                f"- {db}: the server spent {total_ms / 1000:.1f}s in statements; heaviest: {heavy}."
            )
    return found


def render(bench: Bench, *, started: datetime, command: str) -> str:
    s = bench.settings
    results = list(bench.results.values())
    ratios, goals = _goals(bench)
    title = "quick run" if s.quick else "full run"
    sections = [
        f"# zvm-task-etl benchmark ({title})",
        "",
        f"Written by `{command}` on {started:%Y-%m-%d %H:%M} UTC "
        f"(finished {datetime.now(UTC):%H:%M} UTC), product code of {_git()}. "
        "Every figure below comes from that run; run it again to replace them.",
        "",
        "Each case runs as a separate process; wall time is the whole process (start-up "
        "included), peak RSS its `ru_maxrss` (from `wait4`), tasks/s the tasks loaded over "
        "the median wall, in-process the pass's own `duration_seconds` (its JSON log line). "
        "Every run starts from a fresh database (`CREATE DATABASE`, a new SQLite file); "
        "`zvm-etl db upgrade` runs before the timing. The machine is shared (2 cores): "
        "the min–max spread says how noisy a figure is.",
        "",
        "## Results",
        "",
        _results_table(results) if results else "(no case ran)",
    ]
    if bench.failures:
        sections += ["", "**Failures:**", "", *[f"- {f}" for f in bench.failures]]
    sections += ["", "## Ratios and goals", ""]
    if ratios:
        sections += [ratios, ""]
    sections += [goals, ""]
    analysis = FINDINGS.read_text(encoding="utf-8").strip() if FINDINGS.exists() else ""
    if analysis and not s.quick:
        sections += [analysis, ""]
    analyst = _analyst_section(bench)
    if analyst:
        sections += [analyst, ""]
    windows = _windows_section(bench)
    if windows:
        sections += ["## Time per backfill window", "", windows, ""]
    incremental = [r for r in results if r.section == "incremental" and r.detail.get("passes")]
    if incremental:
        rows = []
        for r in incremental:
            for counts in r.detail["passes"]:
                rows.append(
                    [
                        r.label,
                        counts["duration_seconds"],
                        counts["tasks_received"],
                        counts["tasks_inserted"],
                        counts["tasks_unchanged"],
                        counts["requests"],
                    ]
                )
        sections += [
            "## Incremental passes, one by one",
            "",
            _table(["pass", "in-process s", "received", "inserted", "unchanged", "requests"], rows),
            "",
        ]
    two = bench.results.get("many/two")
    if two:
        rows = [
            [
                number,
                " + ".join(f"{p['succeeded']} ran, {p['skipped']} skipped" for p in split),
                "yes" if once else "NO",
                more,
                overlap,
            ]
            for number, (split, once, more, overlap) in enumerate(
                zip(
                    two.detail.get("split", []),
                    two.detail.get("each_once", []),
                    two.detail.get("more_than_once", []),
                    two.detail.get("overlapping", []),
                    strict=False,
                ),
                start=1,
            )
        ]
        sections += [
            "## Two processes on one warehouse",
            "",
            f"Two `zvm-etl sync` processes started together over the same {s.zvms} ZVMs. "
            "A ZVM synced more than once got a second pass after the first had finished "
            "(the lock only keeps passes from overlapping); overlapping passes would be a "
            "broken lock.",
            "",
            _table(
                [
                    "run",
                    "passes per process",
                    "each ZVM once",
                    "ZVMs synced more than once",
                    "of which overlapping",
                ],
                rows,
            ),
            "",
        ]
    profile_parts = []
    findings = _findings(bench)
    if findings:
        profile_parts += ["Computed from the profiles below:", "", *findings, ""]
    for entry in _profile_entries(bench):
        first = not entry["title"].startswith("incremental")
        profile_parts += [_spy_section(entry, top=15 if first else 10), ""]
    floor = bench.profiles.get("floor")
    if floor:
        profile_parts += [_floor_section(floor), ""]
    for key, label in (
        ("imports_version", "`zvm-etl --version`"),
        ("imports_sync", "a no-change `zvm-etl sync`"),
    ):
        imports = bench.profiles.get(key)
        if imports:
            profile_parts += [
                f"### Imports of {label} (`python -X importtime`, top-level packages)",
                "",
                _table(
                    ["package", "cumulative"],
                    [[name, f"{sec * 1000:.0f} ms"] for name, sec in imports],
                ),
                "",
            ]
    if profile_parts:
        sections += ["## Profiles (today's code)", "", *profile_parts]
    info = machine(s.pg)
    versions = tool_versions()
    sections += [
        "## Machine and versions",
        "",
        _table(["", ""], [[k, v] for k, v in {**info, **versions}.items()]),
        "",
        "## Reproduce",
        "",
        "From the repository root (`make install` first; `make bench` creates "
        "`bench/.venv-dlt` with dlt and py-spy):",
        "",
        "```sh",
        " ".join(f"{k}={shlex.quote(v)}" for k, v in s.variables().items())
        + (" make bench-quick" if s.quick else " make bench"),
        "```",
        "",
        "Datasets are cached in `bench/data/` (made once from `zvm_simulator`); each case's "
        "command, as run (the config files and databases were made for the run):",
        "",
        "```sh",
    ]
    shown = set()
    for r in results:
        if not r.samples or (r.section in shown and not r.key.startswith("first/")):
            continue
        shown.add(r.section)
        sections.append(f"# {r.section}: {r.label}")
        sections.append(shlex.join(_relative(r.samples[0].command)))
    sections += ["```", ""]
    config = next(
        (
            r.samples[0].info["config"]
            for r in results
            if r.samples and "config" in r.samples[0].info
        ),
        None,
    )
    if isinstance(config, Path) and config.exists():
        sections += [
            "The config file of the first zvm-etl run above (JSON, which YAML reads; "
            "`task_retention` covers the dataset, so the first pass scans all of it):",
            "",
            "```json",
            config.read_text().replace(str(ROOT) + "/", ""),
            "```",
            "",
        ]
    return "\n".join(sections)


def _relative(command: list[str]) -> list[str]:
    root = str(ROOT) + "/"
    return [part.replace(root, "") for part in command]
