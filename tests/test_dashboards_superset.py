"""The Superset bundle of dashboards/superset/bundle/: linked by UUIDs as Superset's import
expects, every chart on columns its dataset declares, and every chart's query run as the
read-only role on a PostgreSQL warehouse the simulator filled.

A real Superset imports and draws the bundle in ``make superset-check``
(scripts/superset_check.py), too slow for every run; this file is the CI part. That the
committed bundle is what ``make dashboards`` writes is tested in test_dashboards_grafana.py.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

from etl.dashboards.superset import CHARTS, URL_PLACEHOLDER, Chart, write_bundle_zip
from tests.readers import fill_from_simulator, reader_login
from zvm_simulator import Simulator

BUNDLE = Path(__file__).resolve().parents[1] / "dashboards" / "superset" / "bundle"

pytestmark = pytest.mark.sim(seed=18, days=6, tasks_per_hour=8)


def documents(folder: str) -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in sorted((BUNDLE / folder).rglob("*.yaml"))]


def test_the_bundle_links_every_object_by_uuid_to_one_that_exists() -> None:
    metadata = yaml.safe_load((BUNDLE / "metadata.yaml").read_text())
    assert (metadata["version"], metadata["type"]) == ("1.0.0", "Dashboard")
    [database] = documents("databases")
    assert database["sqlalchemy_uri"] == URL_PLACEHOLDER and not database["allow_dml"]
    datasets = {d["uuid"]: d for d in documents("datasets")}
    assert all(d["database_uuid"] == database["uuid"] for d in datasets.values())
    charts = {c["uuid"]: c for c in documents("charts")}
    on_dashboards: list[str] = []
    for dashboard in documents("dashboards"):
        cells = [c for c in dashboard["position"].values() if isinstance(c, dict)]
        on_dashboards += [c["meta"]["uuid"] for c in cells if c["type"] == "CHART"]
        for row in (c for c in cells if c["type"] == "ROW"):
            widths = [dashboard["position"][child]["meta"]["width"] for child in row["children"]]
            assert sum(widths) <= 12, dashboard["slug"]
        for native in dashboard["metadata"]["native_filter_configuration"]:
            [target] = native["targets"]
            names = {c["column_name"] for c in datasets[target["datasetUuid"]]["columns"]}
            assert target["column"]["name"] in names
    assert sorted(on_dashboards) == sorted(charts), "each chart on exactly one dashboard"
    assert len(documents("dashboards")) == len(CHARTS) >= 4
    for chart in charts.values():
        dataset = datasets[chart["dataset_uuid"]]
        declared = {c["column_name"] for c in dataset["columns"]}
        context = json.loads(chart["query_context"])
        assert context["form_data"] == chart["params"]
        [query] = context["queries"]
        named = {c if isinstance(c, str) else c["sqlExpression"] for c in query["columns"]}
        named |= {column for column, _ascending in query["orderby"] if isinstance(column, str)}
        assert named <= declared, (chart["slice_name"], named - declared)
        assert ("metrics" in query) == (chart["params"].get("query_mode") != "raw")


def test_the_zip_holds_the_url_instead_of_the_placeholder(tmp_path: Path) -> None:
    url = "postgresql+psycopg2://reader:s3cret@db:5432/warehouse"
    out = write_bundle_zip(BUNDLE, url, tmp_path / "bundle.zip")
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        texts = {name: archive.read(name).decode() for name in names}
    assert len(names) == len(list(BUNDLE.rglob("*.yaml")))
    assert all(name.startswith("zvm_etl_dashboards/") for name in names)
    [database] = [text for name, text in texts.items() if "/databases/" in name]
    assert url in database and URL_PLACEHOLDER not in database
    assert not any(url in text for name, text in texts.items() if "/databases/" not in name)


def chart_sql(chart: Chart) -> str:
    """A query close to what Superset runs for the chart: its dataset as Superset wraps a
    virtual one, its columns, metrics, filter and grouping."""
    dataset = yaml.safe_load(
        (BUNDLE / "datasets" / "zvm_etl_warehouse" / f"{chart.dataset.name}.yaml").read_text()
    )
    source = f"({dataset['sql']}) AS virtual_table" if dataset["sql"] else dataset["table_name"]
    axis = [f"date_trunc('day', {chart.x_axis}) AS {chart.x_axis}"] if chart.x_axis else []
    groups = [*axis, *chart.groupby]
    metrics = [f"{sql} AS {label}" for label, sql in chart.metrics]
    select = [*chart.columns, *groups, *metrics]
    where = f" WHERE {chart.where}" if chart.where else ""
    keys = [str(n) for n in range(1, len(groups) + 1)]
    group_by = f" GROUP BY {', '.join(keys)}" if groups and metrics else ""
    return f"SELECT {', '.join(select)} FROM {source}{where}{group_by} LIMIT 1000"


@pytest.fixture
def postgresql(warehouse: Engine, backend: str) -> Iterator[Engine]:
    if backend != "postgresql":
        pytest.skip("the bundle is for a PostgreSQL warehouse (Superset refuses SQLite)")
    engine = sa.create_engine(warehouse.url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def test_every_chart_query_runs_as_the_reader_and_returns_rows(
    sim: Simulator, warehouse: Engine, warehouse_url: str, postgresql: Engine
) -> None:
    fill_from_simulator(sim, warehouse, warehouse_url)
    with reader_login(postgresql) as login:
        reader = sa.create_engine(login)
        try:
            with reader.connect() as connection:
                for chart in (chart for charts in CHARTS.values() for chart in charts):
                    result = connection.execute(sa.text(chart_sql(chart)))
                    rows = result.fetchall()
                    wanted = [*chart.columns, *chart.groupby, *(m for m, _ in chart.metrics)]
                    assert set(wanted) <= set(result.keys()), chart.title
                    assert rows, f"{chart.title}: no row, though the warehouse holds data for it"
        finally:
            reader.dispose()
