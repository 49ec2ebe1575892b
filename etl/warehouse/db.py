"""The warehouse schema's version: Alembic wiring, upgrades, and the "is it right?" check.

The schema is only ever built and changed by the Alembic migrations in ``migrations/``
(found by :mod:`etl.resources`, in a checkout or an installed wheel). Alembic is configured
in code here, from the URL the caller gives: there is no ``alembic.ini`` and no second place
for the URL. ``[tool.alembic]`` in ``pyproject.toml`` exists only for developers who run
``alembic`` from the repository root; ``migrations/env.py`` then reads the URL from the
project's configuration (``etl.config.load_config``).

Usage::

    upgrade(url)                   # create or migrate the schema to the newest revision
    engine = make_engine(url)
    check_schema(engine)           # SchemaMismatch unless the warehouse is at head

Every function that connects raises :class:`~etl.errors.WarehouseUnavailable` (URL with
the password masked, and what to check) when the connection cannot be made.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from etl.errors import InstallationError, SchemaMismatch, WarehouseError
from etl.resources import migrations_dir
from etl.warehouse import faults
from etl.warehouse.engine import connect, display_url, make_engine
from etl.warehouse.schema import metadata
from etl.warehouse.sqlfiles import view_names
from etl.warehouse.types import Json, UtcDateTime

__all__ = [
    "alembic_config",
    "check_schema",
    "current_revision",
    "describe_revision",
    "downgrade",
    "drift",
    "head_revision",
    "make_engine",
    "migration_options",
    "reading",
    "upgrade",
    "verify",
]

UPGRADE_HINT = "run `zvm-etl db upgrade`"


def alembic_config(url: str | None = None, *, connection: Connection | None = None) -> Config:
    """An Alembic :class:`~alembic.config.Config` for the warehouse at ``url``.

    The URL (and ``connection``, when the caller already holds one) reach ``env.py`` through
    ``Config.attributes``, never through a file. With neither, ``env.py`` reads the URL from
    the project's configuration file.
    """
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.attributes["url"] = url
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(url: str, revision: str = "head") -> str | None:
    """Migrate the warehouse at ``url`` up to ``revision`` (creating the schema if empty);
    returns the revision it is at afterwards.

    On PostgreSQL and SQLite the whole upgrade is one transaction: it applies completely or
    not at all. MariaDB commits each DDL statement as it runs, so a failure there can leave
    a revision half applied; fix the cause and run the upgrade again.
    """
    with _connected(url) as connection:
        command.upgrade(alembic_config(url, connection=connection), revision)
        connection.commit()
        return MigrationContext.configure(connection).get_current_revision()


def downgrade(url: str, revision: str) -> str | None:
    """Migrate the warehouse at ``url`` down to ``revision`` (``base`` drops everything);
    returns the revision it is at afterwards (None: no schema)."""
    with _connected(url) as connection:
        command.downgrade(alembic_config(url, connection=connection), revision)
        connection.commit()
        return MigrationContext.configure(connection).get_current_revision()


def current_revision(url: str) -> str | None:
    """The revision the warehouse at ``url`` is at; None when it has no schema."""
    with _connected(url) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision this code knows (what :func:`upgrade` goes to by default)."""
    head = _script().get_current_head()
    if head is None:
        raise InstallationError(
            f"no Alembic migration found in {migrations_dir()}: reinstall zvm-task-etl"
        )
    return head


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaMismatch` unless the warehouse of ``engine`` is at the head revision.

    Callers that write (sync, backfill) run this first, so a warehouse whose schema is
    missing, behind or ahead is refused with a message saying what to do, instead of failing
    halfway on a missing table or column. Nothing is created or changed.
    """
    where = f"The warehouse at {display_url(engine.url)}"
    with connect(engine) as connection:
        connection.execution_options(sqlite_begin="DEFERRED")  # it only reads
        try:
            versioned = inspect(connection).has_table("alembic_version")
            context = MigrationContext.configure(connection)
            current = context.get_current_heads() if versioned else ()
        except DBAPIError as exc:  # e.g. read-only SQLite refuses even to begin
            raise WarehouseError(faults.describe(exc, engine.url, in_pass=False)) from None
    if not versioned:
        raise SchemaMismatch(f"{where} has no schema (no alembic_version table): {UPGRADE_HINT}.")
    if not current:
        raise SchemaMismatch(
            f"{where} has no schema (alembic_version is empty: it was downgraded to base): "
            f"{UPGRADE_HINT}."
        )
    head = head_revision()
    if current == (head,):
        return
    shown = ", ".join(current)
    script = _script()
    for revision in current:
        try:
            known = script.get_revision(revision) is not None
        except CommandError:
            known = False
        if not known:
            raise SchemaMismatch(
                f"{where} is at revision {shown}, newer than this code knows (head {head}): "
                "upgrade zvm-task-etl or point it at another warehouse."
            )
    raise SchemaMismatch(
        f"{where} is at revision {shown}, this version of zvm-task-etl needs {head}: "
        f"{UPGRADE_HINT}."
    )


def drift(url: str) -> list[Any]:
    """What ``alembic check`` would report: the differences between the schema in the
    database at ``url`` and :data:`etl.warehouse.schema.metadata`, as Alembic's diff tuples.

    Empty means the migrations and the metadata agree (the views are left out: they come
    from ``sql/``, not from the metadata).
    """
    with _connected(url) as connection:
        context = MigrationContext.configure(
            connection, opts=migration_options(connection.dialect.name)
        )
        return list(compare_metadata(context, metadata))


@contextmanager
def reading(url: str) -> Iterator[Engine]:
    """An engine for commands that read the warehouse (export, report), after checking
    that its schema is current (SchemaMismatch otherwise); disposed when done. On SQLite
    it never takes the write lock, so a running pass does not wait for it."""
    engine = make_engine(url, sqlite_begin="DEFERRED")
    try:
        check_schema(engine)
        yield engine
    finally:
        engine.dispose()


def verify(url: str) -> list[Any]:
    """``zvm-etl db check``: SchemaMismatch unless the warehouse at ``url`` is at the head
    revision, then its :func:`drift` (empty when the schema matches this version exactly)."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        check_schema(engine)
    finally:
        engine.dispose()
    return drift(url)


def describe_revision(url: str) -> str:
    """``zvm-etl db current``: the warehouse's revision and whether it is the newest."""
    current = current_revision(url)
    head = head_revision()
    if current is None:
        return f"{display_url(url)}: no schema yet ({UPGRADE_HINT})."
    note = "newest" if current == head else f"newest is {head}: {UPGRADE_HINT}"
    return f"{current} ({note})"


def migration_options(dialect_name: str) -> dict[str, Any]:
    """The ``context.configure`` options shared by ``env.py`` and :func:`drift`.

    - ``compare_type``: a column type changed in the metadata is a difference.
    - ``include_object``: the views (created from ``sql/`` by migrations) are never compared,
      nor an index of the metadata made for another database only (``ddl_if(dialect=...)``).
    - ``render_item``: autogenerate writes our column types as ``types.UtcDateTime()`` and
      ``types.Json()`` with the import, instead of a bare class name that would not import.
    - ``render_as_batch`` on SQLite, which can only change a table by copying it.
    """
    views = view_names()

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ == "table" and name in views:
            return False
        only_on = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
        return not (type_ == "index" and not reflected and only_on not in (None, dialect_name))

    return {
        "target_metadata": metadata,
        "compare_type": True,
        "include_object": include_object,
        "render_item": _render_item,
        "render_as_batch": dialect_name == "sqlite",
    }


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    if type_ == "type" and isinstance(obj, UtcDateTime | Json):
        autogen_context.imports.add("from etl.warehouse import types")
        return f"types.{type(obj).__name__}()"
    return False


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


@contextmanager
def _connected(url: str) -> Iterator[Connection]:
    # NullPool: a one-off command leaves no connection open behind it.
    engine = make_engine(url, poolclass=NullPool)
    try:
        with connect(engine) as connection:
            yield connection
    finally:
        engine.dispose()
