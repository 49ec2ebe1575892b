"""What the warehouse knows about each ZVM's extraction: last run, last success, cursors, lag.

:func:`read_status` reads it: one typed :class:`ZvmStatus` row per ZVM, configured or
already in the warehouse; :func:`render_status` prints them as a table for people, and
``zvm-etl status --json`` as JSON for scripts. ``names_refreshed_at`` and ``names_error``
say when the ZVM's names (VPGs, sites, hosts) were last read and which listings failed;
``recovery_report_read_at`` and ``recovery_report_error`` the same of its Recovery Report
(``recovery_operations`` held, ``recovery_cursor`` the start it has been read up to).

``last_verification_*`` describe the last ``zvm-etl verify`` of the ZVM (its status:
complete, incomplete or failed), and ``proven_complete_at`` when a verification last found
its history complete, up to ``proven_complete_until`` (the instant it compared up to).

``lag_seconds`` is the time since the last successful pass finished (how stale the
warehouse is); ``cursor_age_seconds`` is the time since the newest task start the
warehouse holds (it includes quiet periods on the ZVM and the ZVM's clock offset).

Health, for monitoring and container probes (``zvm-etl status`` exits 4 when a configured
ZVM is stale):

- ``stale``: the ZVM has no successful pass in the last ``sync.stale_after`` (default
  3 x ``sync.interval``), or none at all;
- ``retention_at_risk``: the time since its last success is more than
  ``sync.retention_warning`` (default half) of its ``task_retention`` (default 30d). The ZVM
  purges tasks older than its retention, so a gap that reaches it loses history for good;
  ``retention_warning`` says so in words (the scheduler and ``sync`` log it too).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError

from etl.config import Config, format_duration
from etl.errors import EtlError
from etl.warehouse import db, schema
from etl.warehouse.engine import connect
from etl.warehouse.load import is_open
from etl.warehouse.verifications import read_verification_status

__all__ = [
    "ZvmStatus",
    "log_retention_warnings",
    "read_status",
    "render_status",
    "warn_retention",
    "zvm_status",
]

log = logging.getLogger(__name__)


@dataclass
class ZvmStatus:
    """What the warehouse knows about one ZVM's extraction, and its health.

    Timestamps are ISO-8601 UTC strings (as ``status --json`` prints them); ``None`` means
    never. The health fields are described in the module docstring.
    """

    zvm: str
    url: str | None
    last_run_at: str | None
    last_run_trigger: str | None
    last_run_status: str | None
    last_error: str | None
    last_success_at: str | None
    cursor_started: str | None
    cursor_completed: str | None
    tasks: int
    open_tasks: int
    lag_seconds: int | None
    cursor_age_seconds: int | None
    names_refreshed_at: str | None = None
    names_error: str | None = None
    recovery_report_read_at: str | None = None
    recovery_report_error: str | None = None
    recovery_operations: int = 0
    recovery_cursor: str | None = None
    configured: bool = True
    stale_after_seconds: int = 0
    stale: bool = True
    task_retention_seconds: int | None = None
    retention_at_risk: bool = False
    retention_warning: str | None = None
    last_verification_at: str | None = None
    last_verification_status: str | None = None
    last_verification_days_differing: int | None = None
    last_verification_error: str | None = None
    proven_complete_at: str | None = None
    proven_complete_until: str | None = None

    @property
    def unhealthy(self) -> bool:
        """A configured ZVM that is stale: what makes ``zvm-etl status`` exit 4."""
        return self.configured and self.stale

    def to_dict(self) -> dict[str, Any]:
        """The row as plain data, for ``status --json``."""
        return asdict(self)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _zvm_status(engine: Engine, name: str, url: str | None, now: datetime) -> ZvmStatus:
    runs, tasks, cursors, zvms = schema.etl_runs, schema.tasks, schema.sync_cursors, schema.zvms
    with connect(engine) as conn:
        conn.execution_options(sqlite_begin="DEFERRED")  # it only reads
        names = conn.execute(
            select(
                zvms.c.names_refreshed_at,
                zvms.c.names_error,
                zvms.c.recovery_report_read_at,
                zvms.c.recovery_report_error,
            ).where(zvms.c.name == name)
        ).first()
        operations = conn.execute(
            select(func.count())
            .select_from(schema.recovery_operations)
            .where(schema.recovery_operations.c.zvm == name)
        ).scalar_one()
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
            .where(tasks.c.zvm == name, is_open(tasks.c.state))
        ).scalar_one()
        verified = read_verification_status(conn, name)
    started_cursor = values.get("started")
    checked, proven = verified.last, verified.last_complete
    return ZvmStatus(
        zvm=name,
        url=url,
        last_run_at=_iso(last.started_at) if last else None,
        last_run_trigger=last.trigger if last else None,
        last_run_status=last.status if last else None,
        last_error=last.error if last is not None and last.status == "failed" else None,
        last_success_at=_iso(success),
        cursor_started=_iso(started_cursor),
        cursor_completed=_iso(values.get("completed")),
        tasks=int(held),
        open_tasks=int(still_open),
        lag_seconds=round((now - success).total_seconds()) if success else None,
        cursor_age_seconds=(
            round((now - started_cursor).total_seconds()) if started_cursor else None
        ),
        names_refreshed_at=_iso(names.names_refreshed_at) if names else None,
        names_error=names.names_error if names else None,
        recovery_report_read_at=_iso(names.recovery_report_read_at) if names else None,
        recovery_report_error=names.recovery_report_error if names else None,
        recovery_operations=int(operations),
        recovery_cursor=_iso(values.get("recovery_report")),
        last_verification_at=_iso(checked.finished_at) if checked else None,
        last_verification_status=checked.status if checked else None,
        last_verification_days_differing=checked.days_differing if checked else None,
        last_verification_error=checked.error if checked else None,
        proven_complete_at=_iso(proven.finished_at) if proven else None,
        proven_complete_until=_iso(proven.until) if proven else None,
    )


def _assess(row: ZvmStatus, config: Config, *, stale_after: timedelta | None) -> ZvmStatus:
    """Fill in the health fields (see the module docstring) of a status row."""
    configured = next((z for z in config.zvms if z.name == row.zvm), None)
    threshold = stale_after if stale_after is not None else config.sync.stale_threshold
    lag = row.lag_seconds
    row.configured = configured is not None
    row.stale_after_seconds = round(threshold.total_seconds())
    row.stale = lag is None or lag > threshold.total_seconds()
    retention = configured.task_retention if configured is not None else None
    row.task_retention_seconds = round(retention.total_seconds()) if retention else None
    ratio = config.sync.retention_warning
    at_risk = retention is not None and lag is not None and lag > ratio * retention.total_seconds()
    row.retention_at_risk = at_risk
    row.retention_warning = (
        f"ZVM {row.zvm}: the last successful pass was {_age(lag)} ago, more than "
        f"{ratio:.0%} of its {format_duration(retention)} task retention: the ZVM purges "
        f"tasks older than {format_duration(retention)}, so history from a longer gap is lost "
        "for good; fix the sync before then"
        if at_risk and retention is not None
        else None
    )
    return row


def zvm_status(
    engine: Engine,
    config: Config,
    name: str,
    *,
    stale_after: timedelta | None = None,
    now: datetime | None = None,
) -> ZvmStatus:
    """The status row of one configured ZVM, health included (no schema check: the caller
    already made one)."""
    zvm = config.zvm(name)
    row = _zvm_status(engine, zvm.name, zvm.url, now or datetime.now(UTC))
    return _assess(row, config, stale_after=stale_after)


def log_retention_warnings(rows: list[ZvmStatus]) -> None:
    """Log a warning for every row whose ZVM's history is at risk (``retention_at_risk``)."""
    for row in rows:
        if row.retention_warning:
            log.warning(row.retention_warning, extra={"event": "retention", "zvm": row.zvm})


def warn_retention(config: Config, *, engine: Engine | None = None) -> None:
    """Log the retention warnings of the configured ZVMs (for ``sync`` after a failure);
    a warehouse that cannot be read is ignored here: the failed pass said so already."""
    try:
        rows = read_status(config, engine=engine)
    except (EtlError, DBAPIError) as exc:
        log.debug("cannot read the status for the retention check: %s", exc)
        return
    log_retention_warnings([row for row in rows if row.configured])


def read_status(
    config: Config, *, engine: Engine | None = None, stale_after: timedelta | None = None
) -> list[ZvmStatus]:
    """One row per ZVM: the configured ones, then any others the warehouse holds, each with
    the health fields; ``stale_after`` overrides ``sync.stale_after`` for ``stale``.

    Reads the warehouse only (never a ZVM, so no ZVM secret is needed); raises
    SchemaMismatch or WarehouseUnavailable when the warehouse cannot answer.
    """
    own = engine is None
    engine = engine or db.make_engine(config.warehouse.url, sqlite_begin="DEFERRED")
    try:
        db.check_schema(engine)
        with connect(engine) as conn:
            conn.execution_options(sqlite_begin="DEFERRED")  # it only reads
            known = {
                name: url
                for name, url in conn.execute(select(schema.zvms.c.name, schema.zvms.c.url))
            }
        names = {zvm.name: zvm.url for zvm in config.zvms}
        names.update({name: url for name, url in known.items() if name not in names})
        now = datetime.now(UTC)
        return [
            _assess(_zvm_status(engine, name, url, now), config, stale_after=stale_after)
            for name, url in names.items()
        ]
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


def render_status(rows: list[ZvmStatus], *, console: Console | None = None) -> None:
    """Print one block per ZVM: last run, last success and lag, cursors, tasks."""
    out = console or Console(highlight=False)
    for row in rows:
        status = row.last_run_status or "never run"
        style = {"succeeded": "green", "failed": "red", "running": "yellow"}.get(status, "dim")
        out.print(f"[bold]{row.zvm}[/bold]  {row.url or '(no longer configured)'}")
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim", no_wrap=True)
        table.add_column()
        run = f"{_when(row.last_run_at)}  {row.last_run_trigger or ''}".rstrip()
        table.add_row("last run", f"{run}  [{style}]{status}[/{style}]")
        table.add_row(
            "last success", f"{_when(row.last_success_at)}  (lag {_age(row.lag_seconds)})"
        )
        table.add_row(
            "cursors",
            f"started {_when(row.cursor_started)}, completed {_when(row.cursor_completed)}",
        )
        table.add_row("tasks", f"{row.tasks} held, {row.open_tasks} open")
        table.add_row("names", _names(row))
        table.add_row("recovery report", _recovery(row))
        table.add_row("completeness", _completeness(row))
        table.add_row("health", _health(row))
        if row.last_error:
            table.add_row("last error", f"[red]{row.last_error}[/red]")
        if row.retention_warning:
            table.add_row("WARNING", f"[red]{row.retention_warning}[/red]")
        out.print(table, "")


def _names(row: ZvmStatus) -> str:
    """When the VPG/site/host names were last read, and what failed then."""
    if row.names_refreshed_at is None:
        return "never read"
    when = f"read {_when(row.names_refreshed_at)}"
    if row.names_error:
        problems = "[yellow]with problems (the names known before stay):[/yellow]"
        return f"{when}  {problems} {row.names_error}"
    return f"{when}  [green]ok[/green]"


def _recovery(row: ZvmStatus) -> str:
    """When the Recovery Report was last read, how far, and what went wrong then."""
    if row.recovery_report_read_at is None:
        return "never read"
    held = f"{row.recovery_operations} operations held, read up to {_when(row.recovery_cursor)}"
    when = f"read {_when(row.recovery_report_read_at)}; {held}"
    if row.recovery_report_error:
        return f"{when}  [yellow]with problems:[/yellow] {row.recovery_report_error}"
    return f"{when}  [green]ok[/green]"


def _completeness(row: ZvmStatus) -> str:
    """When ``zvm-etl verify`` last proved the history complete, and its last outcome."""
    if row.last_verification_status is None:
        return "never verified (run zvm-etl verify)"
    proven = (
        f"proven complete {_when(row.proven_complete_at)} (up to "
        f"{_when(row.proven_complete_until)})"
        if row.proven_complete_at
        else "never proven complete"
    )
    status = row.last_verification_status
    if status == "complete":
        outcome = "[green]complete[/green]"
    elif status == "incomplete":
        days = row.last_verification_days_differing
        why = f"{days} day(s) differ" if days else row.last_verification_error or ""
        outcome = f"[red]INCOMPLETE[/red]: {why}"
    else:
        outcome = f"[red]FAILED[/red]: {row.last_verification_error}"
    return f"{proven}; last verification {_when(row.last_verification_at)} {outcome}"


def _health(row: ZvmStatus) -> str:
    """``ok``, or why not: stale (with the threshold), not configured any more."""
    if not row.configured:
        return "[dim]not configured (not checked)[/dim]"
    threshold = _age(row.stale_after_seconds)
    if row.stale:
        since = "ever" if row.lag_seconds is None else f"for {_age(row.lag_seconds)}"
        return f"[red]STALE[/red]: no successful pass {since} (stale after {threshold})"
    return f"[green]ok[/green] (stale after {threshold})"
