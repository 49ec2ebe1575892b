"""`zvm-etl report`: the page's data on every database, and the page in a real browser.

The browser test loads the page in Debian's Chromium, headless, with every request other
than the file itself refused: no console error, no failed request, every chart drawn with
data, every table filled. Chromium is required when ZVM_ETL_TEST_REQUIRE_BROWSER=1 (CI's
.ci/run installs it and sets that); elsewhere the test is skipped without it.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from etl.cli import cli
from etl.report.data import read_report_data
from etl.report.page import write_report
from tests.analyst import NOW, TASKS, load_scenario

CHROMIUM = "/usr/bin/chromium"
CHARTS = {"tasks_per_day", "weekly_failures", "durations", "dr_coverage", "initiators"}
TABLES = {"reasons", "durations", "slowest", "dr_tests", "health"}


def test_report_data_and_page(warehouse: Engine, tmp_path: Path) -> None:
    load_scenario(warehouse)
    since = NOW - timedelta(days=60)
    data = read_report_data(warehouse, since=since)
    in_period = [t for t in TASKS if t.started_at >= since.replace(hour=0, minute=0)]
    assert int(data.daily["tasks"].sum()) == len(in_period)
    assert list(data.dr_tests["vpg_identifier"]) == ["vpg-e", "vpg-b", "vpg-c", "vpg-a"]
    out = tmp_path / "report.html"
    write_report(warehouse, out, since=since)
    page = out.read_text(encoding="utf-8")
    assert "Médical Records ✓" in page and "Jos&#x27;" not in page and "José Álvarez" in page
    assert "vpg-c" in page  # no name known: the identifier is shown
    assert "New York DC → London – Docklands" in page  # vpg-a's protected and recovery sites
    assert "New York DC → –" in page  # vpg-b's recovery site was never listed
    # The RTO of the last successful test: the Recovery Report's where its operation is known
    # (vpg-a: 75 s, the task took 120 s), else the task's duration, marked as such (vpg-b).
    assert '<td class="num">2 min</td><td class="num">75 s <span class="id">report</span>' in page
    assert '<td class="num">3 min</td><td class="num">3 min <span class="id">task</span>' in page
    # Completeness: nyc last proven complete 30 hours ago, then found incomplete; lon failed.
    assert list(data.completeness["zvm"]) == ["lon", "nyc"]
    proven = NOW - timedelta(hours=30)
    assert f'<td>{proven:%Y-%m-%d %H:%M} UTC</td><td><span class="badge bad">incomplete' in page
    assert '<td>–</td><td><span class="badge bad">failed</span>' in page
    assert all(f'data-chart="{key}"' in page for key in CHARTS)
    assert all(f'data-table="{key}"' in page for key in TABLES)
    from plotly.offline import get_plotlyjs

    ours = page.replace(get_plotlyjs(), "")  # plotly.js itself names URLs it never loads here
    assert len(ours) < len(page) - 1_000_000  # it was inlined
    assert "<script src=" not in ours and "<link" not in ours and "http" not in ours
    lon = read_report_data(warehouse, since=since, zvm="lon")
    assert set(lon.daily["zvm"]) == {"lon"}
    assert list(lon.dr_tests["vpg_identifier"]) == ["vpg-e", "vpg-c"]


def test_report_command_on_an_empty_warehouse(warehouse: Engine, tmp_path: Path) -> None:
    url = warehouse.url.render_as_string(hide_password=False)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"warehouse:\n  url: {url}\n"
        "zvms:\n  - {name: nyc, url: 'https://nyc:9669', username: u, password: p}\n"
    )
    out = tmp_path / "sub" / "report.html"
    result = CliRunner().invoke(cli, ["--config", str(config), "report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"Wrote the report to {out.resolve()}" in result.stdout
    page = out.read_text(encoding="utf-8")
    assert 'data-empty="tasks_per_day"' in page and "No task started in this period." in page


def test_the_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("ZVM_ETL_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from etl.warehouse.db import make_engine, upgrade

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        load_scenario(engine)
        out = tmp_path / "report.html"
        write_report(engine, out, since=NOW - timedelta(days=60))
    finally:
        engine.dispose()
    seen = _load_in_chromium(out, tmp_path)
    assert seen["console_errors"] == [] and seen["page_errors"] == []
    assert seen["failed_requests"] == [] and seen["blocked"] == []
    assert set(seen["charts"]) == CHARTS
    for key, chart in seen["charts"].items():
        assert chart["svg"] and chart["marks"] > 0, key
    assert set(seen["tables"]) == TABLES
    assert all(rows > 0 for rows in seen["tables"].values()), seen["tables"]
    if os.environ.get("ZVM_ETL_REPORT_SCREENSHOT"):
        shutil.copy(tmp_path / "report.png", os.environ["ZVM_ETL_REPORT_SCREENSHOT"])


_INSPECT = """() => {
  const charts = {};
  for (const box of document.querySelectorAll('[data-chart]')) {
    const plot = box.querySelector('.js-plotly-plot');
    const marks = plot ? plot.querySelectorAll(
      '.trace .point, .trace path.box, .trace .bars path, .trace path.js-line').length : 0;
    charts[box.dataset.chart] = {svg: !!(plot && plot.querySelector('svg.main-svg')), marks};
  }
  const tables = {};
  for (const t of document.querySelectorAll('table[data-table]')) {
    tables[t.dataset.table] = t.querySelectorAll('tbody tr').length;
  }
  return {charts, tables};
}"""


def _load_in_chromium(page_path: Path, tmp_path: Path) -> dict[str, Any]:
    from playwright.sync_api import Route, sync_playwright

    target = page_path.resolve().as_uri()
    seen: dict[str, Any] = {
        "console_errors": [],
        "page_errors": [],
        "failed_requests": [],
        "blocked": [],
    }

    def only_the_file(route: Route) -> None:
        if route.request.url == target:
            route.continue_()
        else:
            seen["blocked"].append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            viewport={"width": 1280, "height": 900},
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page()
            page.route("**/*", only_the_file)
            page.on(
                "console",
                lambda m: seen["console_errors"].append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: seen["page_errors"].append(str(e)))
            page.on("requestfailed", lambda r: seen["failed_requests"].append(r.url))
            page.goto(target, wait_until="load")
            page.wait_for_function(
                "[...document.querySelectorAll('[data-chart]')]"
                ".every(box => box.querySelector('svg.main-svg'))",
                timeout=30_000,
            )
            page.wait_for_timeout(500)
            seen.update(page.evaluate(_INSPECT))
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    return seen
