-- Which task types fail most, where, and since when?
-- One row per ZVM and task type, over the tasks that finished (Failed, Stopped or
-- Completed): how many, how many failed, the failure rate, the first and last failure.
-- Read from task_daily_totals (kept equal to tasks by every pass): the same answer as a
-- GROUP BY over every task of the history, at a cost that follows the days, not the tasks.
SELECT
    d.zvm,
    d.type,
    SUM(d.tasks) AS finished_tasks,
    SUM(CASE WHEN d.state = 4 THEN d.tasks ELSE 0 END) AS failed_tasks,
    ROUND(1.0 * SUM(CASE WHEN d.state = 4 THEN d.tasks ELSE 0 END) / SUM(d.tasks), 4)
        AS failure_rate,
    MIN(CASE WHEN d.state = 4 THEN d.first_started_at END) AS first_failure_at,
    MAX(CASE WHEN d.state = 4 THEN d.last_started_at END) AS last_failure_at
FROM task_daily_totals AS d
WHERE d.state IN (4, 5, 6)
GROUP BY d.zvm, d.type
ORDER BY failure_rate DESC, failed_tasks DESC, d.zvm, d.type;
