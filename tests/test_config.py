"""The configuration loader: every bad input refused up front, with file, key and problem."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from etl.cli import cli
from etl.config import load_config, parse_duration
from etl.errors import ConfigError

GOOD = """
warehouse:
  url: sqlite:///w.db
zvms:
  - name: nyc
    url: https://zvm-nyc.example.com:9669
    username: svc-etl
    password: ${ZVM_NYC_PASSWORD}
  - name: lon
    url: https://zvma-lon.example.com
    auth: keycloak
    client_id: etl-client
    client_secret: ${LON_SECRET}
sync:
  interval: 2m
  overlap: 90s
  backfill_since: 2024-01-31
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


ENV = {"ZVM_NYC_PASSWORD": "hunter2", "LON_SECRET": "s3cr3t"}


def problems_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env=ENV if env is None else env)
    return caught.value.problems


def test_example_config_is_valid() -> None:
    example = Path(__file__).parent.parent / "config.example.yaml"
    config = load_config(example, env={"ZVM_NYC_PASSWORD": "x"})
    assert config.zvms[0].name == "nyc"
    assert config.sync.overlap == timedelta(minutes=10)


def test_good_config_interpolates_and_types(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), env=ENV)
    nyc, lon = config.zvms
    assert nyc.password is not None and nyc.password.get_secret_value() == "hunter2"
    assert nyc.auth == "session" and nyc.verify_tls is True
    assert lon.client_secret is not None and lon.client_secret.get_secret_value() == "s3cr3t"
    assert config.sync.interval == timedelta(minutes=2)
    assert config.sync.overlap == timedelta(seconds=90)
    assert config.sync.backfill_since == datetime(2024, 1, 31, tzinfo=UTC)
    assert config.zvm("lon") is lon


def test_masked_hides_every_secret(tmp_path: Path) -> None:
    text = GOOD.replace("sqlite:///w.db", "postgresql+psycopg://etl:pgpass@db/zerto")
    masked = load_config(write(tmp_path, text), env=ENV).masked()
    dumped = repr(masked)
    for secret in ("hunter2", "s3cr3t", "pgpass"):
        assert secret not in dumped
    assert masked["zvms"][0]["password"] == "********"
    assert masked["sync"]["interval"] == "2m"


def test_warehouse_url_from_environment(tmp_path: Path) -> None:
    env = {**ENV, "ZVM_ETL_WAREHOUSE_URL": "sqlite:///other.db"}
    assert load_config(write(tmp_path, GOOD), env=env).warehouse.url == "sqlite:///other.db"


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not exist.*config.example.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("ZVM_ETL_CONFIG", str(path))
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    assert load_config().source == str(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("zvms: [\n  - name: a\n", "invalid YAML at line"),
        (GOOD + "\nbogus: 1\n", "bogus: unknown key"),
        (GOOD.replace("interval: 2m", "interval: soon"), "sync.interval: 'soon' is not a duration"),
        (GOOD.replace("interval: 2m", "interval: 0s"), "sync.interval: must be longer than 0s"),
        (
            GOOD.replace("https://zvm-nyc", "zvm-nyc"),
            "zvms[0] (nyc).url: 'zvm-nyc.example.com:9669' has no",
        ),
        (GOOD.replace("name: lon", "name: nyc"), "the ZVM name 'nyc' is used twice"),
        (
            GOOD.replace("    username: svc-etl\n", ""),
            "zvms[0] (nyc): username and password are required",
        ),
        (
            GOOD.replace("verify_tls", "x").replace("auth: keycloak", "auth: kerberos"),
            "zvms[1] (lon).auth",
        ),
        (
            GOOD.replace(
                "    username: svc-etl\n", "    username: svc-etl\n    verify_tls: maybe\n"
            ),
            "zvms[0] (nyc).verify_tls: Input should be a valid boolean",
        ),
        (GOOD.replace("backfill_since: 2024-01-31", "backfill_since: last week"), "is not a date"),
        ("warehouse:\n  url: sqlite:///a.db\n", "zvms: required but missing"),
        (GOOD.replace("sync:\n", "sync:\n  interval: 1m\n"), "the key 'interval' is written twice"),
        ("- a\n- b\n", "the top level must be a mapping"),
    ],
)
def test_bad_config_is_refused_with_key_and_reason(
    tmp_path: Path, text: str, expected: str
) -> None:
    problems = problems_of(tmp_path, text)
    assert any(expected in problem for problem in problems), problems
    assert all(problem.startswith(str(tmp_path / "config.yaml")) for problem in problems)


def test_missing_variable_names_key_and_variable(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, GOOD, env={"LON_SECRET": "x"})
    assert problems == [
        f"{tmp_path / 'config.yaml'}: zvms[0].password: the environment variable "
        "ZVM_NYC_PASSWORD is not set (export ZVM_NYC_PASSWORD=... or remove ${ZVM_NYC_PASSWORD})"
    ]


def test_wrong_typed_secret_is_not_echoed(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, GOOD.replace("${ZVM_NYC_PASSWORD}", "[9876543]"))
    assert problems and not any("9876543" in p for p in problems)


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("interval: 2m", "interval: soon").replace("https://zvm-nyc", "zvm-nyc")
    assert len(problems_of(tmp_path, text)) == 2


def test_ca_bundle_must_exist(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    username: svc-etl\n", "    username: svc-etl\n    ca_bundle: /no/such.pem\n", 1
    )
    assert any(
        "ca_bundle: file '/no/such.pem' does not exist" in p for p in problems_of(tmp_path, text)
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("2h", 7200), ("7d", 604800), ("45", 45), (12, 12), ("1.5m", 90)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "m", "10 minutes", "-5s", True, None])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_cli_config_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    path = write(tmp_path, GOOD)
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "check"])
    assert result.exit_code == 0, result.output
    assert "password: '********'" in result.output
    assert "hunter2" not in result.output and "s3cr3t" not in result.output
    assert "interval: 2m" in result.output

    bad = write(tmp_path, GOOD.replace("interval: 2m", "interval: soon"))
    result = CliRunner().invoke(cli, ["--config", str(bad), "config", "check"])
    assert result.exit_code == 2
    assert "sync.interval: 'soon' is not a duration" in result.output
