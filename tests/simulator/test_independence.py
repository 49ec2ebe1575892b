"""The simulator stands on its own: it imports nothing from the ETL, the product does not
depend on what only the simulator needs, and its wire format matches Zerto's documentation
literally (not merely whatever the ETL's parser reads back)."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import zvm_simulator
from zvm_simulator import Simulator

ROOT = Path(__file__).resolve().parents[2]

# Zerto 6.0 help, "Tasks API": the schema template's dates, as written on the wire.
DOC_SAMPLE_DATE = rb'"\/Date(928142400000+0300)\/"'
# Zerto 7.0 help, "Tasks API : Format": a completed task's dates, without an offset.
DOC_EXAMPLE_STARTED, DOC_EXAMPLE_COMPLETED = 1520423876840, 1520423877045
# The documented key order of a task object (6.0 template, 7.0 example).
DOC_KEYS = [
    "CompleteReason",
    "Completed",
    "InitiatedBy",
    "IsCancellable",
    "Link",
    "RelatedEntities",
    "Started",
    "Status",
    "TaskIdentifier",
    "Type",
]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_simulator_imports_nothing_from_etl() -> None:
    package = Path(zvm_simulator.__file__).parent
    offenders = {
        f"{path.name}: {name}"
        for path in package.rglob("*.py")
        for name in _imports(path)
        if name == "etl" or name.startswith("etl.")
    }
    assert not offenders
    probe = (
        "import sys, zvm_simulator, zvm_simulator.cli, zvm_simulator.tls; "
        "print(sorted(m for m in sys.modules if m == 'etl' or m.startswith('etl.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


def test_the_product_does_not_depend_on_what_only_the_simulator_needs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"]).lower()
    assert "trustme" not in runtime
    assert project["optional-dependencies"]["simulator"] == ["trustme>=1.1"]
    probe = (
        "import sys, etl.cli, etl.sync, etl.scheduler, etl.status, etl.metrics; "
        "print('trustme' in sys.modules, 'zvm_simulator' in sys.modules)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.split() == ["False", "False"]


@pytest.fixture
def sim() -> Simulator:
    return Simulator(days=0, tasks_per_hour=0, speed=0, start=datetime(2030, 1, 1, tzinfo=UTC))


def _raw_list(sim: Simulator) -> tuple[bytes, list[dict[str, Any]]]:
    with sim:
        login = httpx.post(f"{sim.url}/v1/session/add", auth=("admin", "zerto"))
        headers = {"x-zerto-session": login.headers["x-zerto-session"]}
        response = httpx.get(f"{sim.url}/v1/tasks", headers=headers)
    assert response.status_code == 200
    return response.content, response.json()


def test_windows_dates_are_written_as_the_documentation_shows(sim: Simulator) -> None:
    start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=928142400000)
    sim.set_time(start + timedelta(hours=1))
    sim.add_task(started=start, duration=timedelta(0))
    body, [task] = _raw_list(sim)
    assert body.count(DOC_SAMPLE_DATE) == 2  # Started and Completed, slashes escaped
    assert list(task) == DOC_KEYS
    assert list(task["Status"]) == ["Progress", "State"]
    assert list(task["Link"]) == ["href", "identifier", "rel", "type"]
    assert list(task["RelatedEntities"]) == ["Hosts", "Sites", "Vpgs", "FlrSessions"]


def test_dates_without_an_offset_as_in_the_documented_example() -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    sim = Simulator(
        days=0,
        tasks_per_hour=0,
        speed=0,
        date_offsets=False,
        start=epoch + timedelta(milliseconds=DOC_EXAMPLE_COMPLETED + 1000),
    )
    sim.add_task(
        started=epoch + timedelta(milliseconds=DOC_EXAMPLE_STARTED),
        duration=timedelta(milliseconds=DOC_EXAMPLE_COMPLETED - DOC_EXAMPLE_STARTED),
    )
    body, [task] = _raw_list(sim)
    assert b'"Started":"\\/Date(1520423876840)\\/"' in body
    assert b'"Completed":"\\/Date(1520423877045)\\/"' in body
    assert task["Started"] == "/Date(1520423876840)/"


def test_appliance_dates_are_iso_8601_with_milliseconds() -> None:
    moment = datetime(2025, 2, 8, 21, 50, 46, 574000, tzinfo=UTC)
    for offsets, expected in ((False, "2025-02-08T21:50:46.574Z"), (True, None)):
        sim = Simulator(
            days=0,
            tasks_per_hour=0,
            speed=0,
            date_style="appliance",
            date_offsets=offsets,
            utc_offset_minutes=330,
            start=moment + timedelta(hours=1),
        )
        sim.add_task(started=moment, duration=timedelta(0))
        _, [task] = _raw_list(sim)
        assert task["Started"] == (expected or "2025-02-09T03:20:46.574+05:30")
