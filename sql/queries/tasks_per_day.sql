-- Question: How many tasks of each type ran and failed on each recent day, per ZVM, and how
--   long did they take?
-- Grain: one row per UTC day (of started_at), ZVM, task type and state, over the days of
--   the look-back.
-- Parameter days = 30: the look-back in whole UTC days: from the day this many days ago to
--   today.
-- Parameter zvm = '': only this ZVM (empty: every ZVM).
-- The rows and columns of v_task_daily for those days, read from task_daily_totals (which
-- every pass keeps equal to tasks), so a year of history costs what a week does.
-- avg_duration_seconds is over the tasks that completed. Oldest day first.
SELECT
    d.day,
    d.zvm,
    d.type,
    d.state,
    s.name AS state_name,
    SUM(d.tasks) AS tasks,
    SUM(CASE WHEN d.state = 4 THEN d.tasks ELSE 0 END) AS failures,
    SUM(d.duration_seconds_sum) / NULLIF(SUM(d.completed_tasks), 0) AS avg_duration_seconds,
    MAX(d.duration_seconds_max) AS max_duration_seconds
FROM task_daily_totals AS d
JOIN task_states AS s ON s.state = d.state
WHERE d.day >= ${utc_day(days_ago(":days"))}
    AND (:zvm = '' OR d.zvm = :zvm)
GROUP BY d.day, d.zvm, d.type, d.state, s.name
ORDER BY d.day, d.zvm, d.type, d.state;
