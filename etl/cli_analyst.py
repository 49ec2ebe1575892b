"""The ``zvm-etl`` commands that read the warehouse for people: ``export`` (a view or a
ready query to CSV, JSON or Parquet), ``report`` (the HTML report) and ``sql`` (a view's or
query's SQL for one database), each a few lines over :mod:`etl.export`, :mod:`etl.report`
and :mod:`etl.warehouse.sqlfiles`. None needs a ZVM secret."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from etl.cli import EXIT_FAILED, assignments, cli, date_option, with_config

if TYPE_CHECKING:
    from etl.config import Config

__all__ = ["export", "report", "sql"]


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
@date_option(
    "--since", "Views only: rows whose started_at is at or after DATE (2024-01-31[T08:00:00Z])."
)
@date_option("--until", "Views only: rows whose started_at is before DATE.")
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
    callback=assignments,
    metavar="NAME=VALUE",
    help="Ready queries: set a parameter (repeatable), e.g. --param days=30.",
)
@with_config(zvm_secrets=False)
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
@date_option(
    "--since", "Start of the period: tasks started on or after DATE [default: 30 days ago]."
)
@click.option("--zvm", metavar="NAME", default=None, help="Only this ZVM [default: every ZVM].")
@with_config(zvm_secrets=False)
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
