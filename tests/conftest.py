"""Fixtures shared by the whole test suite: a warehouse on every supported database.

``database_url`` runs a test once per database: SQLite (a file in ``tmp_path``, always),
PostgreSQL and MariaDB/MySQL when a server URL is given in the environment::

    ZVM_ETL_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test
    ZVM_ETL_TEST_MYSQL_URL=mysql+pymysql://root@127.0.0.1:3306/test

An unset variable skips that database, unless ``ZVM_ETL_TEST_REQUIRE_SERVERS=1`` (as in CI),
which makes it a failure. The server's user must be allowed to create databases: each test
gets a fresh, empty database of its own (``zvm_etl_t_<random hex>``), dropped afterwards,
so tests never see each other's tables and run safely in parallel under pytest-xdist.

``warehouse_url`` is a database migrated to head by Alembic (``etl.warehouse.db.upgrade``,
never ``metadata.create_all``: the tests check the schema users get), and ``warehouse`` an
Engine on it from ``make_engine``. The migrations run once per session and database; each
test gets a clean copy (a copied SQLite file, ``CREATE DATABASE ... TEMPLATE`` on
PostgreSQL; MariaDB has no templates, so there each test's database is migrated).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.warehouse.db import make_engine, upgrade
from tests.syncing import start_sim
from zvm_simulator import Simulator

SERVER_URL_ENV = {
    "postgresql": "ZVM_ETL_TEST_POSTGRES_URL",
    "mysql": "ZVM_ETL_TEST_MYSQL_URL",
}
SERVER_URL_EXAMPLE = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mysql": "mysql+pymysql://root@127.0.0.1:3306/test",
}
REQUIRE_SERVERS_ENV = "ZVM_ETL_TEST_REQUIRE_SERVERS"
DATABASE_PREFIX = "zvm_etl_t_"


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[Simulator]:
    """A started simulated ZVM with a frozen clock (``tests.syncing.start_sim``), stopped
    afterwards. A module or test chooses its settings with a marker::

        pytestmark = pytest.mark.sim(seed=11, tasks_per_hour=40)
    """
    marker = request.node.get_closest_marker("sim")
    simulator = start_sim(**(marker.kwargs if marker is not None else {}))
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture(scope="session")
def _server_admin() -> Iterator[dict[str, Engine]]:
    """One AUTOCOMMIT engine per database server, made on first use, disposed at the end."""
    engines: dict[str, Engine] = {}
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database a test runs on: every test that uses a warehouse runs once per backend."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, _server_admin: dict[str, Engine]) -> Iterator[str]:
    """The URL of a fresh, empty database; the test runs once per supported database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
        return
    admin = _admin_engine(backend, _server_admin)
    with _server_database(admin, backend) as url:
        yield url


@pytest.fixture(scope="session")
def _migrated(_server_admin: dict[str, Engine]) -> Iterator[dict[str, str]]:
    """Per backend, a database migrated to head once per session (per xdist worker): the
    template each ``warehouse_url`` copies. Dropped at the end."""
    templates: dict[str, str] = {}
    yield templates
    if "postgresql" in templates:
        _drop_database(_server_admin["postgresql"], "postgresql", templates["postgresql"])


@pytest.fixture
def warehouse_url(
    backend: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    _server_admin: dict[str, Engine],
    _migrated: dict[str, str],
) -> Iterator[str]:
    """A fresh database with the schema built by the Alembic migrations, up to head.

    The migrations run once per session and backend; each test gets a copy: SQLite's file
    copied with the backup API, PostgreSQL's database created from the migrated one as a
    ``TEMPLATE``. MariaDB has no templates: each test's database is migrated on its own.
    """
    if backend == "sqlite":
        if backend not in _migrated:
            path = tmp_path_factory.mktemp("template") / "warehouse.db"
            upgrade(f"sqlite:///{path}")
            _migrated[backend] = str(path)
        target = tmp_path / "warehouse.db"
        with (
            contextlib.closing(sqlite3.connect(_migrated[backend])) as source,
            contextlib.closing(sqlite3.connect(target)) as copy,
        ):
            source.backup(copy)
        yield f"sqlite:///{target}"
        return
    admin = _admin_engine(backend, _server_admin)
    if backend == "postgresql":
        if backend not in _migrated:
            name = DATABASE_PREFIX + "tpl_" + secrets.token_hex(6)
            with admin.connect() as connection:
                connection.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE template0")
            upgrade(admin.url.set(database=name).render_as_string(hide_password=False))
            _migrated[backend] = name
        with _server_database(admin, backend, template=_migrated[backend]) as url:
            yield url
        return
    with _server_database(admin, backend) as url:
        upgrade(url)
        yield url


@pytest.fixture
def warehouse(warehouse_url: str) -> Iterator[Engine]:
    """An Engine (``etl.warehouse.db.make_engine``) on the migrated warehouse."""
    engine = make_engine(warehouse_url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def _server_database(admin: Engine, backend: str, *, template: str | None = None) -> Iterator[str]:
    """A new database of its own on the server (a copy of ``template`` on PostgreSQL),
    dropped afterwards; yields its URL."""
    name = DATABASE_PREFIX + secrets.token_hex(6)
    with admin.connect() as connection:
        if backend == "postgresql":
            connection.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE {template or 'template0'}")
        else:
            connection.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(admin, backend, name)


def _admin_engine(backend: str, engines: dict[str, Engine]) -> Engine:
    if backend in engines:
        return engines[backend]
    variable = SERVER_URL_ENV[backend]
    url = os.environ.get(variable)
    if not url:
        message = (
            f"{variable} is not set: the {backend} tests need a server URL whose user may "
            f"create databases, e.g. {variable}={SERVER_URL_EXAMPLE[backend]}"
        )
        if os.environ.get(REQUIRE_SERVERS_ENV) == "1":
            pytest.fail(f"{message} ({REQUIRE_SERVERS_ENV}=1 makes this an error)")
        pytest.skip(message)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        engine.connect().close()
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        shown = engine.url.render_as_string(hide_password=True)
        pytest.fail(f"{variable}={shown}: cannot connect: {exc.orig}", pytrace=False)
    engines[backend] = engine
    return engine


def _drop_database(admin: Engine, backend: str, name: str) -> None:
    with admin.connect() as connection:
        if backend == "postgresql":
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        # MariaDB has no FORCE: end whatever a test left connected (its open transactions
        # would make DROP DATABASE wait for their metadata locks), and never wait long.
        leftovers = connection.execute(
            sa.text(
                "SELECT id FROM information_schema.processlist "
                "WHERE db = :name AND id <> CONNECTION_ID()"
            ),
            {"name": name},
        ).scalars()
        for session_id in list(leftovers):
            with contextlib.suppress(sa.exc.OperationalError):  # it ended meanwhile
                connection.exec_driver_sql(f"KILL {int(session_id)}")
        connection.exec_driver_sql("SET SESSION lock_wait_timeout = 30")
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
