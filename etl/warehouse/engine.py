"""Engines for the warehouse, set up the same way for every caller.

:func:`make_engine` is the one place that knows each database's quirks:

- **SQLite**: foreign keys enforced (SQLite ignores them unless asked, per connection), WAL
  journal so readers never block the writer, a busy timeout so two writers wait for each
  other instead of failing at once, ``synchronous=NORMAL`` (safe with WAL: a power cut can
  lose the last commits, never corrupt the file; the next sync pass redoes them). Python's
  sqlite3 module does not begin transactions before DDL and cannot do SAVEPOINTs properly,
  so its own transaction handling is switched off and SQLAlchemy's ``begin`` emits
  ``BEGIN IMMEDIATE``: a transaction takes the write lock when it starts, so two passes
  that each read a cursor and then write queue up on the busy timeout, instead of the
  second failing with "database is locked" when it tries to write after its snapshot went
  stale. Callers that only read, a lot, can ask for ``sqlite_begin="DEFERRED"`` (for the
  engine, or as a connection's execution option: the schema check does, so a long write
  by another process does not block it).
- **MariaDB/MySQL**: ``utf8mb4``, ``READ COMMITTED``, the session time zone set to UTC (so
  ``NOW()`` in a query means the same as in the stored naive-UTC values) and strict mode
  added to the session's ``sql_mode`` (a too-long value is an error, never truncated).
- **PostgreSQL**: the session time zone is UTC and connecting times out after 10 seconds.
- Everywhere: ``pool_pre_ping`` (a scheduler's connections outlive server restarts) and
  orjson for JSON columns.

Keyword arguments given to :func:`make_engine` win over every default above.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import ConnectionPoolEntry

from etl.errors import WarehouseUnavailable

__all__ = ["connect", "display_url", "make_engine", "unavailable"]

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 49_152
"""SQLite's page cache per connection (the default is 2 MiB): the indexes of a big table
stay in memory while a pass loads. Measured on a 100,000-task first pass (make bench):
32 MiB 27.3 s and 224 MB peak RSS, 48 MiB 22.0 s and 233 MB, 64 MiB 20.6 s and 251 MB;
48 MiB keeps the process under 250 MB."""
CONNECT_TIMEOUT_S = 10

_MYSQL_INIT = (
    "SET SESSION time_zone = '+00:00', SESSION sql_mode = "
    "IF(@@SESSION.sql_mode = '', 'STRICT_TRANS_TABLES', "
    "CONCAT(@@SESSION.sql_mode, ',STRICT_TRANS_TABLES'))"
)


def make_engine(
    url: str | URL,
    *,
    sqlite_begin: Literal["IMMEDIATE", "DEFERRED"] = "IMMEDIATE",
    **kw: Any,
) -> Engine:
    """An Engine for the warehouse at ``url``, configured as the module docstring says.

    Nothing connects yet. A URL SQLAlchemy cannot use, or whose driver is not installed,
    raises :class:`WarehouseUnavailable` naming the URL (password masked) and the fix.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise WarehouseUnavailable(
            f"{display_url(url)!r} is not a database URL SQLAlchemy can read: write e.g. "
            "sqlite:///warehouse.db or postgresql+psycopg://user@host/db "
            "(warehouse.url in the configuration, or ZVM_ETL_WAREHOUSE_URL)"
        ) from None
    backend = parsed.get_backend_name()
    options: dict[str, Any] = {
        "pool_pre_ping": True,
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
    }
    connect_args: dict[str, Any] = {}
    if backend in ("mysql", "mariadb"):
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        options["isolation_level"] = "READ COMMITTED"
        if parsed.get_driver_name() in ("pymysql", "mysqldb"):
            connect_args["init_command"] = _MYSQL_INIT
    elif backend == "postgresql" and parsed.get_driver_name() in ("psycopg", "psycopg2"):
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
        if "options" not in parsed.query:
            connect_args["options"] = "-c timezone=UTC"
    connect_args.update(kw.pop("connect_args", {}))
    options["connect_args"] = connect_args
    options.update(kw)
    try:
        engine = create_engine(parsed, **options)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise WarehouseUnavailable(
            f"cannot use the warehouse at {display_url(parsed)}: {exc}. Install the database "
            "driver: pip install 'zvm-task-etl[postgres]' (psycopg) or 'zvm-task-etl[mysql]' "
            "(PyMySQL)"
        ) from None
    if backend == "sqlite":
        _configure_sqlite(engine, begin=sqlite_begin)
    return engine


def display_url(url: str | URL) -> str:
    """``url`` as it may be shown to a person: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<an unparseable URL>"


def unavailable(url: str | URL, exc: BaseException) -> WarehouseUnavailable:
    """A :class:`WarehouseUnavailable` for a failed connection to ``url``, saying what to check.

    Only the driver's own message is kept (never the SQL or SQLAlchemy's link footer); driver
    messages name the user and host, not the password.
    """
    reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    detail = " ".join(str(reason).split()) or type(reason).__name__
    return WarehouseUnavailable(
        f"cannot connect to the warehouse at {display_url(url)}: {detail}. Check that the "
        "database server is running and reachable from this host, and that the URL's host, "
        "port, database name, user and password are right (warehouse.url in the "
        "configuration, or ZVM_ETL_WAREHOUSE_URL)."
    )


def connect(engine: Engine) -> Connection:
    """``engine.connect()``, with a connection failure raised as :class:`WarehouseUnavailable`."""
    try:
        return engine.connect()
    except DBAPIError as exc:
        raise unavailable(engine.url, exc) from exc


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _configure_sqlite(engine: Engine, *, begin: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the sqlite3 module; _on_begin does it instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A connection that only reads may ask for execution_options(sqlite_begin="DEFERRED").
        mode = connection.get_execution_options().get("sqlite_begin", begin)
        connection.exec_driver_sql(f"BEGIN {'DEFERRED' if mode == 'DEFERRED' else begin}")
