"""What each view's rows and columns mean, for the data dictionary.

Released view files (``sql/views/<name>.v<N>.sql``) never change, so their column
meanings live here. ``tests/test_dictionary.py`` checks that every column of every view,
as the newest migration creates it, is described here, and nothing else is.
"""

from __future__ import annotations

__all__ = ["VIEW_DOCS", "ViewDoc"]

from dataclasses import dataclass


@dataclass(frozen=True)
class ViewDoc:
    grain: str
    columns: dict[str, str]


_TASK = {
    "task_identifier": "the task (tasks.task_identifier)",
    "zvm": "the ZVM the task came from",
    "type": "the task type",
    "state": "Status.State, 0 to 7",
    "state_name": "the state's name (task_states.name)",
    "started_at": "when the task started (UTC)",
    "completed_at": "when it completed (UTC); null while running",
    "duration_seconds": "completed_at - started_at in seconds; null while running",
    "initiated_by": "who started it (InitiatedBy)",
}

VIEW_DOCS: dict[str, ViewDoc] = {
    "v_tasks": ViewDoc(
        "one row per task, its latest known version, with its state's name",
        {
            **_TASK,
            "task_id": "the task part of the identifier",
            "site_identifier": "the site part of the identifier",
            "is_final": "true (1) for Failed, Stopped and Completed",
            "progress": "Status.Progress, percent",
            "complete_reason": "how it ended, in the ZVM's words",
            "is_cancellable": "IsCancellable",
            "started_utc_offset_minutes": "the UTC offset the source wrote for Started",
            "completed_utc_offset_minutes": "the UTC offset the source wrote for Completed",
            "first_seen_at": "when the ETL first loaded it",
            "last_seen_at": "when the ETL last received it",
            "last_changed_at": "when a load last found it changed",
        },
    ),
    "v_task_daily": ViewDoc(
        "one row per UTC day (of started_at), ZVM, task type and state",
        {
            "day": "the UTC date the tasks started (text YYYY-MM-DD on SQLite)",
            "zvm": "the ZVM",
            "type": "the task type",
            "state": "the state the tasks are in now",
            "state_name": "the state's name",
            "tasks": "how many tasks",
            "failures": "how many of them failed (equal to tasks on Failed rows, else 0)",
            "avg_duration_seconds": "their average duration (completed tasks; null when none)",
            "max_duration_seconds": "their longest duration (completed tasks; null when none)",
        },
    ),
    "v_failover_tests": ViewDoc(
        "one row per FailOverTest task and VPG it names (once with a null VPG when it names none)",
        {
            **_TASK,
            "vpg_identifier": "the VPG tested; null when the task names none",
            "vpg_name": "the VPG's last known name; null when never listed",
            "vpg_priority": "the VPG's priority: 0 Low, 1 Medium, 2 High",
            "outcome": "succeeded (Completed), failed, stopped or in_progress",
            "complete_reason": "how it ended, in the ZVM's words",
        },
    ),
    "v_open_tasks": ViewDoc(
        "one row per task not in a final state",
        {
            **{k: v for k, v in _TASK.items() if k not in ("completed_at", "duration_seconds")},
            "progress": "Status.Progress, percent",
            "is_cancellable": "IsCancellable",
            "age_seconds": "now minus started_at (the database's clock)",
            "last_seen_at": "when the ETL last received it (long ago: maybe purged while open)",
        },
    ),
    "v_etl_health": ViewDoc(
        "one row per ZVM the warehouse knows",
        {
            "zvm": "the ZVM",
            "last_run_id": "its last pass (etl_runs.run_id)",
            "last_run_trigger": "sync, schedule or backfill",
            "last_run_started_at": "when the last pass started",
            "last_run_finished_at": "when it ended; null while running",
            "last_run_status": "running, succeeded or failed",
            "last_run_error": "the last pass's error, when it failed",
            "last_success_run_id": "its last successful pass",
            "last_success_at": "when that pass finished",
            "seconds_since_last_success": "now minus last_success_at",
            "started_cursor": "the newest Started loaded (sync_cursors)",
            "completed_cursor": "the newest Completed loaded",
            "lag_seconds": "now minus the newer cursor: how old the newest task information is",
            "open_tasks": "its tasks not in a final state",
        },
    ),
    "v_recovery_operations": ViewDoc(
        "one row per recovery operation of a ZVM's Recovery Report (Failover, FailoverTest, Move)",
        {
            "zvm": "the ZVM whose report lists it",
            "operation_identifier": "RecoveryOperationIdentifier (or the documented hash)",
            "recovery_type": "Failover, FailoverTest or Move",
            "vpg_identifier": "the VPG (reported, or matched by name or through the task)",
            "vpg_name": "the VPG's last known name (vpgs.name), else the name reported",
            "reported_vpg_name": "VpgName as the report gives it (the name at the time)",
            "vpg_link": "how the VPG was found: reported, name or task; null when it was not",
            "vpg_priority": "the VPG's priority: 0 Low, 1 Medium, 2 High",
            "protected_site_name": "ProtectedSiteName, as reported",
            "recovery_site_name": "RecoverySiteName, as reported",
            "started_at": "StartTime (UTC)",
            "ended_at": "EndTime (UTC)",
            "point_in_time": "PointInTime: the checkpoint recovered to (UTC)",
            "rto_seconds": "RTOInSeconds: the recovery time the ZVM measured",
            "status": "Status as reported (Success, Fail)",
            "outcome": "succeeded (Success), failed (Fail) or unknown (another status)",
            "initiated_by": "InitiatedBy",
            "notes": "Notes: what the operator wrote",
            "steps": "how many steps the report lists",
            "failed_steps": "how many of them failed (Result Fail, Failed, Failure or Error)",
            "task_identifier": "the task the operation was matched to; null when none",
            "task_type": "that task's type",
            "task_state_name": "that task's state",
            "task_duration_seconds": "that task's duration (its waits included, unlike the RTO)",
            "task_match_seconds": "how far apart the operation's and the task's starts are",
            "first_seen_at": "when the ETL first loaded the operation",
            "last_seen_at": "when the ETL last received it",
        },
    ),
    "v_task_vpgs": ViewDoc(
        "one row per task and VPG it names",
        {
            **_TASK,
            "vpg_identifier": "the VPG",
            "vpg_name": "the VPG's last known name; null when never listed",
            "priority": "the VPG's priority: 0 Low, 1 Medium, 2 High",
        },
    ),
}
