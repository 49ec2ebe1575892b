-- v_open_tasks, version 2: tasks not in a final state, with their age in seconds
-- (now minus started_at, by the database's clock). The same rows and columns as version 1;
-- the open states (those task_states marks not final) are listed, so the few open tasks
-- are found through an index instead of a scan of every task.
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
WHERE t.state IN (${open_states()});
