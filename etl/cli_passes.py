"""The ``zvm-etl`` commands that run passes or report on them: ``sync``, ``schedule``,
``backfill``, ``status`` and ``verify``, each a few lines over :mod:`etl.sync`,
:mod:`etl.scheduler`, :mod:`etl.status` and :mod:`etl.verify` (:mod:`etl.cli` holds the
group they join and maps errors to exit statuses)."""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import click

from etl.cli import (
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    EXIT_STALE,
    EXIT_UNFINISHED,
    STARTED,
    cli,
    date_option,
    parsed,
    with_config,
    zvm_option,
)

if TYPE_CHECKING:
    from etl.config import Config

__all__ = ["backfill", "schedule", "status", "sync", "verify"]


@cli.command()
@zvm_option
@with_config()
def sync(config: Config, zvms: tuple[str, ...]) -> None:
    """One incremental pass over every configured ZVM (or those named), then exit.

    Exits 1 when any ZVM failed; the others still ran.

    \b
    Example:
        zvm-etl sync --zvm nyc
    """
    from etl.sync import sync_all

    # Another process's pass that started after this command did is this command's pass.
    results = sync_all(config, names=list(zvms) or None, trigger="sync", fresh_since=STARTED)
    if any(result.failed for result in results):
        sys.exit(EXIT_FAILED)


@cli.command()
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus metrics on this port at /metrics [default: no metrics].",
)
@click.option(
    "--metrics-address",
    default="0.0.0.0",
    show_default=True,
    help="The address the metrics server listens on.",
)
@zvm_option
@with_config()
def schedule(
    config: Config, metrics_port: int | None, metrics_address: str, zvms: tuple[str, ...]
) -> None:
    """Sync every configured ZVM (or those named) every sync.interval until stopped.

    The first pass of each ZVM runs at start-up. SIGINT/SIGTERM stop it cleanly: see
    "Stopping" in docs/operations.md.

    \b
    Example:
        zvm-etl --log-format json schedule --metrics-port 9108
    """
    from etl.scheduler import run_schedule

    report = run_schedule(
        config,
        names=list(zvms) or None,
        metrics_port=metrics_port,
        metrics_address=metrics_address,
    )
    if not report.clean:
        logging.shutdown()
        os._exit(EXIT_UNFINISHED)  # the unfinished pass's thread must not keep us alive


@cli.command()
@date_option("--since", "Start: 2024-01-31[T08:00:00Z].", required=True)
@date_option("--until", "End of the window [default: now].")
@zvm_option
@with_config()
def backfill(
    config: Config, since: datetime, until: datetime | None, zvms: tuple[str, ...]
) -> None:
    """(Re)load a past window of task history, one bounded window at a time.

    Shows a progress bar on a terminal and log lines otherwise. It never moves the
    incremental cursors, so it is safe to run beside the schedule.

    \b
    Example:
        zvm-etl backfill --since 2024-01-01 --until 2024-02-01
    """
    from etl.sync import backfill_all

    if until is not None and until <= since:
        raise click.BadParameter("--until must be later than --since", param_hint="--until")
    results = backfill_all(
        config,
        since=since,
        until=until,
        names=list(zvms) or None,
        progress=sys.stderr.isatty(),
    )
    if any(result.failed for result in results):
        sys.exit(EXIT_FAILED)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--stale-after",
    callback=parsed("parse_duration"),
    metavar="DURATION",
    help="A ZVM with no successful pass for this long is stale [default: sync.stale_after].",
)
@with_config(zvm_secrets=False)
def status(config: Config, as_json: bool, stale_after: timedelta | None) -> None:
    """Per ZVM: last run, last success, cursors, open tasks, lag and health.

    Exits 4 when a configured ZVM is stale (no successful pass within sync.stale_after,
    default 3 x sync.interval, or never): a health check for monitoring and probes. Needs
    no ZVM credentials: it reads the warehouse only.

    \b
    Example:
        zvm-etl status --json
        zvm-etl status --stale-after 30m || alert "zvm-etl is behind"
    """
    from etl.status import read_status, render_status

    rows = read_status(config, stale_after=stale_after)
    if as_json:
        import orjson

        click.echo(orjson.dumps([r.to_dict() for r in rows], option=orjson.OPT_INDENT_2).decode())
    else:
        render_status(rows)
    if any(row.unhealthy for row in rows):
        sys.exit(EXIT_STALE)


@cli.command()
@date_option(
    "--since", "Compare from: 2024-01-31[T08:00:00Z] [default: the oldest day the ZVM holds]."
)
@date_option("--until", "Compare up to, not including [default: the ZVM's started cursor].")
@zvm_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_config()
def verify(
    config: Config,
    since: datetime | None,
    until: datetime | None,
    zvms: tuple[str, ...],
    as_json: bool,
) -> None:
    """Prove the warehouse holds every task each ZVM holds, day by day, up to the cursor.

    Counts the tasks each ZVM returns and the warehouse holds per UTC day of their start,
    lists the days that differ with the identifiers missing on either side and the
    backfill that repairs each, and records the outcome in the verifications table. Tasks
    the ZVM purged are reported, not errors. Exits 6 when a ZVM's history is incomplete
    (or it was never synced) and 1 when a ZVM failed: see docs/operations.md.

    \b
    Example:
        zvm-etl verify
        zvm-etl verify --zvm nyc --since 2024-01-01 --json
    """
    from etl.verify import verify_all

    if since is not None and until is not None and until <= since:
        raise click.BadParameter("--until must be later than --since", param_hint="--until")
    results = verify_all(config, names=list(zvms) or None, since=since, until=until)
    if as_json:
        import orjson

        dump = orjson.dumps([r.to_dict() for r in results], option=orjson.OPT_INDENT_2)
        click.echo(dump.decode())
    else:
        from etl.verify_text import render_verifications

        click.echo(render_verifications(results))
    if any(result.failed for result in results):
        sys.exit(EXIT_FAILED)
    if not all(result.complete for result in results):
        sys.exit(EXIT_INCOMPLETE)
