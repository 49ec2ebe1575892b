-- v_task_daily, version 1: per UTC day (of started_at), ZVM, type and state.
SELECT
    ${utc_day("t.started_at")} AS day,
    t.zvm,
    t.type,
    t.state,
    s.name AS state_name,
    COUNT(*) AS tasks,
    SUM(CASE WHEN t.state = 4 THEN 1 ELSE 0 END) AS failures,
    AVG(t.duration_seconds) AS avg_duration_seconds,
    MAX(t.duration_seconds) AS max_duration_seconds
FROM tasks AS t
JOIN task_states AS s ON s.state = t.state
GROUP BY ${utc_day("t.started_at")}, t.zvm, t.type, t.state, s.name;
