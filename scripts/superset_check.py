"""``make superset-check``: the Superset bundle imported and drawn by a real Superset.

Run with the product's virtualenv; Superset itself lives in its own
(``build/superset/venv``, from ``dashboards/superset/requirements.txt``, which the Make
target installs: Superset pins SQLAlchemy < 2). The steps, each timed:

1. a PostgreSQL warehouse database of its own on ``$ZVM_ETL_TEST_POSTGRES_URL`` (a user that
   may create databases and roles), migrated, filled by a pass over the bundled simulator
   and checked by ``zvm-etl verify``; a login in the read-only role of ``sql/roles/``;
2. Superset's metadata database (SQLite under ``build/superset/``) created afresh:
   ``superset db upgrade``, an admin user, ``superset init``;
3. the bundle zipped with the reader's URL (``etl.dashboards.superset.write_bundle_zip``)
   and imported with ``superset import-dashboards``;
4. ``superset run`` on 127.0.0.1; through its REST API every chart's data endpoint must
   answer 200 with at least one row;
5. the DR-test dashboard, logged in, drawn by headless Chromium (Playwright on
   ``/usr/bin/chromium``) to ``--screenshot`` (default ``build/superset/dr-tests.png``).

Everything is removed afterwards (the database, the roles, the server). Exit 0 when every
step passed, 1 with the failing step's error otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from etl.dashboards.superset import CHARTS, write_bundle_zip
from etl.warehouse.db import make_engine, upgrade
from tests.readers import fill_from_simulator, reader_login
from tests.syncing import start_sim

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "superset"
SUPERSET = WORK / "venv" / "bin" / "superset"
BUNDLE = ROOT / "dashboards" / "superset" / "bundle"
CHROMIUM = "/usr/bin/chromium"
ADMIN = "admin"
TIMINGS: dict[str, float] = {}


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    started = time.monotonic()
    print(f"superset-check: {name}...", flush=True)
    yield
    TIMINGS[name] = time.monotonic() - started
    print(f"superset-check: {name}: {TIMINGS[name]:.1f} s", flush=True)


@contextlib.contextmanager
def warehouse(server_url: str) -> Iterator[URL]:
    """A new PostgreSQL database, migrated and filled from the simulator; yields the URL
    of a read-only login on it. Dropped afterwards."""
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = "zvm_etl_superset_" + secrets.token_hex(4)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE template0")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    database = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        upgrade(url)
        sim = start_sim(seed=18, days=6, tasks_per_hour=8)
        engine = make_engine(url)
        try:
            fill_from_simulator(sim, engine, url)
        finally:
            engine.dispose()
            sim.stop()
        with reader_login(database) as login:
            yield login
    finally:
        database.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def superset(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run([str(SUPERSET), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"superset {args[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def superset_env() -> dict[str, str]:
    """Superset's environment: a fresh configuration and metadata database under WORK."""
    metadata = WORK / "superset.db"
    metadata.unlink(missing_ok=True)
    config = WORK / "superset_config.py"
    config.write_text(
        f"SECRET_KEY = {secrets.token_urlsafe(32)!r}\n"
        f"SQLALCHEMY_DATABASE_URI = {'sqlite:///' + str(metadata)!r}\n"
        "TALISMAN_ENABLED = False\n"
        "WTF_CSRF_ENABLED = False\n",
        encoding="utf-8",
    )
    return os.environ | {"SUPERSET_CONFIG_PATH": str(config), "FLASK_APP": "superset"}


@contextlib.contextmanager
def running(env: dict[str, str], port: int) -> Iterator[str]:
    """``superset run`` on 127.0.0.1:``port`` until /health answers; stopped afterwards."""
    log = (WORK / "server.log").open("w")
    server = subprocess.Popen(
        [str(SUPERSET), "run", "-h", "127.0.0.1", "-p", str(port), "--with-threads"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"superset run did not answer /health: see {log.name}")
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def chart_rows(base: str, password: str) -> dict[str, int]:
    """Each chart's name and the rows its data endpoint returned (all must answer 200)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        login = client.post(
            "/api/v1/security/login",
            json={"username": ADMIN, "password": password, "provider": "db", "refresh": False},
        )
        login.raise_for_status()
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        listing = client.get("/api/v1/chart/", params={"q": "(page_size:100)"})
        listing.raise_for_status()
        rows: dict[str, int] = {}
        for chart in listing.json()["result"]:
            answer = client.get(f"/api/v1/chart/{chart['id']}/data/")
            if answer.status_code != 200:
                raise RuntimeError(f"{chart['slice_name']}: {answer.status_code} {answer.text}")
            rows[chart["slice_name"]] = sum(r["rowcount"] for r in answer.json()["result"])
        return rows


def session_cookie(base: str, password: str) -> str:
    """Superset's session cookie for the admin, from its login form (CSRF is off here)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        answer = client.post("/login/", data={"username": ADMIN, "password": password})
        cookie = client.cookies.get("session")
        if answer.status_code >= 400 or not cookie:
            raise RuntimeError(f"the login form answered {answer.status_code} and no session")
        return cookie


def screenshot(base: str, password: str, out: Path) -> None:
    """Draw the DR-test dashboard, logged in, in headless Chromium to ``out``."""
    from playwright.sync_api import sync_playwright

    cookie = session_cookie(base, password)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"],
        )
        try:
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            context.add_cookies([{"name": "session", "value": cookie, "url": base}])
            page = context.new_page()
            page.goto(f"{base}/superset/dashboard/zvm-etl-dr-tests/?standalone=1")
            page.wait_for_function(
                "n => document.querySelectorAll('.dashboard-chart canvas, "
                ".dashboard-chart table, .dashboard-chart .big-number-total').length >= n "
                "&& !document.querySelector('.dashboard-chart .loading')",
                arg=len(CHARTS["dr-tests"]),
                timeout=120_000,
            )
            page.wait_for_timeout(1500)  # the charts' enter animations
            page.screenshot(path=str(out))
        finally:
            browser.close()


def run(server_url: str, out: Path) -> dict[str, int]:
    WORK.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    with contextlib.ExitStack() as stack:  # the warehouse outlives the steps that read it
        with step("warehouse filled from the simulator"):
            login = stack.enter_context(warehouse(server_url))
        env = superset_env()
        with step("superset db upgrade, admin, init"):
            superset("db", "upgrade", env=env)
            superset(
                "fab", "create-admin", "--username", ADMIN, "--firstname", "zvm",
                "--lastname", "etl", "--email", "admin@example.invalid", "--password", password,
                env=env,
            )  # fmt: skip
            superset("init", env=env)
        with step("bundle imported"):
            url = login.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
            bundle = write_bundle_zip(BUNDLE, url, WORK / "bundle.zip")
            superset("import-dashboards", "-p", str(bundle), "-u", ADMIN, env=env)
            bundle.unlink()  # it holds the reader's password
        with step("superset run, /health"):
            base = stack.enter_context(running(env, free_port()))
        with step("every chart's data"):
            rows = chart_rows(base, password)
        with step("dashboard drawn in Chromium"):
            screenshot(base, password, out)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, default=WORK / "dr-tests.png")
    args = parser.parse_args(argv)
    server_url = os.environ.get("ZVM_ETL_TEST_POSTGRES_URL")
    if not server_url or make_url(server_url).get_backend_name() != "postgresql":
        print("superset-check: set ZVM_ETL_TEST_POSTGRES_URL to a PostgreSQL server URL")
        return 1
    if not SUPERSET.exists() or not shutil.which(CHROMIUM):
        print(f"superset-check: {SUPERSET} or {CHROMIUM} is missing: run make superset-check")
        return 1
    try:
        rows = run(server_url, args.screenshot)
    except Exception as exc:
        print(f"superset-check: FAILED: {exc}", file=sys.stderr)
        return 1
    expected = {chart.title for charts in CHARTS.values() for chart in charts}
    empty = sorted(name for name, count in rows.items() if count == 0)
    missing = sorted(expected - set(rows))
    for name, count in sorted(rows.items()):
        print(f"  {count:5d} rows  {name}")
    for name, seconds in TIMINGS.items():
        print(f"  {seconds:6.1f} s  {name}")
    if missing or empty:
        print(f"superset-check: FAILED: charts missing {missing}, charts without rows {empty}")
        return 1
    print(f"superset-check: passed; the dashboard is drawn in {args.screenshot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
