"""The Grafana dashboards of dashboards/grafana/: generated, well formed, and every panel's
SQL run on PostgreSQL and MariaDB as the read-only role, on a warehouse the simulator filled.

No Grafana server is installable here: the panels are checked by running their SQL the way
Grafana would send it (tests/grafana_macros.py expands the variables and macros), not in
a running Grafana. The files tested are the committed JSON, which the first test proves
equal to the generator's output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Connection, Engine

from etl.dashboards.generate import existing_files, generated_files
from etl.dashboards.grafana import DATASOURCE_UID
from etl.dashboards.panels import DASHBOARDS, DIALECTS, Panel
from tests.grafana_macros import Value, expand, expand_macros, used_variables
from tests.readers import fill_from_simulator, reader_login
from zvm_simulator import Simulator

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "dashboards" / "grafana"
PANELS = {(d.slug, p.title): p for d in DASHBOARDS for p in d.panels}

pytestmark = pytest.mark.sim(seed=18, days=6, tasks_per_hour=8)
"""The ``sim`` fixture's ZVM (conftest.py): six days of history, a few hundred tasks."""


def dashboards(dialect: str) -> dict[str, dict[str, Any]]:
    """The committed dashboard models of one database, by slug."""
    folder = GRAFANA / "dashboards" / dialect
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def test_the_committed_files_are_what_make_dashboards_writes() -> None:
    committed = existing_files(ROOT / "dashboards")
    generated = generated_files()
    assert sorted(committed) == sorted(generated), "run make dashboards and commit its output"
    stale = [path for path, text in generated.items() if committed[path] != text]
    assert not stale, f"run make dashboards: these files differ from its output: {stale}"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_dashboards_are_well_formed_and_use_only_what_is_provisioned(dialect: str) -> None:
    sources = yaml.safe_load(
        (GRAFANA / f"provisioning/datasources/zvm-etl-{dialect}.yaml").read_text()
    )
    [source] = sources["datasources"]
    assert source["uid"] == DATASOURCE_UID[dialect] and sources["apiVersion"] == 1
    assert source["secureJsonData"]["password"].startswith("$")  # from the environment
    assert all(source[key].startswith("$") for key in ("url", "user"))
    providers = yaml.safe_load(
        (GRAFANA / f"provisioning/dashboards/zvm-etl-{dialect}.yaml").read_text()
    )
    [provider] = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].endswith(f"/{dialect}")

    models = dashboards(dialect)
    assert sorted(models) == sorted(d.slug for d in DASHBOARDS) and len(models) >= 4
    uids = [model["uid"] for model in models.values()]
    other = [m["uid"] for d in DIALECTS if d != dialect for m in dashboards(d).values()]
    assert len(set(uids)) == len(uids) and not set(uids) & set(other)
    for slug, model in models.items():
        ids = [panel["id"] for panel in model["panels"]]
        assert len(set(ids)) == len(ids), slug
        defined = {variable["name"] for variable in model["templating"]["list"]}
        assert {"zvm"} <= defined
        used: set[str] = set()
        for variable in model["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"]["uid"] == source["uid"]
                used |= used_variables(variable["query"])
        for panel in model["panels"]:
            [target] = panel["targets"]
            assert panel["datasource"]["uid"] == target["datasource"]["uid"] == source["uid"]
            assert panel["datasource"]["type"] == source["type"]
            used |= used_variables(target["rawSql"])
            described = PANELS[slug, panel["title"]]
            assert panel["type"] == described.kind
            if described.time_series:
                assert target["format"] == "time_series" and 'AS "time"' in expand_macros(
                    target["rawSql"], dialect=dialect, start=NOW, end=NOW
                )
        assert used <= defined, f"{slug} uses undefined variables: {used - defined}"
        assert defined <= used, f"{slug} defines unused variables: {defined - used}"


NOW = datetime(2017, 4, 21, 5, 6, 17, tzinfo=UTC)


def test_macros_expand_as_grafana_documents_them() -> None:
    pg_start = datetime(2017, 4, 21, 5, 1, 17, tzinfo=UTC)
    pg = expand_macros(
        "$__timeFilter(c) AND $__timeGroupAlias(c,'1d') $__timeGroup(c, '5m')",
        dialect="postgresql",
        start=pg_start,
        end=NOW,
    )
    assert pg == (
        "c BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z' AND "
        'floor(extract(epoch from c)/86400)*86400 AS "time" floor(extract(epoch from c)/300)*300'
    )
    my_start, my_end = (datetime.fromtimestamp(s, UTC) for s in (1494410783, 1494410983))
    my = expand_macros(
        "$__timeFilter(c) AND $__timeGroupAlias(c,'1d') $__timeFrom()",
        dialect="mysql",
        start=my_start,
        end=my_end,
    )
    assert my == (
        "c BETWEEN FROM_UNIXTIME(1494410783) AND FROM_UNIXTIME(1494410983) AND "
        'UNIX_TIMESTAMP(c) DIV 86400 * 86400 AS "time" FROM_UNIXTIME(1494410783)'
    )
    with pytest.raises(ValueError, match="not one the dashboards use"):
        expand_macros("$__timeEpoch(c)", dialect="mysql", start=my_start, end=my_end)
    assert (
        expand(
            "zvm IN ($zvm) AND d = $days",
            dialect="mysql",
            start=NOW,
            end=NOW,
            variables={"zvm": ["nyc", "O'Brien's"], "days": "90"},
        )
        == "zvm IN ('nyc','O''Brien''s') AND d = 90"
    )


# ---- every panel on a warehouse the simulator filled -------------------------------------


@pytest.fixture
def server(warehouse: Engine, backend: str) -> Iterator[Engine]:
    """An AUTOCOMMIT admin engine on the per-test PostgreSQL or MariaDB warehouse."""
    if backend == "sqlite":
        pytest.skip("Grafana reads PostgreSQL or MariaDB/MySQL: SQLite has no data source")
    engine = sa.create_engine(warehouse.url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def variable_values(
    connection: Connection, model: dict[str, Any], dialect: str
) -> dict[str, Value]:
    """Each variable's value as a dashboard opens: "All" of a query variable (its query run
    as the reader, after the variables it names), a custom variable's default."""
    values: dict[str, Value] = {}
    for variable in model["templating"]["list"]:
        if variable["type"] == "custom":
            values[variable["name"]] = variable["current"]["value"]
            continue
        sql = expand(variable["query"], dialect=dialect, start=NOW, end=NOW, variables=values)
        rows = connection.execute(sa.text(sql)).mappings().all()
        column = "__value" if rows and "__value" in rows[0] else next(iter(rows[0]))
        values[variable["name"]] = [str(row[column]) for row in rows]
        assert values[variable["name"]], f"the variable {variable['name']} has no value"
    return values


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def check_panel(panel: Panel, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    missing = set(panel.columns) - set(columns)
    assert not missing, f"{panel.title}: no column {sorted(missing)} (got {columns})"
    assert rows, f"{panel.title}: no row, though the warehouse holds data for it"
    if panel.time_series:
        times = [row[columns.index("time")] for row in rows]
        assert all(is_number(t) for t in times), f"{panel.title}: time is not epoch seconds"
        assert times == sorted(times), f"{panel.title}: not ordered by time"
        assert all(float(t) % 86400 == 0 for t in times)
    if panel.kind in ("stat", "barchart"):
        value = panel.columns[-1]
        assert all(is_number(row[columns.index(value)]) for row in rows), panel.title


def test_every_panel_runs_as_the_reader_and_returns_what_its_chart_needs(
    sim: Simulator, warehouse: Engine, warehouse_url: str, server: Engine
) -> None:
    fill_from_simulator(sim, warehouse, warehouse_url)
    dialect = "postgresql" if server.dialect.name == "postgresql" else "mysql"
    start, end = sim.now() - timedelta(days=90), sim.now() + timedelta(days=1)
    with reader_login(server) as login:
        reader = sa.create_engine(login)
        try:
            with reader.connect() as connection:
                if dialect == "mysql":  # what the data source's timezone setting does
                    connection.exec_driver_sql("SET time_zone = '+00:00'")
                for slug, model in dashboards(dialect).items():
                    values = variable_values(connection, model, dialect)
                    for panel in model["panels"]:
                        [target] = panel["targets"]
                        sql = expand(
                            target["rawSql"],
                            dialect=dialect,
                            start=start,
                            end=end,
                            variables=values,
                        )
                        result = connection.execute(sa.text(sql))
                        rows = [tuple(row) for row in result]
                        check_panel(PANELS[slug, panel["title"]], list(result.keys()), rows)
        finally:
            reader.dispose()
