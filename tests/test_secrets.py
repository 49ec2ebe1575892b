"""No secret ever leaves the ETL: not in logs, errors, the warehouse, status, metrics or
the configuration check; and credentials never travel in clear text by accident.

Faulty passes (503s, dropped answers, malformed tasks, sessions that expire every few
requests, a refused login) run at DEBUG against the simulator with each auth flavour
(Windows session, Keycloak password grant, Keycloak client_credentials), on every
warehouse, whose URL carries a password where the database allows one. Everything they
produce is collected: every log record of every logger (httpx and httpcore included) as
text and as the JSON a log collector gets, exception strings, every table of the
warehouse (``etl_runs.error`` and ``rejected_tasks`` among them), ``status`` and
``status --json`` (library and CLI), ``zvm-etl --log-level DEBUG sync``, the Prometheus
metrics and ``config check``. None of it may hold the ZVM password (right or wrong), the
client secret, HTTP Basic credentials, any session id or token the simulator issued, or
the warehouse password.

TLS: ``verify_tls: false`` warns once per pass, not once per request; a URL without
scheme is refused (never a silent ``http://``), a redirect is never followed with
credentials, and plain HTTP is used only when the URL says ``http://``.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from prometheus_client import generate_latest
from rich.console import Console
from sqlalchemy.engine import Engine, make_url

from etl.cli import cli
from etl.config import ZvmConfig, parse_config
from etl.errors import ConfigError, ZvmAuthError, ZvmResponseError
from etl.logs import HTTP_LOGGERS, JsonFormatter, RedactHttpSecrets, redact
from etl.metrics import Metrics
from etl.status import read_status, render_status
from etl.sync import RunResult, sync_all
from etl.warehouse import schema
from etl.warehouse.db import make_engine, upgrade
from etl.zvm.client import ZvmClient
from tests.syncing import PASSWORD, make_config, start_sim
from zvm_simulator import Simulator
from zvm_simulator.auth import AuthStore, GrantResult

CLIENT_SECRET = "Kc-client-S3cret-a41f"
WRONG_PASSWORD = "Wrong-Pa55word-c7e2"
WRONG_SECRET = "Wrong-client-S3cret-93bd"
WAREHOUSE_PASSWORD = "Wh-Pa55word-e0d6"
TLS_WARNING = "TLS verification is off"
NO_RETRY = {"retry_for": "1s", "connect_retry_for": "0s"}


# ---- what the simulator issued -----------------------------------------------------------


@pytest.fixture
def issued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every session id and token the simulator hands out during the test."""
    tokens: list[str] = []
    open_session, grant = AuthStore.open_session, AuthStore.grant

    def recording_open_session(self: AuthStore, authorization: str | None) -> str | None:
        session = open_session(self, authorization)
        if session is not None:
            tokens.append(session)
        return session

    def recording_grant(self: AuthStore, form: Any, authorization: str | None) -> GrantResult:
        result = grant(self, form, authorization)
        tokens.extend(str(v) for k, v in result.body.items() if k.endswith("_token"))
        return result

    monkeypatch.setattr(AuthStore, "open_session", recording_open_session)
    monkeypatch.setattr(AuthStore, "grant", recording_grant)
    return tokens


# ---- a warehouse whose URL holds a password ----------------------------------------------


@pytest.fixture
def secret_warehouse_url(database_url: str) -> Iterator[str]:
    """``database_url`` migrated, reached with a password where the database has one:
    PostgreSQL (the test server trusts any), MariaDB (a user made for the test); SQLite
    has none."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        upgrade(database_url)
        yield database_url
        return
    if backend == "postgresql":
        secret_url = url.set(password=WAREHOUSE_PASSWORD).render_as_string(hide_password=False)
        upgrade(secret_url)
        yield secret_url
        return
    user = str(url.database)  # zvm_etl_t_<hex>: unique to this test
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            quoted = admin.dialect.identifier_preparer.quote(user)
            conn.exec_driver_sql("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, WAREHOUSE_PASSWORD))
            conn.exec_driver_sql(f"GRANT ALL ON {quoted}.* TO %s@'%%'", (user,))
        secret_url = url.set(username=user, password=WAREHOUSE_PASSWORD).render_as_string(
            hide_password=False
        )
        upgrade(secret_url)
        yield secret_url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql("DROP USER IF EXISTS %s@'%%'", (user,))
        admin.dispose()


# ---- collecting everything ---------------------------------------------------------------


@dataclass
class Evidence:
    """Everything the ETL produced, by where it came from."""

    texts: dict[str, list[str]] = field(default_factory=dict)

    def add(self, where: str, *texts: object) -> None:
        self.texts.setdefault(where, []).extend(str(text) for text in texts)

    def leaks(self, secrets: list[str]) -> list[str]:
        found = []
        for where, texts in self.texts.items():
            for text in texts:
                for secret in secrets:
                    if secret in text:
                        found.append(f"{where}: {secret[:12]}... in {text[:300]!r}")
        return found


def add_log_records(evidence: Evidence, records: list[logging.LogRecord]) -> None:
    json_formatter = JsonFormatter()
    text_formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in records:
        evidence.add(f"log {record.name}", text_formatter.format(record))
        evidence.add(f"json log {record.name}", json_formatter.format(record))
        if record.exc_info:
            evidence.add(
                f"log traceback {record.name}", text_formatter.formatException(record.exc_info)
            )


def add_warehouse(evidence: Evidence, engine: Engine) -> None:
    with engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            rows = conn.execute(sa.select(table)).all()
            evidence.add(f"table {table.name}", *(repr(tuple(row)) for row in rows))


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The CLI's configure_logging replaces the root handlers and levels: put them back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "alembic")}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


# ---- faulty passes, every output checked -------------------------------------------------

FLAVOURS = {
    "session": {"auth": "session"},
    "keycloak-password": {"auth": "keycloak"},
    "keycloak-client-credentials": {"auth": "keycloak", "client_secret": CLIENT_SECRET},
}


def zvm_keys(flavour: str, *, wrong: bool = False) -> dict[str, Any]:
    if flavour == "keycloak-client-credentials":
        secret = WRONG_SECRET if wrong else CLIENT_SECRET
        return {"username": None, "password": None, "client_secret": secret}
    return {"password": WRONG_PASSWORD} if wrong else {}


def write_config(path: Path, sim: Simulator, warehouse_url: str, flavour: str) -> Path:
    lines = [
        "warehouse:",
        f"  url: {warehouse_url}",
        "zvms:",
        "  - name: sim",
        f"    url: {sim.url}",
        f"    auth: {sim.settings.auth}",
        "    retry_for: 1s",
        "    connect_retry_for: 0s",
    ]
    if flavour == "keycloak-client-credentials":
        lines.append("    client_secret: ${SIM_CLIENT_SECRET}")
    else:
        lines += [f"    username: {sim.settings.username}", "    password: ${SIM_PASSWORD}"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("flavour", list(FLAVOURS))
def test_faulty_passes_at_debug_leak_no_secret(
    flavour: str,
    secret_warehouse_url: str,
    issued: list[str],
    caplog: pytest.LogCaptureFixture,
    restore_logging: None,
    tmp_path: Path,
) -> None:
    # SQL statements, not every row read (the warehouse is checked whole below). First:
    # set_level also sets the capturing handler's level, which the last call leaves.
    caplog.set_level(logging.INFO, logger="sqlalchemy")
    for name in ("httpx", "httpcore", "hpack", "alembic", ""):
        caplog.set_level(logging.DEBUG, logger=name or None)
    options = FLAVOURS[flavour]
    sim = start_sim(seed=5, days=0.5, tasks_per_hour=60, **options)
    config_file = write_config(tmp_path / "config.yaml", sim, secret_warehouse_url, flavour)
    evidence = Evidence()
    results: list[RunResult] = []
    metrics = Metrics()
    metrics.track("sim")

    def client_factory(zvm: ZvmConfig) -> ZvmClient:
        # The metrics' clients, without the waits between retries (the faults are many).
        return ZvmClient(zvm, on_attempt=metrics.observe_attempt, sleep=lambda seconds: None)

    engine = make_engine(secret_warehouse_url)
    try:
        # Wrong credentials once: the login is refused.
        wrong = make_config(sim, secret_warehouse_url, zvm_keys=zvm_keys(flavour, wrong=True))
        results += sync_all(wrong, engine=engine, client_factory=client_factory)
        assert results[-1].failed and "refused the login" in str(results[-1].error)
        with ZvmClient(wrong.zvms[0]) as client, pytest.raises(ZvmAuthError) as refused:
            client.fetch_tasks()
        error = refused.value
        evidence.add("exception", error, repr(error), "".join(traceback.format_exception(error)))

        # Then faulty passes with the right ones.
        faults = sim.faults
        faults.error_rate, faults.retry_after, faults.drop_rate = 0.3, 0, 0.2
        faults.malformed_rate, faults.session_max_requests = 0.2, 4
        config = make_config(sim, secret_warehouse_url, zvm_keys=zvm_keys(flavour))
        for _ in range(3):
            results += sync_all(config, engine=engine, client_factory=client_factory)
            sim.advance(timedelta(minutes=30))
        assert any(result.succeeded for result in results), [r.error for r in results]
        assert sum(result.retries for result in results) > 3, "the faults should bite"

        # The ZVM goes away: connection errors, also at DEBUG.
        gone = make_config(sim, secret_warehouse_url, zvm_keys=zvm_keys(flavour) | NO_RETRY)
        sim.stop()
        results += sync_all(gone, engine=engine)
        assert results[-1].failed

        for result in results:
            evidence.add("RunResult", result, result.summary(), orjson.dumps(result.log_fields()))
            metrics.observe_pass(result)
        rows = read_status(config, engine=engine)
        for row in rows:
            metrics.observe_status(row)
            evidence.add("status --json (library)", orjson.dumps(row.to_dict()))
        rendered = io.StringIO()
        render_status(rows, console=Console(file=rendered, width=300))
        evidence.add("status (library)", rendered.getvalue())
        evidence.add("metrics", generate_latest(metrics.registry).decode())
        add_warehouse(evidence, engine)
    finally:
        sim.stop()
        engine.dispose()
    add_log_records(evidence, caplog.records)

    # The CLI, last: it sets its own logging up.
    env = {
        "SIM_PASSWORD": PASSWORD,
        "SIM_CLIENT_SECRET": CLIENT_SECRET,
        "ZVM_ETL_WAREHOUSE_URL": None,
        "ZVM_ETL_CONFIG": None,
    }
    runner = CliRunner(env=env)
    for args in (["config", "check"], ["status"], ["status", "--json"]):
        ran = runner.invoke(cli, ["--config", str(config_file), *args])
        assert ran.exit_code in (0, 4), ran.output  # 4: stale, as the last pass failed
        evidence.add(f"zvm-etl {' '.join(args)}", ran.stdout, ran.stderr)
    debug = ["--log-level", "DEBUG", "--log-format", "json"]
    ran = runner.invoke(cli, ["--config", str(config_file), *debug, "sync"])
    evidence.add("zvm-etl --log-level DEBUG sync", ran.stdout, ran.stderr)
    assert ran.exit_code == 1, ran.output  # the simulator is gone

    secrets = [PASSWORD, WRONG_PASSWORD, *issued]
    secrets += [
        base64.b64encode(f"admin:{p}".encode()).decode() for p in (PASSWORD, WRONG_PASSWORD)
    ]
    if flavour == "keycloak-client-credentials":
        secrets += [CLIENT_SECRET, WRONG_SECRET]
    if not secret_warehouse_url.startswith("sqlite"):
        secrets.append(WAREHOUSE_PASSWORD)
        assert WAREHOUSE_PASSWORD in secret_warehouse_url
    leaks = evidence.leaks(secrets)
    assert not leaks, "\n".join(leaks[:10])

    # Not vacuous: the secrets were in play and the evidence is what it claims to be.
    assert len(issued) >= 3, "session_max_requests should force several logins"
    assert any(name.startswith("log httpcore") for name in evidence.texts)
    assert evidence.texts["table rejected_tasks"], "malformed tasks should be rejected"
    assert any("refused the login" in text for text in evidence.texts["table etl_runs"])
    assert any("zvm_etl_passes_total" in text for text in evidence.texts["metrics"])
    if flavour == "session":
        # httpcore logs the login answer's headers: the session id was there, redacted.
        assert any(
            "x-zerto-session', '[redacted]'" in text
            for name, texts in evidence.texts.items()
            if name.startswith("log httpcore")
            for text in texts
        )


def test_a_warehouse_that_refuses_never_shows_its_password(tmp_path: Path) -> None:
    """The warehouse's own errors (refused connection, wrong password) name the URL with
    the password masked, in every command."""
    refused = f"postgresql+psycopg://etl:{WAREHOUSE_PASSWORD}@127.0.0.1:1/zerto"
    urls = [refused, f"sqlite:////nonexistent-dir/{WAREHOUSE_PASSWORD}/w.db"]
    mysql = os.environ.get("ZVM_ETL_TEST_MYSQL_URL")
    if mysql:  # a real server that refuses the password
        urls.append(
            make_url(mysql)
            .set(username="etl", password=WAREHOUSE_PASSWORD)
            .render_as_string(hide_password=False)
        )
    for url in urls:
        config = tmp_path / "config.yaml"
        config.write_text(
            f"warehouse:\n  url: {url}\nzvms:\n  - name: a\n    url: https://zvm.example.com\n"
            f"    username: u\n    password: {PASSWORD}\n    connect_retry_for: 0s\n"
        )
        runner = CliRunner(env={"ZVM_ETL_WAREHOUSE_URL": None})
        for args in (["status"], ["status", "--json"], ["--log-level", "DEBUG", "sync"]):
            result = runner.invoke(cli, ["--config", str(config), *args])
            shown = result.stdout + result.stderr + repr(result.exception)
            assert result.exit_code == 3, shown
            assert WAREHOUSE_PASSWORD not in shown or "sqlite" in url, shown
            assert PASSWORD not in shown
            assert "cannot" in shown


# ---- the redacting log filter ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        (
            "receive_response_headers.complete return_value=(b'HTTP/1.1', 200, b'OK', "
            "[(b'Server', b'nginx'), (b'x-zerto-session', b'SECRET-1'), (b'Age', b'0')])",
            ["(b'Server', b'nginx')", "(b'x-zerto-session', '[redacted]')", "(b'Age', b'0')"],
        ),
        ("[('Authorization', 'Basic SECRET-2=='), ('Accept', '*/*')]", ["('Accept', '*/*')"]),
        ('[(b"X-Zerto-Session", b"it\'s SECRET-3")]', ["X-Zerto-Session"]),
        ("(b'set-cookie', b'session=SECRET-4; HttpOnly')", ["set-cookie"]),
        ("sent Authorization: Bearer eyJ.SECRET-5.sig to the ZVM", ["Bearer [redacted] to the"]),
        ("proxy said Basic dXNlcjpTRUNSRVQtNg==", ["Basic [redacted]"]),
    ],
)
def test_redact_removes_header_values_and_credentials(line: str, kept: list[str]) -> None:
    redacted = redact(line)
    assert "SECRET" not in redacted and "dXNlcjpTRUNSRVQtNg" not in redacted
    for text in kept:
        assert text in redacted


def test_ordinary_lines_are_left_alone() -> None:
    for line in ["GET /v1/tasks 200", "x-zerto-session header missing", "Basic auth failed"]:
        assert redact(line) == line


def test_every_http_logger_redacts_whatever_the_handlers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The filter sits on the loggers (importing etl.zvm.client, as this module does,
    puts it there), so any handler an embedding program adds gets redacted lines."""
    caplog.set_level(logging.DEBUG)
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        assert any(isinstance(f, RedactHttpSecrets) for f in logger.filters), name
        level = logger.level
        logger.setLevel(logging.DEBUG)
        logger.debug("headers=%r", [(b"x-zerto-session", b"SECRET-7")])
        logger.setLevel(level)
    assert len(caplog.records) == len(HTTP_LOGGERS)
    assert all("SECRET" not in record.getMessage() for record in caplog.records)
    assert "SECRET" not in caplog.text


# ---- TLS and plain HTTP ------------------------------------------------------------------


def test_verify_tls_false_warns_once_per_pass_not_per_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sim = start_sim(days=0.5, tasks_per_hour=40, tls=True)
    sim.faults.session_max_requests = 3  # many logins and requests in one pass
    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        insecure = make_config(sim, url, zvm_keys={"verify_tls": False, "ca_bundle": None})
        verified = make_config(sim, url)
        caplog.set_level(logging.INFO)
        passes = []
        for config in (insecure, insecure, verified):
            caplog.clear()
            [result] = sync_all(config, engine=engine)
            assert result.succeeded, result.error
            warnings = [
                r
                for r in caplog.records
                if r.levelno == logging.WARNING and TLS_WARNING in r.getMessage()
            ]
            passes.append((result.requests, len(warnings)))
            sim.advance(timedelta(minutes=20))
    finally:
        sim.stop()
        engine.dispose()
    (requests_1, warned_1), (requests_2, warned_2), (_, warned_verified) = passes
    assert requests_1 > 5 and requests_2 > 3
    assert (warned_1, warned_2, warned_verified) == (1, 1, 0)


@pytest.mark.parametrize(
    "url", ["zvm.example.com", "zvm.example.com:9669", "10.0.0.5:9669", "//zvm:9669", "zvm/v1"]
)
def test_a_url_without_scheme_is_refused_never_taken_as_http(url: str) -> None:
    with pytest.raises(ConfigError, match="has no http:// or https:// scheme"):
        parse_config(
            {"zvms": [{"name": "a", "url": url, "username": "u", "password": "p"}]}, env={}
        )


def zvm_at(url: str, auth: str = "session") -> ZvmConfig:
    config = parse_config(
        {"zvms": [{"name": "a", "url": url, "auth": auth, "username": "u", "password": PASSWORD}]},
        env={},
    )
    return config.zvms[0]


@pytest.mark.parametrize("scheme", ["http", "https", "HTTPS"])
def test_credentials_go_only_to_the_scheme_the_url_names(scheme: str) -> None:
    sent: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url)
        if request.url.path == "/v1/session/add":
            return httpx.Response(200, headers={"x-zerto-session": "s"})
        return httpx.Response(200, json=[])

    with ZvmClient(
        zvm_at(f"{scheme}://zvm.test:9669"), transport=httpx.MockTransport(handler)
    ) as c:
        assert c.fetch_tasks() == []
    assert sent and {url.scheme for url in sent} == {scheme.lower()}


@pytest.mark.parametrize("auth", ["session", "keycloak"])
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_never_followed_with_credentials(auth: str, status: int) -> None:
    """A login or an API call answered with a redirect (say to plain http://) fails; the
    credentials are never sent anywhere else."""
    sent: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url)
        where = f"http://elsewhere.test{request.url.path}"
        return httpx.Response(status, headers={"Location": where})

    with (
        ZvmClient(zvm_at("https://zvm.test", auth), transport=httpx.MockTransport(handler)) as c,
        pytest.raises(ZvmResponseError, match=f"HTTP {status}"),
    ):
        c.fetch_tasks()
    assert sent and all(url.host == "zvm.test" for url in sent)
