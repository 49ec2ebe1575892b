"""vpg_daily_tests: per (zvm, VPG, UTC day), the failover tests that name the VPG, kept
equal to ``tasks`` and ``task_vpgs`` by the pass (``etl/warehouse/daily.py``).

The DR-test evidence (each VPG's last successful test, ever, and its tests of the
look-back) reads these rows (a few per VPG and day) instead of every failover test of the
history. This revision creates the table and fills it from the tasks already stored, with
the same grouping the pass uses; from then on every pass recounts the days it writes into,
in the transaction that writes the tasks.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

# Migration rules: see migrations/script.py.mako.
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from etl.warehouse import types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# MariaDB/MySQL table options; the mariadb_ spelling is read for mariadb:// URLs.
MYSQL = {
    f"{dialect}_{option}": value
    for dialect in ("mysql", "mariadb")
    for option, value in (("engine", "InnoDB"), ("charset", "utf8mb4"), ("collate", "utf8mb4_bin"))
}


def _tests() -> sa.Select[tuple[object, ...]]:
    """The grouping the pass uses (etl/warehouse/daily.py), over every stored failover test
    (a FailOverTest task, in any casing) and the VPGs it names."""
    tasks = sa.table(
        "tasks",
        *(sa.column(name) for name in ("task_identifier", "zvm", "type", "state")),
        sa.column("started_at", types.UtcDateTime()),
        sa.column("completed_at", types.UtcDateTime()),
    )
    task_vpgs = sa.table("task_vpgs", sa.column("task_identifier"), sa.column("vpg_identifier"))
    task_types = sa.table("task_types", sa.column("name"))
    if op.get_context().dialect.name == "postgresql":
        day = sa.cast(sa.func.timezone("UTC", tasks.c.started_at), sa.Date)
    else:  # SQLite and MariaDB store naive UTC: the date is the UTC day.
        day = sa.func.date(tasks.c.started_at)
    keys = (tasks.c.zvm, task_vpgs.c.vpg_identifier, day)  # the order of the columns
    succeeded = tasks.c.state == 6
    return (
        sa.select(
            *keys,
            sa.func.count(),
            sa.func.count(sa.case((succeeded, 1))),
            sa.func.count(sa.case((tasks.c.state == 4, 1))),
            sa.func.max(tasks.c.started_at),
            sa.func.max(sa.case((succeeded, tasks.c.started_at))),
            sa.func.max(sa.case((succeeded, tasks.c.completed_at))),
        )
        .select_from(tasks.join(task_vpgs, task_vpgs.c.task_identifier == tasks.c.task_identifier))
        .where(
            tasks.c.type.in_(
                sa.select(task_types.c.name).where(
                    sa.func.lower(task_types.c.name) == "failovertest"
                )
            )
        )
        .group_by(*keys)
    )


def upgrade() -> None:
    tests = op.create_table(
        "vpg_daily_tests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("zvm", sa.String(64), nullable=False),
        sa.Column("vpg_identifier", sa.String(255), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tests", sa.Integer(), nullable=False),
        sa.Column("succeeded_tests", sa.Integer(), nullable=False),
        sa.Column("failed_tests", sa.Integer(), nullable=False),
        sa.Column("last_started_at", types.UtcDateTime(), nullable=False),
        sa.Column("last_success_started_at", types.UtcDateTime(), nullable=True),
        sa.Column("last_success_completed_at", types.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["vpg_identifier"],
            ["vpgs.vpg_identifier"],
            name=op.f("fk_vpg_daily_tests_vpg_identifier_vpgs"),
        ),
        sa.ForeignKeyConstraint(["zvm"], ["zvms.name"], name=op.f("fk_vpg_daily_tests_zvm_zvms")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vpg_daily_tests")),
        **MYSQL,
    )
    op.create_index(
        op.f("ix_vpg_daily_tests_vpg_identifier_day"), "vpg_daily_tests", ["vpg_identifier", "day"]
    )
    op.create_index(op.f("ix_vpg_daily_tests_zvm_day"), "vpg_daily_tests", ["zvm", "day"])
    columns = [column.name for column in tests.c if column.name != "id"]
    op.execute(tests.insert().from_select(columns, _tests()))


def downgrade() -> None:
    # The indexes go with their table (MariaDB refuses to drop them alone: the foreign keys
    # need them).
    op.drop_table("vpg_daily_tests")
