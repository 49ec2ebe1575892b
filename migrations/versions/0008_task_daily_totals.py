"""task_daily_totals: per (zvm, UTC day, type, state, initiated_by), the tasks' counts and
durations, kept equal to ``tasks`` by the pass (``etl/warehouse/daily.py``).

Dashboards of a month or a year read these totals (a few thousand rows) instead of every
task (a million in a month of a busy site). This revision creates the table and fills it
from the tasks already stored, with the same grouping the pass uses; from then on every
pass recounts the days it writes into, in the transaction that writes the tasks.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

# Migration rules: see migrations/script.py.mako.
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from etl.warehouse import types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# MariaDB/MySQL table options; the mariadb_ spelling is read for mariadb:// URLs.
MYSQL = {
    f"{dialect}_{option}": value
    for dialect in ("mysql", "mariadb")
    for option, value in (("engine", "InnoDB"), ("charset", "utf8mb4"), ("collate", "utf8mb4_bin"))
}
UTC_DAY = {
    "postgresql": "CAST(started_at AT TIME ZONE 'UTC' AS date)",
    # SQLite and MariaDB store naive UTC: the date is the UTC day.
    "sqlite": "DATE(started_at)",
    "mysql": "DATE(started_at)",
}
COLUMNS = (
    "zvm, day, type, state, initiated_by, tasks, completed_tasks, duration_seconds_sum, "
    "duration_seconds_max, first_started_at, last_started_at"
)


def upgrade() -> None:
    op.create_table(
        "task_daily_totals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("zvm", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("initiated_by", sa.Text(), nullable=True),
        sa.Column("tasks", sa.Integer(), nullable=False),
        sa.Column("completed_tasks", sa.Integer(), nullable=False),
        sa.Column("duration_seconds_sum", sa.Double(), nullable=True),
        sa.Column("duration_seconds_max", sa.Double(), nullable=True),
        sa.Column("first_started_at", types.UtcDateTime(), nullable=False),
        sa.Column("last_started_at", types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["zvm"], ["zvms.name"], name=op.f("fk_task_daily_totals_zvm_zvms")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_daily_totals")),
        **MYSQL,
    )
    op.create_index(op.f("ix_task_daily_totals_zvm_day"), "task_daily_totals", ["zvm", "day"])
    dialect = op.get_context().dialect.name
    day = UTC_DAY["mysql" if dialect == "mariadb" else dialect]
    op.execute(
        f"INSERT INTO task_daily_totals ({COLUMNS}) "
        f"SELECT zvm, {day}, type, state, initiated_by, COUNT(*), COUNT(duration_seconds), "
        "SUM(duration_seconds), MAX(duration_seconds), MIN(started_at), MAX(started_at) "
        f"FROM tasks GROUP BY zvm, {day}, type, state, initiated_by"
    )


def downgrade() -> None:
    # The index goes with its table (MariaDB refuses to drop it alone: the foreign key
    # on zvm needs it).
    op.drop_table("task_daily_totals")
