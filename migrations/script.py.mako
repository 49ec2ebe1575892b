"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

# Migration rules (read before you write one):
# - The table and column names are a public interface (docs/warehouse.md): add freely;
#   rename or drop only with a view (or column) that keeps old queries working.
# - The same revision runs on SQLite, PostgreSQL and MariaDB; run the tests on all three.
#   SQLite changes tables in batch mode: use `with op.batch_alter_table(...)`.
# - Name every constraint and index through the naming convention (schema.metadata).
# - Views come from sql/views/<name>.v<N>.sql: never edit a released version; add v<N+1>,
#   drop and create it here, and the reverse in downgrade().
# - MariaDB commits every DDL statement: keep a revision re-runnable and its data fixes
#   idempotent; a sync may be running while it applies, so avoid long table rewrites.
# - downgrade() is required and must undo upgrade() exactly.
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
