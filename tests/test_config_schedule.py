"""The scheduler and health keys of ``sync``: defaults, derived defaults, refusals, and
``config.example.yaml`` documenting every one of them with its default."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from etl.config import SyncConfig, load_config
from etl.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "config.example.yaml"
BASE = """
zvms:
  - name: nyc
    url: https://zvm-nyc.example.com:9669
    username: svc-etl
    password: x
sync:
  interval: 2m
"""


def load(tmp_path: Path, extra: str = "") -> SyncConfig:
    path = tmp_path / "config.yaml"
    path.write_text(BASE + extra)
    return load_config(path, env={}).sync


def test_defaults(tmp_path: Path) -> None:
    sync = load(tmp_path)
    assert sync.jitter == timedelta(seconds=10)
    assert sync.misfire_grace is None and sync.misfire_threshold == timedelta(minutes=2)
    assert sync.max_backoff == timedelta(hours=1)
    assert sync.shutdown_grace == timedelta(seconds=20)
    assert sync.stale_after is None and sync.stale_threshold == timedelta(minutes=6)
    assert sync.retention_warning == 0.5


def test_explicit_values(tmp_path: Path) -> None:
    sync = load(
        tmp_path,
        "  jitter: 0s\n  misfire_grace: 30s\n  max_backoff: 2h\n  shutdown_grace: 1m\n"
        "  stale_after: 1h\n  retention_warning: 0.8\n",
    )
    assert sync.jitter == timedelta(0)
    assert sync.misfire_threshold == timedelta(seconds=30)
    assert sync.max_backoff == timedelta(hours=2)
    assert sync.shutdown_grace == timedelta(minutes=1)
    assert sync.stale_threshold == timedelta(hours=1)
    assert sync.retention_warning == 0.8


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("  jitter: soon\n", "sync.jitter: 'soon' is not a duration"),
        ("  stale_after: 0s\n", "sync.stale_after: must be longer than 0s"),
        ("  misfire_grace: 0s\n", "sync.misfire_grace: must be longer than 0s"),
        ("  max_backoff: 0s\n", "sync.max_backoff: must be longer than 0s"),
        ("  shutdown_grace: -1s\n", "sync.shutdown_grace: '-1s' is not a duration"),
        ("  retention_warning: 1.5\n", "sync.retention_warning: Input should be less than"),
        ("  retention_warning: 0\n", "sync.retention_warning: Input should be greater than 0"),
        ("  stale: 5m\n", "sync.stale: unknown key"),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, extra)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_example_documents_every_sync_key_with_its_default() -> None:
    text = EXAMPLE.read_text()
    section = text[text.index("\nsync:\n") :]
    written = set(re.findall(r"^  ([a-z_]+):", section, flags=re.MULTILINE))
    assert written == set(SyncConfig.model_fields)
    assert load_config(EXAMPLE, env={"ZVM_NYC_PASSWORD": "x"}).sync == SyncConfig()
