-- v_tasks, version 1: one row per task (its latest known version) with its state's name.
SELECT
    t.task_identifier,
    t.zvm,
    t.task_id,
    t.site_identifier,
    t.type,
    t.state,
    s.name AS state_name,
    s.is_final,
    t.progress,
    t.initiated_by,
    t.complete_reason,
    t.is_cancellable,
    t.started_at,
    t.completed_at,
    t.duration_seconds,
    t.started_utc_offset_minutes,
    t.completed_utc_offset_minutes,
    t.first_seen_at,
    t.last_seen_at,
    t.last_changed_at
FROM tasks AS t
JOIN task_states AS s ON s.state = t.state;
