"""The warehouse tables, as SQLAlchemy Core ``Table`` objects.

The names here are a public interface (``docs/warehouse.md``): analysts and dashboards
write SQL against them. This module describes the schema that the migrations in
``migrations/versions/`` build; it never creates anything itself. ``alembic check`` (and
``etl.warehouse.db.drift``) compares the two, so a change here without a migration, or a
migration without a change here, fails the tests.

Portability decisions that apply to every table:

- Timestamps are :class:`~etl.warehouse.types.UtcDateTime` (aware UTC in Python,
  ``timestamptz`` / ``DATETIME(6)`` / text in the database) and have no server default:
  ``CURRENT_TIMESTAMP`` is local time on MariaDB, so the loader always supplies them.
- Key columns are short enough for MariaDB's 3072-byte index limit in utf8mb4 (4 bytes a
  character): identifiers ``String(255)`` (1020 bytes; two of them in a bridge key), ZVM
  names ``String(64)``, type names ``String(128)``.
- On MariaDB/MySQL every table is InnoDB, utf8mb4 with the binary collation, so keys
  compare exactly as on PostgreSQL and SQLite (``nyc`` and ``NYC`` are two ZVMs, not one).
- Every foreign key column leads an index (an explicit one, or the primary key): MariaDB
  would otherwise add indexes of its own that the metadata does not know about.
- Constraint and index names come from :data:`NAMING_CONVENTION`, so a later migration can
  drop or alter them by name on every database (SQLite's batch mode needs the names).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    column,
    false,
    text,
)

from etl.normalize import FINAL_STATES, STATE_NAMES
from etl.warehouse.sqlfiles import OPEN_STATES
from etl.warehouse.types import Json, JsonText, UtcDateTime

__all__ = [
    "FINAL_STATES",
    "NAMING_CONVENTION",
    "OPEN_STATES",
    "RECOVERY_VPG_LINKS",
    "RUN_STATUSES",
    "RUN_TRIGGERS",
    "TASK_STATES",
    "VERIFICATION_STATUSES",
    "etl_runs",
    "flr_sessions",
    "hosts",
    "metadata",
    "recovery_operation_steps",
    "recovery_operations",
    "rejected_recovery_operations",
    "rejected_tasks",
    "sites",
    "sync_cursors",
    "task_daily_totals",
    "task_flr_sessions",
    "task_hosts",
    "task_sites",
    "task_states",
    "task_status_changes",
    "task_types",
    "task_vpgs",
    "tasks",
    "verifications",
    "vpg_daily_tests",
    "vpgs",
    "zvms",
]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

TASK_STATES = STATE_NAMES
"""``Status.State`` values (defined with the parsing in :mod:`etl.normalize`), as seeded
into ``task_states`` by the first migration; ``FINAL_STATES`` are those a task never leaves
(``task_states.is_final``)."""

RUN_TRIGGERS = ("sync", "schedule", "backfill")
RUN_STATUSES = ("running", "succeeded", "failed")
VERIFICATION_STATUSES = ("complete", "incomplete", "failed")

MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    f"{dialect}_{option}": value
    for dialect in ("mysql", "mariadb")
    for option, value in (("engine", "InnoDB"), ("charset", "utf8mb4"), ("collate", "utf8mb4_bin"))
}
"""Table options for MariaDB/MySQL, ignored by the other databases. SQLAlchemy reads the
``mariadb_`` spelling when the URL says ``mariadb://`` and the ``mysql_`` one otherwise."""

ZVM_NAME = String(64)
IDENTIFIER = String(255)
TYPE_NAME = String(128)
URL = String(1024)


def _table(name: str, *items: Any) -> Table:
    return Table(name, metadata, *items, **MYSQL_TABLE_OPTIONS)


zvms = _table(
    "zvms",
    Column(
        "name", ZVM_NAME, primary_key=True, doc="the name given in the configuration (zvms[].name)"
    ),
    Column(
        "url",
        URL,
        nullable=False,
        doc="base URL of the ZVM API, without credentials; kept current with the configuration",
    ),
    Column(
        "site_identifier",
        IDENTIFIER,
        doc=(
            "the ZVM's own site identifier (from /v1/localsite, or the commonest site part of its "
            "task identifiers); null until known"
        ),
    ),
    Column("added_at", UtcDateTime(), nullable=False, doc="when this ETL first ran a pass over it"),
    Column(
        "names_refreshed_at",
        UtcDateTime(),
        doc="when its entity listings (names of VPGs, sites, hosts) were last read; null: never",
    ),
    Column(
        "names_error",
        Text,
        doc="what failed the last time its listings were read; null when every listing answered",
    ),
    Column(
        "recovery_report_read_at",
        UtcDateTime(),
        doc="when a pass last read its Recovery Report (/v1/reports/recovery); null: never",
    ),
    Column(
        "recovery_report_error",
        Text,
        doc=(
            "what went wrong the last time the report was read (missing, failing, a filter or "
            "paging the ZVM ignored, rejected entries); null when it answered as asked"
        ),
    ),
)
"""One row per configured ZVM. ``site_identifier`` comes from ``/v1/localsite`` (or, until
its names are read, from its tasks); ``names_refreshed_at`` is when its entity listings
were last read and ``names_error`` what failed then (null: every listing answered);
``recovery_report_read_at`` and ``recovery_report_error`` say the same of its Recovery
Report."""

task_states = _table(
    "task_states",
    Column(
        "state",
        Integer,
        primary_key=True,
        autoincrement=False,
        doc="the Status.State number, 0 to 7",
    ),
    Column(
        "name",
        String(64),
        nullable=False,
        doc="the state's name (Completed, Failed, WaitingForUserInput...)",
    ),
    Column(
        "is_final",
        Boolean,
        nullable=False,
        doc="true for Failed, Stopped and Completed: a task never leaves them",
    ),
)

task_types = _table(
    "task_types",
    Column(
        "name",
        TYPE_NAME,
        primary_key=True,
        doc="the task type as the ZVM writes it (free text; casing has varied between versions)",
    ),
    Column(
        "listed_by_zvm",
        Boolean,
        nullable=False,
        server_default=false(),
        doc=(
            "true once some ZVM's GET /v1/tasks/types listed it; false for types only seen in tasks"
        ),
    ),
    Column("first_seen_at", UtcDateTime(), nullable=False, doc="when the ETL first met the type"),
)

tasks = _table(
    "tasks",
    Column(
        "task_identifier",
        IDENTIFIER,
        primary_key=True,
        doc="TaskIdentifier (else Link.identifier), as received: <task uuid>.<site uuid>",
    ),
    Column(
        "zvm",
        ZVM_NAME,
        ForeignKey("zvms.name"),
        nullable=False,
        doc="the ZVM it was first extracted from (zvms.name)",
    ),
    Column(
        "task_id",
        IDENTIFIER,
        nullable=False,
        doc="the part of task_identifier before the first '.'",
    ),
    Column(
        "site_identifier",
        IDENTIFIER,
        doc="the part of task_identifier after the first '.' (the task's site); null when none",
    ),
    Column(
        "type",
        TYPE_NAME,
        ForeignKey("task_types.name"),
        nullable=False,
        doc="Type (task_types.name)",
    ),
    Column(
        "state",
        Integer,
        ForeignKey("task_states.state"),
        nullable=False,
        doc="Status.State (task_states.state)",
    ),
    Column("progress", Integer, doc="Status.Progress, percent; null when absent"),
    Column("initiated_by", Text, doc="InitiatedBy: the user or service that started the task"),
    Column(
        "complete_reason",
        Text,
        doc="CompleteReason: the ZVM's words on how it ended (why it failed)",
    ),
    Column("is_cancellable", Boolean, doc="IsCancellable"),
    Column("started_at", UtcDateTime(), nullable=False, doc="Started, in UTC"),
    Column(
        "completed_at",
        UtcDateTime(),
        doc="Completed, in UTC; null while the task has not completed",
    ),
    Column(
        "started_utc_offset_minutes",
        Integer,
        doc=(
            "the UTC offset written in the source value of Started (add it for the ZVM's local "
            "time); null when none was given"
        ),
    ),
    Column("completed_utc_offset_minutes", Integer, doc="the same for Completed"),
    Column(
        "duration_seconds",
        Double(),
        doc="completed_at - started_at in seconds, milliseconds included; null while not completed",
    ),
    Column("link_href", Text, doc="Link.href"),
    Column(
        "payload",
        JsonText(),
        nullable=False,
        doc=(
            "the task object as received, as JSON text (type json on PostgreSQL: cast to jsonb "
            "for the containment and key-exists operators)"
        ),
    ),
    Column(
        "payload_hash",
        String(64),
        nullable=False,
        doc=(
            "sha256 (hex) of the payload as received: how a load tells an updated task from an "
            "unchanged one"
        ),
    ),
    Column(
        "first_seen_at", UtcDateTime(), nullable=False, doc="when the ETL first loaded the task"
    ),
    Column(
        "last_seen_at",
        UtcDateTime(),
        nullable=False,
        doc="when the ETL last received the task from the ZVM",
    ),
    Column(
        "last_changed_at",
        UtcDateTime(),
        nullable=False,
        doc="when a load last found the task changed (its payload differed)",
    ),
    Index(None, "zvm", "started_at"),
    Index(None, "started_at", "zvm", "type", "state", "duration_seconds"),
    Index(None, "state"),
    Index(None, "type", "state", "started_at"),
)
"""One row per ZVM task, its latest known version. ``payload_hash`` is the sha256 hex
digest of the payload bytes as received: the loader compares it to skip unchanged tasks.

Its indexes, each used by a plan (``docs/warehouse.md`` shows which; the payload makes
every row wide, so a query that scans them all reads the whole table):

- ``(zvm, started_at)``: a pass's and ``zvm-etl verify``'s ranges of one ZVM's tasks;
- ``(started_at, zvm, type, state, duration_seconds)``: a look-back over every ZVM (views
  read with ``--since``, the ready queries' ``days``), and the counts, rates and durations
  by day, ZVM, type and state (``v_task_daily``, ``failure_rate_*``,
  ``duration_percentiles``...) read from the index alone, not from the wide rows;
- ``(state)``: the open states (``v_open_tasks``, ``v_etl_health``), the failures
  (``failure_rate_by_week``'s reasons), and the foreign key;
- ``(type, state, started_at)``: the tasks of a few types (failover tests, moves), by
  outcome and time (``v_failover_tests``, ``dr_test_evidence``, ``move_durations``), and
  the foreign key on ``type``."""


ix_tasks_open = Index(
    "ix_tasks_open",
    tasks.c.zvm,
    tasks.c.started_at,
    postgresql_where=tasks.c.state.in_(OPEN_STATES),
).ddl_if(dialect="postgresql")
"""PostgreSQL only: the open tasks, the few a pass re-reads. A partial index holds only
them, so finding them costs the same with a thousand tasks or ten million, and right
after a large load too, before statistics tell the planner how rare they are (with
``ix_tasks_state`` alone it then scanned every task in the retention period). SQLite's
planner ignores such an index without statistics, and MariaDB has no partial indexes."""


def _entity(table: str, key: str, *names: Column[Any]) -> Table:
    """An entity table: its key, the task side (``href``, first/last seen) and, for the
    entities a ZVM lists, ``names`` then who listed it last and when."""
    listed: tuple[Any, ...] = ()
    if names:
        listed = (
            Column("zvm", ZVM_NAME, ForeignKey("zvms.name"), doc="the ZVM that listed it last"),
            Column("listed_at", UtcDateTime(), doc="when a listing last included it"),
            Column(
                "unlisted_at",
                UtcDateTime(),
                doc="when a complete listing first lacked it after it had been listed (deleted); "
                "null while it is listed",
            ),
            Index(None, "zvm"),
        )
    return _table(
        table,
        Column(
            key, IDENTIFIER, primary_key=True, doc="the entity's identifier, as the ZVM gives it"
        ),
        Column("href", Text, doc="the entity's href in a task's reference"),
        Column(
            "first_seen_at",
            UtcDateTime(),
            nullable=False,
            doc="when a load first saw it (in a task or a listing)",
        ),
        Column(
            "last_seen_at",
            UtcDateTime(),
            nullable=False,
            doc="the last load that brought a new or changed task referencing it, or listed it",
        ),
        *names,
        *listed,
    )


def _bridge(table: str, entity: Table, key: str) -> Table:
    return _table(
        table,
        Column(
            "task_identifier",
            IDENTIFIER,
            ForeignKey("tasks.task_identifier"),
            doc="the task (tasks.task_identifier)",
        ),
        Column(
            key,
            IDENTIFIER,
            ForeignKey(entity.c[key]),
            doc=f"an entity the task's RelatedEntities name ({entity.name}.{key})",
        ),
        PrimaryKeyConstraint("task_identifier", key),
        Index(None, key),
    )


vpgs = _entity(
    "vpgs",
    "vpg_identifier",
    Column("name", Text, doc="VpgName, the last known one; null when never listed"),
    Column("priority", Integer, doc="Priority: 0 Low, 1 Medium, 2 High"),
    Column("configured_rpo_seconds", Integer, doc="ConfiguredRpoSeconds: the RPO target"),
    Column("protected_site_identifier", IDENTIFIER, doc="the identifier of ProtectedSite"),
    Column("recovery_site_identifier", IDENTIFIER, doc="the identifier of RecoverySite"),
)
hosts = _entity(
    "hosts",
    "host_identifier",
    Column("name", Text, doc="VirtualizationHostName (or the VRA's HostDisplayName)"),
    Column("vra_name", Text, doc="VraName: the VRA on the host"),
)
sites = _entity(
    "sites",
    "site_identifier",
    Column(
        "name",
        Text,
        doc="SiteName (local site) or PeerSiteName (peer site); for a site these never "
        "named, the VPG listing's SourceSite/TargetSite",
    ),
    Column("location", Text, doc="Location"),
    Column("is_local", Boolean, doc="true for the ZVM's own site, false for a peer site"),
)
flr_sessions = _entity("flr_sessions", "flr_session_identifier")
"""Entity tables: one row per entity referenced by a task or listed by a ZVM. The names
(``name`` and what follows it) are the last known ones: a listing updates them, and an
entity the ZVM no longer lists keeps them, with ``unlisted_at`` set (null again when it
is listed again). ``zvm`` is the ZVM that listed it last; ``listed_at`` when a listing last
included it. An entity only ever seen in tasks has null names."""

task_vpgs = _bridge("task_vpgs", vpgs, "vpg_identifier")
task_hosts = _bridge("task_hosts", hosts, "host_identifier")
task_sites = _bridge("task_sites", sites, "site_identifier")
task_flr_sessions = _bridge("task_flr_sessions", flr_sessions, "flr_session_identifier")

task_status_changes = _table(
    "task_status_changes",
    Column(
        "task_identifier",
        IDENTIFIER,
        ForeignKey("tasks.task_identifier"),
        doc="the task (tasks.task_identifier)",
    ),
    Column(
        "observed_at",
        UtcDateTime(),
        doc=(
            "when the pass that saw this (state, progress) started, by the ETL host's clock "
            "(precision: the sync interval)"
        ),
    ),
    Column("state", Integer, nullable=False, doc="the state seen"),
    Column("progress", Integer, doc="the progress seen"),
    PrimaryKeyConstraint("task_identifier", "observed_at"),
)
"""The primary key (task_identifier, observed_at) is also the "changes of a task, in order"
index: a second index on task_identifier would only slow the inserts down."""

task_daily_totals = _table(
    "task_daily_totals",
    Column("id", Integer, primary_key=True, autoincrement=True, doc="a row number, no meaning"),
    Column(
        "zvm",
        ZVM_NAME,
        ForeignKey("zvms.name"),
        nullable=False,
        doc="tasks.zvm: the ZVM the tasks were first extracted from",
    ),
    Column("day", Date, nullable=False, doc="the UTC day of the tasks' started_at"),
    Column("type", TYPE_NAME, nullable=False, doc="tasks.type"),
    Column("state", Integer, nullable=False, doc="tasks.state (task_states.state)"),
    Column("initiated_by", Text, doc="tasks.initiated_by; null for the tasks that have none"),
    Column("tasks", Integer, nullable=False, doc="how many tasks (at least 1)"),
    Column(
        "completed_tasks",
        Integer,
        nullable=False,
        doc="how many of them have a duration_seconds (have completed)",
    ),
    Column(
        "duration_seconds_sum",
        Double(),
        doc=(
            "the sum of their duration_seconds, exact to the millisecond; "
            "null when none has completed"
        ),
    ),
    Column(
        "duration_seconds_max",
        Double(),
        doc="the longest duration_seconds; null when none has completed",
    ),
    Column("first_started_at", UtcDateTime(), nullable=False, doc="the earliest started_at"),
    Column("last_started_at", UtcDateTime(), nullable=False, doc="the latest started_at"),
    Index(None, "zvm", "day"),
)
"""One row per (zvm, UTC day of started_at, type, state, initiated_by) of ``tasks``: counts
and durations the dashboards read instead of every task of a month. A summary, not a
source: the pass recomputes every (zvm, day) it wrote tasks into from ``tasks``, in the
same transaction (``etl/warehouse/daily.py``), so it always equals ``GROUP BY`` over
``tasks``. ``type`` and ``state`` need no foreign key: they are copied from ``tasks``,
whose keys check them."""

vpg_daily_tests = _table(
    "vpg_daily_tests",
    Column("id", Integer, primary_key=True, autoincrement=True, doc="a row number, no meaning"),
    Column(
        "zvm",
        ZVM_NAME,
        ForeignKey("zvms.name"),
        nullable=False,
        doc="tasks.zvm: the ZVM the tests were first extracted from",
    ),
    Column(
        "vpg_identifier",
        IDENTIFIER,
        ForeignKey("vpgs.vpg_identifier"),
        nullable=False,
        doc="the VPG the tests name (task_vpgs)",
    ),
    Column("day", Date, nullable=False, doc="the UTC day of the tests' started_at"),
    Column("tests", Integer, nullable=False, doc="how many FailOverTest tasks (at least 1)"),
    Column("succeeded_tests", Integer, nullable=False, doc="how many of them Completed (state 6)"),
    Column("failed_tests", Integer, nullable=False, doc="how many of them Failed (state 4)"),
    Column("last_started_at", UtcDateTime(), nullable=False, doc="the latest started_at"),
    Column(
        "last_success_started_at",
        UtcDateTime(),
        doc="the latest started_at of the succeeded ones; null when none succeeded",
    ),
    Column(
        "last_success_completed_at",
        UtcDateTime(),
        doc="the latest completed_at of the succeeded ones; null when none succeeded",
    ),
    Index(None, "zvm", "day"),
    Index(None, "vpg_identifier", "day"),
)
"""One row per (zvm, VPG, UTC day of started_at) with at least one failover test
(a ``FailOverTest`` task, any casing, that names the VPG in ``task_vpgs``): what the
DR-test evidence reads instead of every test of the history (each VPG's last successful
test ever). A summary, not a source: the pass recomputes it with ``task_daily_totals``,
for the same (zvm, day)s, in the same transaction (``etl/warehouse/daily.py``)."""

WAITING_STATES = (2, 3)
"""WaitingForUserInput and Paused: the states ``waiting_time`` measures."""

ix_task_status_changes_waiting = Index(
    "ix_task_status_changes_waiting",
    task_status_changes.c.task_identifier,
    postgresql_where=task_status_changes.c.state.in_(WAITING_STATES),
).ddl_if(dialect="postgresql")
"""PostgreSQL only: the observations of a task waiting for user input or paused, the few
``waiting_time`` starts from (a partial index: a handful of rows, next to nothing to keep
up during a load). Without it that query reads every status change of the look-back."""

sync_cursors = _table(
    "sync_cursors",
    Column("zvm", ZVM_NAME, ForeignKey("zvms.name"), doc="the ZVM"),
    Column("cursor", String(64), doc="started or completed"),
    Column(
        "value",
        UtcDateTime(),
        nullable=False,
        doc=(
            "the largest source Started / Completed loaded for that ZVM (the ZVM's clock, in "
            "UTC); never moves back"
        ),
    ),
    Column("updated_at", UtcDateTime(), nullable=False, doc="when the cursor last moved"),
    PrimaryKeyConstraint("zvm", "cursor"),
)

etl_runs = _table(
    "etl_runs",
    Column("run_id", Integer, primary_key=True, autoincrement=True, doc="increasing number"),
    Column("zvm", ZVM_NAME, ForeignKey("zvms.name"), nullable=False, doc="the ZVM"),
    Column("trigger", String(16), nullable=False, doc="sync, schedule or backfill"),
    Column("started_at", UtcDateTime(), nullable=False, doc="when the pass started"),
    Column("finished_at", UtcDateTime(), doc="when the pass ended; null while running"),
    Column("status", String(16), nullable=False, doc="running, succeeded or failed"),
    Column(
        "tasks_received",
        Integer,
        nullable=False,
        server_default=text("0"),
        doc="tasks the ZVM sent in the pass (0 unless it succeeded)",
    ),
    Column(
        "tasks_inserted",
        Integer,
        nullable=False,
        server_default=text("0"),
        doc="tasks new to the warehouse",
    ),
    Column(
        "tasks_updated",
        Integer,
        nullable=False,
        server_default=text("0"),
        doc="tasks whose payload had changed",
    ),
    Column(
        "tasks_unchanged",
        Integer,
        nullable=False,
        server_default=text("0"),
        doc="tasks received again unchanged",
    ),
    Column(
        "tasks_rejected",
        Integer,
        nullable=False,
        server_default=text("0"),
        doc="records that could not be loaded (see rejected_tasks)",
    ),
    Column(
        "requests",
        Integer,
        nullable=False,
        server_default=text("0"),
        doc="HTTP requests made to the ZVM, logins included",
    ),
    Column(
        "retries",
        Integer,
        nullable=False,
        server_default=text("0"),
        doc="how many of those requests were retries",
    ),
    Column(
        "error",
        Text,
        doc="for a failed pass: one paragraph (at most 2,000 characters), never a secret",
    ),
    Column("host", String(255), doc="the machine that ran the pass"),
    Column("pid", Integer, doc="the process that ran the pass"),
    CheckConstraint(column("trigger").in_(RUN_TRIGGERS), name="trigger"),
    CheckConstraint(column("status").in_(RUN_STATUSES), name="status"),
    Index(None, "zvm", "started_at"),
)
"""One row per extraction of one ZVM. ``host`` and ``pid`` say which process ran it;
``retries`` counts the HTTP retries the pass needed."""


def _rejected_table(name: str, key: str, *, thing: str, owner: str) -> Table:
    """A table of records a pass received but could not load (``thing``: "record" or
    "entry"), with the raw text, the reason, and ``key``, the identifier of the ``owner``
    ("task", "operation") when one could be read."""
    return _table(
        name,
        Column("id", Integer, primary_key=True, autoincrement=True, doc="increasing number"),
        Column(
            "run_id",
            Integer,
            ForeignKey("etl_runs.run_id"),
            nullable=False,
            doc=f"the pass that first received the {thing} (etl_runs.run_id)",
        ),
        Column("zvm", ZVM_NAME, nullable=False, doc="the ZVM that sent it"),
        Column(
            key,
            IDENTIFIER,
            doc=f"the {owner}'s identifier, when one could be read from the {thing}",
        ),
        Column("received_at", UtcDateTime(), nullable=False, doc="when it was received"),
        Column("reason", Text, nullable=False, doc="what is wrong, in words a person can act on"),
        Column("payload", Text, nullable=False, doc=f"the raw {thing}, as JSON text"),
        Index(None, "run_id"),
    )


rejected_tasks = _rejected_table("rejected_tasks", "task_identifier", thing="record", owner="task")
"""Records that could not be loaded, with the raw text and a reason a person can act on;
``task_identifier`` is set when one could be read from the record."""


RECOVERY_VPG_LINKS = ("reported", "name", "task")

recovery_operations = _table(
    "recovery_operations",
    Column("zvm", ZVM_NAME, ForeignKey("zvms.name"), doc="the ZVM whose report lists it"),
    Column(
        "operation_identifier",
        IDENTIFIER,
        doc=(
            "RecoveryOperationIdentifier; for an entry without one, 'sha256:' and the hex "
            "sha256 of the ZVM, the VPG (identifier, else name), the type and the start"
        ),
    ),
    Column(
        "vpg_identifier",
        IDENTIFIER,
        doc=(
            "the VPG: the report's VpgIdentifier, else the VPG matched by name or through the "
            "task (vpg_link says which); null when none could be"
        ),
    ),
    Column(
        "vpg_link",
        String(16),
        doc="how vpg_identifier was found: reported, name or task; null when it was not",
    ),
    Column("vpg_name", Text, doc="VpgName as the report gives it (the name at the time)"),
    Column(
        "recovery_type",
        String(64),
        doc="RecoveryType: Failover, FailoverTest or Move (another value as written)",
    ),
    Column("protected_site_name", Text, doc="ProtectedSiteName, as reported"),
    Column("recovery_site_name", Text, doc="RecoverySiteName, as reported"),
    Column("started_at", UtcDateTime(), nullable=False, doc="StartTime, in UTC"),
    Column("ended_at", UtcDateTime(), doc="EndTime, in UTC; null when not given"),
    Column("point_in_time", UtcDateTime(), doc="PointInTime: the checkpoint recovered to (UTC)"),
    Column(
        "rto_seconds",
        Double(),
        doc="RTOInSeconds: the recovery time the ZVM measured, in seconds",
    ),
    Column("status", Text, doc="Status as reported: Success or Fail"),
    Column("initiated_by", Text, doc="InitiatedBy: who started the operation"),
    Column("notes", Text, doc="Notes: what the operator wrote"),
    Column(
        "task_identifier",
        IDENTIFIER,
        doc=(
            "the task of the operation (tasks.task_identifier): the task of its type on its VPG "
            "that started closest to it, within 5 minutes; null when none did"
        ),
    ),
    Column(
        "task_match_seconds",
        Double(),
        doc="how far apart the operation's and the task's starts are, in seconds",
    ),
    Column("payload", Json(), nullable=False, doc="the report's entry exactly as received"),
    Column(
        "payload_hash",
        String(64),
        nullable=False,
        doc="sha256 (hex) of the entry as received: how a read tells an updated operation",
    ),
    Column("first_seen_at", UtcDateTime(), nullable=False, doc="when the ETL first loaded it"),
    Column("last_seen_at", UtcDateTime(), nullable=False, doc="when the ETL last received it"),
    Column(
        "last_changed_at",
        UtcDateTime(),
        nullable=False,
        doc="when a read last found it changed (its entry differed)",
    ),
    PrimaryKeyConstraint("zvm", "operation_identifier"),
    CheckConstraint(column("vpg_link").in_(RECOVERY_VPG_LINKS), name="vpg_link"),
    Index(None, "zvm", "started_at"),
    Index(None, "task_identifier"),
    Index(None, "vpg_identifier"),
)
"""One row per recovery operation (Failover, FailoverTest, Move) per ZVM whose Recovery
Report lists it, its latest known version. Re-reading an operation updates its row; its
link to a task and a VPG is made again each time it is read (``etl/warehouse/recovery.py``)."""

recovery_operation_steps = _table(
    "recovery_operation_steps",
    Column("zvm", ZVM_NAME, doc="the ZVM (recovery_operations.zvm)"),
    Column(
        "operation_identifier",
        IDENTIFIER,
        doc="the operation (recovery_operations.operation_identifier)",
    ),
    Column(
        "step_number",
        Integer,
        autoincrement=False,
        doc="the step's place in the report, from 1",
    ),
    Column("description", Text, doc="Description"),
    Column("result", Text, doc="Result: Success, Failed..."),
    Column("started_at", UtcDateTime(), doc="StartTime, in UTC; null when not given"),
    Column("ended_at", UtcDateTime(), doc="EndTime, in UTC; null when not given"),
    Column(
        "execution_seconds",
        Double(),
        doc="ExecutionTime in seconds (given as seconds or as a time span hh:mm:ss)",
    ),
    PrimaryKeyConstraint("zvm", "operation_identifier", "step_number"),
    ForeignKeyConstraint(
        ["zvm", "operation_identifier"],
        ["recovery_operations.zvm", "recovery_operations.operation_identifier"],
    ),
)
"""One row per step of a recovery operation, in the report's order; an operation read again
has its steps replaced."""

rejected_recovery_operations = _rejected_table(
    "rejected_recovery_operations", "operation_identifier", thing="entry", owner="operation"
)
"""Recovery Report entries that could not be loaded, with the raw text and the reason; the
same entry received again is stored once per ZVM."""


def _count(name: str, doc: str) -> Column[int]:
    return Column(name, Integer, nullable=False, server_default=text("0"), doc=doc)


verifications = _table(
    "verifications",
    Column("id", Integer, primary_key=True, autoincrement=True, doc="increasing number"),
    Column(
        "zvm",
        ZVM_NAME,
        nullable=False,
        doc="the ZVM verified (a configured name; it may never have been synced)",
    ),
    Column("started_at", UtcDateTime(), nullable=False, doc="when the verification started"),
    Column("finished_at", UtcDateTime(), nullable=False, doc="when it ended"),
    Column(
        "since",
        UtcDateTime(),
        doc="the first instant compared (a task's started_at); null when nothing was compared",
    ),
    Column(
        "until",
        UtcDateTime(),
        doc=(
            "the last instant compared, inclusive: the ZVM's started cursor (tasks started "
            "later are not loaded yet) or the end asked for; null when nothing was compared"
        ),
    ),
    Column(
        "status",
        String(16),
        nullable=False,
        doc=(
            "complete (every task the ZVM holds in the range is in the warehouse, and every "
            "task the warehouse holds there is on the ZVM or was purged by it), incomplete "
            "or failed (the ZVM or the warehouse failed: see error)"
        ),
    ),
    _count("days_checked", "UTC days compared (of started_at)"),
    _count("days_differing", "days on which the ZVM and the warehouse differ"),
    _count("zvm_tasks", "distinct tasks the ZVM returned in the range (malformed ones included)"),
    _count("warehouse_tasks", "tasks the warehouse holds for the ZVM in the range"),
    _count(
        "missing_in_warehouse",
        "tasks the ZVM returned that the warehouse holds neither in tasks nor in rejected_tasks",
    ),
    _count(
        "missing_on_zvm",
        "tasks the warehouse holds that the ZVM no longer returns and did not purge",
    ),
    _count(
        "purged_by_zvm",
        "tasks the warehouse holds that the ZVM purged (older than its history): expected",
    ),
    _count(
        "rejected",
        "malformed records the ZVM returned that are in rejected_tasks: not missing",
    ),
    Column(
        "error",
        Text,
        doc=(
            "why it failed, or why nothing could be compared (a ZVM never synced); one "
            "paragraph, never a secret; null otherwise"
        ),
    ),
    CheckConstraint(column("status").in_(VERIFICATION_STATUSES), name="status"),
    Index(None, "zvm", "started_at"),
)
"""One row per ZVM per ``zvm-etl verify``: whether the warehouse held the ZVM's whole task
history over the range compared, with the counts (``etl/verify.py``). Verify writes only
these rows; ``zvm`` has no foreign key, so a ZVM that was never synced can be recorded."""
