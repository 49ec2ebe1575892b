"""The warehouse tables, as SQLAlchemy Core ``Table`` objects.

The names here are a public interface (``docs/warehouse.md``): analysts and dashboards
write SQL against them. This module describes the schema that the migrations in
``migrations/versions/`` build; it never creates anything itself. ``alembic check`` (and
``etl.warehouse.db.drift``) compares the two, so a change here without a migration, or a
migration without a change here, fails the tests.

Portability decisions that apply to every table:

- Timestamps are :class:`~etl.warehouse.types.UtcDateTime` (aware UTC in Python,
  ``timestamptz`` / ``DATETIME(6)`` / text in the database) and have no server default:
  ``CURRENT_TIMESTAMP`` is local time on MariaDB, so the loader always supplies them.
- Key columns are short enough for MariaDB's 3072-byte index limit in utf8mb4 (4 bytes a
  character): identifiers ``String(255)`` (1020 bytes; two of them in a bridge key), ZVM
  names ``String(64)``, type names ``String(128)``.
- On MariaDB/MySQL every table is InnoDB, utf8mb4 with the binary collation, so keys
  compare exactly as on PostgreSQL and SQLite (``nyc`` and ``NYC`` are two ZVMs, not one).
- Every foreign key column leads an index (an explicit one, or the primary key): MariaDB
  would otherwise add indexes of its own that the metadata does not know about.
- Constraint and index names come from :data:`NAMING_CONVENTION`, so a later migration can
  drop or alter them by name on every database (SQLite's batch mode needs the names).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    column,
    false,
    text,
)

from etl.normalize import FINAL_STATES, STATE_NAMES
from etl.warehouse.types import Json, UtcDateTime

__all__ = [
    "FINAL_STATES",
    "NAMING_CONVENTION",
    "RUN_STATUSES",
    "RUN_TRIGGERS",
    "TASK_STATES",
    "etl_runs",
    "flr_sessions",
    "hosts",
    "metadata",
    "rejected_tasks",
    "sites",
    "sync_cursors",
    "task_flr_sessions",
    "task_hosts",
    "task_sites",
    "task_states",
    "task_status_changes",
    "task_types",
    "task_vpgs",
    "tasks",
    "vpgs",
    "zvms",
]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

TASK_STATES = STATE_NAMES
"""``Status.State`` values (defined with the parsing in :mod:`etl.normalize`), as seeded
into ``task_states`` by the first migration; ``FINAL_STATES`` are those a task never leaves
(``task_states.is_final``)."""

RUN_TRIGGERS = ("sync", "schedule", "backfill")
RUN_STATUSES = ("running", "succeeded", "failed")

MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    f"{dialect}_{option}": value
    for dialect in ("mysql", "mariadb")
    for option, value in (("engine", "InnoDB"), ("charset", "utf8mb4"), ("collate", "utf8mb4_bin"))
}
"""Table options for MariaDB/MySQL, ignored by the other databases. SQLAlchemy reads the
``mariadb_`` spelling when the URL says ``mariadb://`` and the ``mysql_`` one otherwise."""

ZVM_NAME = String(64)
IDENTIFIER = String(255)
TYPE_NAME = String(128)
URL = String(1024)


def _table(name: str, *items: Any) -> Table:
    return Table(name, metadata, *items, **MYSQL_TABLE_OPTIONS)


zvms = _table(
    "zvms",
    Column("name", ZVM_NAME, primary_key=True),
    Column("url", URL, nullable=False),
    Column("site_identifier", IDENTIFIER),
    Column("added_at", UtcDateTime(), nullable=False),
    Column("names_refreshed_at", UtcDateTime()),
    Column("names_error", Text),
)
"""One row per configured ZVM. ``site_identifier`` comes from ``/v1/localsite`` (or, until
its names are read, from its tasks); ``names_refreshed_at`` is when its entity listings
were last read and ``names_error`` what failed then (null: every listing answered)."""

task_states = _table(
    "task_states",
    Column("state", Integer, primary_key=True, autoincrement=False),
    Column("name", String(64), nullable=False),
    Column("is_final", Boolean, nullable=False),
)

task_types = _table(
    "task_types",
    Column("name", TYPE_NAME, primary_key=True),
    Column("listed_by_zvm", Boolean, nullable=False, server_default=false()),
    Column("first_seen_at", UtcDateTime(), nullable=False),
)

tasks = _table(
    "tasks",
    Column("task_identifier", IDENTIFIER, primary_key=True),
    Column("zvm", ZVM_NAME, ForeignKey("zvms.name"), nullable=False),
    Column("task_id", IDENTIFIER, nullable=False),
    Column("site_identifier", IDENTIFIER),
    Column("type", TYPE_NAME, ForeignKey("task_types.name"), nullable=False),
    Column("state", Integer, ForeignKey("task_states.state"), nullable=False),
    Column("progress", Integer),
    Column("initiated_by", Text),
    Column("complete_reason", Text),
    Column("is_cancellable", Boolean),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("completed_at", UtcDateTime()),
    Column("started_utc_offset_minutes", Integer),
    Column("completed_utc_offset_minutes", Integer),
    Column("duration_seconds", Double()),
    Column("link_href", Text),
    Column("payload", Json(), nullable=False),
    Column("payload_hash", String(64), nullable=False),
    Column("first_seen_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Column("last_changed_at", UtcDateTime(), nullable=False),
    Index(None, "zvm", "started_at"),
    Index(None, "completed_at"),
    Index(None, "state"),
    Index(None, "type"),
)
"""One row per ZVM task, its latest known version. ``payload_hash`` is the sha256 hex
digest of the payload bytes as received: the loader compares it to skip unchanged tasks."""


def _entity(table: str, key: str, *names: Column[Any]) -> Table:
    """An entity table: its key, the task side (``href``, first/last seen) and, for the
    entities a ZVM lists, ``names`` then who listed it last and when."""
    listed: tuple[Any, ...] = ()
    if names:
        listed = (
            Column("zvm", ZVM_NAME, ForeignKey("zvms.name")),
            Column("listed_at", UtcDateTime()),
            Column("unlisted_at", UtcDateTime()),
            Index(None, "zvm"),
        )
    return _table(
        table,
        Column(key, IDENTIFIER, primary_key=True),
        Column("href", Text),
        Column("first_seen_at", UtcDateTime(), nullable=False),
        Column("last_seen_at", UtcDateTime(), nullable=False),
        *names,
        *listed,
    )


def _bridge(table: str, entity: Table, key: str) -> Table:
    return _table(
        table,
        Column("task_identifier", IDENTIFIER, ForeignKey("tasks.task_identifier")),
        Column(key, IDENTIFIER, ForeignKey(entity.c[key])),
        PrimaryKeyConstraint("task_identifier", key),
        Index(None, key),
    )


vpgs = _entity(
    "vpgs",
    "vpg_identifier",
    Column("name", Text),
    Column("priority", Integer),
    Column("configured_rpo_seconds", Integer),
    Column("protected_site_identifier", IDENTIFIER),
    Column("recovery_site_identifier", IDENTIFIER),
)
hosts = _entity("hosts", "host_identifier", Column("name", Text), Column("vra_name", Text))
sites = _entity(
    "sites",
    "site_identifier",
    Column("name", Text),
    Column("location", Text),
    Column("is_local", Boolean),
)
flr_sessions = _entity("flr_sessions", "flr_session_identifier")
"""Entity tables: one row per entity referenced by a task or listed by a ZVM. The names
(``name`` and what follows it) are the last known ones: a listing updates them, and an
entity the ZVM no longer lists keeps them, with ``unlisted_at`` set (null again when it
is listed again). ``zvm`` is the ZVM that listed it last; ``listed_at`` when a listing last
included it. An entity only ever seen in tasks has null names."""

task_vpgs = _bridge("task_vpgs", vpgs, "vpg_identifier")
task_hosts = _bridge("task_hosts", hosts, "host_identifier")
task_sites = _bridge("task_sites", sites, "site_identifier")
task_flr_sessions = _bridge("task_flr_sessions", flr_sessions, "flr_session_identifier")

task_status_changes = _table(
    "task_status_changes",
    Column("task_identifier", IDENTIFIER, ForeignKey("tasks.task_identifier")),
    Column("observed_at", UtcDateTime()),
    Column("state", Integer, nullable=False),
    Column("progress", Integer),
    PrimaryKeyConstraint("task_identifier", "observed_at"),
)
"""The primary key (task_identifier, observed_at) is also the "changes of a task, in order"
index: a second index on task_identifier would only slow the inserts down."""

sync_cursors = _table(
    "sync_cursors",
    Column("zvm", ZVM_NAME, ForeignKey("zvms.name")),
    Column("cursor", String(64)),
    Column("value", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("zvm", "cursor"),
)

etl_runs = _table(
    "etl_runs",
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("zvm", ZVM_NAME, ForeignKey("zvms.name"), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime()),
    Column("status", String(16), nullable=False),
    Column("tasks_received", Integer, nullable=False, server_default=text("0")),
    Column("tasks_inserted", Integer, nullable=False, server_default=text("0")),
    Column("tasks_updated", Integer, nullable=False, server_default=text("0")),
    Column("tasks_unchanged", Integer, nullable=False, server_default=text("0")),
    Column("tasks_rejected", Integer, nullable=False, server_default=text("0")),
    Column("requests", Integer, nullable=False, server_default=text("0")),
    Column("retries", Integer, nullable=False, server_default=text("0")),
    Column("error", Text),
    Column("host", String(255)),
    Column("pid", Integer),
    CheckConstraint(column("trigger").in_(RUN_TRIGGERS), name="trigger"),
    CheckConstraint(column("status").in_(RUN_STATUSES), name="status"),
    Index(None, "zvm", "started_at"),
)
"""One row per extraction of one ZVM. ``host`` and ``pid`` say which process ran it;
``retries`` counts the HTTP retries the pass needed."""

rejected_tasks = _table(
    "rejected_tasks",
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("etl_runs.run_id"), nullable=False),
    Column("zvm", ZVM_NAME, nullable=False),
    Column("task_identifier", IDENTIFIER),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Index(None, "run_id"),
)
"""Records that could not be loaded, with the raw text and a reason a person can act on;
``task_identifier`` is set when one could be read from the record."""
