"""Names for VPGs, sites and hosts, from the ZVM's entity listings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

# Migration rules: see migrations/script.py.mako.
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from etl.warehouse import sqlfiles, types
from etl.warehouse.schema import NAMING_CONVENTION

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NAMES: dict[str, list[tuple[str, sa.types.TypeEngine[object]]]] = {
    "vpgs": [
        ("name", sa.Text()),
        ("priority", sa.Integer()),
        ("configured_rpo_seconds", sa.Integer()),
        ("protected_site_identifier", sa.String(255)),
        ("recovery_site_identifier", sa.String(255)),
    ],
    "hosts": [("name", sa.Text()), ("vra_name", sa.Text())],
    "sites": [("name", sa.Text()), ("location", sa.Text()), ("is_local", sa.Boolean())],
}


KEYS = {"vpgs": "vpg_identifier", "hosts": "host_identifier", "sites": "site_identifier"}


def _entity(table: str, *, named: bool) -> sa.Table:
    """The table as revision 0001 (``named`` False) or this one left it: SQLite's batch mode
    copies it from this description instead of reflecting it (offline SQL has nothing to
    reflect)."""
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    sa.Table("zvms", metadata, sa.Column("name", sa.String(64), primary_key=True))
    columns: list[sa.Column[object]] = [
        sa.Column(KEYS[table], sa.String(255), primary_key=True),
        sa.Column("href", sa.Text()),
        sa.Column("first_seen_at", types.UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", types.UtcDateTime(), nullable=False),
    ]
    extra: list[object] = []
    if named:
        columns += [sa.Column(name, type_) for name, type_ in NAMES[table]]
        columns += [
            sa.Column("zvm", sa.String(64), sa.ForeignKey("zvms.name")),
            sa.Column("listed_at", types.UtcDateTime()),
            sa.Column("unlisted_at", types.UtcDateTime()),
        ]
        extra.append(sa.Index(None, "zvm"))
    return sa.Table(table, metadata, *columns, *extra)


def _zvms() -> sa.Table:
    """zvms as this revision leaves it (for the downgrade's copy on SQLite)."""
    return sa.Table(
        "zvms",
        sa.MetaData(naming_convention=NAMING_CONVENTION),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("site_identifier", sa.String(255)),
        sa.Column("added_at", types.UtcDateTime(), nullable=False),
        sa.Column("names_refreshed_at", types.UtcDateTime()),
        sa.Column("names_error", sa.Text()),
    )


# Every timestamp column of revision 0001 (SQLite stores them as text).
TIMESTAMPS = {
    "zvms": ("added_at",),
    "task_types": ("first_seen_at",),
    "tasks": ("started_at", "completed_at", "first_seen_at", "last_seen_at", "last_changed_at"),
    "vpgs": ("first_seen_at", "last_seen_at"),
    "hosts": ("first_seen_at", "last_seen_at"),
    "sites": ("first_seen_at", "last_seen_at"),
    "flr_sessions": ("first_seen_at", "last_seen_at"),
    "task_status_changes": ("observed_at",),
    "sync_cursors": ("value", "updated_at"),
    "etl_runs": ("started_at", "finished_at"),
    "rejected_tasks": ("received_at",),
}


def _one_text_format_on_sqlite() -> None:
    """Earlier bulk writes on SQLite stored whole-second timestamps without their fraction
    (``2031-03-01 09:05:00`` instead of ``2031-03-01 09:05:00.000000``), and text comparisons
    with bound values then disagreed for equal instants: give them the fraction."""
    if op.get_context().dialect.name != "sqlite":
        return
    for table, columns in TIMESTAMPS.items():
        for column in columns:
            op.execute(
                f"UPDATE {table} SET {column} = {column} || '.000000' WHERE length({column}) = 19"
            )


def _view(name: str, version: int) -> None:
    dialect = op.get_context().dialect.name
    op.execute(sqlfiles.create_view_sql(name, version, dialect=dialect))


def upgrade() -> None:
    _one_text_format_on_sqlite()
    # Views read these tables: out of the way while SQLite copies the tables.
    op.execute(sqlfiles.drop_view_sql("v_failover_tests"))
    with op.batch_alter_table("zvms") as batch:
        batch.add_column(sa.Column("names_refreshed_at", types.UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("names_error", sa.Text(), nullable=True))
    for table, columns in NAMES.items():
        with op.batch_alter_table(table, copy_from=_entity(table, named=False)) as batch:
            for name, type_ in columns:
                batch.add_column(sa.Column(name, type_, nullable=True))
            batch.add_column(sa.Column("zvm", sa.String(64), nullable=True))
            batch.add_column(sa.Column("listed_at", types.UtcDateTime(), nullable=True))
            batch.add_column(sa.Column("unlisted_at", types.UtcDateTime(), nullable=True))
            batch.create_index(batch.f(f"ix_{table}_zvm"), ["zvm"])
            batch.create_foreign_key(batch.f(f"fk_{table}_zvm_zvms"), "zvms", ["zvm"], ["name"])
    _view("v_failover_tests", 2)
    _view("v_task_vpgs", 1)


def downgrade() -> None:
    op.execute(sqlfiles.drop_view_sql("v_task_vpgs"))
    op.execute(sqlfiles.drop_view_sql("v_failover_tests"))
    for table, columns in reversed(NAMES.items()):
        with op.batch_alter_table(table, copy_from=_entity(table, named=True)) as batch:
            batch.drop_constraint(batch.f(f"fk_{table}_zvm_zvms"), type_="foreignkey")
            batch.drop_index(batch.f(f"ix_{table}_zvm"))
            for name in ("unlisted_at", "listed_at", "zvm"):
                batch.drop_column(name)
            for name, _type in reversed(columns):
                batch.drop_column(name)
    # SQLite copies zvms to drop its columns: v_etl_health, which reads it, steps aside.
    op.execute(sqlfiles.drop_view_sql("v_etl_health"))
    with op.batch_alter_table("zvms", copy_from=_zvms()) as batch:
        batch.drop_column("names_error")
        batch.drop_column("names_refreshed_at")
    _view("v_etl_health", 1)
    _view("v_failover_tests", 1)
