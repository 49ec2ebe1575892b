"""For the BI tests: a warehouse worth reading, and a login in the read-only role of
``sql/roles/`` as a BI tool gets one (docs/bi.md).

:func:`reader_login` applies the database's script with its own client (psql, mariadb),
creates a login in the role and yields its URL; afterwards both are dropped. Role and login
names are unique per call (roles are server-wide). :func:`fill_from_simulator` loads a
simulated ZVM's history with what every dashboard panel needs.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from etl.verify import verify_all
from tests.syncing import make_config, one_pass
from zvm_simulator import Simulator
from zvm_simulator.catalog import State

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Read-0nly-pw"


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@contextmanager
def reader_login(admin: Engine) -> Iterator[URL]:
    """The URL of a new login in a new read-only role on ``admin``'s database (an AUTOCOMMIT
    engine of a user that may create roles)."""
    suffix = secrets.token_hex(4)
    reader, login = f"zvm_etl_reader_{suffix}", f"zvm_etl_bi_{suffix}"
    url = admin.url
    if admin.dialect.name == "postgresql":
        psql = shutil.which("psql")
        assert psql, "psql (the PostgreSQL client) is needed to apply sql/roles/postgresql.sql"
        admin_url = url.set(drivername="postgresql").render_as_string(hide_password=False)
        owner = url.username or "postgres"
        script = ROOT / "sql/roles/postgresql.sql"
        variables = ["-v", f"reader={reader}", "-v", f"owner={owner}"]
        _run([psql, "-X", "-q", *variables, "-f", str(script), admin_url])
        with admin.connect() as connection:
            connection.exec_driver_sql(
                f"CREATE ROLE {login} LOGIN PASSWORD '{PASSWORD}' IN ROLE {reader}"
            )
        try:
            yield url.set(username=login, password=PASSWORD)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f"DROP OWNED BY {reader}, {login}")
                connection.exec_driver_sql(f"DROP ROLE IF EXISTS {login}")
                connection.exec_driver_sql(f"DROP ROLE IF EXISTS {reader}")
        return
    client = shutil.which("mariadb") or shutil.which("mysql")
    assert client, "the mariadb client is needed to apply sql/roles/mariadb.sql"
    script = ROOT / "sql/roles/mariadb.sql"
    command = [client, "-h", url.host or "127.0.0.1", "-P", str(url.port or 3306)]
    command += ["-u", url.username or "root", *([f"-p{url.password}"] if url.password else [])]
    _run([*command, str(url.database), "-e", f"SET @reader = '{reader}'; SOURCE {script};"])
    users = [f"'{login}'@'{host}'" for host in ("%", "localhost")]
    with admin.connect() as connection:
        for user in users:
            connection.execute(sa.text(f"CREATE USER {user} IDENTIFIED BY '{PASSWORD}'"))
            connection.execute(sa.text(f"GRANT {reader} TO {user}"))
            connection.execute(sa.text(f"SET DEFAULT ROLE {reader} FOR {user}"))
    try:
        yield url.set(username=login, password=PASSWORD)
    finally:
        with admin.connect() as connection:
            for user in users:
                connection.execute(sa.text(f"DROP USER IF EXISTS {user}"))
            connection.exec_driver_sql(f"DROP ROLE IF EXISTS {reader}")


def fill_from_simulator(sim: Simulator, warehouse: Engine, url: str) -> None:
    """Add what every panel needs on top of the simulator's history (DR tests that
    succeeded and failed, a task waiting for user input, one that runs), load it all with
    a pass, and verify it (the verifications table)."""
    now = sim.now()
    first, second = sim.vpg_ids[:2]
    sim.add_task(started=now - timedelta(days=3), vpgs=[first], initiated_by="O'Brien")
    sim.add_task(started=now - timedelta(days=2), vpgs=[second], state=State.FAILED)
    sim.add_task(
        task_type="Move",
        started=now - timedelta(hours=5),
        vpgs=[first],
        duration=timedelta(minutes=10),
        state=State.WAITING_FOR_USER_INPUT,
    )
    sim.add_task(task_type="InstallVra", started=now - timedelta(hours=1), duration=None)
    config = make_config(sim, url)
    assert one_pass(config, warehouse).succeeded
    sim.advance(timedelta(minutes=20))
    assert one_pass(config, warehouse).succeeded
    [verification] = verify_all(config, engine=warehouse)
    assert verification.status == "complete"
