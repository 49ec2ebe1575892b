"""Alembic environment of the zvm-task-etl warehouse.

The URL comes from ``config.attributes["url"]`` (``etl.warehouse.db`` always passes it,
with the connection it already opened in ``config.attributes["connection"]``); a developer
running ``alembic`` from the repository root gets the project's configuration instead
(``warehouse.url`` or ``ZVM_ETL_WAREHOUSE_URL``). No URL is ever read from an ini file.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, make_url
from sqlalchemy.pool import NullPool

from etl.errors import WarehouseError
from etl.warehouse import db
from etl.warehouse.engine import connect

config = context.config
MIGRATION_LOCK = 8_245_306_581  # pg_advisory_xact_lock key: one upgrade at a time


def _url() -> str:
    url: str | None = config.attributes.get("url")
    if url is None:
        from etl.config import load_config

        url = load_config().warehouse.url
    return url


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    # Straight to the driver: through SQLAlchemy it would begin a transaction first, and
    # inside one SQLite ignores this pragma.
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a table by copy, drop and rename, which enforced foreign keys
        # break: they are checked once, before the commit, instead.
        _sqlite_foreign_keys(connection, on=False)
    context.configure(
        connection=connection,
        transactional_ddl=True if sqlite else None,
        **db.migration_options(connection.dialect.name),
    )
    try:
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            context.run_migrations()
            if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                raise WarehouseError(
                    "the migration left rows that break a foreign key (PRAGMA "
                    "foreign_key_check lists them); it was rolled back: nothing changed"
                )
    finally:
        if sqlite:
            _sqlite_foreign_keys(connection, on=True)


if context.is_offline_mode():
    url = _url()
    context.configure(
        url=url,
        literal_binds=True,
        **db.migration_options(make_url(url).get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    _run(given)
else:
    engine = db.make_engine(_url(), poolclass=NullPool)
    try:
        with connect(engine) as connection:
            _run(connection)
    finally:
        engine.dispose()
