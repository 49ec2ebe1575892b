"""Indexes the analysts' and dashboards' plans use, and views that use them.

``tasks`` rows are wide (the payload), so a query that scans every task reads the whole
table. This revision gives the common questions an index their plans use, drops the one
no plan used, and replaces three views by versions that reach those indexes (the same rows
and columns):

- ``ix_tasks_type_state_started_at`` (type, state, started_at) replaces ``ix_tasks_type``
  (the foreign key on ``type`` still leads an index): failover tests and moves by outcome
  and time;
- ``ix_tasks_started_at_zvm_type_state_duration_seconds``: a look-back over every ZVM
  (``ix_tasks_zvm_started_at`` serves one ZVM's), and the counts, rates and durations by
  day, ZVM, type and state read from the index alone (an index-only scan on PostgreSQL, a
  covering index on SQLite and MariaDB) instead of the wide rows;
- ``ix_tasks_completed_at`` is dropped: no view, ready query or pass reads by it;
- PostgreSQL only, ``ix_task_status_changes_waiting``: the observations in states 2 and 3
  (a partial index; see ``schema.ix_task_status_changes_waiting``);
- ``v_failover_tests`` v3, ``v_open_tasks`` v2 and ``v_etl_health`` v2 pick the types and
  open states from ``task_types`` and ``task_states`` first, so the index on the tasks'
  column is used instead of a scan of every task.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

# Migration rules: see migrations/script.py.mako.
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from etl.warehouse import sqlfiles

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COVERING_COLUMNS = ("started_at", "zvm", "type", "state", "duration_seconds")
COVERING = "ix_tasks_" + "_".join(COVERING_COLUMNS)

VIEWS = {"v_failover_tests": (2, 3), "v_open_tasks": (1, 2), "v_etl_health": (1, 2)}
"""Each view replaced: (the version before, the version after)."""


def _postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _views(which: int) -> None:
    dialect = op.get_context().dialect.name
    for name, versions in VIEWS.items():
        op.execute(sqlfiles.drop_view_sql(name))
        op.execute(sqlfiles.create_view_sql(name, versions[which], dialect=dialect))


def upgrade() -> None:
    # The new index leads with type before the old one goes: MariaDB's foreign key on
    # tasks.type must always have an index.
    op.create_index(
        op.f("ix_tasks_type_state_started_at"), "tasks", ["type", "state", "started_at"]
    )
    op.drop_index(op.f("ix_tasks_type"), table_name="tasks")
    op.create_index(op.f(COVERING), "tasks", list(COVERING_COLUMNS))
    op.drop_index(op.f("ix_tasks_completed_at"), table_name="tasks")
    if _postgresql():
        op.create_index(
            op.f("ix_task_status_changes_waiting"),
            "task_status_changes",
            ["task_identifier"],
            postgresql_where=sa.text("state IN (2, 3)"),
        )
    _views(1)


def downgrade() -> None:
    _views(0)
    if _postgresql():
        op.drop_index(op.f("ix_task_status_changes_waiting"), table_name="task_status_changes")
    op.create_index(op.f("ix_tasks_completed_at"), "tasks", ["completed_at"])
    op.drop_index(op.f(COVERING), table_name="tasks")
    op.create_index(op.f("ix_tasks_type"), "tasks", ["type"])
    op.drop_index(op.f("ix_tasks_type_state_started_at"), table_name="tasks")
