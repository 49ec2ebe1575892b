-- v_open_tasks, version 1: tasks not in a final state, with their age in seconds
-- (now minus started_at, by the database's clock).
SELECT
    t.task_identifier,
    t.zvm,
    t.type,
    t.state,
    s.name AS state_name,
    t.progress,
    t.initiated_by,
    t.is_cancellable,
    t.started_at,
    ${seconds_since("t.started_at")} AS age_seconds,
    t.last_seen_at
FROM tasks AS t
JOIN task_states AS s ON s.state = t.state
WHERE NOT s.is_final;
