"""Create the warehouse: tables, task states and views.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
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

from etl.warehouse import sqlfiles, types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# MariaDB/MySQL table options; the mariadb_ spelling is read for mariadb:// URLs.
MYSQL = {
    f"{dialect}_{option}": value
    for dialect in ("mysql", "mariadb")
    for option, value in (("engine", "InnoDB"), ("charset", "utf8mb4"), ("collate", "utf8mb4_bin"))
}
ENTITIES = {  # entity table -> (its key, its bridge table)
    "vpgs": ("vpg_identifier", "task_vpgs"),
    "hosts": ("host_identifier", "task_hosts"),
    "sites": ("site_identifier", "task_sites"),
    "flr_sessions": ("flr_session_identifier", "task_flr_sessions"),
}
TASK_STATES = [
    (0, "FirstUnusedValue", False),
    (1, "InProgress", False),
    (2, "WaitingForUserInput", False),
    (3, "Paused", False),
    (4, "Failed", True),
    (5, "Stopped", True),
    (6, "Completed", True),
    (7, "Cancelling", False),
]
VIEWS = {
    "v_tasks": 1,
    "v_task_daily": 1,
    "v_failover_tests": 1,
    "v_open_tasks": 1,
    "v_etl_health": 1,
}


def upgrade() -> None:
    op.create_table(
        "zvms",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("site_identifier", sa.String(255), nullable=True),
        sa.Column("added_at", types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_zvms")),
        **MYSQL,
    )
    task_states = op.create_table(
        "task_states",
        sa.Column("state", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("is_final", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_task_states")),
        **MYSQL,
    )
    op.bulk_insert(
        task_states,
        [{"state": s, "name": n, "is_final": f} for s, n, f in TASK_STATES],
    )
    op.create_table(
        "task_types",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("listed_by_zvm", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("first_seen_at", types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_task_types")),
        **MYSQL,
    )
    op.create_table(
        "tasks",
        sa.Column("task_identifier", sa.String(255), nullable=False),
        sa.Column("zvm", sa.String(64), nullable=False),
        sa.Column("task_id", sa.String(255), nullable=False),
        sa.Column("site_identifier", sa.String(255), nullable=True),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=True),
        sa.Column("initiated_by", sa.Text(), nullable=True),
        sa.Column("complete_reason", sa.Text(), nullable=True),
        sa.Column("is_cancellable", sa.Boolean(), nullable=True),
        sa.Column("started_at", types.UtcDateTime(), nullable=False),
        sa.Column("completed_at", types.UtcDateTime(), nullable=True),
        sa.Column("started_utc_offset_minutes", sa.Integer(), nullable=True),
        sa.Column("completed_utc_offset_minutes", sa.Integer(), nullable=True),
        sa.Column("duration_seconds", sa.Double(), nullable=True),
        sa.Column("link_href", sa.Text(), nullable=True),
        sa.Column("payload", types.Json(), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("first_seen_at", types.UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", types.UtcDateTime(), nullable=False),
        sa.Column("last_changed_at", types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["state"], ["task_states.state"], name=op.f("fk_tasks_state_task_states")
        ),
        sa.ForeignKeyConstraint(
            ["type"], ["task_types.name"], name=op.f("fk_tasks_type_task_types")
        ),
        sa.ForeignKeyConstraint(["zvm"], ["zvms.name"], name=op.f("fk_tasks_zvm_zvms")),
        sa.PrimaryKeyConstraint("task_identifier", name=op.f("pk_tasks")),
        **MYSQL,
    )
    op.create_index(op.f("ix_tasks_zvm_started_at"), "tasks", ["zvm", "started_at"])
    op.create_index(op.f("ix_tasks_completed_at"), "tasks", ["completed_at"])
    op.create_index(op.f("ix_tasks_state"), "tasks", ["state"])
    op.create_index(op.f("ix_tasks_type"), "tasks", ["type"])

    for entity, (key, bridge) in ENTITIES.items():
        op.create_table(
            entity,
            sa.Column(key, sa.String(255), nullable=False),
            sa.Column("href", sa.Text(), nullable=True),
            sa.Column("first_seen_at", types.UtcDateTime(), nullable=False),
            sa.Column("last_seen_at", types.UtcDateTime(), nullable=False),
            sa.PrimaryKeyConstraint(key, name=op.f(f"pk_{entity}")),
            **MYSQL,
        )
        op.create_table(
            bridge,
            sa.Column("task_identifier", sa.String(255), nullable=False),
            sa.Column(key, sa.String(255), nullable=False),
            sa.ForeignKeyConstraint(
                [key], [f"{entity}.{key}"], name=op.f(f"fk_{bridge}_{key}_{entity}")
            ),
            sa.ForeignKeyConstraint(
                ["task_identifier"],
                ["tasks.task_identifier"],
                name=op.f(f"fk_{bridge}_task_identifier_tasks"),
            ),
            sa.PrimaryKeyConstraint("task_identifier", key, name=op.f(f"pk_{bridge}")),
            **MYSQL,
        )
        op.create_index(op.f(f"ix_{bridge}_{key}"), bridge, [key])

    op.create_table(
        "task_status_changes",
        sa.Column("task_identifier", sa.String(255), nullable=False),
        sa.Column("observed_at", types.UtcDateTime(), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_identifier"],
            ["tasks.task_identifier"],
            name=op.f("fk_task_status_changes_task_identifier_tasks"),
        ),
        sa.PrimaryKeyConstraint(
            "task_identifier", "observed_at", name=op.f("pk_task_status_changes")
        ),
        **MYSQL,
    )
    op.create_table(
        "sync_cursors",
        sa.Column("zvm", sa.String(64), nullable=False),
        sa.Column("cursor", sa.String(64), nullable=False),
        sa.Column("value", types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["zvm"], ["zvms.name"], name=op.f("fk_sync_cursors_zvm_zvms")),
        sa.PrimaryKeyConstraint("zvm", "cursor", name=op.f("pk_sync_cursors")),
        **MYSQL,
    )
    counter = {"nullable": False, "server_default": sa.text("0")}
    op.create_table(
        "etl_runs",
        sa.Column("run_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("zvm", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("started_at", types.UtcDateTime(), nullable=False),
        sa.Column("finished_at", types.UtcDateTime(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tasks_received", sa.Integer(), **counter),
        sa.Column("tasks_inserted", sa.Integer(), **counter),
        sa.Column("tasks_updated", sa.Integer(), **counter),
        sa.Column("tasks_unchanged", sa.Integer(), **counter),
        sa.Column("tasks_rejected", sa.Integer(), **counter),
        sa.Column("requests", sa.Integer(), **counter),
        sa.Column("retries", sa.Integer(), **counter),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        # Expressions, not SQL text: `trigger` is a reserved word on MariaDB and must be
        # quoted the way each database quotes.
        sa.CheckConstraint(
            sa.column("trigger").in_(["sync", "schedule", "backfill"]),
            name=op.f("ck_etl_runs_trigger"),
        ),
        sa.CheckConstraint(
            sa.column("status").in_(["running", "succeeded", "failed"]),
            name=op.f("ck_etl_runs_status"),
        ),
        sa.ForeignKeyConstraint(["zvm"], ["zvms.name"], name=op.f("fk_etl_runs_zvm_zvms")),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_etl_runs")),
        **MYSQL,
    )
    op.create_index(op.f("ix_etl_runs_zvm_started_at"), "etl_runs", ["zvm", "started_at"])
    op.create_table(
        "rejected_tasks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("zvm", sa.String(64), nullable=False),
        sa.Column("task_identifier", sa.String(255), nullable=True),
        sa.Column("received_at", types.UtcDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["etl_runs.run_id"], name=op.f("fk_rejected_tasks_run_id_etl_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_tasks")),
        **MYSQL,
    )
    op.create_index(op.f("ix_rejected_tasks_run_id"), "rejected_tasks", ["run_id"])

    dialect = op.get_context().dialect.name
    for name, version in VIEWS.items():
        op.execute(sqlfiles.create_view_sql(name, version, dialect=dialect))


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(sqlfiles.drop_view_sql(name))
    op.drop_table("rejected_tasks")
    op.drop_table("etl_runs")
    op.drop_table("sync_cursors")
    op.drop_table("task_status_changes")
    for entity, (_key, bridge) in reversed(ENTITIES.items()):
        op.drop_table(bridge)
        op.drop_table(entity)
    op.drop_table("tasks")
    op.drop_table("task_types")
    op.drop_table("task_states")
    op.drop_table("zvms")
