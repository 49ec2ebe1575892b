"""What the warehouse knows about each ZVM's extraction: last run, last success, cursors, lag.

:func:`fetch_status` reads it (one row per ZVM, configured or already in the warehouse);
:func:`render_status` prints it as a table for people. ``zvm-etl status --json`` prints
the same rows as JSON for scripts.

``lag_seconds`` is the time since the last successful pass finished (how stale the
warehouse is); ``cursor_age_seconds`` is the time since the newest task start the
warehouse holds (it includes quiet periods on the ZVM and the ZVM's clock offset).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select

from etl.config import Config
from etl.warehouse import db, schema
from etl.warehouse.engine import connect

__all__ = ["fetch_status", "render_status"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _zvm_status(engine: Engine, name: str, url: str | None, now: datetime) -> dict[str, Any]:
    runs, tasks, cursors = schema.etl_runs, schema.tasks, schema.sync_cursors
    with connect(engine) as conn:
        last = conn.execute(
            select(runs).where(runs.c.zvm == name).order_by(runs.c.run_id.desc()).limit(1)
        ).first()
        success = conn.execute(
            select(runs.c.finished_at)
            .where(runs.c.zvm == name, runs.c.status == "succeeded")
            .order_by(runs.c.run_id.desc())
            .limit(1)
        ).scalar_one_or_none()
        values = {
            cursor: value
            for cursor, value in conn.execute(
                select(cursors.c.cursor, cursors.c.value).where(cursors.c.zvm == name)
            )
        }
        held = conn.execute(
            select(func.count()).select_from(tasks).where(tasks.c.zvm == name)
        ).scalar_one()
        still_open = conn.execute(
            select(func.count())
            .select_from(tasks)
            .where(tasks.c.zvm == name, tasks.c.state.not_in(sorted(schema.FINAL_STATES)))
        ).scalar_one()
    started_cursor = values.get("started")
    return {
        "zvm": name,
        "url": url,
        "last_run_at": _iso(last.started_at) if last else None,
        "last_run_trigger": last.trigger if last else None,
        "last_run_status": last.status if last else None,
        "last_error": last.error if last is not None and last.status == "failed" else None,
        "last_success_at": _iso(success),
        "cursor_started": _iso(started_cursor),
        "cursor_completed": _iso(values.get("completed")),
        "tasks": int(held),
        "open_tasks": int(still_open),
        "lag_seconds": round((now - success).total_seconds()) if success else None,
        "cursor_age_seconds": (
            round((now - started_cursor).total_seconds()) if started_cursor else None
        ),
    }


def fetch_status(config: Config, *, engine: Engine | None = None) -> list[dict[str, Any]]:
    """One row per ZVM: the configured ones, then any others the warehouse holds."""
    own = engine is None
    engine = engine or db.make_engine(config.warehouse.url, sqlite_begin="DEFERRED")
    try:
        db.check_schema(engine)
        with connect(engine) as conn:
            known = {
                name: url
                for name, url in conn.execute(select(schema.zvms.c.name, schema.zvms.c.url))
            }
        names = {zvm.name: zvm.url for zvm in config.zvms}
        names.update({name: url for name, url in known.items() if name not in names})
        now = datetime.now(UTC)
        return [_zvm_status(engine, name, url, now) for name, url in names.items()]
    finally:
        if own:
            engine.dispose()


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds}s"


def _when(value: str | None) -> str:
    return value.replace("T", " ").replace("+00:00", " UTC") if value else "never"


def render_status(rows: list[dict[str, Any]], *, console: Console | None = None) -> None:
    """Print one block per ZVM: last run, last success and lag, cursors, tasks."""
    out = console or Console(highlight=False)
    for row in rows:
        status = row["last_run_status"] or "never run"
        style = {"succeeded": "green", "failed": "red", "running": "yellow"}.get(status, "dim")
        out.print(f"[bold]{row['zvm']}[/bold]  {row['url'] or '(no longer configured)'}")
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim", no_wrap=True)
        table.add_column()
        run = f"{_when(row['last_run_at'])}  {row['last_run_trigger'] or ''}".rstrip()
        table.add_row("last run", f"{run}  [{style}]{status}[/{style}]")
        table.add_row(
            "last success", f"{_when(row['last_success_at'])}  (lag {_age(row['lag_seconds'])})"
        )
        table.add_row(
            "cursors",
            f"started {_when(row['cursor_started'])}, completed {_when(row['cursor_completed'])}",
        )
        table.add_row("tasks", f"{row['tasks']} held, {row['open_tasks']} open")
        if row["last_error"]:
            table.add_row("last error", f"[red]{row['last_error']}[/red]")
        out.print(table, "")
