"""The simulator's command line: ``zvm-simulator`` (also ``zvm-etl simulate``, which hands its
arguments over unchanged, and ``python -m zvm_simulator``).

Every :class:`~zvm_simulator.settings.SimulatorSettings` field and fault knob has an option;
a value the simulator cannot use is a usage error (exit 2) that names the option.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import click

from zvm_simulator.api import FAULTY_ROUTES
from zvm_simulator.settings import Faults, SimulatorSettings
from zvm_simulator.simulator import Simulator, serve_forever

__all__ = ["main", "parse_offset", "parse_span", "simulate"]

_SPAN = re.compile(r"^([+-]?)(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$")
_SPAN_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_OFFSET = re.compile(r"^([+-]?)(\d{1,2})(?::?(\d{2}))?$")


def parse_span(text: str) -> timedelta:
    """``30s``, ``-15m``, ``2h``, ``30d`` (a bare number is seconds) as a timedelta."""
    match = _SPAN.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration: write 30s, -15m, 2h or 30d")
    sign, number, unit = match.groups()
    seconds = float(number) * _SPAN_UNITS[unit or "s"]
    return timedelta(seconds=-seconds if sign == "-" else seconds)


def parse_offset(text: str) -> int:
    """A UTC offset ``±hh:mm`` (or ``±hhmm``, ``±hh``) in minutes."""
    match = _OFFSET.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a UTC offset: write +03:00 or -05:30")
    sign, hours, minutes = match.groups()
    total = int(hours) * 60 + int(minutes or 0)
    return -total if sign == "-" else total


def _span_or_never(text: str) -> timedelta | None:
    return None if text.strip().lower() == "never" else parse_span(text)


def _listings(paths: tuple[str, ...]) -> list[str]:
    unknown = [path for path in paths if path not in FAULTY_ROUTES]
    if unknown:
        known = ", ".join(FAULTY_ROUTES)
        raise ValueError(f"{', '.join(unknown)}: not a listing (one of {known})")
    return list(paths)


def _misshapen(pairs: tuple[str, ...]) -> dict[str, str]:
    listings: dict[str, str] = {}
    for pair in pairs:
        path, sep, kind = pair.rpartition("=")
        if not sep:
            raise ValueError(f"{pair}: not PATH=KIND (e.g. /v1/vpgs=html)")
        _listings((path,))
        listings[path] = kind
    return listings


def _settings(options: dict[str, Any]) -> SimulatorSettings:
    """SimulatorSettings from the options; click.BadParameter names a bad one."""

    def read(name: str, parse: Any) -> Any:
        try:
            return parse(options[name])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=f"--{name.replace('_', '-')}") from None

    retention = read("retention", parse_span)
    settings = SimulatorSettings(
        seed=options["seed"],
        days=options["days"],
        tasks_per_hour=options["rate"],
        auth=options["auth"],
        username=options["username"],
        password=options["password"],
        client_id=options["client_id"],
        client_secret=options["client_secret"],
        token_lifetime=options["token_lifetime"],
        date_style=options["date_style"],
        date_offsets=options["date_offsets"],
        key_case=options["key_case"],
        include_task_identifier=not options["no_task_identifier"],
        utc_offset_minutes=read("utc_offset", parse_offset),
        clock_skew=read("skew", parse_span),
        speed=options["speed"],
        retention=retention,
        port=options["port"],
        tls=options["tls"],
        faults=Faults(
            error_rate=options["error_rate"],
            retry_after=options["retry_after"],
            outage_after=options["outage_after"],
            drop_rate=options["drop_rate"],
            latency=options["latency"],
            malformed_rate=options["malformed_rate"],
            session_max_requests=options["session_max_requests"],
            session_ttl=options["session_ttl"],
            missing_listings=set(read("missing_listing", _listings)),
            failing_listings=set(read("failing_listing", _listings)),
            misshapen_listings=read("misshapen_listing", _misshapen),
            malformed_recovery_rate=options["malformed_recovery_rate"],
            recovery_ignored_params={name.lower() for name in options["recovery_ignore"]},
        ),
        vpg_rename_after=read("vpg_rename_after", _span_or_never),
        vpg_delete_after=read("vpg_delete_after", _span_or_never),
        untouched_vpgs=options["untouched_vpgs"],
        extra_hosts=options["extra_hosts"],
    )
    try:
        settings.validate()
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return settings


@click.command(
    name="simulate",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--port", default=9669, show_default=True, help="Port on 127.0.0.1 (0: any free).")
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
@click.option("--tls", is_flag=True, help="Serve HTTPS with a generated CA (its path is printed).")
@click.option("--error-rate", default=0.0, show_default=True, help="Fraction answered 503.")
@click.option("--retry-after", default=1.0, show_default=True, help="Retry-After of those 503s.")
@click.option(
    "--outage-after", type=int, default=None, help="Answer every API call 503 after N of them."
)
@click.option("--drop-rate", default=0.0, show_default=True, help="Fraction of lists cut mid-body.")
@click.option("--latency", default=0.0, show_default=True, help="Seconds added to every answer.")
@click.option("--malformed-rate", default=0.0, show_default=True, help="Fraction of bad records.")
@click.option("--session-max-requests", type=int, default=None, help="Sessions die after N calls.")
@click.option("--session-ttl", type=float, default=None, help="Sessions die after S seconds.")
@click.option("--token-lifetime", default=300.0, show_default=True, help="Keycloak expires_in.")
@click.option(
    "--missing-listing",
    multiple=True,
    metavar="PATH",
    help="Answer this listing (or /v1/reports/recovery) 404 (repeatable).",
)
@click.option(
    "--failing-listing",
    multiple=True,
    metavar="PATH",
    help="Answer this listing (or /v1/reports/recovery) 500 (repeatable).",
)
@click.option(
    "--misshapen-listing",
    multiple=True,
    metavar="PATH=KIND",
    help="Answer this listing 200 with a wrong shape: wrong-type, html or invalid-json.",
)
@click.option(
    "--malformed-recovery-rate",
    default=0.0,
    show_default=True,
    help="Fraction of bad recovery operations in /v1/reports/recovery.",
)
@click.option(
    "--recovery-ignore",
    multiple=True,
    metavar="PARAM",
    help="Ignore this /v1/reports/recovery parameter (startTime, pageNumber...; repeatable).",
)
@click.option(
    "--vpg-rename-after", default="30m", show_default=True, help="Rename a VPG then (or never)."
)
@click.option(
    "--vpg-delete-after", default="65m", show_default=True, help="Delete a VPG then (or never)."
)
@click.option(
    "--untouched-vpgs", default=3, show_default=True, help="VPGs listed that no task names."
)
@click.option(
    "--extra-hosts", default=0, show_default=True, help="Hosts listed that no task names."
)
def simulate(**options: Any) -> None:
    """Serve a simulated ZVM API on 127.0.0.1 until stopped (Ctrl-C, SIGTERM).

    A seeded, deterministic ZVM with days of task history, tasks that arrive and run as
    time passes, both logins, the six filters, named VPGs, sites and hosts (listings such
    as /v1/vpgs), the Recovery Report of its failovers, tests and moves, and fault knobs:
    for demos, tests and dashboards without a ZVM.

    \b
    Example:
        zvm-simulator --port 9669 --seed 7 --speed 60
    """
    settings = _settings(options)

    def ready(sim: Simulator) -> None:
        click.echo(f"Simulated ZVM ({settings.auth} auth) listening on {sim.url}")
        click.echo(f"  credentials: {settings.username} / {settings.password}")
        if sim.ca_path is not None:
            click.echo(f"  CA certificate: {sim.ca_path}  (use it as ca_bundle)")
        click.echo(f"  simulated now: {sim.now().isoformat(timespec='seconds')}; Ctrl-C stops it")

    try:
        serve_forever(settings, on_ready=ready)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc} "
            "(another program may use the port: pick another with --port, or 0 for any)"
        ) from None
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None


def main(args: list[str] | None = None, *, prog_name: str = "zvm-simulator") -> None:
    """Entry point of ``zvm-simulator`` (and of ``zvm-etl simulate``, with its arguments)."""
    simulate.main(args=args, prog_name=prog_name)
