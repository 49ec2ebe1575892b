"""sql/roles/: the read-only role can read every table and view, and do nothing else.

Each test applies the script with the database's own client (psql, mariadb), twice (it is
idempotent), gives the role to a new login, connects as that login and tries everything.
Role and user names are unique per run (roles are server-wide) and dropped afterwards.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Read-0nly-pw"
WRITES = [
    "INSERT INTO zvms (name, url, added_at) VALUES ('x', 'https://x', '2025-01-01')",
    "UPDATE tasks SET progress = 1",
    "DELETE FROM etl_runs",
    "CREATE TABLE intruder (a integer)",
    "CREATE VIEW v_intruder AS SELECT 1 AS a",
    "DROP TABLE rejected_tasks",
    "ALTER TABLE tasks ADD COLUMN extra integer",
]


@pytest.fixture
def server(warehouse_url: str) -> Iterator[Engine]:
    """An admin engine on the migrated per-test database (PostgreSQL or MariaDB only)."""
    url = make_url(warehouse_url)
    if url.get_backend_name() == "sqlite":
        pytest.skip("SQLite has no roles: file permissions decide who reads it")
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def _objects(engine: Engine) -> list[str]:
    inspector = sa.inspect(engine)
    names = inspector.get_table_names() + inspector.get_view_names()
    assert {"tasks", "v_tasks", "v_task_vpgs"} <= set(names)
    return names


def _check_read_only(login_url: sa.URL, names: list[str], *, temporary: str) -> None:
    reader = sa.create_engine(login_url)
    try:
        with reader.connect() as connection:
            for name in names:
                connection.execute(sa.text(f"SELECT * FROM {name}")).fetchall()
        for statement in [*WRITES, temporary]:
            with pytest.raises(sa.exc.DBAPIError) as caught, reader.begin() as connection:
                connection.execute(sa.text(statement))
            message = str(caught.value.orig).lower()
            refused = ("denied", "permission", "must be owner")
            assert any(word in message for word in refused), (statement, message)
    finally:
        reader.dispose()


def test_postgresql_reader(server: Engine) -> None:
    if server.dialect.name != "postgresql":
        pytest.skip("the PostgreSQL script")
    psql = shutil.which("psql")
    assert psql, "psql (the PostgreSQL client) is needed to apply sql/roles/postgresql.sql"
    suffix = secrets.token_hex(4)
    reader, login = f"zvm_etl_reader_{suffix}", f"zvm_etl_bi_{suffix}"
    admin_url = server.url.set(drivername="postgresql").render_as_string(hide_password=False)
    owner = server.url.username or "postgres"
    try:
        for _ in range(2):
            done = subprocess.run(
                [
                    psql,
                    *("-X", "-q", "-v", f"reader={reader}", "-v", f"owner={owner}"),
                    *("-f", str(ROOT / "sql/roles/postgresql.sql"), admin_url),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, done.stderr
        with server.connect() as connection:
            connection.exec_driver_sql(
                f"CREATE ROLE {login} LOGIN PASSWORD '{PASSWORD}' IN ROLE {reader}"
            )
            # A later migration's new view is readable too (default privileges).
            connection.exec_driver_sql("CREATE VIEW v_later AS SELECT 1 AS a")
        names = _objects(server)
        assert "v_later" in names
        login_url = server.url.set(username=login, password=PASSWORD)
        _check_read_only(login_url, names, temporary="CREATE TEMPORARY TABLE t (a integer)")
    finally:
        with server.connect() as connection:
            connection.exec_driver_sql(f"DROP OWNED BY {reader}, {login}")
            connection.exec_driver_sql(f"DROP ROLE IF EXISTS {login}")
            connection.exec_driver_sql(f"DROP ROLE IF EXISTS {reader}")


def test_mariadb_reader(server: Engine) -> None:
    if server.dialect.name not in ("mysql", "mariadb"):
        pytest.skip("the MariaDB script")
    client = shutil.which("mariadb") or shutil.which("mysql")
    assert client, "the mariadb client is needed to apply sql/roles/mariadb.sql"
    suffix = secrets.token_hex(4)
    reader, login = f"zvm_etl_reader_{suffix}", f"zvm_etl_bi_{suffix}"
    url = server.url
    script = ROOT / "sql/roles/mariadb.sql"
    command = [client, "-h", url.host or "127.0.0.1", "-P", str(url.port or 3306)]
    command += ["-u", url.username or "root"]
    if url.password:
        command.append(f"-p{url.password}")
    command += [
        str(url.database),
        "-e",
        f"SET @reader = '{reader}'; SOURCE {script};",
    ]
    try:
        for _ in range(2):
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stderr
        with server.connect() as connection:
            for host in ("%", "localhost"):
                user = f"'{login}'@'{host}'"
                connection.execute(sa.text(f"CREATE USER {user} IDENTIFIED BY '{PASSWORD}'"))
                connection.execute(sa.text(f"GRANT {reader} TO {user}"))
                connection.execute(sa.text(f"SET DEFAULT ROLE {reader} FOR {user}"))
            connection.exec_driver_sql("CREATE TABLE later (a integer)")  # a later migration's
        names = _objects(server)
        assert "later" in names
        login_url = url.set(username=login, password=PASSWORD)
        _check_read_only(login_url, names, temporary="CREATE TEMPORARY TABLE t (a integer)")
    finally:
        with server.connect() as connection:
            for host in ("%", "localhost"):
                connection.execute(sa.text(f"DROP USER IF EXISTS '{login}'@'{host}'"))
            connection.exec_driver_sql(f"DROP ROLE IF EXISTS {reader}")
