-- v_failover_tests, version 3: each FailOverTest task, once per VPG it names (DR-test
-- evidence), with the VPG's last known name and priority. A test whose task names no VPG
-- appears once, with a null vpg_identifier. The same rows and columns as version 2; the
-- type is matched through task_types (every casing of FailOverTest), so the tasks are found
-- through the index on (type, state, started_at) instead of a scan of every task.
SELECT
    tv.vpg_identifier,
    v.name AS vpg_name,
    v.priority AS vpg_priority,
    t.task_identifier,
    t.zvm,
    t.type,
    t.state,
    s.name AS state_name,
    CASE
        WHEN t.state = 6 THEN 'succeeded'
        WHEN t.state = 4 THEN 'failed'
        WHEN t.state = 5 THEN 'stopped'
        ELSE 'in_progress'
    END AS outcome,
    t.started_at,
    t.completed_at,
    t.duration_seconds,
    t.initiated_by,
    t.complete_reason
FROM tasks AS t
JOIN task_states AS s ON s.state = t.state
LEFT JOIN task_vpgs AS tv ON tv.task_identifier = t.task_identifier
LEFT JOIN vpgs AS v ON v.vpg_identifier = tv.vpg_identifier
WHERE t.type IN (SELECT tt.name FROM task_types AS tt WHERE LOWER(tt.name) = 'failovertest');
