"""The verifications table: one row per ZVM per ``zvm-etl verify``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

# Migration rules: see migrations/script.py.mako.
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from etl.warehouse import types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# MariaDB/MySQL table options; the mariadb_ spelling is read for mariadb:// URLs.
MYSQL = {
    f"{dialect}_{option}": value
    for dialect in ("mysql", "mariadb")
    for option, value in (("engine", "InnoDB"), ("charset", "utf8mb4"), ("collate", "utf8mb4_bin"))
}
COUNTS = (
    "days_checked",
    "days_differing",
    "zvm_tasks",
    "warehouse_tasks",
    "missing_in_warehouse",
    "missing_on_zvm",
    "purged_by_zvm",
    "rejected",
)


def upgrade() -> None:
    op.create_table(
        "verifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("zvm", sa.String(64), nullable=False),
        sa.Column("started_at", types.UtcDateTime(), nullable=False),
        sa.Column("finished_at", types.UtcDateTime(), nullable=False),
        sa.Column("since", types.UtcDateTime(), nullable=True),
        sa.Column("until", types.UtcDateTime(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        *(
            sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text("0"))
            for name in COUNTS
        ),
        sa.Column("error", sa.Text(), nullable=True),
        # An expression, not SQL text: each database quotes the column its own way.
        sa.CheckConstraint(
            sa.column("status").in_(["complete", "incomplete", "failed"]),
            name=op.f("ck_verifications_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifications")),
        **MYSQL,
    )
    op.create_index(op.f("ix_verifications_zvm_started_at"), "verifications", ["zvm", "started_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_verifications_zvm_started_at"), table_name="verifications")
    op.drop_table("verifications")
