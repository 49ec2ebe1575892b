-- Question: How long does each type of task take: typically, usually at most, and at worst?
-- Grain: one row per task type, over the tasks that completed (state 6) and started in the
--   look-back.
-- Parameter days = 90: the look-back in days (of started_at).
-- Parameter zvm = '': only this ZVM's tasks (empty: every ZVM).
-- The percentiles (p25, median, p75, p90, p95, p99, in seconds) are exact on every
-- database: the linear interpolation between the two nearest values that PostgreSQL's
-- percentile_cont computes: PostgreSQL's own, written elsewhere with ROW_NUMBER() and
-- COUNT() windows (the percentile macro) because SQLite has no percentile function and
-- MariaDB's is a window function only. Tasks of equal duration may take either place in a
-- type's order: a percentile reads only the values, so it is the same either way (and the
-- sort stays narrow). Slowest p90 first.
WITH durations AS (
    SELECT
        t.type,
        t.duration_seconds AS duration,
        ROW_NUMBER() OVER (
            PARTITION BY t.type ORDER BY t.duration_seconds
        ) AS row_in_type,
        COUNT(*) OVER (PARTITION BY t.type) AS tasks_in_type
    FROM tasks AS t
    WHERE t.state = 6
        AND t.duration_seconds IS NOT NULL
        AND t.started_at >= ${days_ago(":days")}
        AND (:zvm = '' OR t.zvm = :zvm)
)
SELECT
    type,
    COUNT(*) AS tasks,
    MIN(duration) AS min_seconds,
    ${percentile("0.25", "duration", "row_in_type", "tasks_in_type")} AS p25_seconds,
    ${percentile("0.5", "duration", "row_in_type", "tasks_in_type")} AS median_seconds,
    ${percentile("0.75", "duration", "row_in_type", "tasks_in_type")} AS p75_seconds,
    ${percentile("0.9", "duration", "row_in_type", "tasks_in_type")} AS p90_seconds,
    ${percentile("0.95", "duration", "row_in_type", "tasks_in_type")} AS p95_seconds,
    ${percentile("0.99", "duration", "row_in_type", "tasks_in_type")} AS p99_seconds,
    MAX(duration) AS max_seconds,
    AVG(duration) AS avg_seconds
FROM durations
GROUP BY type
ORDER BY p90_seconds DESC, type;
