"""The ``zvm-etl`` command: parse arguments, load the config, call one library function.

Nothing here knows how a sync works: every command is a few lines over the library, and
:class:`_Cli` turns every :class:`~etl.errors.EtlError` into one message on stderr and an
exit status, in one place. The exit statuses (the ``EXIT_*`` constants below) are
documented in one table: "Exit statuses" in ``docs/operations.md``.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from etl import __version__
from etl.errors import ConfigError, EtlError, ExportError, WarehouseError
from etl.logs import configure_logging

if TYPE_CHECKING:
    from etl.config import Config

STARTED = datetime.now(UTC)
"""When this command started (a pass another process began since is one this one skips)."""

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_WAREHOUSE = 3
EXIT_STALE = 4
EXIT_UNFINISHED = 5

F = TypeVar("F", bound=Callable[..., Any])
LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]
LOG_FORMAT = "text for people (default), json for log collectors (one object per line)."
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Cli(click.Group):
    """The command group that maps the library's errors to messages and exit statuses."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as error:
            click.echo("Configuration error:", err=True)
            for problem in error.problems:
                click.echo(f"  {problem}", err=True)
            ctx.exit(EXIT_CONFIG)
        except ExportError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(EXIT_CONFIG)
        except EtlError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(EXIT_WAREHOUSE if isinstance(error, WarehouseError) else EXIT_FAILED)


def _config(*, zvm_secrets: bool = True) -> Callable[[F], F]:
    """Pass the command the configuration (found from ``--config``) as its first argument;
    ``zvm_secrets`` False for commands that never talk to a ZVM (see ``load_config``)."""

    def decorate(function: F) -> F:
        def with_config(config_path: str | None, *args: Any, **kwargs: Any) -> Any:
            from etl.config import load_config

            return function(load_config(config_path, zvm_secrets=zvm_secrets), *args, **kwargs)

        return cast(F, click.pass_obj(functools.update_wrapper(with_config, function)))

    return decorate


def _parsed(parser: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """An option callback that reads the value with a parser of :mod:`etl.config`
    (``parse_date``, ``parse_duration``), imported only when the option is given."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        import etl.config

        try:
            return getattr(etl.config, parser)(value) if isinstance(value, str) else value
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None

    return callback


def _assignments(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
    """The callback of an option given as ``NAME=VALUE`` several times (``--param``)."""
    from etl.queries import parse_assignments

    try:
        return parse_assignments(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


_zvm_option = click.option(
    "--zvm",
    "zvms",
    multiple=True,
    metavar="NAME",
    help="Only this ZVM (repeatable) [default: all].",
)


@click.group(cls=_Cli, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="zvm-etl")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Configuration file [default: $ZVM_ETL_CONFIG, else ./config.yaml].",
)
@click.option("--log-level", type=click.Choice(LEVELS, case_sensitive=False), default="INFO")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", help=LOG_FORMAT)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_level: str, log_format: str) -> None:
    """Keep the task history of Zerto Virtual Managers in a SQL warehouse.

    \b
    Example:
        zvm-etl --config prod.yaml db upgrade
        zvm-etl --config prod.yaml sync
    """
    configure_logging(level=log_level, fmt="json" if log_format == "json" else "text")
    ctx.obj = config_path


@cli.group(name="config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command(name="check")
@_config()
def config_check(config: Config) -> None:
    """Validate the configuration and print it as it will be used, secrets masked.

    \b
    Example:
        zvm-etl --config prod.yaml config check
    """
    import yaml

    click.echo(f"# {config.source}: valid")
    click.echo(yaml.safe_dump(config.masked(), sort_keys=False).rstrip())


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    add_help_option=False,
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def simulate(arguments: tuple[str, ...]) -> None:
    """Serve a simulated ZVM on 127.0.0.1 until stopped (--help lists every knob).

    \b
    Example:
        zvm-etl simulate --port 9669 --seed 7 --speed 60
    """
    from zvm_simulator.cli import main

    main(list(arguments), prog_name="zvm-etl simulate")


@cli.group(name="db")
def db_group() -> None:
    """Create and migrate the warehouse schema (Alembic)."""


@db_group.command(name="upgrade")
@click.argument("revision", default="head")
@_config(zvm_secrets=False)
def db_upgrade(config: Config, revision: str) -> None:
    """Create or migrate the warehouse schema to REVISION (default: the newest).

    \b
    Example:
        zvm-etl db upgrade
    """
    from etl.warehouse import db
    from etl.warehouse.engine import display_url

    url = config.warehouse.url
    click.echo(f"Warehouse {display_url(url)} is at revision {db.upgrade(url, revision)}.")


@db_group.command(name="current")
@_config(zvm_secrets=False)
def db_current(config: Config) -> None:
    """Print the warehouse's schema revision (and whether it is the newest).

    \b
    Example:
        zvm-etl db current
    """
    from etl.warehouse import db

    click.echo(db.describe_revision(config.warehouse.url))


@db_group.command(name="downgrade")
@click.argument("revision")
@_config(zvm_secrets=False)
def db_downgrade(config: Config, revision: str) -> None:
    """Migrate the warehouse schema down to REVISION (`base` removes every table).

    \b
    Example:
        zvm-etl db downgrade base
    """
    from etl.warehouse import db
    from etl.warehouse.engine import display_url

    url = config.warehouse.url
    current = db.downgrade(url, revision)
    click.echo(f"Warehouse {display_url(url)} is at revision {current or 'base (empty)'}.")


@db_group.command(name="check")
@_config(zvm_secrets=False)
def db_check(config: Config) -> None:
    """Check that the warehouse schema matches this version's tables exactly.

    \b
    Example:
        zvm-etl db check
    """
    from etl.warehouse import db
    from etl.warehouse.engine import display_url

    url = config.warehouse.url
    differences = db.verify(url)
    if differences:
        click.echo("The schema differs from this version's tables:", err=True)
        for difference in differences:
            click.echo(f"  {difference}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"Warehouse {display_url(url)} is at the newest revision, with no drift.")


@cli.command()
@_zvm_option
@_config()
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
@_zvm_option
@_config()
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
@click.option(
    "--since",
    callback=_parsed("parse_date"),
    required=True,
    metavar="DATE",
    help="Start: 2024-01-31[T08:00:00Z].",
)
@click.option(
    "--until",
    callback=_parsed("parse_date"),
    metavar="DATE",
    help="End of the window [default: now].",
)
@_zvm_option
@_config()
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
    callback=_parsed("parse_duration"),
    metavar="DURATION",
    help="A ZVM with no successful pass for this long is stale [default: sync.stale_after].",
)
@_config(zvm_secrets=False)
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
@click.argument("name")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "parquet"]),
    default="csv",
    show_default=True,
    help="csv (with a header), json (one array of objects) or parquet (needs --out and "
    "pyarrow: pip install 'zvm-task-etl[parquet]').",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file [default: standard output].",
)
@click.option(
    "--since",
    callback=_parsed("parse_date"),
    metavar="DATE",
    help="Views only: rows whose started_at is at or after DATE (2024-01-31[T08:00:00Z]).",
)
@click.option(
    "--until",
    callback=_parsed("parse_date"),
    metavar="DATE",
    help="Views only: rows whose started_at is before DATE.",
)
@click.option(
    "--zvm",
    metavar="NAME",
    default=None,
    help="Only this ZVM: a view's zvm column, or a ready query's zvm parameter.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    callback=_assignments,
    metavar="NAME=VALUE",
    help="Ready queries: set a parameter (repeatable), e.g. --param days=30.",
)
@_config(zvm_secrets=False)
def export(
    config: Config,
    name: str,
    fmt: str,
    out: Path | None,
    since: datetime | None,
    until: datetime | None,
    zvm: str | None,
    params: dict[str, str],
) -> None:
    """Write a view (v_...) or a ready query (sql/queries/NAME.sql) as CSV, JSON or Parquet.

    Rows are read and written in chunks, so memory stays flat on any size. Timestamps are
    UTC (ISO-8601 with Z). A filter the view has no column for, or a parameter the query
    does not take, is an error (exit 2); so is an unknown NAME, with the list of valid ones.

    \b
    Example:
        zvm-etl export v_failover_tests --since 2025-01-01 --out tests.csv
        zvm-etl export dr_test_evidence --param days=30 --format json
        zvm-etl export v_tasks --format parquet --out tasks.parquet
    """
    from etl.export import export as run_export
    from etl.warehouse.db import reading

    try:
        with reading(config.warehouse.url) as engine:
            result = run_export(
                engine,
                name,
                fmt=fmt,
                out=out,
                stdout=sys.stdout.buffer,
                since=since,
                until=until,
                zvm=zvm,
                params=params,
            )
    except BrokenPipeError:
        # The reader went away (`zvm-etl export v_tasks | head`): stop quietly, as Python's
        # documentation advises, with stdout pointed at /dev/null for the final flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_FAILED)
    if out is not None:
        click.echo(f"Wrote {result.rows} rows of {name} to {out} ({fmt}).", err=True)


@cli.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The HTML file to write (replaced if it exists).",
)
@click.option(
    "--since",
    callback=_parsed("parse_date"),
    metavar="DATE",
    help="Start of the period: tasks started on or after DATE [default: 30 days ago].",
)
@click.option("--zvm", metavar="NAME", default=None, help="Only this ZVM [default: every ZVM].")
@_config(zvm_secrets=False)
def report(config: Config, out: Path, since: datetime | None, zvm: str | None) -> None:
    """Write one self-contained HTML page of charts and tables (opens with no network).

    Tasks per day by state, failures per week by type, durations by type, DR-test coverage
    per VPG, top initiators and ETL health per ZVM. Times are UTC.

    \b
    Example:
        zvm-etl report --out report.html --since 2025-01-01
    """
    from etl.report import write_report
    from etl.warehouse.db import reading

    with reading(config.warehouse.url) as engine:
        write_report(engine, out, since=since, zvm=zvm)
    click.echo(f"Wrote the report to {out.resolve()}")


@cli.command()
@click.argument("name")
@click.option(
    "--dialect",
    type=click.Choice(["postgresql", "mysql", "sqlite"]),
    default=None,
    help="The database to write it for [default: the configured warehouse's].",
)
@click.pass_obj
def sql(config_path: str | None, name: str, dialect: str | None) -> None:
    """Print a view's or a ready query's SQL as one database runs it.

    The files in sql/ are written once for every database, with macros where they differ;
    this prints one rendered, to paste into psql, mariadb, sqlite3 or a BI tool.

    \b
    Example:
        zvm-etl sql dr_test_evidence --dialect postgresql
    """
    from etl.warehouse.sqlfiles import rendered

    if dialect is None:
        from sqlalchemy.engine import make_url

        from etl.config import load_config

        url = load_config(config_path, zvm_secrets=False).warehouse.url
        dialect = make_url(url).get_backend_name()
    click.echo(rendered(name, dialect=dialect) + ";")


def main() -> None:
    """Entry point of the ``zvm-etl`` console script."""
    cli(prog_name="zvm-etl")


__all__ = ["cli", "main"]
