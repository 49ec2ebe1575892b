"""tasks.payload as PostgreSQL ``json`` (validated text) instead of ``jsonb``.

The payload is the largest column of ``tasks`` and is written far more often than it is
searched: ``jsonb`` made PostgreSQL parse every document into a binary tree during the
load, the costliest part of writing a task. ``json`` keeps the text as it came (validated
once). The ``->``/``->>`` operators work the same; containment and key-exists need
``payload::jsonb``. SQLite and MariaDB store JSON as text already: nothing changes there.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

# Migration rules: see migrations/script.py.mako.
from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    if _postgresql():
        op.execute("ALTER TABLE tasks ALTER COLUMN payload TYPE json USING payload::json")


def downgrade() -> None:
    if _postgresql():
        op.execute("ALTER TABLE tasks ALTER COLUMN payload TYPE jsonb USING payload::jsonb")
