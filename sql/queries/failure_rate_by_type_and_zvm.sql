-- Which task types fail most, where, and since when?
-- One row per ZVM and task type, over the tasks that finished (Failed, Stopped or
-- Completed): how many, how many failed, the failure rate, the first and last failure.
SELECT
    t.zvm,
    t.type,
    COUNT(*) AS finished_tasks,
    SUM(CASE WHEN t.state = 4 THEN 1 ELSE 0 END) AS failed_tasks,
    ROUND(1.0 * SUM(CASE WHEN t.state = 4 THEN 1 ELSE 0 END) / COUNT(*), 4) AS failure_rate,
    MIN(CASE WHEN t.state = 4 THEN t.started_at END) AS first_failure_at,
    MAX(CASE WHEN t.state = 4 THEN t.started_at END) AS last_failure_at
FROM tasks AS t
WHERE t.state IN (4, 5, 6)
GROUP BY t.zvm, t.type
ORDER BY failure_rate DESC, failed_tasks DESC, t.zvm, t.type;
