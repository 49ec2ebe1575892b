"""Superset: an import bundle with the dashboards of :mod:`.panels`, for a PostgreSQL warehouse.

The bundle is Superset's export format (``metadata.yaml``, ``databases/``, ``datasets/``,
``charts/``, ``dashboards/``; version 1.0.0), kept as YAML under
``dashboards/superset/bundle/`` with the database URL a placeholder
(:data:`URL_PLACEHOLDER`). :func:`write_bundle_zip` puts a real URL in and zips it for
``superset import-dashboards`` or Superset's Import dialog. Objects link to each other by
UUIDs made from their names (uuid5), so importing twice updates, never duplicates.

Datasets are the warehouse's views (physical datasets) and ready queries (virtual
datasets: the query as PostgreSQL runs it, ``days`` 90 and every ZVM). Every chart carries
its ``query_context``, which Superset's chart data API needs to answer for a saved chart.
Each dashboard has a native ZVM filter (and the DR-test one a VPG filter); Superset applies
them to every chart whose dataset has that column. Superset refuses SQLite data sources,
and MariaDB would need its own datasets: the bundle is for PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from etl.dashboards.panels import ready_sql

__all__ = ["CHARTS", "DATASETS", "SUPERSET_DASHBOARDS", "URL_PLACEHOLDER", "superset_files"]

URL_PLACEHOLDER = "postgresql+psycopg2://READER:PASSWORD@HOST:5432/WAREHOUSE"
"""The database URL in the committed bundle; :func:`write_bundle_zip` replaces it."""
DATABASE_NAME = "zvm-etl warehouse"
READY_DAYS = "90"
_NAMESPACE = uuid.UUID("6f1c3a52-9d0e-4e43-9a7e-2b0f5e1d1818")
_VERSION = "1.0.0"


def _uuid(kind: str, name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{name}"))


TEXT, NUMBER, INTEGER = "VARCHAR", "FLOAT", "BIGINT"
TIME, DAY = "TIMESTAMP WITH TIME ZONE", "DATE"


@dataclass(frozen=True)
class Dataset:
    """A view (``ready`` None) or a ready query; ``columns`` as (name, SQL type)."""

    name: str
    description: str
    columns: tuple[tuple[str, str], ...]
    ready: str | None = None

    @property
    def uuid(self) -> str:
        return _uuid("dataset", self.name)


@dataclass(frozen=True)
class Chart:
    """One chart: a ``table`` (raw ``columns``, or ``groupby`` with ``metrics``), a
    ``big_number_total`` (one metric), an ``echarts_timeseries_bar`` (``x_axis`` by day,
    ``groupby`` series) or a ``pie`` (``groupby`` slices). Metrics are SQL (label, SQL)."""

    title: str
    dataset: Dataset
    viz: str
    columns: tuple[str, ...] = ()
    groupby: tuple[str, ...] = ()
    metrics: tuple[tuple[str, str], ...] = ()
    x_axis: str | None = None
    where: str = ""
    order_by: tuple[tuple[str, bool], ...] = ()  # (column, ascending) of a raw table
    width: int = 6

    @property
    def uuid(self) -> str:
        return _uuid("chart", self.title)


DR_EVIDENCE = Dataset(
    "dr_test_evidence",
    "The ready query dr_test_evidence (the last 90 days, every ZVM), with gap_rank: the "
    "gaps first (never tested, then the oldest last success).",
    (
        ("gap_rank", INTEGER),
        ("vpg_identifier", TEXT),
        ("vpg_name", TEXT),
        ("zvm", TEXT),
        ("priority_name", TEXT),
        ("tested_in_window", INTEGER),
        ("tests_in_window", INTEGER),
        ("failed_tests_in_window", INTEGER),
        ("last_success_started_at", TIME),
        ("days_since_last_success", NUMBER),
        ("last_success_rto_seconds", NUMBER),
        ("last_success_rto_source", TEXT),
        ("last_success_initiated_by", TEXT),
    ),
    ready="dr_test_evidence",
)
FAILOVER_TESTS = Dataset(
    "v_failover_tests",
    "One row per FailOverTest task and VPG it names.",
    (
        ("vpg_name", TEXT),
        ("zvm", TEXT),
        ("outcome", TEXT),
        ("started_at", TIME),
        ("duration_seconds", NUMBER),
        ("initiated_by", TEXT),
    ),
)
TASK_DAILY = Dataset(
    "v_task_daily",
    "One row per UTC day, ZVM, task type and state.",
    (
        ("day", DAY),
        ("zvm", TEXT),
        ("type", TEXT),
        ("state_name", TEXT),
        ("tasks", INTEGER),
        ("failures", INTEGER),
    ),
)
OPEN_TASKS = Dataset(
    "v_open_tasks",
    "One row per task not in a final state.",
    (
        ("started_at", TIME),
        ("age_seconds", NUMBER),
        ("zvm", TEXT),
        ("type", TEXT),
        ("state_name", TEXT),
        ("progress", INTEGER),
        ("initiated_by", TEXT),
    ),
)
TASKS = Dataset(
    "v_tasks",
    "One row per task.",
    (
        ("zvm", TEXT),
        ("type", TEXT),
        ("state", INTEGER),
        ("initiated_by", TEXT),
        ("started_at", TIME),
    ),
)
ETL_HEALTH = Dataset(
    "v_etl_health",
    "One row per ZVM: its last pass, its last successful pass, cursors and lag.",
    (
        ("zvm", TEXT),
        ("last_run_status", TEXT),
        ("last_success_at", TIME),
        ("seconds_since_last_success", NUMBER),
        ("lag_seconds", NUMBER),
        ("open_tasks", INTEGER),
        ("last_run_error", TEXT),
    ),
)
COMPLETENESS = Dataset(
    "completeness",
    "The ready query completeness: per ZVM, its last zvm-etl verify and the last that "
    "found the history complete.",
    (
        ("zvm", TEXT),
        ("last_verified_at", TIME),
        ("last_status", TEXT),
        ("last_missing_in_warehouse", INTEGER),
        ("proven_complete_at", TIME),
        ("seconds_since_proven_complete", NUMBER),
    ),
    ready="completeness",
)
DATASETS = (DR_EVIDENCE, FAILOVER_TESTS, TASK_DAILY, OPEN_TASKS, TASKS, ETL_HEALTH, COMPLETENESS)

_COUNT = (("tasks", "COUNT(*)"),)
_FAILED = ("failed_tasks", "SUM(CASE WHEN state = 4 THEN 1 ELSE 0 END)")

CHARTS: dict[str, tuple[Chart, ...]] = {
    "dr-tests": (
        Chart(
            "VPGs without a successful test in 90 days",
            DR_EVIDENCE,
            "big_number_total",
            metrics=(("untested_vpgs", "COUNT(*)"),),
            where="tested_in_window = 0",
            width=4,
        ),
        Chart(
            "DR tests per day by outcome",
            FAILOVER_TESTS,
            "echarts_timeseries_bar",
            groupby=("outcome",),
            metrics=(("tests", "COUNT(*)"),),
            x_axis="started_at",
            width=8,
        ),
        Chart(
            "DR-test evidence per VPG (never tested first)",
            DR_EVIDENCE,
            "table",
            columns=(
                "vpg_name",
                "zvm",
                "priority_name",
                "tested_in_window",
                "last_success_started_at",
                "days_since_last_success",
                "last_success_rto_seconds",
                "last_success_rto_source",
                "last_success_initiated_by",
            ),
            order_by=(("gap_rank", True),),
            width=12,
        ),
    ),
    "task-volume": (
        Chart(
            "Tasks per day by state",
            TASK_DAILY,
            "echarts_timeseries_bar",
            groupby=("state_name",),
            metrics=(("tasks", "SUM(tasks)"),),
            x_axis="day",
            width=8,
        ),
        Chart(
            "Failures by task type",
            TASK_DAILY,
            "table",
            groupby=("type", "zvm"),
            metrics=(("failures", "SUM(failures)"), ("tasks", "SUM(tasks)")),
            width=4,
        ),
    ),
    "open-tasks": (
        Chart("Open tasks now", OPEN_TASKS, "big_number_total", metrics=_COUNT, width=3),
        Chart(
            "Open tasks, oldest first",
            OPEN_TASKS,
            "table",
            columns=("started_at", "age_seconds", "zvm", "type", "state_name", "initiated_by"),
            order_by=(("started_at", True),),
            width=9,
        ),
    ),
    "initiators": (
        Chart("Tasks per initiator", TASKS, "pie", groupby=("initiated_by",), metrics=_COUNT),
        Chart(
            "Who ran what",
            TASKS,
            "table",
            groupby=("initiated_by", "type"),
            metrics=(*_COUNT, _FAILED),
        ),
    ),
    "etl-health": (
        Chart(
            "ETL per ZVM",
            ETL_HEALTH,
            "table",
            columns=tuple(name for name, _type in ETL_HEALTH.columns),
            order_by=(("zvm", True),),
        ),
        Chart(
            "History proven complete (zvm-etl verify)",
            COMPLETENESS,
            "table",
            columns=tuple(name for name, _type in COMPLETENESS.columns),
            order_by=(("zvm", True),),
        ),
    ),
}

SUPERSET_DASHBOARDS = {
    "dr-tests": "ZVM tasks: DR-test evidence",
    "task-volume": "ZVM tasks: volume and failures",
    "open-tasks": "ZVM tasks: open and stuck",
    "initiators": "ZVM tasks: who does what",
    "etl-health": "ZVM tasks: ETL health",
}
"""Slug and title of each dashboard: the same five as Grafana's."""


def _dataset_sql(dataset: Dataset) -> str | None:
    if dataset.ready is None:
        return None
    text = ready_sql(dataset.ready, dialect="postgresql").replace("$days", READY_DAYS)
    if dataset.name != "dr_test_evidence":
        return text
    return (
        "SELECT ROW_NUMBER() OVER (ORDER BY e.tested_in_window, "
        "CASE WHEN e.last_success_started_at IS NULL THEN 0 ELSE 1 END, "
        "e.last_success_started_at, COALESCE(e.vpg_name, e.vpg_identifier), "
        f"e.vpg_identifier) AS gap_rank, e.*\nFROM ({text}\n) AS e"
    )


def _dataset_yaml(dataset: Dataset) -> dict[str, Any]:
    sql = _dataset_sql(dataset)
    dttm = [name for name, kind in dataset.columns if kind in (TIME, DAY)]
    return {
        "table_name": dataset.name,
        "main_dttm_col": dttm[0] if dttm else None,
        "description": dataset.description,
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "schema": "public",
        "sql": sql,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "normalize_columns": False,
        "always_filter_main_dttm": False,
        "uuid": dataset.uuid,
        "metrics": [
            {
                "metric_name": "count",
                "verbose_name": "COUNT(*)",
                "metric_type": "count",
                "expression": "COUNT(*)",
                "description": None,
                "d3format": None,
                "extra": None,
                "warning_text": None,
            }
        ],
        "columns": [
            {
                "column_name": name,
                "verbose_name": None,
                "is_dttm": kind in (TIME, DAY),
                "is_active": True,
                "type": kind,
                "advanced_data_type": None,
                "groupby": True,
                "filterable": True,
                "expression": None,
                "description": None,
                "python_date_format": None,
                "extra": None,
            }
            for name, kind in dataset.columns
        ],
        "version": _VERSION,
        "database_uuid": _uuid("database", DATABASE_NAME),
    }


def _metric(label: str, sql: str) -> dict[str, Any]:
    return {"expressionType": "SQL", "sqlExpression": sql, "label": label}


def _chart_query(chart: Chart) -> tuple[dict[str, Any], dict[str, Any]]:
    """The chart's form data (``params``) and the query its data API runs."""
    metrics = [_metric(label, sql) for label, sql in chart.metrics]
    where = {"clause": "WHERE", "expressionType": "SQL", "sqlExpression": chart.where}
    filters = [where] if chart.where else []
    params: dict[str, Any] = {
        "viz_type": chart.viz,
        "adhoc_filters": filters,
        "row_limit": 1000,
    }
    query: dict[str, Any] = {
        "filters": [],
        "extras": {"where": chart.where, "having": ""},
        "applied_time_extras": {},
        "annotation_layers": [],
        "row_limit": 1000,
        "series_limit": 0,
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
    }
    if chart.viz == "table" and chart.columns:
        order = [[column, ascending] for column, ascending in chart.order_by]
        params |= {
            "query_mode": "raw",
            "all_columns": list(chart.columns),
            "order_by_cols": [json.dumps(pair) for pair in order],
        }
        # No "metrics" at all: a raw query (an empty list would group by every column).
        query |= {"columns": list(chart.columns), "orderby": order}
    elif chart.viz == "echarts_timeseries_bar":
        axis = {
            "timeGrain": "P1D",
            "columnType": "BASE_AXIS",
            "sqlExpression": chart.x_axis,
            "label": chart.x_axis,
            "expressionType": "SQL",
        }
        params |= {
            "x_axis": chart.x_axis,
            "time_grain_sqla": "P1D",
            "metrics": metrics,
            "groupby": list(chart.groupby),
            "stack": "Stack",
            "show_legend": True,
        }
        query |= {
            "columns": [axis, *chart.groupby],
            "metrics": metrics,
            "orderby": [[metrics[0], False]],
        }
    else:
        key = "metric" if chart.viz in ("big_number_total", "pie") else "metrics"
        params |= {key: metrics[0] if key == "metric" else metrics}
        params |= {"groupby": list(chart.groupby)} if chart.groupby else {}
        params |= {"query_mode": "aggregate"} if chart.viz == "table" else {}
        query |= {
            "columns": list(chart.groupby),
            "metrics": metrics,
            "orderby": [[metrics[0], False]],
        }
    return params, query


def _chart_yaml(chart: Chart) -> dict[str, Any]:
    params, query = _chart_query(chart)
    context = {
        "datasource": {"id": 0, "type": "table"},
        "force": False,
        "queries": [query],
        "form_data": params,
        "result_format": "json",
        "result_type": "full",
    }
    return {
        "slice_name": chart.title,
        "description": None,
        "certified_by": None,
        "certification_details": None,
        "viz_type": chart.viz,
        "params": params,
        "query_context": json.dumps(context, sort_keys=True),
        "cache_timeout": None,
        "uuid": chart.uuid,
        "version": _VERSION,
        "dataset_uuid": chart.dataset.uuid,
    }


def _position(title: str, charts: tuple[Chart, ...]) -> dict[str, Any]:
    """Superset's layout: rows of charts, 12 columns wide, in order."""
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": title}},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
    }
    rows: list[list[int]] = []
    for number, chart in enumerate(charts):
        if not rows or sum(charts[i].width for i in rows[-1]) + chart.width > 12:
            rows.append([])
        rows[-1].append(number)
    for row_number, members in enumerate(rows, start=1):
        row_id = f"ROW-{row_number}"
        position["GRID_ID"]["children"].append(row_id)
        position[row_id] = {
            "type": "ROW",
            "id": row_id,
            "children": [f"CHART-{i + 1}" for i in members],
            "parents": ["ROOT_ID", "GRID_ID"],
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
        }
        for i in members:
            position[f"CHART-{i + 1}"] = {
                "type": "CHART",
                "id": f"CHART-{i + 1}",
                "children": [],
                "parents": ["ROOT_ID", "GRID_ID", row_id],
                "meta": {
                    "width": charts[i].width,
                    "height": 60 if charts[i].viz == "table" else 40,
                    "chartId": i + 1,
                    "uuid": charts[i].uuid,
                    "sliceName": charts[i].title,
                },
            }
    return position


def _native_filter(slug: str, column: str, label: str, dataset: Dataset) -> dict[str, Any]:
    return {
        "id": f"NATIVE_FILTER-{slug}-{column}",
        "name": label,
        "filterType": "filter_select",
        "targets": [{"datasetUuid": dataset.uuid, "column": {"name": column}}],
        "controlValues": {
            "multiSelect": True,
            "enableEmptyFilter": False,
            "defaultToFirstItem": False,
            "searchAllOptions": False,
            "inverseSelection": False,
        },
        "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
        "cascadeParentIds": [],
        "scope": {"rootPath": ["ROOT_ID"], "excluded": []},
        "type": "NATIVE_FILTER",
        "description": "",
    }


def _dashboard_yaml(slug: str, title: str) -> dict[str, Any]:
    charts = CHARTS[slug]
    filters = [_native_filter(slug, "zvm", "ZVM", charts[0].dataset)]
    if slug == "dr-tests":
        filters.append(_native_filter(slug, "vpg_name", "VPG", DR_EVIDENCE))
    return {
        "dashboard_title": title,
        "description": None,
        "css": "",
        "slug": f"zvm-etl-{slug}",
        "certified_by": None,
        "certification_details": None,
        "published": True,
        "uuid": _uuid("dashboard", slug),
        "position": _position(title, charts),
        "metadata": {
            "color_scheme": "",
            "refresh_frequency": 0,
            "expanded_slices": {},
            "label_colors": {},
            "timed_refresh_immune_slices": [],
            "cross_filters_enabled": False,
            "default_filters": "{}",
            "chart_configuration": {},
            "native_filter_configuration": filters,
            "shared_label_colors": [],
        },
        "version": _VERSION,
    }


def _database_yaml() -> dict[str, Any]:
    return {
        "database_name": DATABASE_NAME,
        "sqlalchemy_uri": URL_PLACEHOLDER,
        "cache_timeout": None,
        "expose_in_sqllab": True,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_file_upload": False,
        "extra": {"allows_virtual_table_explore": True},
        "uuid": _uuid("database", DATABASE_NAME),
        "version": _VERSION,
    }


def _yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def superset_files() -> dict[str, str]:
    """Every file of the bundle, by path relative to the bundle's directory."""
    files = {
        "metadata.yaml": _yaml(
            {"version": _VERSION, "type": "Dashboard", "timestamp": "2026-01-01T00:00:00+00:00"}
        ),
        "databases/zvm_etl_warehouse.yaml": _yaml(_database_yaml()),
    }
    for dataset in DATASETS:
        files[f"datasets/zvm_etl_warehouse/{dataset.name}.yaml"] = _yaml(_dataset_yaml(dataset))
    for slug, title in SUPERSET_DASHBOARDS.items():
        for chart in CHARTS[slug]:
            name = "".join(c if c.isalnum() else "_" for c in chart.title).strip("_")
            files[f"charts/{name}.yaml"] = _yaml(_chart_yaml(chart))
        files[f"dashboards/{slug}.yaml"] = _yaml(_dashboard_yaml(slug, title))
    return files


def write_bundle_zip(bundle: Path, url: str, out: Path) -> Path:
    """Zip the bundle directory ``bundle`` into ``out`` for Superset's import, with ``url``
    (the warehouse's SQLAlchemy URL for Superset, password included) in place of the
    placeholder. The ZIP then holds that password: keep it out of the repository."""
    root = "zvm_etl_dashboards"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(bundle.rglob("*.yaml")):
            text = path.read_text(encoding="utf-8")
            if path.parent.name == "databases":
                text = text.replace(URL_PLACEHOLDER, url)
            archive.writestr(f"{root}/{path.relative_to(bundle).as_posix()}", text)
    return out
