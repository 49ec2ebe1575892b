"""The ``zvm-etl`` command: parse arguments, load the config, call one library function.

Nothing here knows how a sync works: every command is a few lines over the library, and
:class:`_Cli` turns every :class:`~etl.errors.EtlError` into one message on stderr and an
exit status, in one place. This module holds the group, the shared options and the
set-up commands (``config``, ``simulate``, ``db``); :mod:`etl.cli_passes` the commands that
run passes or report on them (``sync``, ``schedule``, ``backfill``, ``status``, ``verify``),
:mod:`etl.cli_analyst` those that read the warehouse for people (``export``, ``report``,
``sql``). The exit statuses (the ``EXIT_*`` constants below) are
documented in one table: "Exit statuses" in ``docs/operations.md``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
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
EXIT_INCOMPLETE = 6

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


def with_config(*, zvm_secrets: bool = True) -> Callable[[F], F]:
    """Pass the command the configuration (found from ``--config``) as its first argument;
    ``zvm_secrets`` False for commands that never talk to a ZVM (see ``load_config``)."""

    def decorate(function: F) -> F:
        def call(config_path: str | None, *args: Any, **kwargs: Any) -> Any:
            from etl.config import load_config

            return function(load_config(config_path, zvm_secrets=zvm_secrets), *args, **kwargs)

        return cast(F, click.pass_obj(functools.update_wrapper(call, function)))

    return decorate


def parsed(parser: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """An option callback that reads the value with a parser of :mod:`etl.config`
    (``parse_date``, ``parse_duration``), imported only when the option is given."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        import etl.config

        try:
            return getattr(etl.config, parser)(value) if isinstance(value, str) else value
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None

    return callback


def date_option(flag: str, help_text: str, *, required: bool = False) -> Callable[[F], F]:
    """A ``--since``/``--until`` option: a date (midnight UTC) or a date-time (UTC when it
    has no offset), read by ``etl.config.parse_date``."""
    return click.option(
        flag, callback=parsed("parse_date"), required=required, metavar="DATE", help=help_text
    )


def assignments(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
    """The callback of an option given as ``NAME=VALUE`` several times (``--param``)."""
    from etl.queries import parse_assignments

    try:
        return parse_assignments(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


zvm_option = click.option(
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
@with_config()
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
@with_config(zvm_secrets=False)
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
@with_config(zvm_secrets=False)
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
@with_config(zvm_secrets=False)
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
@with_config(zvm_secrets=False)
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


def main() -> None:
    """Entry point of the ``zvm-etl`` console script."""
    cli(prog_name="zvm-etl")


# The commands of the other two modules register themselves on ``cli`` when imported.
from etl import cli_analyst, cli_passes  # noqa: E402

__all__ = ["cli", "cli_analyst", "cli_passes", "main"]
