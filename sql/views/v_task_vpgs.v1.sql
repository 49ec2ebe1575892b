-- v_task_vpgs, version 1: one row per (task, VPG it names): the task's outcome beside the
-- VPG's last known name and priority. Tasks that name no VPG are not here (see v_tasks).
SELECT
    t.task_identifier,
    t.zvm,
    t.type,
    t.state,
    s.name AS state_name,
    t.started_at,
    t.completed_at,
    t.duration_seconds,
    t.initiated_by,
    tv.vpg_identifier,
    v.name AS vpg_name,
    v.priority
FROM task_vpgs AS tv
JOIN tasks AS t ON t.task_identifier = tv.task_identifier
JOIN task_states AS s ON s.state = t.state
JOIN vpgs AS v ON v.vpg_identifier = tv.vpg_identifier;
