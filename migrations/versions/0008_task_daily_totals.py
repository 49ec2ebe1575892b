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


def _totals() -> sa.Select[tuple[object, ...]]:
    """The grouping the pass uses (etl/warehouse/daily.py), over every stored task: the UTC
    day of started_at, and the durations summed as whole milliseconds (the same value in
    whatever order the database reads the rows)."""
    tasks = sa.table(
        "tasks",
        *(sa.column(name) for name in ("zvm", "type", "state", "initiated_by")),
        sa.column("started_at", types.UtcDateTime()),
        sa.column("duration_seconds", sa.Double()),
    )
    if op.get_context().dialect.name == "postgresql":
        day = sa.cast(sa.func.timezone("UTC", tasks.c.started_at), sa.Date)
    else:  # SQLite and MariaDB store naive UTC: the date is the UTC day.
        day = sa.func.date(tasks.c.started_at)
    keys = (tasks.c.zvm, day, tasks.c.type, tasks.c.state, tasks.c.initiated_by)
    duration = tasks.c.duration_seconds
    return sa.select(
        *keys,
        sa.func.count(),
        sa.func.count(duration),
        sa.func.sum(sa.func.round(duration * 1000)) / 1000,
        sa.func.max(duration),
        sa.func.min(tasks.c.started_at),
        sa.func.max(tasks.c.started_at),
    ).group_by(*keys)


def upgrade() -> None:
    totals = op.create_table(
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
    columns = [column.name for column in totals.c if column.name != "id"]
    op.execute(totals.insert().from_select(columns, _totals()))


def downgrade() -> None:
    # The index goes with its table (MariaDB refuses to drop it alone: the foreign key
    # on zvm needs it).
    op.drop_table("task_daily_totals")
