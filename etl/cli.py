"""The ``zvm-etl`` command: parse arguments, load the config, call one library function.

Nothing here knows how a sync works; every command is a few lines over the library, and
every :class:`~etl.errors.EtlError` becomes one message on stderr and an exit status:

====  ==============================================================
0     success (``schedule``: stopped cleanly by SIGINT/SIGTERM)
1     a ZVM pass failed (the others still ran), or a command failed
2     the command line or the configuration is invalid
3     the warehouse is unreachable or its schema is missing/behind/ahead
4     ``status``: a configured ZVM is stale (no successful pass within
      ``sync.stale_after``, default 3 x ``sync.interval``)
5     ``schedule``: a pass did not finish within ``sync.shutdown_grace``
      after SIGINT/SIGTERM (its transaction was rolled back)
130   ``schedule``: a second SIGINT ended it at once (143: SIGTERM)
====  ==============================================================
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import click
import orjson
import yaml

from etl import __version__
from etl.config import Config, load_config, parse_duration
from etl.errors import ConfigError, EtlError, WarehouseError
from etl.logs import configure_logging
from etl.warehouse.engine import display_url

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_WAREHOUSE = 3
EXIT_STALE = 4
EXIT_UNFINISHED = 5

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(error: EtlError) -> NoReturn:
    """Print the error the way a person reads it and exit with its status."""
    if isinstance(error, ConfigError):
        click.echo("Configuration error:", err=True)
        for problem in error.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(EXIT_CONFIG)
    click.echo(f"Error: {error}", err=True)
    sys.exit(EXIT_WAREHOUSE if isinstance(error, WarehouseError) else EXIT_FAILED)


class _State:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(self.config_path)
            except ConfigError as error:
                _fail(error)
        return self._config


pass_state = click.make_pass_decorator(_State)


def _parse_date(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date: write 2024-01-31 or 2024-01-31T08:00:00Z", param_hint=name
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="zvm-etl")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Configuration file [default: $ZVM_ETL_CONFIG, else ./config.yaml].",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for log collectors (one object per line).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_level: str, log_format: str) -> None:
    """Keep the task history of Zerto Virtual Managers in a SQL warehouse.

    \b
    Example:
        zvm-etl --config prod.yaml db upgrade
        zvm-etl --config prod.yaml sync
    """
    configure_logging(level=log_level, fmt="json" if log_format == "json" else "text")
    ctx.obj = _State(config_path)


# -- config ------------------------------------------------------------------------------


@cli.group(name="config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command(name="check")
@pass_state
def config_check(state: _State) -> None:
    """Validate the configuration and print it as it will be used, secrets masked.

    \b
    Example:
        zvm-etl --config prod.yaml config check
    """
    config = state.config()
    click.echo(f"# {config.source}: valid")
    click.echo(yaml.safe_dump(config.masked(), sort_keys=False).rstrip())


# -- simulate ----------------------------------------------------------------------------


@cli.command()
@click.option(
    "--port", default=9669, show_default=True, help="Port on 127.0.0.1 (0: any free one)."
)
@click.option(
    "--auth", type=click.Choice(["session", "keycloak"]), default="session", show_default=True
)
@click.option("--username", default="admin", show_default=True)
@click.option("--password", default="zerto", show_default=True)
@click.option("--client-id", default="zerto-client", show_default=True, help="Keycloak client.")
@click.option("--client-secret", default=None, help="Also accept the client_credentials grant.")
@click.option("--seed", default=1, show_default=True, help="Same seed, same tasks.")
@click.option("--days", default=7.0, show_default=True, help="Days of history before now.")
@click.option("--rate", default=20.0, show_default=True, help="Tasks per hour on average.")
@click.option("--speed", default=1.0, show_default=True, help="Simulated seconds per real second.")
@click.option(
    "--date-style",
    type=click.Choice(["windows", "appliance"]),
    default="windows",
    show_default=True,
    help="windows: \\/Date(ms+hhmm)\\/; appliance: ISO-8601.",
)
@click.option(
    "--date-offsets/--no-date-offsets",
    default=True,
    show_default=True,
    help="Write the zone offset in dates (/Date(ms+0300)/, ...+03:00) or not.",
)
@click.option(
    "--key-case", type=click.Choice(["pascal", "camel"]), default="pascal", show_default=True
)
@click.option(
    "--no-task-identifier", is_flag=True, help="Omit TaskIdentifier (as ZVMA 10.x): Link only."
)
@click.option("--utc-offset", default="+03:00", show_default=True, help="The ZVM's zone, ±hh:mm.")
@click.option("--skew", default="0s", show_default=True, help="ZVM clock minus real clock: -15m.")
@click.option("--retention", default="30d", show_default=True, help="Tasks older than this vanish.")
@click.option(
    "--tls", is_flag=True, help="Serve HTTPS with a generated CA (its PEM path is printed)."
)
@click.option("--error-rate", default=0.0, show_default=True, help="Fraction answered 503.")
@click.option("--retry-after", default=1.0, show_default=True, help="Retry-After of those 503s.")
@click.option("--drop-rate", default=0.0, show_default=True, help="Fraction of lists cut mid-body.")
@click.option("--latency", default=0.0, show_default=True, help="Seconds added to every answer.")
@click.option("--malformed-rate", default=0.0, show_default=True, help="Fraction of bad records.")
@click.option("--session-max-requests", type=int, default=None, help="Sessions die after N calls.")
@click.option("--session-ttl", type=float, default=None, help="Sessions die after S seconds.")
@click.option("--token-lifetime", default=300.0, show_default=True, help="Keycloak expires_in.")
def simulate(**options: Any) -> None:
    """Serve a simulated ZVM tasks API on 127.0.0.1 until stopped (Ctrl-C).

    A seeded, deterministic ZVM with days of task history, tasks that arrive and run as
    time passes, both logins, the six filters, and fault knobs: for demos, tests and
    dashboards without a ZVM.

    \b
    Example:
        zvm-etl simulate --port 9669 --seed 7 --speed 60
    """
    from etl.zvm.simulator import Simulator, serve_forever

    try:
        settings = _simulator_settings(options)
        settings.validate()
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None

    def ready(sim: Simulator) -> None:
        click.echo(f"Simulated ZVM ({settings.auth} auth) listening on {sim.url}")
        click.echo(f"  credentials: {settings.username} / {settings.password}")
        if sim.ca_path is not None:
            click.echo(f"  CA certificate: {sim.ca_path}  (use it as ca_bundle)")
        click.echo(f"  simulated now: {sim.now().isoformat(timespec='seconds')}; Ctrl-C stops it")

    serve_forever(settings, on_ready=ready)


def _simulator_settings(options: dict[str, Any]) -> Any:
    """SimulatorSettings from the `simulate` options; ValueError names a bad one."""
    from etl.zvm.simulator import Faults, SimulatorSettings

    offset = options["utc_offset"].strip()
    try:
        sign = -1 if offset.startswith("-") else 1
        hours, _, minutes = offset.lstrip("+-").partition(":")
        offset_minutes = sign * (int(hours) * 60 + int(minutes or 0))
    except ValueError:
        raise ValueError(f"--utc-offset {offset!r} is not ±hh:mm") from None
    skew_text = options["skew"].strip()
    skew = parse_duration(skew_text.lstrip("-"))
    skew = -skew if skew_text.startswith("-") else skew
    return SimulatorSettings(
        seed=options["seed"],
        days=options["days"],
        tasks_per_hour=options["rate"],
        auth=options["auth"],
        username=options["username"],
        password=options["password"],
        client_secret=options["client_secret"],
        token_lifetime=options["token_lifetime"],
        client_id=options["client_id"],
        date_style=options["date_style"],
        date_offsets=options["date_offsets"],
        key_case=options["key_case"],
        include_task_identifier=not options["no_task_identifier"],
        utc_offset_minutes=offset_minutes,
        clock_skew=skew,
        speed=options["speed"],
        retention=parse_duration(options["retention"]),
        port=options["port"],
        tls=options["tls"],
        faults=Faults(
            error_rate=options["error_rate"],
            retry_after=options["retry_after"],
            drop_rate=options["drop_rate"],
            latency=options["latency"],
            malformed_rate=options["malformed_rate"],
            session_max_requests=options["session_max_requests"],
            session_ttl=options["session_ttl"],
        ),
    )


# -- db ----------------------------------------------------------------------------------


@cli.group(name="db")
def db_group() -> None:
    """Create and migrate the warehouse schema (Alembic)."""


@db_group.command(name="upgrade")
@click.argument("revision", default="head")
@pass_state
def db_upgrade(state: _State, revision: str) -> None:
    """Create or migrate the warehouse schema to REVISION (default: the newest).

    \b
    Example:
        zvm-etl db upgrade
    """
    from etl.warehouse import db

    url = state.config().warehouse.url
    try:
        db.upgrade(url, revision)
        click.echo(f"Warehouse {display_url(url)} is at revision {db.current_revision(url)}.")
    except EtlError as error:
        _fail(error)


@db_group.command(name="current")
@pass_state
def db_current(state: _State) -> None:
    """Print the warehouse's schema revision (and whether it is the newest).

    \b
    Example:
        zvm-etl db current
    """
    from etl.warehouse import db

    url = state.config().warehouse.url
    try:
        current = db.current_revision(url)
    except EtlError as error:
        _fail(error)
    head = db.head_revision()
    if current is None:
        click.echo(f"{display_url(url)}: no schema yet (run `zvm-etl db upgrade`).")
    else:
        note = "newest" if current == head else f"newest is {head}: run `zvm-etl db upgrade`"
        click.echo(f"{current} ({note})")


@db_group.command(name="downgrade")
@click.argument("revision")
@pass_state
def db_downgrade(state: _State, revision: str) -> None:
    """Migrate the warehouse schema down to REVISION (`base` removes every table).

    \b
    Example:
        zvm-etl db downgrade base
    """
    from etl.warehouse import db

    url = state.config().warehouse.url
    try:
        db.downgrade(url, revision)
        current = db.current_revision(url)
    except EtlError as error:
        _fail(error)
    click.echo(f"Warehouse {display_url(url)} is at revision {current or 'base (empty)'}.")


@db_group.command(name="check")
@pass_state
def db_check(state: _State) -> None:
    """Check that the warehouse schema matches this version's tables exactly.

    \b
    Example:
        zvm-etl db check
    """
    from etl.warehouse import db

    url = state.config().warehouse.url
    try:
        engine = db.make_engine(url)
        try:
            db.check_schema(engine)
        finally:
            engine.dispose()
        differences = db.drift(url)
    except EtlError as error:
        _fail(error)
    if differences:
        click.echo("The schema differs from this version's tables:", err=True)
        for difference in differences:
            click.echo(f"  {difference}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"Warehouse {display_url(url)} is at the newest revision, with no drift.")


# -- sync, backfill, status --------------------------------------------------------------


def _zvm_option(function: F) -> F:
    return click.option(
        "--zvm",
        "zvms",
        multiple=True,
        metavar="NAME",
        help="Only this ZVM (repeatable) [default: every configured ZVM].",
    )(function)


def _report(results: list[Any]) -> None:
    """Each pass already logged its summary line; exit 1 when one failed."""
    if any(r.failed for r in results):
        sys.exit(EXIT_FAILED)


@cli.command()
@_zvm_option
@pass_state
def sync(state: _State, zvms: tuple[str, ...]) -> None:
    """One incremental pass over every configured ZVM (or those named), then exit.

    Exits 1 when any ZVM failed; the others still ran.

    \b
    Example:
        zvm-etl sync --zvm nyc
    """
    from etl.sync import sync_all

    config = state.config()
    try:
        for name in zvms:
            config.zvm(name)
        results = sync_all(config, names=list(zvms) or None, trigger="sync")
    except EtlError as error:
        _fail(error)
    if any(r.failed for r in results):
        from etl.status import warn_retention

        warn_retention(config)
    _report(results)


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
@pass_state
def schedule(
    state: _State, metrics_port: int | None, metrics_address: str, zvms: tuple[str, ...]
) -> None:
    """Sync every configured ZVM (or those named) every sync.interval until stopped.

    The first pass of each ZVM runs at start-up. SIGINT/SIGTERM stop it: no new passes,
    a running pass may finish within sync.shutdown_grace, then it exits 0 (5 when a pass
    did not finish; its transaction is rolled back). A second signal exits at once.

    \b
    Example:
        zvm-etl --log-format json schedule --metrics-port 9108
    """
    from etl.scheduler import run_schedule

    config = state.config()
    try:
        for name in zvms:
            config.zvm(name)
        report = run_schedule(
            config,
            names=list(zvms) or None,
            metrics_port=metrics_port,
            metrics_address=metrics_address,
        )
    except EtlError as error:
        _fail(error)
    if not report.clean:
        logging.shutdown()
        os._exit(EXIT_UNFINISHED)  # the unfinished pass's thread must not keep us alive


@cli.command()
@click.option("--since", required=True, help="Start of the window: 2024-01-31[T08:00:00Z].")
@click.option("--until", default=None, help="End of the window [default: now].")
@_zvm_option
@pass_state
def backfill(state: _State, since: str, until: str | None, zvms: tuple[str, ...]) -> None:
    """(Re)load a past window of task history, one bounded window at a time.

    Shows a progress bar on a terminal and log lines otherwise. It never moves the
    incremental cursors, so it is safe to run beside the schedule.

    \b
    Example:
        zvm-etl backfill --since 2024-01-01 --until 2024-02-01
    """
    from etl.sync import backfill_all

    start = _parse_date(since, "--since")
    end = _parse_date(until, "--until") if until else None
    if end is not None and end <= start:
        raise click.BadParameter("--until must be later than --since", param_hint="--until")
    config = state.config()
    try:
        for name in zvms:
            config.zvm(name)
        results = backfill_all(
            config, since=start, until=end, names=list(zvms) or None, progress=sys.stderr.isatty()
        )
    except EtlError as error:
        _fail(error)
    _report(results)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--stale-after",
    default=None,
    metavar="DURATION",
    help="A ZVM with no successful pass for this long is stale [default: sync.stale_after].",
)
@pass_state
def status(state: _State, as_json: bool, stale_after: str | None) -> None:
    """Per ZVM: last run, last success, cursors, open tasks, lag and health.

    Exits 4 when a configured ZVM is stale (no successful pass within sync.stale_after,
    default 3 x sync.interval, or never): a health check for monitoring and probes.

    \b
    Example:
        zvm-etl status --json
        zvm-etl status --stale-after 30m || alert "zvm-etl is behind"
    """
    from etl.status import fetch_status, render_status

    try:
        threshold = parse_duration(stale_after) if stale_after is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--stale-after") from None
    try:
        rows = fetch_status(state.config(), stale_after=threshold)
    except EtlError as error:
        _fail(error)
    if as_json:
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2, default=str).decode())
    else:
        render_status(rows)
    if any(row["stale"] and row["configured"] for row in rows):
        sys.exit(EXIT_STALE)


def main() -> None:
    """Entry point of the ``zvm-etl`` console script."""
    cli(prog_name="zvm-etl")


__all__ = ["cli", "main"]
