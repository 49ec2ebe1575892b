"""The open tasks, indexed on PostgreSQL (a partial index: only tasks not yet final).

A pass re-reads the open tasks of its ZVM; without statistics (right after a large load)
PostgreSQL's planner scanned every task of the retention period to find them. SQLite and
MariaDB get nothing here (see ``schema.ix_tasks_open``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

# Migration rules: see migrations/script.py.mako.
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OPEN = "state IN (0, 1, 2, 3, 7)"
"""FirstUnusedValue, InProgress, WaitingForUserInput, Paused, Cancelling: not final."""


def _postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    if _postgresql():
        op.create_index(
            op.f("ix_tasks_open"),
            "tasks",
            ["zvm", "started_at"],
            postgresql_where=sa.text(OPEN),
        )


def downgrade() -> None:
    if _postgresql():
        op.drop_index(op.f("ix_tasks_open"), table_name="tasks")
