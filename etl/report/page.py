"""The report as one self-contained HTML file: styles, plotly.js and the data all inline.

The page needs no network: plotly.js (from the plotly package, the version it was built
with) is inlined once, every chart's data is in the page, and there are no fonts, images
or links to fetch. :func:`render_page` builds the text from :class:`ReportData`;
:func:`write_report` reads the warehouse and writes the file.
"""

from __future__ import annotations

import math
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from etl import __version__
from etl.report import charts
from etl.report.data import DR_TEST_DAYS, ReportData, read_report_data

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["render_page", "write_report"]

_TEMPLATE = Path(__file__).with_name("template.html")


DEFAULT_PERIOD = timedelta(days=30)
"""What the report covers when no start is given: the last 30 days."""


def write_report(
    engine: Engine, out: Path, *, since: datetime | None = None, zvm: str | None = None
) -> ReportData:
    """Read the warehouse and write the report to ``out`` (replaced whole, never half
    written); returns what it showed. ``since`` defaults to :data:`DEFAULT_PERIOD` ago."""
    start = since if since is not None else datetime.now(UTC) - DEFAULT_PERIOD
    data = read_report_data(engine, since=start, zvm=zvm)
    text = render_page(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return data


def render_page(data: ReportData) -> str:
    """The whole page for ``data``, as text."""
    from mako.template import Template
    from plotly.offline import get_plotlyjs

    template = Template(filename=str(_TEMPLATE), default_filters=["h"], strict_undefined=True)
    page: str = template.render(
        data=data,
        plotly_js=get_plotlyjs(),
        version=__version__,
        dr_days=DR_TEST_DAYS,
        summary=_summary(data),
        charts={
            "tasks_per_day": charts.render_tasks_per_day(data.daily),
            "weekly_failures": charts.render_weekly_failures(data.weekly_failures),
            "durations": charts.render_durations(data.durations),
            "dr_coverage": charts.render_dr_coverage(data.dr_tests, days=DR_TEST_DAYS),
            "initiators": charts.render_initiators(data.initiators),
        },
        tables={
            "dr_tests": _dr_rows(data.dr_tests),
            "durations": _duration_rows(data.durations),
            "health": _health_rows(data),
            "reasons": _reason_rows(data.weekly_failures),
            "slowest": _slowest_rows(data.slowest),
        },
        when=_when,
        age=_age,
    )
    return page


def _summary(data: ReportData) -> list[tuple[str, str, str]]:
    """The tiles at the top: (figure, label, tone)."""
    tasks = int(data.daily["tasks"].sum()) if not data.daily.empty else 0
    failed = int(data.daily["failures"].sum()) if not data.daily.empty else 0
    rate = f"{failed / tasks:.1%}" if tasks else "–"
    vpgs = len(data.dr_tests)
    gaps = int((data.dr_tests["tested_in_window"] == 0).sum()) if vpgs else 0
    failing = (
        int((data.health["last_run_status"] != "succeeded").sum()) if not data.health.empty else 0
    )
    return [
        (f"{tasks:,}", "tasks started", "neutral"),
        (rate, f"failed ({failed:,})", "bad" if failed else "good"),
        (
            f"{vpgs - gaps} / {vpgs}",
            f"VPGs tested in {DR_TEST_DAYS} days",
            "bad" if gaps else "good",
        ),
        (
            f"{len(data.health) - failing} / {len(data.health)}",
            "ZVMs whose last pass succeeded",
            "bad" if failing else "good",
        ),
    ]


_RTO_SOURCES = {"recovery_report": "report", "task_duration": "task"}
"""How the DR table marks where an RTO comes from: the ZVM's Recovery Report, or the test's
task duration standing in for it."""


def _dr_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    names: list[Any] = (
        list(charts.display_names(frame["vpg_name"], frame["vpg_identifier"])) if len(frame) else []
    )
    rows = []
    for (_, row), name in zip(frame.iterrows(), names, strict=True):
        rows.append(
            {
                "name": name,
                "identifier": row["vpg_identifier"],
                "named": _present(row["vpg_name"]),
                "zvm": _text(row["zvm"]),
                "sites": " → ".join(
                    _text(row[column]) for column in ("protected_site_name", "recovery_site_name")
                ),
                "priority": _text(row["priority_name"]),
                "gap": not bool(row["tested_in_window"]),
                "last": _when(row["last_success_started_at"]),
                "days": _number(row["days_since_last_success"], "{:.0f}"),
                "duration": _age(row["last_success_duration_seconds"]),
                "rto": _age(row["last_success_rto_seconds"]),
                "rto_source": _RTO_SOURCES.get(_text(row["last_success_rto_source"]), ""),
                "by": _text(row["last_success_initiated_by"]),
                "tests": int(row["tests_in_window"]),
                "failed": int(row["failed_tests_in_window"]),
            }
        )
    return rows


def _duration_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "type": row["type"],
            "tasks": int(row["tasks"]),
            "median": _age(row["median_seconds"]),
            "p90": _age(row["p90_seconds"]),
            "p95": _age(row["p95_seconds"]),
            "max": _age(row["max_seconds"]),
        }
        for _, row in frame.iterrows()
    ]


def _health_rows(data: ReportData) -> list[dict[str, Any]]:
    daily = data.health_daily
    verified = {row["zvm"]: row for _, row in data.completeness.iterrows()}
    rows = []
    for _, row in data.health.iterrows():
        mine = daily[daily["zvm"] == row["zvm"]] if not daily.empty else daily
        checked = verified.get(row["zvm"])
        rows.append(
            {
                "zvm": row["zvm"],
                "status": _text(row["last_run_status"]),
                "ok": row["last_run_status"] == "succeeded",
                "last_success": _when(row["last_success_at"]),
                "since_success": _age(row["seconds_since_last_success"]),
                "lag": _age(row["lag_seconds"]),
                "open": _number(row["open_tasks"], "{:.0f}"),
                "runs": int(mine["runs"].sum()) if len(mine) else 0,
                "failed_runs": int(mine["failed_runs"].sum()) if len(mine) else 0,
                "rejected": int(mine["new_rejected_records"].sum()) if len(mine) else 0,
                "max_lag": _age(mine["max_lag_seconds"].max()) if len(mine) else "–",
                "error": _text(row["last_run_error"]),
                "proven": _when(checked["proven_complete_at"]) if checked is not None else "–",
                "verified": _text(checked["last_status"]) if checked is not None else "never",
                "verified_ok": checked is not None and checked["last_status"] == "complete",
            }
        )
    return rows


def _reason_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The commonest failure reasons over the period, per task type (from each week's top
    three; counts are the weeks' counts added up)."""
    if frame.empty:
        return []
    found: dict[tuple[str, str], int] = {}
    for _, row in frame.iterrows():
        for rank in (1, 2, 3):
            reason = row[f"reason_{rank}"]
            if _present(reason):
                key = (str(row["type"]), str(reason))
                found[key] = found.get(key, 0) + int(row[f"reason_{rank}_failures"])
    ranked = sorted(found.items(), key=lambda item: (-item[1], item[0]))
    return [{"type": t, "reason": r, "failures": n} for (t, r), n in ranked[:10]]


def _slowest_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "type": row["type"],
            "state": row["state_name"],
            "zvm": row["zvm"],
            "started": _when(row["started_at"]),
            "duration": _age(row["duration_seconds"]),
            "median": _age(row["type_median_seconds"]),
            "by": _text(row["initiated_by"]),
            "vpgs": _text(row["vpg_names"]),
        }
        for _, row in frame.iterrows()
    ]


def _present(value: Any) -> bool:
    if value is None:
        return False
    try:
        if isinstance(value, float) and math.isnan(value):
            return False
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return False
    except TypeError:
        return False
    return str(value) != ""


def _text(value: Any) -> str:
    return str(value) if _present(value) else "–"


def _number(value: Any, spec: str) -> str:
    return spec.format(float(value)) if _present(value) else "–"


def _when(value: Any) -> str:
    """A timestamp as ``2025-03-01 14:05 UTC``; a dash when there is none."""
    if not _present(value):
        return "–"
    stamp: str = value.strftime("%Y-%m-%d %H:%M UTC")
    return stamp


def _age(seconds: Any) -> str:
    """Seconds as people read them: ``45 s``, ``12 min``, ``3.5 h``, ``12 days``."""
    if not _present(seconds):
        return "–"
    value = float(seconds)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value < 90:
        return f"{sign}{value:.0f} s" if value >= 10 else f"{sign}{value:.1f} s"
    if value < 90 * 60:
        return f"{sign}{value / 60:.0f} min"
    if value < 36 * 3600:
        return f"{sign}{value / 3600:.1f} h"
    return f"{sign}{value / 86400:.0f} days"
