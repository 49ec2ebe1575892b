"""The Recovery Report: recovery operations, their steps, rejected entries, the view
v_recovery_operations, and when each ZVM's report was last read.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

# Migration rules: see migrations/script.py.mako.
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from etl.warehouse import sqlfiles, types
from etl.warehouse.schema import NAMING_CONVENTION

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# MariaDB/MySQL table options; the mariadb_ spelling is read for mariadb:// URLs.
MYSQL = {
    f"{dialect}_{option}": value
    for dialect in ("mysql", "mariadb")
    for option, value in (("engine", "InnoDB"), ("charset", "utf8mb4"), ("collate", "utf8mb4_bin"))
}
ZVM = sa.String(64)
IDENTIFIER = sa.String(255)


def _zvms() -> sa.Table:
    """zvms as this revision leaves it (for the downgrade's copy on SQLite)."""
    return sa.Table(
        "zvms",
        sa.MetaData(naming_convention=NAMING_CONVENTION),
        sa.Column("name", ZVM, primary_key=True),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("site_identifier", IDENTIFIER),
        sa.Column("added_at", types.UtcDateTime(), nullable=False),
        sa.Column("names_refreshed_at", types.UtcDateTime()),
        sa.Column("names_error", sa.Text()),
        sa.Column("recovery_report_read_at", types.UtcDateTime()),
        sa.Column("recovery_report_error", sa.Text()),
    )


def _view(name: str, version: int) -> None:
    dialect = op.get_context().dialect.name
    op.execute(sqlfiles.create_view_sql(name, version, dialect=dialect))


def upgrade() -> None:
    with op.batch_alter_table("zvms") as batch:
        batch.add_column(sa.Column("recovery_report_read_at", types.UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("recovery_report_error", sa.Text(), nullable=True))
    op.create_table(
        "recovery_operations",
        sa.Column("zvm", ZVM, nullable=False),
        sa.Column("operation_identifier", IDENTIFIER, nullable=False),
        sa.Column("vpg_identifier", IDENTIFIER, nullable=True),
        sa.Column("vpg_link", sa.String(16), nullable=True),
        sa.Column("vpg_name", sa.Text(), nullable=True),
        sa.Column("recovery_type", sa.String(64), nullable=True),
        sa.Column("protected_site_name", sa.Text(), nullable=True),
        sa.Column("recovery_site_name", sa.Text(), nullable=True),
        sa.Column("started_at", types.UtcDateTime(), nullable=False),
        sa.Column("ended_at", types.UtcDateTime(), nullable=True),
        sa.Column("point_in_time", types.UtcDateTime(), nullable=True),
        sa.Column("rto_seconds", sa.Double(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("initiated_by", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("task_identifier", IDENTIFIER, nullable=True),
        sa.Column("task_match_seconds", sa.Double(), nullable=True),
        sa.Column("payload", types.Json(), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("first_seen_at", types.UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", types.UtcDateTime(), nullable=False),
        sa.Column("last_changed_at", types.UtcDateTime(), nullable=False),
        # An expression, not SQL text: each database quotes the column its own way.
        sa.CheckConstraint(
            sa.column("vpg_link").in_(["reported", "name", "task"]),
            name=op.f("ck_recovery_operations_vpg_link"),
        ),
        sa.ForeignKeyConstraint(
            ["zvm"], ["zvms.name"], name=op.f("fk_recovery_operations_zvm_zvms")
        ),
        sa.PrimaryKeyConstraint("zvm", "operation_identifier", name=op.f("pk_recovery_operations")),
        **MYSQL,
    )
    for columns in (["zvm", "started_at"], ["task_identifier"], ["vpg_identifier"]):
        name = op.f(f"ix_recovery_operations_{'_'.join(columns)}")
        op.create_index(name, "recovery_operations", columns)
    op.create_table(
        "recovery_operation_steps",
        sa.Column("zvm", ZVM, nullable=False),
        sa.Column("operation_identifier", IDENTIFIER, nullable=False),
        sa.Column("step_number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("started_at", types.UtcDateTime(), nullable=True),
        sa.Column("ended_at", types.UtcDateTime(), nullable=True),
        sa.Column("execution_seconds", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["zvm", "operation_identifier"],
            ["recovery_operations.zvm", "recovery_operations.operation_identifier"],
            name=op.f("fk_recovery_operation_steps_zvm_recovery_operations"),
        ),
        sa.PrimaryKeyConstraint(
            "zvm",
            "operation_identifier",
            "step_number",
            name=op.f("pk_recovery_operation_steps"),
        ),
        **MYSQL,
    )
    op.create_table(
        "rejected_recovery_operations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("zvm", ZVM, nullable=False),
        sa.Column("operation_identifier", IDENTIFIER, nullable=True),
        sa.Column("received_at", types.UtcDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["etl_runs.run_id"],
            name=op.f("fk_rejected_recovery_operations_run_id_etl_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_recovery_operations")),
        **MYSQL,
    )
    op.create_index(
        op.f("ix_rejected_recovery_operations_run_id"), "rejected_recovery_operations", ["run_id"]
    )
    _view("v_recovery_operations", 1)


def downgrade() -> None:
    op.execute(sqlfiles.drop_view_sql("v_recovery_operations"))
    # Their indexes go with them (MariaDB refuses to drop one a foreign key needs).
    op.drop_table("rejected_recovery_operations")
    op.drop_table("recovery_operation_steps")
    op.drop_table("recovery_operations")
    # SQLite copies zvms to drop its columns: v_etl_health, which reads it, steps aside.
    op.execute(sqlfiles.drop_view_sql("v_etl_health"))
    with op.batch_alter_table("zvms", copy_from=_zvms()) as batch:
        batch.drop_column("recovery_report_error")
        batch.drop_column("recovery_report_read_at")
    _view("v_etl_health", 1)
